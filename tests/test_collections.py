"""Collections (videos/services/collections.py): a user's named sets of their own videos, opened as
a page, and shared with their groups, its done videos with it. Anyone else gets a 404."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from videos.models import Collection, CollectionItem, Status

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob_client(other_user) -> Client:
    client = Client()
    client.force_login(other_user)
    return client


@pytest.fixture
def carol(django_user_model) -> Client:
    """Logged in as Carol, in none of Alice's groups."""
    client = Client()
    client.force_login(django_user_model.objects.create_user("carol"))
    return client


@pytest.fixture
def interns(user, other_user) -> Group:
    group = Group.objects.create(name="Interns")
    group.user_set.add(user, other_user)
    return group


@pytest.fixture
def trips(alice, make_job, stored_video) -> Collection:
    """Alice's collection "Trips" with a done video and a failed one of hers."""
    alice.post("/videos/collections/", {"name": "  Trips  "})
    collection = Collection.objects.get()
    for status, prompt in ((Status.SUCCEEDED, "A harbour at dawn"), (Status.FAILED, "A broken bridge")):
        job = make_job(status=status, prompt=prompt, video_file=stored_video if status == Status.SUCCEEDED else "")
        assert alice.post(f"/videos/{job.pk}/collect/", {"collection": collection.pk}).status_code == 302
    return collection


def test_a_user_makes_a_collection_and_adds_their_videos_to_it(trips, alice, make_job):
    assert trips.name == "Trips"
    page = alice.get(f"/videos/collections/{trips.pk}/").content.decode()
    assert "A harbour at dawn" in page and "A broken bridge" in page
    assert "2 videos" in alice.get("/videos/collections/").content.decode()
    job = make_job(status=Status.SUCCEEDED)
    alice.post(f"/videos/{job.pk}/collect/", {"collection": trips.pk})
    alice.post(f"/videos/{job.pk}/collect/", {"collection": trips.pk})  # again: nothing changes
    assert CollectionItem.objects.filter(collection=trips).count() == 3
    assert "In <a" in alice.get(f"/videos/{job.pk}/").content.decode()


def test_a_video_may_be_in_several_collections_and_names_are_each_users_own(trips, alice, bob_client, make_job):
    alice.post("/videos/collections/", {"name": "Best"})
    best = Collection.objects.get(name="Best")
    job = trips.videos.first()
    alice.post(f"/videos/{job.pk}/collect/", {"collection": best.pk})
    assert set(job.collections.values_list("name", flat=True)) == {"Trips", "Best"}

    response = alice.post("/videos/collections/", {"name": "Trips"}, follow=True)
    assert "You already have a collection named “Trips”." in response.content.decode()
    assert bob_client.post("/videos/collections/", {"name": "Trips"}).status_code == 302  # Bob's own
    assert (
        "Give the collection a name." in alice.post("/videos/collections/", {"name": " "}, follow=True).content.decode()
    )


def test_nobody_else_opens_an_unshared_collection_or_changes_one(
    trips, bob_client, carol, interns, make_job, other_user
):
    for client in (bob_client, carol):
        assert client.get(f"/videos/collections/{trips.pk}/").status_code == 404
        assert "Trips" not in client.get("/videos/collections/").content.decode()
        for action in ("share", "delete", f"remove/{trips.videos.first().pk}"):
            assert client.post(f"/videos/collections/{trips.pk}/{action}/").status_code == 404, action
    bobs = make_job(owner=other_user, status=Status.SUCCEEDED)
    # Bob cannot put his video into Alice's collection, nor Alice hers into his.
    assert bob_client.post(f"/videos/{bobs.pk}/collect/", {"collection": trips.pk}).status_code == 404
    assert CollectionItem.objects.filter(collection=trips).count() == 2
    trips.refresh_from_db()
    assert not trips.shared_with_groups


def test_a_shared_collection_shows_its_done_videos_to_the_owners_groups_only(trips, alice, bob_client, carol, interns):
    assert alice.post(f"/videos/collections/{trips.pk}/share/", {"shared": "on"}).status_code == 302

    page = bob_client.get(f"/videos/collections/{trips.pk}/").content.decode()
    assert "alice's collection, shared with their groups" in page
    assert "A harbour at dawn" in page and "A broken bridge" not in page  # done videos only
    done = trips.videos.get(status=Status.SUCCEEDED)
    assert bob_client.get(f"/videos/{done.pk}/video.mp4").status_code == 200  # shared with the collection
    detail = bob_client.get(f"/videos/{done.pk}/").content.decode()
    assert "alice's video, shared with their groups" in detail and "as staff" not in detail
    assert "A harbour at dawn" in bob_client.get("/videos/team/").content.decode()
    assert "Trips" in bob_client.get("/videos/collections/").content.decode()
    assert carol.get(f"/videos/collections/{trips.pk}/").status_code == 404  # not in her groups
    assert carol.get(f"/videos/{done.pk}/").status_code == 404

    alice.post(f"/videos/collections/{trips.pk}/share/", {})  # taken back: at once
    assert bob_client.get(f"/videos/collections/{trips.pk}/").status_code == 404
    assert bob_client.get(f"/videos/{done.pk}/").status_code == 404


def test_taking_a_video_out_or_deleting_the_collection_unshares_what_it_shared(trips, alice, bob_client, interns):
    alice.post(f"/videos/collections/{trips.pk}/share/", {"shared": "on"})
    done = trips.videos.get(status=Status.SUCCEEDED)

    alice.post(f"/videos/collections/{trips.pk}/remove/{done.pk}/")
    assert bob_client.get(f"/videos/{done.pk}/").status_code == 404
    alice.post(f"/videos/{done.pk}/collect/", {"collection": trips.pk})
    assert bob_client.get(f"/videos/{done.pk}/").status_code == 200

    response = alice.post(f"/videos/collections/{trips.pk}/delete/", follow=True)
    assert "Collection “Trips” deleted; its videos are still yours." in response.content.decode()
    assert bob_client.get(f"/videos/{done.pk}/").status_code == 404
    assert alice.get(f"/videos/{done.pk}/").status_code == 200


def test_sharing_a_collection_needs_a_group(trips, alice):
    response = alice.post(f"/videos/collections/{trips.pk}/share/", {"shared": "on"}, follow=True)

    assert "You are in no group yet" in response.content.decode()
    trips.refresh_from_db()
    assert not trips.shared_with_groups
