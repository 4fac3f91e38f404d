"""The page's one status request (`GET /videos/status/?ids=...`, views.statuses): what it answers for
each job, whose jobs, the ids it refuses, its ETag and 304, and its queries, which do not grow with
the number of jobs."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from videos import catalog
from videos.models import Status, VideoGeneration
from videos.services import ledger, selectors

pytestmark = pytest.mark.django_db
STATUSES = "/videos/status/"


def ask(client, ids, **headers):
    return client.get(STATUSES, {"ids": ",".join(str(i) for i in ids)}, headers=headers)


def without_clock(status: dict) -> dict:
    return {key: value for key, value in status.items() if key not in selectors.CLOCK_FIELDS}


def test_it_answers_for_each_job_what_its_own_status_check_does(alice, make_job, stored_video):
    queued = make_job()
    running = make_job(status=Status.RUNNING, progress=40, runway_task_id="t-1", submitted_at=timezone.now())
    done = make_job(status=Status.SUCCEEDED, progress=100, video_file=stored_video, finished_at=timezone.now())
    ledger.spend_reserve(generation=running)

    response = ask(alice, [running.pk, done.pk, queued.pk])

    assert response.status_code == 200
    jobs = response.json()["jobs"]
    assert [job["id"] for job in jobs] == sorted([queued.pk, running.pk, done.pk])
    for job in jobs:
        alone = alice.get(f"/videos/{job['id']}/status/").json()
        assert without_clock(job) == without_clock(alone)
    by_id = {job["id"]: job for job in jobs}
    assert by_id[queued.pk]["queue_position"] == 1
    assert (by_id[running.pk]["status"], by_id[running.pk]["progress"]) == ("running", 40)
    assert by_id[running.pk]["cost"] == {"credits": 60, "final": False}
    assert by_id[done.pk]["output_url"] == f"/videos/{done.pk}/video.mp4"
    assert by_id[done.pk]["settled"] is True


def test_another_users_deleted_and_unknown_jobs_are_simply_absent(alice, make_job, other_user):
    mine = make_job(status=Status.RUNNING, runway_task_id="t-1")
    theirs = make_job(owner=other_user, status=Status.RUNNING, runway_task_id="t-2", prompt="Bob's secret")
    deleted = make_job(status=Status.FAILED, delete_pending=True)

    response = ask(alice, [mine.pk, theirs.pk, deleted.pk, 10**9])

    assert response.status_code == 200
    assert [job["id"] for job in response.json()["jobs"]] == [mine.pk]
    assert "secret" not in response.content.decode()
    assert ask(alice, [theirs.pk]).json() == {"jobs": []}


def test_staff_too_are_answered_for_their_own_jobs_only(client, admin_user, make_job):
    alices = make_job(status=Status.RUNNING, runway_task_id="t-1")
    client.force_login(admin_user)
    assert ask(client, [alices.pk]).json() == {"jobs": []}


def test_it_requires_login_as_the_other_pages_endpoints_do(client, make_job):
    response = ask(client, [make_job().pk])
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({}, "This field is required."),
        ({"ids": ""}, "This field is required."),
        ({"ids": "abc"}, "“abc” is not a video's number."),
        ({"ids": "3,,8"}, "“” is not a video's number."),
        ({"ids": "3;8"}, "“3;8” is not a video's number."),
        ({"ids": "0"}, "“0” is not a video's number."),
        ({"ids": "-4"}, "“-4” is not a video's number."),
        ({"ids": "1.5"}, "“1.5” is not a video's number."),
        ({"ids": "007"}, "“007” is not a video's number."),
        ({"ids": "9223372036854775808"}, "“9223372036854775808” is not a video's number."),  # past a bigint
        ({"ids": ",".join(str(n) for n in range(1, 52))}, "Ask about at most 50 videos at once, not 51."),
    ],
)
def test_bad_ids_are_refused_with_a_clear_400(alice, query, words):
    response = alice.get(STATUSES, query)
    assert response.status_code == 400
    assert response.json()["errors"]["ids"][0]["message"] == words


def test_up_to_the_cap_is_answered_and_a_repeated_id_once(alice, make_job):
    job = make_job(status=Status.RUNNING, runway_task_id="t-1")
    assert selectors.STATUS_IDS_MAX == 50
    ids = [job.pk, job.pk, *range(10**6, 10**6 + 48)]
    response = ask(alice, ids)
    assert response.status_code == 200
    assert [j["id"] for j in response.json()["jobs"]] == [job.pk]


def test_the_answer_carries_a_weak_etag_and_is_kept_private_and_revalidated(alice, make_job):
    job = make_job(status=Status.RUNNING, runway_task_id="t-1")
    response = ask(alice, [job.pk])
    assert response["ETag"].startswith('W/"')
    cache_control = {part.strip() for part in response["Cache-Control"].split(",")}
    assert {"private", "no-cache"} <= cache_control
    assert "public" not in cache_control and not any(
        part.startswith("max-age=") and part != "max-age=0" for part in cache_control
    )


def test_an_unchanged_page_gets_304_with_no_body_and_its_etag(alice, make_job):
    jobs = [make_job(status=Status.RUNNING, runway_task_id=f"t-{n}", progress=10) for n in range(3)]
    first = ask(alice, [j.pk for j in jobs])

    again = ask(alice, [j.pk for j in jobs], if_none_match=first["ETag"])

    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == first["ETag"]
    assert "private" in again["Cache-Control"]


@pytest.mark.parametrize(
    "change",
    [
        {"progress": 30},  # Runway's figure moved
        {"status": Status.SUCCEEDED, "finished_at": timezone.now()},
        {"message": "Runway is busy: waiting to start."},
        {"delete_pending": True},  # deleted in another tab: gone from the answer
    ],
    ids=["progress", "status", "message", "deleted"],
)
def test_a_changed_job_gives_a_new_etag_and_a_full_answer(alice, make_job, change):
    jobs = [make_job(status=Status.RUNNING, runway_task_id=f"t-{n}", progress=10) for n in range(3)]
    first = ask(alice, [j.pk for j in jobs])

    VideoGeneration.objects.filter(pk=jobs[1].pk).update(**change)
    again = ask(alice, [j.pk for j in jobs], if_none_match=first["ETag"])

    assert again.status_code == 200
    assert again["ETag"] != first["ETag"]
    assert again.json()["jobs"] != first.json()["jobs"]


def test_another_set_of_ids_has_another_etag(alice, make_job, other_user):
    mine = make_job(status=Status.RUNNING, runway_task_id="t-1")
    theirs = make_job(owner=other_user, status=Status.RUNNING, runway_task_id="t-2")
    first = ask(alice, [mine.pk])
    # The same jobs in the answer (theirs is absent), but a card joined the page: a full answer.
    assert ask(alice, [mine.pk, theirs.pk], if_none_match=first["ETag"]).status_code == 200


def test_the_clock_moves_the_figures_but_not_the_etag(user, make_job):
    """The page moves the clock on from when it received the last 200: an answer that differs only
    in its clock figures is the same to it, so the tag leaves them out."""
    now = timezone.now()
    job = make_job(status=Status.RUNNING, runway_task_id="t-1", progress=20)
    VideoGeneration.objects.filter(pk=job.pk).update(
        created_at=now - timedelta(seconds=30), submitted_at=now - timedelta(seconds=20), updated_at=now
    )

    before = selectors.generation_statuses(owner=user, ids=[job.pk], now=now)
    later = selectors.generation_statuses(owner=user, ids=[job.pk], now=now + timedelta(seconds=90))

    assert (before[0]["elapsed_seconds"], later[0]["elapsed_seconds"]) == (30, 120)
    assert (before[0]["runway_seconds"], later[0]["runway_seconds"]) == (20.0, 110.0)
    assert before[0]["progress_seconds"] == later[0]["progress_seconds"] == 20.0  # when 20 % was read: fixed
    assert selectors.generation_statuses_tag(ids=[job.pk], statuses=before) == selectors.generation_statuses_tag(
        ids=[job.pk], statuses=later
    )


def test_the_queries_do_not_grow_with_the_number_of_jobs(alice, make_job):
    """Session, user, and the jobs with their costs and places in line; the time estimates of every
    model on the page add one, once a minute, however many models."""
    models = ["gen4.5", "veo3.1", "veo3.1_fast", "gen4_turbo"]
    for n, model in enumerate(models):  # a history, so that each estimate has jobs to read
        make_job(model=model, status=Status.SUCCEEDED, submitted_at=timezone.now(), finished_at=timezone.now())
        make_job(
            model=model,
            status=Status.SUCCEEDED,
            submitted_at=timezone.now(),
            finished_at=timezone.now() + timedelta(seconds=n),
        )

    def queries_for(count: int) -> tuple[int, int]:
        states = [Status.QUEUED, Status.RUNNING, Status.PENDING, Status.SUCCEEDED, Status.CANCELLED]
        ids = [
            make_job(
                model=models[n % len(models)],
                status=states[n % len(states)],
                runway_task_id=f"t-{n}",
                submitted_at=timezone.now(),
            ).pk
            for n in range(count)
        ]
        ledger.spend_reserve(generation=VideoGeneration.objects.get(pk=ids[0]))
        cache.clear()
        counted = []
        for _ in range(2):  # the estimates read, then remembered
            with CaptureQueriesContext(connection) as queries:
                response = ask(alice, ids)
            assert response.status_code == 200
            assert len(response.json()["jobs"]) == count
            counted.append(len(queries))
        return counted[0], counted[1]

    assert queries_for(1) == queries_for(10) == queries_for(50) == (4, 3)


def test_the_estimates_of_several_models_are_read_in_one_query_and_agree_with_each_alone(make_job):
    now = timezone.now()
    for seconds in (40, 50, 60):
        make_job(status=Status.SUCCEEDED, submitted_at=now, finished_at=now + timedelta(seconds=seconds))
    make_job(model="veo3.1", status=Status.SUCCEEDED, submitted_at=now, finished_at=now + timedelta(seconds=90))

    with CaptureQueriesContext(connection) as queries:
        together = selectors.generation_estimates(models=["gen4.5", "veo3.1", "veo3.1_fast"])
    assert len(queries) == 1
    cache.clear()
    alone = {model: selectors.generation_estimate(model=model) for model in together}
    first_guess = float(catalog.FIRST_GUESS_SECONDS["veo3.1_fast"])
    assert together == alone == {"gen4.5": 50.0, "veo3.1": 90.0, "veo3.1_fast": first_guess}
    with CaptureQueriesContext(connection) as queries:
        selectors.generation_estimates(models=["gen4.5", "veo3.1"])
    assert len(queries) == 0  # remembered for a minute


def test_a_single_jobs_status_check_shares_the_selector_and_answers_404_for_what_is_not_yours(
    alice, make_job, other_user
):
    theirs = make_job(owner=other_user)
    assert alice.get(f"/videos/{theirs.pk}/status/").status_code == 404
    assert alice.get("/videos/99999999999999999999/status/").status_code == 404  # past a bigint


def test_the_status_query_made_once_reads_what_its_queryset_reads(user, other_user, make_job, stored_video):
    """The status request runs its queryset's SQL compiled once per number of ids (selectors._status_rows):
    for each owner and number of ids it reads the same rows, fields, costs and places in line."""
    theirs_first = make_job(owner=other_user)  # ahead of all of alice's in the line
    queued = [make_job(), make_job()]
    running = make_job(status=Status.RUNNING, progress=40, runway_task_id="t-1", submitted_at=timezone.now())
    ledger.spend_reserve(generation=running)
    done = make_job(status=Status.SUCCEEDED, video_file=stored_video, runway_task_id="t-2", finished_at=timezone.now())
    ledger.spend_reserve(generation=done)
    ledger.spend_settle(generation=done, charged=50)
    deleted = make_job(status=Status.FAILED, delete_pending=True)
    mine = [job.pk for job in (*queued, running, done, deleted)] + [theirs_first.pk, 10**9]
    fields = [field.attname for field in VideoGeneration._meta.concrete_fields]
    shown = [*fields, "cost_credits", "cost_final", "queue_position"]

    def read(rows):
        return [{name: getattr(row, name) for name in shown} for row in rows]

    for owner in (user, other_user, user):  # the second time for alice, the SQL is the one already made
        for count in (1, 3, len(mine)):
            ids = sorted(mine[:count])
            compiled = read(selectors._status_rows(owner_id=owner.pk, ids=ids))
            assert compiled == read(selectors._status_jobs(owner_id=owner.pk, ids=ids))
    alices = read(selectors._status_rows(owner_id=user.pk, ids=sorted(mine)))
    assert [row["id"] for row in alices] == sorted(job.pk for job in (*queued, running, done))
    by_id = {row["id"]: row for row in alices}
    assert [by_id[job.pk]["queue_position"] for job in queued] == [2, 3]
    assert (by_id[running.pk]["cost_credits"], bool(by_id[running.pk]["cost_final"])) == (60, False)
    assert (by_id[done.pk]["cost_credits"], bool(by_id[done.pk]["cost_final"])) == (50, True)
