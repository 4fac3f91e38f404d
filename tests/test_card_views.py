"""The live card's server side: the card fragment, the status check's version of it, the place in
line, and the JSON answers of the actions the dashboard does in place."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from videos.models import Status, VideoGeneration
from videos.services import selectors

pytestmark = pytest.mark.django_db
JSON = {"HTTP_ACCEPT": "application/json"}


def card_of(page: str, pk: int) -> str:
    found = re.search(rf'<article class="generation[^"]*" id="generation-{pk}".*?</article>', page, re.S)
    assert found is not None, f"no card for job {pk}"
    return found.group(0)


def without_tokens(html: str) -> str:
    """The card with its CSRF and one-time tokens (new at each render) blanked."""
    return re.sub(r'value="[0-9a-zA-Z-]{32,64}"', 'value=""', html)


# --- The card fragment ----------------------------------------------------------------------------


def test_the_card_fragment_is_the_card_the_dashboard_shows(alice, make_job):
    job = make_job(status=Status.FAILED, message="Runway declined the prompt.", finished_at=timezone.now())
    fragment = alice.get(f"/videos/{job.pk}/card/")
    assert fragment.status_code == 200
    assert fragment["Cache-Control"].startswith("max-age=0")
    dashboard = alice.get("/videos/").content.decode()
    assert without_tokens(fragment.content.decode().strip()) == without_tokens(card_of(dashboard, job.pk))


def test_the_card_fragment_is_only_for_its_owner(alice, make_job, other_user):
    theirs = make_job(owner=other_user)
    assert alice.get(f"/videos/{theirs.pk}/card/").status_code == 404


def test_the_card_fragment_requires_login(client, make_job):
    job = make_job()
    response = client.get(f"/videos/{job.pk}/card/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_the_card_names_its_video_on_every_button_and_on_its_progress_bar(alice, make_job):
    job = make_job(prompt="A lighthouse in a storm", status=Status.FAILED, finished_at=timezone.now())
    card = alice.get(f"/videos/{job.pk}/card/").content.decode()
    assert 'Try again<span class="visually-hidden"> “A lighthouse in a storm”</span>' in card
    assert 'Delete<span class="visually-hidden"> “A lighthouse in a storm”</span>' in card
    assert 'data-confirm="Delete “A lighthouse in a storm”?"' in card
    assert 'aria-label="Progress of “A lighthouse in a storm”"' in card


# --- The status check's version ------------------------------------------------------------------


def test_the_status_version_is_the_cards_and_changes_with_what_the_card_shows(alice, make_job):
    job = make_job(status=Status.RUNNING, runway_task_id="t-1", progress=10)
    first = alice.get(f"/videos/{job.pk}/status/").json()["version"]
    assert f'data-version="{first}"' in alice.get(f"/videos/{job.pk}/card/").content.decode()

    VideoGeneration.objects.filter(pk=job.pk).update(progress=60)  # the bar moves by itself: same card
    assert alice.get(f"/videos/{job.pk}/status/").json()["version"] == first

    VideoGeneration.objects.filter(pk=job.pk).update(status=Status.SUCCEEDED, progress=100)
    assert alice.get(f"/videos/{job.pk}/status/").json()["version"] != first


# --- The place in line ---------------------------------------------------------------------------


def test_the_place_in_line_counts_every_users_queued_jobs_made_before(make_job, other_user):
    start = timezone.now()
    first = make_job(owner=other_user)
    sent = make_job(status=Status.RUNNING, runway_task_id="t-1")  # at Runway: out of the line
    second = make_job()
    third = make_job(owner=other_user)
    for minutes, job in enumerate([first, sent, second, third]):
        VideoGeneration.objects.filter(pk=job.pk).update(created_at=start + timedelta(minutes=minutes))
    read = {job.pk: VideoGeneration.objects.get(pk=job.pk) for job in [first, sent, second, third]}

    assert selectors.generation_queue_position(generation=read[first.pk]) == 1
    assert selectors.generation_queue_position(generation=read[second.pk]) == 2
    assert selectors.generation_queue_position(generation=read[third.pk]) == 3
    assert selectors.generation_queue_position(generation=read[sent.pk]) is None


def test_the_place_in_line_breaks_a_tie_by_number_and_skips_deleted_jobs(make_job):
    now = timezone.now()
    jobs = [make_job() for _ in range(3)]
    VideoGeneration.objects.filter(pk__in=[j.pk for j in jobs]).update(created_at=now)
    VideoGeneration.objects.filter(pk=jobs[0].pk).update(delete_pending=True)
    last = VideoGeneration.objects.get(pk=jobs[2].pk)
    assert selectors.generation_queue_position(generation=last) == 2


def test_the_history_reads_the_same_place_in_line_as_the_card(alice, make_job, other_user):
    make_job(owner=other_user)
    mine = make_job()
    [listed] = selectors.generation_history(owner=mine.owner)
    assert listed.queue_position == 2
    assert selectors.generation_queue_position(generation=VideoGeneration.objects.get(pk=mine.pk)) == 2
    page = alice.get("/videos/").content.decode()
    assert "Waiting in line: 1 job ahead" in card_of(page, mine.pk)
    assert alice.get(f"/videos/{mine.pk}/status/").json()["queue_position"] == 2


def test_the_next_job_in_line_says_so(alice, make_job):
    job = make_job()
    assert "Next in line" in alice.get(f"/videos/{job.pk}/card/").content.decode()


# --- The actions, done in place ------------------------------------------------------------------


def test_cancel_in_place_answers_the_changed_card(alice, make_job):
    job = make_job()
    response = alice.post(f"/videos/{job.pk}/cancel/", **JSON)
    assert response.status_code == 200
    answer = response.json()
    assert answer["message"] == "The video was cancelled."
    assert answer["id"] == job.pk
    assert 'class="generation status-cancelled"' in answer["html"]
    assert ">Try again<" in answer["html"]


def test_cancel_in_place_of_an_ended_job_answers_why_not(alice, make_job):
    job = make_job(status=Status.SUCCEEDED, progress=100)
    response = alice.post(f"/videos/{job.pk}/cancel/", **JSON)
    assert response.status_code == 409
    assert response.json()["error"]


@pytest.mark.parametrize(
    ("action", "status", "said"),
    [
        ("retry", Status.FAILED, "Trying again with the same settings."),
        ("rerun", Status.SUCCEEDED, "Running it again, same seed."),
    ],
)
def test_retry_and_rerun_in_place_answer_the_new_jobs_card(alice, make_job, broker, action, status, said):
    source = make_job(status=status, step=4, prompt="A lighthouse in a storm")
    response = alice.post(f"/videos/{source.pk}/{action}/", {"token": "8a4c1f7e-6d0b-4a43-9a43-1f0c6b1c5a11"}, **JSON)
    assert response.status_code == 201
    answer = response.json()
    new = VideoGeneration.objects.exclude(pk=source.pk).get()
    assert answer["id"] == new.pk
    assert answer["message"] == said
    assert f'id="generation-{new.pk}"' in answer["html"]


def test_rerun_in_place_with_a_new_seed_says_so(alice, make_job, broker):
    source = make_job(status=Status.SUCCEEDED, step=4)
    answer = alice.post(f"/videos/{source.pk}/rerun/", {"seed": "new"}, **JSON).json()
    assert answer["message"] == "Running it again with a new seed."


def test_retry_in_place_of_a_job_that_cannot_be_tried_again_answers_why_not(alice, make_job):
    job = make_job(status=Status.RUNNING, runway_task_id="t-1")
    response = alice.post(f"/videos/{job.pk}/retry/", **JSON)
    assert response.status_code == 409
    assert response.json()["error"]
    assert VideoGeneration.objects.count() == 1


def test_delete_in_place_answers_which_job_went(alice, make_job):
    job = make_job(status=Status.FAILED, finished_at=timezone.now())
    response = alice.post(f"/videos/{job.pk}/delete/", **JSON)
    assert response.status_code == 200
    assert response.json() == {"message": "The video was deleted.", "deleted": job.pk}
    assert not VideoGeneration.objects.visible().filter(pk=job.pk).exists()


def test_actions_in_place_on_another_users_job_answer_404(alice, make_job, other_user):
    theirs = make_job(owner=other_user, status=Status.FAILED)
    for action in ("cancel", "retry", "rerun", "delete"):
        assert alice.post(f"/videos/{theirs.pk}/{action}/", **JSON).status_code == 404


def test_without_the_script_the_actions_still_redirect(alice, make_job):
    job = make_job(status=Status.FAILED, finished_at=timezone.now())
    response = alice.post(f"/videos/{job.pk}/delete/")
    assert response.status_code == 302
    assert response["Location"] == "/videos/"
