"""The shared gallery: a done video shared with its owner's groups (or everyone, when allowed) is
seen by them in the Team view, to watch, download and run again at their own cost; nobody else
sees it, and unsharing or deleting takes it away at once (models.GenerationQuerySet.visible_to)."""

import pytest
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.test import Client

from tests.conftest import PNG
from videos.models import SpendEntry, Status, VideoGeneration

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob_client(other_user) -> Client:
    client = Client()
    client.force_login(other_user)
    return client


@pytest.fixture
def carol(django_user_model) -> Client:
    """Logged in as Carol, who is in none of Alice's groups."""
    client = Client()
    client.force_login(django_user_model.objects.create_user("carol"))
    return client


@pytest.fixture
def interns(user, other_user) -> Group:
    group = Group.objects.create(name="Interns")
    group.user_set.add(user, other_user)
    return group


@pytest.fixture
def shared(make_job, stored_video, interns) -> VideoGeneration:
    """Alice's done video, shared with her groups."""
    return make_job(
        status=Status.SUCCEEDED,
        prompt="A lighthouse in a storm",
        video_file=stored_video,
        image=ContentFile(PNG, name="frame.png"),
        shared_with="groups",
    )


def pages_of(job: VideoGeneration) -> list[str]:
    return [f"/videos/{job.pk}/", f"/videos/{job.pk}/video.mp4", f"/videos/{job.pk}/image"]


def test_a_member_of_the_owners_group_sees_it_in_the_team_view_and_can_watch_it(shared, bob_client, alice):
    team = bob_client.get("/videos/team/").content.decode()
    assert "A lighthouse in a storm" in team and "By alice" in team
    for page in pages_of(shared):
        assert bob_client.get(page).status_code == 200, page
    assert bob_client.get(f"/videos/{shared.pk}/video.mp4", HTTP_RANGE="bytes=0-9").status_code == 206
    detail = bob_client.get(f"/videos/{shared.pk}/").content.decode()
    assert "alice's video, shared with their groups" in detail
    assert f"/videos/{shared.pk}/delete/" not in detail and 'name="shared_with"' not in detail
    assert "A lighthouse in a storm" not in alice.get("/videos/team/").content.decode()  # her own are not "team"


def test_nobody_outside_the_group_sees_it_anywhere(shared, carol):
    assert "A lighthouse in a storm" not in carol.get("/videos/team/").content.decode()
    for page in pages_of(shared):
        assert carol.get(page).status_code == 404, page
    assert carol.get(f"/videos/?from={shared.pk}").status_code == 200  # a plain form, as for any unknown id
    assert "A lighthouse in a storm" not in carol.get(f"/videos/?from={shared.pk}").content.decode()
    assert carol.post(f"/videos/{shared.pk}/rerun/").status_code == 404


def test_a_member_cannot_act_on_it_as_its_owner(shared, bob_client):
    for action in ("cancel", "delete", "retry", "upscale", "share"):
        assert bob_client.post(f"/videos/{shared.pk}/{action}/").status_code == 404, action
    assert bob_client.get(f"/videos/{shared.pk}/card/").status_code == 404
    assert bob_client.get(f"/videos/status/?ids={shared.pk}").json() == {"jobs": []}
    shared.refresh_from_db()
    assert (shared.delete_pending, shared.shared_with) == (False, "groups")


def test_a_member_runs_it_again_at_their_own_cost(shared, bob_client, other_user, user, broker):
    response = bob_client.post(f"/videos/{shared.pk}/rerun/")

    copy = VideoGeneration.objects.exclude(pk=shared.pk).get()
    assert response.status_code == 302 and response["Location"] == f"/videos/{copy.pk}/"
    assert (copy.owner, copy.prompt, copy.seed, copy.model) == (other_user, shared.prompt, shared.seed, shared.model)
    assert copy.image  # the shared video's image, copied
    assert SpendEntry.objects.filter(user=other_user).credits() > 0
    assert SpendEntry.objects.filter(user=user).credits() == 0


def test_edit_and_rerun_fills_the_form_from_a_shared_video(shared, bob_client):
    page = bob_client.get(f"/videos/?from={shared.pk}").content.decode()
    assert "A lighthouse in a storm" in page
    assert f'name="from_generation" value="{shared.pk}"' in page  # its image offered too


def test_unsharing_and_deleting_take_it_away_at_once(shared, alice, bob_client):
    assert alice.post(f"/videos/{shared.pk}/share/", {"shared_with": ""}).status_code == 302
    assert bob_client.get(f"/videos/{shared.pk}/").status_code == 404
    assert "A lighthouse in a storm" not in bob_client.get("/videos/team/").content.decode()

    alice.post(f"/videos/{shared.pk}/share/", {"shared_with": "groups"})
    assert bob_client.get(f"/videos/{shared.pk}/").status_code == 200
    alice.post(f"/videos/{shared.pk}/delete/")
    assert bob_client.get(f"/videos/{shared.pk}/video.mp4").status_code == 404
    assert "A lighthouse in a storm" not in bob_client.get("/videos/team/").content.decode()


def test_the_owner_shares_a_done_video_from_its_page(make_job, stored_video, alice, interns, bob_client):
    job = make_job(status=Status.SUCCEEDED, video_file=stored_video)
    page = alice.get(f"/videos/{job.pk}/").content.decode()
    assert '<option value="groups">Your groups</option>' in page
    assert "everyone" not in page.split('name="shared_with"')[1].split("</select>")[0]  # not allowed here

    response = alice.post(f"/videos/{job.pk}/share/", {"shared_with": "groups"}, follow=True)

    assert "Shared with your groups: they find it under Team." in response.content.decode()
    assert bob_client.get(f"/videos/{job.pk}/").status_code == 200


@pytest.mark.parametrize(
    ("status", "choice", "said"),
    [
        (Status.RUNNING, "groups", "Only a done video can be shared."),
        (Status.SUCCEEDED, "everyone", "Videos can be shared with your groups here, not with everyone."),
        (Status.SUCCEEDED, "anyone", "Choose who may see it: only you, your groups, or everyone."),
    ],
)
def test_what_cannot_be_shared_is_refused_with_a_reason(make_job, alice, interns, status, choice, said):
    job = make_job(status=status)

    response = alice.post(f"/videos/{job.pk}/share/", {"shared_with": choice}, follow=True)

    assert said in response.content.decode()
    job.refresh_from_db()
    assert job.shared_with == ""


def test_a_user_in_no_group_is_told_to_ask_for_one(make_job, alice):
    job = make_job(status=Status.SUCCEEDED)

    response = alice.post(f"/videos/{job.pk}/share/", {"shared_with": "groups"}, follow=True)

    assert "You are in no group yet" in response.content.decode()


def test_everyone_sees_a_video_shared_with_everyone_only_while_the_setting_allows(
    make_job, stored_video, alice, carol, bob_client, interns, settings
):
    settings.SHARE_WITH_EVERYONE = True
    job = make_job(status=Status.SUCCEEDED, video_file=stored_video, prompt="Northern lights")
    alice.post(f"/videos/{job.pk}/share/", {"shared_with": "everyone"})
    assert "Northern lights" in carol.get("/videos/team/").content.decode()
    assert carol.get(f"/videos/{job.pk}/video.mp4").status_code == 200

    settings.SHARE_WITH_EVERYONE = False
    assert carol.get(f"/videos/{job.pk}/").status_code == 404
    assert bob_client.get(f"/videos/{job.pk}/").status_code == 200  # her groups still see it


def test_the_team_view_searches_and_filters_as_the_history_does(make_job, stored_video, other_user, interns, alice):
    for prompt, model in (("Rolling waves", "gen4.5"), ("Quiet forest", "gen4.5"), ("Stormy waves", "veo3.1")):
        make_job(owner=other_user, status=Status.SUCCEEDED, prompt=prompt, model=model, shared_with="groups")
    make_job(owner=other_user, status=Status.SUCCEEDED, prompt="Private waves")  # not shared

    found = alice.get("/videos/team/", {"q": "waves", "model": "gen4.5"}).content.decode()

    assert "Rolling waves" in found
    assert "Stormy waves" not in found and "Quiet forest" not in found and "Private waves" not in found


def test_staff_see_every_shared_video(shared, django_user_model):
    staff = Client()
    staff.force_login(django_user_model.objects.create_user("ops", is_staff=True))
    assert "A lighthouse in a storm" in staff.get("/videos/team/").content.decode()
