"""Queries compiled once (videos/services/prepared.py): they read what their querysets read, on
SQLite and on PostgreSQL, and a stand-in that does not reach the SQL is an error, not a wrong row."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection, transaction
from django.utils import timezone

from videos.models import GroupPolicy, SpendEntry, Status, UserBudget, VideoGeneration
from videos.services import bookkeeping, creation, ledger, prepared

pytestmark = pytest.mark.django_db


def made_ago(job: VideoGeneration, age: timedelta) -> VideoGeneration:
    """The job as if it had been made `age` ago, and reserved in the ledger then."""
    VideoGeneration.objects.filter(pk=job.pk).update(created_at=timezone.now() - age)
    job.refresh_from_db()
    ledger.spend_reserve(generation=job)
    return job


def test_the_limits_query_made_once_reads_what_its_queryset_reads(user, other_user, make_job):
    """The create's limits read (creation._standing_query) gives the row its queryset gives, for each
    owner, with a token of theirs, another, or none, and at two moments a month apart."""
    made_ago(make_job(status=Status.SUCCEEDED), timedelta(days=40))
    made_ago(make_job(status=Status.FAILED), timedelta(hours=30))
    made_ago(make_job(status=Status.RUNNING), timedelta(0))
    make_job()
    token = uuid.uuid4()
    twin = make_job(request_token=token)
    make_job(owner=other_user)
    make_job(status=Status.QUEUED, delete_pending=True)  # being deleted: not in line
    UserBudget.objects.create(user=other_user, monthly_credits=123)
    ruled = Group.objects.create(name="Interns")
    GroupPolicy.objects.create(group=ruled, max_active=2)
    other_user.groups.add(ruled, Group.objects.create(name="Without rules"))
    user.groups.add(Group.objects.create(name="Also without rules"))
    now = timezone.now()

    def both(owner: User, asked: uuid.UUID | None, at: datetime) -> tuple[dict, dict]:
        values = [owner.pk, 1000, at - timedelta(days=1), ledger.month_start(at)]
        compiled = creation._standing_query(connection.vendor, asked is not None).row([*values, asked])
        return compiled, creation._standing_of(*values, token=asked).get()

    for owner in (user, other_user, user):  # the second time for alice, the SQL is the one already made
        for asked in (None, token, uuid.uuid4()):
            for at in (now, now - timedelta(days=35)):
                compiled, expected = both(owner, asked, at)
                assert compiled == expected
    alices, _ = both(user, token, now)
    spent = SpendEntry.objects.of(user.pk).since(ledger.month_start(now)).credits()
    assert spent > 0
    assert alices == {
        "active": 4,
        "twin": twin.pk,
        "queued": 3,
        "budget": 1000,
        "spent": spent,
        "made_since": 1,
        "grouped": False,  # in a group, but one without rules
    }
    bobs, _ = both(other_user, token, now)
    assert bobs == {
        "active": 1,
        "twin": None,
        "queued": 3,
        "budget": 123,
        "spent": 0,
        "made_since": 0,
        "grouped": True,
    }


def test_the_lock_query_made_once_finds_the_user_or_nothing(user):
    with transaction.atomic():
        assert creation._lock_query(connection.vendor).row([user.pk]) == {"pk": user.pk}
        assert creation._lock_query(connection.vendor).row([user.pk + 1000]) is None


def test_a_stand_in_the_sql_does_not_take_is_an_error():
    """A stand-in that never reaches the parameters (here a second one the query does not use) would
    leave a call's value out: preparing fails instead."""
    with pytest.raises(RuntimeError, match=r"stand-ins \[1\] are not among"):
        prepared.prepare(User.objects.filter(pk=-1), [-1, -2])


def test_each_kind_of_stand_in_goes_in_as_the_database_takes_it(user):
    """A number, a datetime and a UUID: on SQLite Django passes the last two as text, and the call's
    values must go in the same way."""
    made = datetime(1900, 1, 1, 0, 0, 0, 7, UTC)
    stand_in_token = uuid.UUID(int=3)
    jobs = VideoGeneration.objects.filter(owner_id=-1, created_at__gte=made, request_token=stand_in_token)
    query = prepared.prepare(jobs.values("pk"), [-1, made, stand_in_token])
    token = uuid.uuid4()
    job = VideoGeneration.objects.create(owner=user, prompt="p", prompt_folded="p", model="gen4.5", request_token=token)
    since = job.created_at - timedelta(seconds=1)
    assert query.row([user.pk, since, token]) == {"pk": job.pk}
    assert query.row([user.pk, job.created_at + timedelta(seconds=1), token]) is None
    assert query.row([user.pk, since, uuid.uuid4()]) is None


def test_a_guarded_update_writes_what_the_orms_update_writes(make_job, stored_video):
    """bookkeeping.update_guarded (SQL made once per set of fields) against QuerySet.update: every
    kind of field a step writes (text, numbers, datetimes, None, a file, a flag, JSON), each
    guarded by the step number and, when asked, the status."""
    names = ("status", "runway_status", "progress", "video_file", "finished_at", "next_check_at", "params", "message")
    ours, theirs = make_job(status=Status.RUNNING, step=3), make_job(status=Status.RUNNING, step=3)
    now = timezone.now()
    for job in (ours, theirs):
        job.status, job.runway_status, job.progress, job.video_file = Status.SUCCEEDED, "SUCCEEDED", 100, stored_video
        job.finished_at, job.next_check_at, job.params = now, None, {"ratio": "1280:720", "seed": 7}
        job.message = "Done: ‘quoted’ and 100%"
    assert not bookkeeping.update_guarded(ours, names, step=2)  # the step moved on: nothing written
    assert not bookkeeping.update_guarded(ours, names, step=3, status=Status.PENDING)
    assert VideoGeneration.objects.get(pk=ours.pk).status == Status.RUNNING
    assert bookkeeping.update_guarded(ours, names, step=3, status=Status.RUNNING)
    VideoGeneration.objects.filter(pk=theirs.pk, step=3).update(**{name: getattr(theirs, name) for name in names})
    written = VideoGeneration.objects.filter(pk__in=[ours.pk, theirs.pk]).order_by("pk").values(*names)
    assert written[0] == written[1]
    assert written[0]["video_file"] == stored_video and written[0]["params"]["seed"] == 7
    assert written[0]["finished_at"] == now and written[0]["next_check_at"] is None
