"""Deleting a user goes through the product (services.actions.user_generations_remove): their
unfinished jobs are cancelled and every job deleted through the worker, so their tasks at Runway
stop and their files leave storage; the spend ledger keeps their entries."""

import pytest
import responses
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from videos.models import SpendEntry, Status, Step, VideoGeneration
from videos.services import ledger
from videos.tasks import task_for

TASK_ID = "acf9ba3d-a513-42c9-a646-96e8bc97c691"
DONE_ID = "bbbbbbbb-a513-42c9-a646-96e8bc97c691"
pytestmark = pytest.mark.django_db


@pytest.fixture
def jobs(make_job):
    """A user's three kinds of job: one Runway is generating, one done with its files, one not sent yet."""
    running = make_job(status=Status.RUNNING, runway_task_id=TASK_ID, step=3, next_check_at=timezone.now())
    done = make_job(status=Status.SUCCEEDED, runway_task_id=DONE_ID, step=6)
    done.video_file.save("done.mp4", ContentFile(b"video"), save=False)
    done.poster.save("done.jpg", ContentFile(b"poster"), save=False)
    done.save()
    queued = make_job(status=Status.QUEUED, next_check_at=timezone.now())
    queued.image.save("input.png", ContentFile(b"\x89PNG\r\n\x1a\n"), save=True)
    for job in (running, done, queued):
        ledger.spend_reserve(generation=job)
    return running, done, queued


def delete_and_let_the_worker_finish(delete, jobs, broker, django_capture_on_commit_callbacks):
    running, done, queued = jobs
    files = [done.video_file.name, done.poster.name, queued.image.name]
    with django_capture_on_commit_callbacks(execute=True):
        delete()

    # At once: the job never sent is gone with its image; the others wait for the worker.
    assert not VideoGeneration.objects.filter(pk=queued.pk).exists()
    assert not default_storage.exists(queued.image.name)
    for job in (running, done):
        job.refresh_from_db()
        assert (job.owner, job.delete_pending, job.cancel_pending) == (None, True, True)
    assert running.status == Status.CANCELLED
    # The running job's cancel, then its delete (which takes the step over), and the done job's delete.
    sent = {(task.args[0], task.args[1]) for task in broker.tasks() if task.name == "videos.tasks.cancel_at_runway"}
    assert {(running.pk, running.step), (done.pk, done.step)} <= sent

    with responses.RequestsMock() as runway:
        runway.delete(f"https://runway.test/v1/tasks/{TASK_ID}", status=204)
        runway.delete(f"https://runway.test/v1/tasks/{DONE_ID}", status=204)
        for job in (running, done):
            job.refresh_from_db()
            with django_capture_on_commit_callbacks(execute=True):
                # The worker's step: delete at Runway, then the files, then the row.
                task_for(Step.CANCEL_AT_RUNWAY).apply(args=[job.pk, job.step], throw=True)
        assert len(runway.calls) == 2  # both tasks stopped (or deleted) at Runway

    assert not VideoGeneration.objects.exists()
    assert not any(default_storage.exists(name) for name in files)
    kept = SpendEntry.objects.filter(generation_number__in=[j.pk for j in jobs])
    assert kept.count() >= 3 and set(kept.values_list("username", flat=True)) == {"alice"}
    assert set(kept.values_list("user", flat=True)) == {None}


def test_a_user_deleted_in_a_shell_has_their_tasks_stopped_and_their_files_removed(
    user, jobs, broker, django_capture_on_commit_callbacks
):
    delete_and_let_the_worker_finish(user.delete, jobs, broker, django_capture_on_commit_callbacks)


def test_a_user_deleted_in_the_admin_goes_the_same_way(
    client, admin_user, user, jobs, broker, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)

    def delete() -> None:
        response = client.post(f"/admin/auth/user/{user.pk}/delete/", {"post": "yes"})
        assert response.status_code == 302

    delete_and_let_the_worker_finish(delete, jobs, broker, django_capture_on_commit_callbacks)


def test_users_deleted_with_the_admins_bulk_action_go_the_same_way(
    client, admin_user, user, jobs, broker, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)

    def delete() -> None:
        data = {"action": "delete_selected", "_selected_action": [user.pk], "post": "yes"}
        assert client.post("/admin/auth/user/", data).status_code == 302

    delete_and_let_the_worker_finish(delete, jobs, broker, django_capture_on_commit_callbacks)
