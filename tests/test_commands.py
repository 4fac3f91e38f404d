import io
import json
import logging
from datetime import timedelta

import pytest
import requests
import responses
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.conftest import MP4, PNG, clip
from videos import catalog
from videos.models import CreditBalance, Status, VideoGeneration

pytestmark = pytest.mark.django_db
BASE = "https://runway.test"
TASK_URL = f"{BASE}/v1/tasks/t-1"


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("generate_video", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def no_sleep(monkeypatch):
    """--inline sleeps between polls; the tests record the waits instead of spending them."""
    waits: list[float] = []
    monkeypatch.setattr("videos.management.commands.generate_video.sleep", waits.append)
    return waits


@pytest.fixture(autouse=True)
def admin(admin_user):
    """The first superuser, as `make run` makes it: the command's videos are its own unless --user says."""
    return admin_user


def test_command_creates_and_enqueues_a_job_of_the_first_superuser(
    broker, django_capture_on_commit_callbacks, django_user_model, admin
):
    django_user_model.objects.create_superuser("later", password="x" * 20)
    with django_capture_on_commit_callbacks(execute=True):
        out = run("A serene mountain landscape at sunset")
    job = VideoGeneration.objects.get()
    assert out.strip() == str(job.pk)
    assert job.owner == admin  # so it shows on admin's dashboard
    assert [t.args for t in broker.tasks()] == [[job.pk, 0]]


def test_command_without_a_superuser_or_user_says_who_could_own_the_video(broker, user, admin):
    admin.delete()
    with pytest.raises(CommandError, match=r"No user to own the video: give one with --user NAME, or make one"):
        run("Waves")
    assert VideoGeneration.objects.count() == 0
    run("Waves", "--user", "alice")
    assert VideoGeneration.objects.get().owner == user


def test_what_the_command_tells_a_person_is_plain_text_and_only_errors_are_coloured(broker):
    out, err = io.StringIO(), io.StringIO()
    call_command("generate_video", "Waves", stdout=out, stderr=err, force_color=True)
    assert err.getvalue().startswith("Estimate: 60 credits (US$0.60) for Gen-4.5")
    assert "\x1b[" not in out.getvalue() + err.getvalue()


def test_the_products_log_lines_stay_out_of_the_output_unless_asked_for(broker, caplog):
    run("Waves")
    assert not [r for r in caplog.records if r.name.startswith("videos") and r.levelno < logging.WARNING]
    call_command("generate_video", "Rain", "--verbosity", "2", stdout=io.StringIO(), stderr=io.StringIO())
    assert any(r.getMessage().endswith("created (gen4.5, queued)") for r in caplog.records)
    assert logging.getLogger("videos").level == logging.INFO  # as the settings left it


def test_command_takes_the_request_options(user, broker):
    run("Waves", "--user", "alice", "--model", "veo3.1_fast", "--ratio", "1920:1080", "--duration", "8")
    job = VideoGeneration.objects.get()
    assert (job.owner, job.model, job.ratio, job.duration) == (user, "veo3.1_fast", "1920:1080", 8)
    assert 0 <= job.seed <= catalog.SEED_MAX  # Veo takes a seed: one is chosen and stored, as for Gen-4


def test_command_refuses_bad_input_like_the_form(broker):
    with pytest.raises(CommandError, match="duration: Gen-4.5 makes videos of 2, 3"):
        run("Waves", "--duration", "30")
    with pytest.raises(CommandError, match="cannot be empty"):
        run("   ")
    with pytest.raises(CommandError, match="Gen-4 Turbo needs an image to start from: add one, or choose a model"):
        run("Waves", "--model", "gen4_turbo")
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        run("Waves", "--user", "nobody")
    assert VideoGeneration.objects.count() == 0


def test_command_image_must_be_https_or_an_image_file(tmp_path, broker):
    with pytest.raises(CommandError, match="https://"):
        run("Waves", "--image", "http://example.com/a.png")
    not_image = tmp_path / "notes.txt"
    not_image.write_text("hello")
    with pytest.raises(CommandError, match="not a JPEG, PNG or WebP"):
        run("Waves", "--image", str(not_image))
    with pytest.raises(CommandError, match="No image file"):
        run("Waves", "--image", str(tmp_path / "missing.png"))
    assert VideoGeneration.objects.count() == 0


@responses.activate
def test_inline_runs_the_job_to_success_and_prints_each_change(no_sleep, settings):
    responses.post(f"{BASE}/v1/text_to_video", json={"id": "t-1"})
    responses.get(TASK_URL, json={"id": "t-1", "status": "PENDING"})
    responses.get(TASK_URL, json={"id": "t-1", "status": "RUNNING", "progress": 0.5})
    responses.get(TASK_URL, json={"id": "t-1", "status": "SUCCEEDED", "output": ["https://cdn.test/v.mp4"]})
    responses.get("https://cdn.test/v.mp4", body=MP4)

    out = run("Waves", "--inline")

    lines = out.strip().splitlines()
    job = VideoGeneration.objects.get()
    assert lines == [
        str(job.pk),
        f"#{job.pk} queued",
        f"#{job.pk} waiting to start",
        f"#{job.pk} generating 50%",
        f"#{job.pk} succeeded: {job.video_file.path}",
    ]
    assert job.status == Status.SUCCEEDED
    assert job.poster  # the thumbnail, the step after the video, made at once
    # Three polls a poll interval apart; storing the video and making its poster follow at once.
    assert no_sleep == [settings.RUNWAY_POLL_INTERVAL] * 3 + [0, 0]
    assert [c.request.method for c in responses.calls] == ["POST", "GET", "GET", "GET", "GET"]
    with open(job.video_file.path, "rb") as stored:
        assert stored.read() == MP4


@responses.activate
def test_inline_sends_an_image_file_as_a_data_uri(tmp_path, no_sleep):
    image = tmp_path / "first.png"
    image.write_bytes(PNG)
    responses.post(f"{BASE}/v1/image_to_video", json={"id": "t-1"})
    responses.get(TASK_URL, json={"id": "t-1", "status": "SUCCEEDED", "output": ["https://cdn.test/v.mp4"]})
    responses.get("https://cdn.test/v.mp4", body=MP4)

    run("Waves", "--image", str(image), "--inline")

    import json

    body = json.loads(responses.calls[0].request.body)
    assert body["model"] == "gen4_turbo"
    assert body["promptImage"].startswith("data:image/png;base64,")


@responses.activate
def test_an_image_needs_no_prompt_for_a_model_that_needs_none(tmp_path, no_sleep):
    image = tmp_path / "first.png"
    image.write_bytes(PNG)
    responses.post(f"{BASE}/v1/image_to_video", json={"id": "t-1"})
    responses.get(TASK_URL, json={"id": "t-1", "status": "SUCCEEDED", "output": ["https://cdn.test/v.mp4"]})
    responses.get("https://cdn.test/v.mp4", body=MP4)

    run("--image", str(image), "--model", "gen4_turbo", "--inline")

    body = json.loads(responses.calls[0].request.body)
    assert "promptText" not in body
    assert body["promptImage"].startswith("data:image/png;base64,")
    with pytest.raises(CommandError, match="Give a PROMPT"):
        run("--model", "gen4_turbo")


@responses.activate
def test_inline_failure_exits_non_zero_with_the_message(no_sleep):
    responses.post(f"{BASE}/v1/text_to_video", json={"id": "t-1"})
    responses.get(TASK_URL, json={"id": "t-1", "status": "FAILED", "failureCode": "SAFETY.INPUT.TEXT"})
    with pytest.raises(CommandError, match="failed: Runway's content moderation declined"):
        run("Waves", "--inline")


def test_wait_without_a_key_fails_at_once(settings, broker):
    settings.RUNWAY_API_KEY = ""
    with pytest.raises(CommandError, match="Runway API key is not configured"):
        run("Waves", "--wait")
    assert broker.tasks() == []


def test_wait_follows_a_job_that_the_worker_finishes(monkeypatch, broker, stored_video):
    """--wait reads the row; here the 'worker' finishes the job between two looks."""

    def finish_job(seconds):
        VideoGeneration.objects.update(status=Status.SUCCEEDED, progress=100, video_file=stored_video)

    monkeypatch.setattr("videos.management.commands.generate_video.sleep", finish_job)
    out = run("Waves", "--wait")
    assert out.strip().splitlines()[-1].endswith(f"succeeded: {default_storage.path(stored_video)}")


def test_wait_says_early_when_no_worker_takes_the_job_and_gives_up_after_the_jobs_limits(monkeypatch, settings, broker):
    settings.RUNWAY_MAX_QUEUE_WAIT, settings.RUNWAY_MAX_WAIT = 60, 5
    clock = iter(range(0, 10_000, 10))  # ten seconds a look
    monkeypatch.setattr("videos.management.commands.generate_video.monotonic", lambda: next(clock))
    monkeypatch.setattr("videos.management.commands.generate_video.sleep", lambda s: None)
    err = io.StringIO()
    with pytest.raises(CommandError, match=r"still queued: is a worker running for this installation") as caught:
        call_command("generate_video", "Waves", "--wait", stdout=io.StringIO(), stderr=err)

    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    assert f"on queue {queue!r}" in str(caught.value)
    [hint] = [line for line in err.getvalue().splitlines() if line.startswith("No worker")]
    assert hint.startswith(
        f"No worker has taken it in 30 s: is a worker running for this installation, on queue {queue!r}"
    )


ORGANIZATION_URL = f"{BASE}/v1/organization"


@responses.activate
def test_credits_alone_prints_the_balance_and_makes_no_job():
    responses.get(ORGANIZATION_URL, json={"creditBalance": 1234, "tier": {"maxMonthlyCreditSpend": 10000}})

    assert run("--credits") == "Runway credits: 1234 (US$12.34)\n"
    assert VideoGeneration.objects.count() == 0
    assert responses.calls[0].request.headers["Authorization"].startswith("Bearer key_")


@responses.activate
def test_credits_ask_runway_and_keep_the_figure_for_the_dashboard():
    responses.get(ORGANIZATION_URL, json={"creditBalance": 1234})

    run("--credits")
    responses.replace(responses.GET, ORGANIZATION_URL, json={"creditBalance": 1200})
    assert run("--credits") == "Runway credits: 1200 (US$12.00)\n"  # a command line asks each time
    assert len(responses.calls) == 2
    assert CreditBalance.objects.get().credits == 1200


@responses.activate
def test_credits_are_unknown_when_runway_cannot_be_reached():
    responses.get(ORGANIZATION_URL, body=requests.ConnectionError("refused"))

    out = run("--credits")  # no CommandError: exit code 0

    assert (
        out == "Runway credits: unknown (Runway did not give a balance: Could not reach Runway (connection failed))\n"
    )
    assert VideoGeneration.objects.count() == 0


@responses.activate
def test_credits_show_the_last_known_figure_and_its_age_when_runway_cannot_be_reached():
    CreditBalance.objects.create(credits=900, fetched_at=timezone.now() - timedelta(minutes=5))
    responses.get(ORGANIZATION_URL, status=503)

    out = run("--credits")

    assert out.startswith("Runway credits: 900 (US$9.00) 5 minutes ago; Runway did not answer now: ")


@responses.activate
def test_credits_come_before_the_generation(broker):
    responses.get(ORGANIZATION_URL, json={"creditBalance": 50})

    lines = run("Waves", "--credits").splitlines()

    assert lines == ["Runway credits: 50 (US$0.50)", str(VideoGeneration.objects.get().pk)]


def test_a_prompt_is_required_without_credits(broker):
    with pytest.raises(CommandError, match="Give a PROMPT"):
        run()
    with pytest.raises(CommandError, match="Give a PROMPT"):
        run("--wait")
    assert VideoGeneration.objects.count() == 0


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@responses.activate
def test_inline_on_a_terminal_redraws_one_progress_bar(no_sleep):
    responses.post(f"{BASE}/v1/text_to_video", json={"id": "t-1"})
    responses.get(TASK_URL, json={"id": "t-1", "status": "RUNNING", "progress": 0.5})
    responses.get(TASK_URL, json={"id": "t-1", "status": "SUCCEEDED", "output": ["https://cdn.test/v.mp4"]})
    responses.get("https://cdn.test/v.mp4", body=MP4)
    out = Terminal()

    call_command("generate_video", "Waves", "--inline", stdout=out)

    job = VideoGeneration.objects.get()
    first, bar, success, end = out.getvalue().split("\n")
    assert first == str(job.pk)
    draws = bar.split("\r")[1:]
    assert draws[0].startswith("[--------------------] 0%  queued  0:")
    assert "[##########----------] 50%  generating  0:" in bar
    assert draws[-1].startswith("[####################] 100%  done  0:")
    assert success == f"#{job.pk} succeeded: {job.video_file.path}"
    assert end == ""


@responses.activate
def test_inline_prints_the_estimate_before_sending_and_what_runway_charged_after(no_sleep):
    responses.post(f"{BASE}/v1/text_to_video", json={"id": "t-1", "estimatedCost": {"credits": 60}})
    responses.get(
        TASK_URL,
        json={"id": "t-1", "status": "SUCCEEDED", "output": ["https://cdn.test/v.mp4"], "cost": {"credits": 45}},
    )
    responses.get("https://cdn.test/v.mp4", body=MP4)
    out, err = io.StringIO(), io.StringIO()

    call_command("generate_video", "Waves", "--inline", "--duration", "5", stdout=out, stderr=err)

    assert err.getvalue().splitlines() == [
        "Estimate: 60 credits (US$0.60) for Gen-4.5, 5 s (Runway's own figure is recorded when it accepts the request)",
        "Cost: 45 credits (US$0.45)",
    ]
    assert out.getvalue().splitlines()[0] == str(VideoGeneration.objects.get().pk)  # stdout keeps its lines


@responses.activate
def test_inline_says_when_the_cost_is_only_our_estimate(no_sleep):
    responses.post(f"{BASE}/v1/text_to_video", json={"id": "t-1"})
    responses.get(TASK_URL, json={"id": "t-1", "status": "FAILED", "failureCode": "INTERNAL"})
    err = io.StringIO()
    with pytest.raises(CommandError, match="failed"):
        call_command("generate_video", "Waves", "--inline", "--duration", "2", stdout=io.StringIO(), stderr=err)
    assert err.getvalue().splitlines()[-1] == "Cost: 24 credits (US$0.24), our estimate: Runway gave no figure"


def test_the_estimate_is_printed_even_when_the_budget_refuses_the_job(broker, settings):
    settings.RUNWAY_MONTHLY_BUDGET_PER_USER = 50
    err = io.StringIO()
    with pytest.raises(CommandError, match="This video would cost about 96 credits"):
        call_command("generate_video", "Waves", "--duration", "8", stdout=io.StringIO(), stderr=err)
    assert err.getvalue().startswith("Estimate: 96 credits (US$0.96) for Gen-4.5, 8 s")
    assert VideoGeneration.objects.count() == 0


@responses.activate
def test_a_clip_is_edited_inline_with_its_estimate_at_most_the_ceiling_per_second(no_sleep, tmp_path, media):
    path = tmp_path / "holiday.mp4"
    path.write_bytes(clip(2.0))
    responses.post(f"{BASE}/v1/video_to_video", json={"id": "t-1", "estimatedCost": {"credits": 40}})
    responses.get(
        TASK_URL,
        json={"id": "t-1", "status": "SUCCEEDED", "output": ["https://cdn.test/v.mp4"], "cost": {"credits": 40}},
    )
    responses.get("https://cdn.test/v.mp4", body=MP4)
    err = io.StringIO()

    call_command("generate_video", "Make it snow", "--video", str(path), "--inline", stdout=io.StringIO(), stderr=err)

    assert err.getvalue().splitlines() == [
        "Estimate: at most 200 credits (US$2.00) for Aleph 2.0, 2 s (Runway's own figure is recorded when it accepts "
        "the request)",
        "Cost: 40 credits (US$0.40)",
    ]
    job = VideoGeneration.objects.get()
    sent = json.loads(responses.calls[0].request.body)
    assert (job.endpoint, job.model, sent["model"]) == ("video_to_video", "aleph2", "aleph2")
    assert sent["videoUri"].startswith("data:video/mp4;base64,") and sent["promptText"] == "Make it snow"


def test_a_clip_that_is_not_one_is_refused_like_the_form(broker, tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_bytes(b"hello" * 200)
    with pytest.raises(CommandError, match="video: The file is not an MP4, QuickTime"):
        run("Make it snow", "--video", str(path))
    with pytest.raises(CommandError, match="No clip file at"):
        run("Make it snow", "--video", str(tmp_path / "missing.mp4"))
    assert VideoGeneration.objects.count() == 0
