"""Groups' rules (videos/services/groups.py): a budget the members share, the models they may use,
the longest video and the videos in progress at once, checked with each member's own limits."""

import threading

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.utils import timezone

from api import services as api_services
from videos.catalog import VideoRequest
from videos.models import GroupPolicy, SpendEntry, Status
from videos.services import creation, groups, ledger

pytestmark = pytest.mark.django_db

# The default request: Gen-4.5 from text, 5 s, 12 credits a second.
WAVES = VideoRequest(prompt="Waves")


@pytest.fixture
def interns(user, other_user) -> Group:
    """Alice and Bob's group, with rules of its own."""
    group = Group.objects.create(name="Interns")
    group.user_set.add(user, other_user)
    return group


def rules(group: Group, **fields) -> GroupPolicy:
    return GroupPolicy.objects.create(group=group, **fields)


def create(owner, request: VideoRequest = WAVES):
    return creation.generation_create(owner=owner, request=request, enqueue=False)


def refusal(owner, request: VideoRequest = WAVES) -> dict[str, list[str]]:
    """What a request the group's rules refuse about one of its fields is told (a 400 for the API,
    not a limit to wait out)."""
    with pytest.raises(ValidationError) as refused:
        create(owner, request)
    assert not isinstance(refused.value, creation.LimitReached)
    return refused.value.message_dict


def test_a_member_may_use_only_the_groups_models(interns, user):
    rules(interns, allowed_models=["gen4_turbo", "veo3.1_fast"])

    said = refusal(user)

    assert said == {"model": ["Your group Interns may use these models only: Gen-4 Turbo, Veo 3.1 Fast."]}
    assert create(user, VideoRequest(prompt="Waves", model="veo3.1_fast")).model == "veo3.1_fast"


def test_a_member_may_not_make_a_video_longer_than_the_groups_longest(interns, user):
    rules(interns, max_duration=5)

    said = refusal(user, VideoRequest(prompt="Waves", duration=10))

    assert said == {
        "duration": [
            "Your group Interns allows videos of up to 5 s; this one would be 10 s. "
            "Choose a shorter duration (or a shorter clip)."
        ]
    }
    assert create(user, VideoRequest(prompt="Waves", duration=5)).duration == 5


def test_the_members_together_have_at_most_the_groups_videos_in_progress(interns, user, other_user, settings):
    rules(interns, max_active=2)
    settings.RUNWAY_MAX_ACTIVE_PER_USER = 5
    create(user)
    create(other_user)

    with pytest.raises(creation.LimitReached) as refused:
        create(user)

    assert refused.value.messages == [
        "Your group Interns already has 2 videos in progress, the most it may have at once (2). "
        "Wait for one of them to finish."
    ]
    assert refused.value.retry_after == settings.RUNWAY_POLL_INTERVAL
    user.video_generations.update(status=Status.SUCCEEDED)  # one ends: room again
    assert create(other_user).status == Status.QUEUED


def test_the_members_share_the_groups_budget_on_top_of_their_own(interns, user, other_user, django_user_model):
    rules(interns, monthly_credits=150)
    create(user)  # 60
    create(other_user)  # 120

    with pytest.raises(creation.LimitReached) as refused:
        create(user)

    [message] = refused.value.messages
    assert message.startswith(
        "This video would cost about 60 credits (US$0.60), and 30 credits (US$0.30) is left of the 150 credits "
        "(US$1.50) a month your group Interns shares. It resets on "
    )
    assert refused.value.retry_after > 0
    outsider = django_user_model.objects.create_user("carol")
    assert create(outsider).status == Status.QUEUED  # not a member: only her own budget
    assert SpendEntry.objects.filter(user__groups=interns).credits() == 120


def test_a_group_budget_of_zero_stops_its_members(interns, user):
    rules(interns, monthly_credits=0)

    with pytest.raises(creation.LimitReached, match="Your group Interns has a monthly budget of 0 credits"):
        create(user)


def test_a_member_of_two_groups_is_held_to_both(interns, user):
    rules(interns, allowed_models=["gen4.5", "veo3.1"])
    stricter = Group.objects.create(name="Night shift")
    stricter.user_set.add(user)
    rules(stricter, allowed_models=["veo3.1", "veo3.1_fast"])

    assert "model" in refusal(user)  # Gen-4.5: the first allows it, the second does not
    assert "model" in refusal(user, VideoRequest(prompt="Waves", model="veo3.1_fast"))
    assert create(user, VideoRequest(prompt="Waves", model="veo3.1")).model == "veo3.1"


def test_a_group_without_rules_changes_nothing(user):
    Group.objects.create(name="Book club").user_set.add(user)

    assert create(user).status == Status.QUEUED


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="two requests at once need two connections to a server that locks rows: PostgreSQL (DATABASE_URL)",
)
def test_two_members_at_once_cannot_overspend_the_group(django_user_model):
    group = Group.objects.create(name="Interns")
    rules(group, monthly_credits=100)  # room for one 60-credit job, not two
    members = [django_user_model.objects.create_user(name) for name in ("dora", "ed")]
    group.user_set.add(*members)
    barrier = threading.Barrier(2)
    made: list[int] = []
    refused: list[str] = []

    def request(owner) -> None:
        try:
            barrier.wait(timeout=10)
            made.append(create(owner).pk)
        except ValidationError as exc:
            refused.append(" ".join(exc.messages))
        finally:
            connections.close_all()  # this thread's own connection

    threads = [threading.Thread(target=request, args=(member,)) for member in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(made) == 1, (made, refused)
    assert (
        len(refused) == 1
        and "40 credits (US$0.40) is left of the 100 credits (US$1.00) a month your group Interns shares" in refused[0]
    )
    assert SpendEntry.objects.filter(user__in=members).credits() == 60


def test_the_dashboard_shows_the_groups_spend_next_to_the_members_own(interns, alice, user, other_user):
    rules(interns, monthly_credits=1000, max_active=3)
    create(other_user)  # 60, in progress

    page = alice.get("/videos/").content.decode()

    shared = "60 credits (US$0.60) of the 1,000 credits (US$10.00) its members share this month, 940 left"
    assert f"Your group Interns: {shared}" in page
    assert "1 of 3 videos in progress" in page
    assert "Your group Interns" in alice.get("/videos/account/").content.decode()  # the part the page refreshes


def test_the_api_answers_a_groups_refusals_as_runway_would_a_bad_request_or_a_limit(interns, user, client, settings):
    settings.RUNWAY_API_KEY = "configured"
    key = api_services.api_key_create(user=user, name="script").key
    rules(interns, allowed_models=["veo3.1_fast"], monthly_credits=50)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}", "HTTP_X_RUNWAY_VERSION": "2024-11-06"}
    body = {"promptText": "Waves", "ratio": "1280:720", "duration": 5}

    refused = client.post("/v1/text_to_video", {**body, "model": "gen4.5"}, content_type="application/json", **auth)
    assert refused.status_code == 400
    assert "Your group Interns may use these models only: Veo 3.1 Fast." in refused.content.decode()

    veo = {**body, "model": "veo3.1_fast", "duration": 8}
    over = client.post("/v1/text_to_video", veo, content_type="application/json", **auth)
    assert over.status_code == 429, over.content.decode()
    assert "a month your group Interns shares" in over.json()["error"]
    assert int(over["Retry-After"]) > 0


def test_the_figures_compiled_once_are_what_their_queryset_reads(interns, user, other_user, django_user_model):
    rules(interns, monthly_credits=500, allowed_models=["gen4.5"], max_active=9)
    outsider = django_user_model.objects.create_user("carol")
    for owner in (user, other_user, outsider):
        create(owner)
    month = ledger.month_start(timezone.now())

    [compiled] = groups.groups_standing(user_id=user.pk, month_from=month)
    [(pk, name, budget, models, longest, most, spent, active)] = groups._figures(user.pk, month)

    assert compiled == groups.GroupStanding(pk, name, budget, tuple(models), longest, most, spent, active)
    assert (compiled.spent, compiled.active, compiled.allowed_models) == (120, 2, ("gen4.5",))  # not Carol's
    assert groups.groups_standing(user_id=outsider.pk, month_from=month) == []
