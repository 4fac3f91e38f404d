"""A real browser (Debian's Chromium, driven by Playwright) against the real stack: the web
server, a Celery worker, Redis and the Runway simulator."""

import os
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from django.conf import settings
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from harness.faults import RedisServer, celery_broker
from runway_simulator import ManualClock, RunwaySimulator
from tests.stack import Worker, running_worker
from videos import catalog
from videos.models import Status, VideoGeneration

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
PASSWORD = "a-long-browser-password"
TASK_SECONDS = 8.0
# Two polls (5 s apart) end every job here: the second times out the one that never ends.
MAX_WAIT = 10


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    """The simulator's time: its tasks move only when a test moves it."""
    return ManualClock()


@pytest.fixture(scope="module")
def simulator(clock) -> Iterator[RunwaySimulator]:
    # Output links expire a second after each look: the page must play our own copy.
    sim = RunwaySimulator(task_seconds=TASK_SECONDS, api_key=settings.RUNWAY_API_KEY, output_ttl=1.0, clock=clock)
    with sim:
        yield sim


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, simulator) -> Iterator[Worker]:
    with running_worker(django_db_blocker, simulator, max_wait=MAX_WAIT) as worker:
        yield worker


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Playwright runs an event loop in this thread; the test's own ORM calls are still synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        yield browser
        browser.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


# Chromium reports what the Content-Security-Policy refused on the console ("Refused to execute
# inline script because it violates the following Content Security Policy directive ...");
# the page's own violation events are logged there too, in case a message is worded otherwise.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (event) {
  console.error("CSP violation: " + event.violatedDirective + " " + event.blockedURI);
});
"""


def watch_for_problems(page: Page) -> list[str]:
    """The server errors, script errors and CSP violations the page meets, as they happen."""
    problems: list[str] = []
    page.add_init_script(REPORT_CSP_VIOLATIONS)
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 500 else None)
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or message.text.startswith("CSP violation"):
            problems.append(f"CSP: {message.text}")

    page.on("console", on_console)
    return problems


@pytest.fixture
def page(browser, request) -> Iterator[Page]:
    """A fresh browser tab that fails the test on any server error, script error or CSP violation it meets."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    problems = watch_for_problems(page)
    page.shots = Screenshots(page, request.node.name)  # type: ignore[attr-defined]
    yield page
    page.shots.take("last")  # type: ignore[attr-defined]
    context.close()
    assert problems == [], "the page met server or script errors"


class Screenshots:
    def __init__(self, page: Page, test_name: str) -> None:
        self.page = page
        self.prefix = re.sub(r"\W+", "-", test_name)
        self.count = 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(self, step: str) -> None:
        self.count += 1
        self.page.screenshot(path=SCREENSHOTS / f"{self.prefix}-{self.count:02}-{step}.png", full_page=True)
        assert "Server Error" not in self.page.content()


@pytest.fixture
def logged_in(page, live_server, django_user_model) -> Page:
    django_user_model.objects.create_user(username="carol", password=PASSWORD)
    page.goto(live_server.url + "/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.shots.take("login")  # type: ignore[attr-defined]
    page.get_by_label("Username").fill("carol")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(live_server.url + "/videos/")
    expect(page.get_by_role("link", name="Generate Videos")).to_be_visible()
    # The page's scripts (deferred) have run once the document has loaded: a test that acts before
    # then, on a busy machine, would drop a file or press a key on a page that is not listening.
    page.wait_for_load_state("load")
    return page


def generate(page: Page, prompt: str) -> None:
    page.get_by_label("Describe your video").fill(prompt)
    page.get_by_role("button", name=re.compile(r"^Generate")).click()
    expect(page.locator(".generation").first.locator(".prompt")).to_have_text(prompt)


def made_at_runway(worker: Worker) -> VideoGeneration:
    """The page's job, once the worker has created its task at Runway (where the clock starts for it)."""
    return worker.wait_for(VideoGeneration.objects.get().pk, lambda job: bool(job.runway_task_id), seconds=30)


PROGRESS = "() => Number(document.querySelector('.generation .progress')?.getAttribute('aria-valuenow'))"


def test_a_video_is_generated_played_and_kept_in_history(logged_in, worker, simulator, clock):
    page = logged_in
    generate(page, "A serene mountain landscape at sunset")
    page.shots.take("submitted")  # type: ignore[attr-defined]
    job = made_at_runway(worker)
    clock.advance(TASK_SECONDS / 2)  # the first poll finds it half done...
    worker.wait_for(job.pk, lambda job: job.status == Status.RUNNING, seconds=30)
    clock.advance(TASK_SECONDS)  # ...and the second, five seconds later, done

    page.wait_for_function(f"() => {{ const p = ({PROGRESS})(); return p > 0 && p < 100; }}", timeout=30_000)
    expect(page.locator(".generation .status-label").first).to_have_text("Generating")
    page.shots.take("progress")  # type: ignore[attr-defined]

    video = page.locator(".generation.status-succeeded video")
    expect(video).to_have_count(1, timeout=40_000)
    duration = page.wait_for_function(
        "() => { const v = document.querySelector('.generation video'); return v.duration > 0 && v.duration; }",
        timeout=20_000,
    ).json_value()
    assert duration > 0
    job = VideoGeneration.objects.get()
    assert video.get_attribute("src") == f"/videos/{job.pk}/video.mp4"
    page.shots.take("playing")  # type: ignore[attr-defined]
    clock.advance(2)
    assert requests.get(job.output_url, timeout=5).status_code == 403, "Runway's link expires a second after a look"

    page.reload()
    card = page.locator(".generation").first
    expect(card.locator(".prompt")).to_have_text("A serene mountain landscape at sunset")
    expect(card.locator(".status-label")).to_have_text("Done")
    expect(card.locator("video")).to_have_count(1)
    duration = page.wait_for_function(
        "() => { const v = document.querySelector('.generation video'); return v.duration > 0 && v.duration; }",
        timeout=20_000,
    ).json_value()
    assert duration > 0, "the stored copy plays after Runway's link expired"
    page.shots.take("history")  # type: ignore[attr-defined]


def test_a_failed_generation_shows_its_friendly_message(logged_in, worker, clock):
    page = logged_in
    generate(page, "A storm at sea [sim:fail=SAFETY.INPUT.TEXT]")
    made_at_runway(worker)
    clock.advance(TASK_SECONDS)  # it fails by the first poll
    message = page.locator(".generation .message").first
    expect(message).to_contain_text("content moderation declined", timeout=30_000)
    expect(page.locator(".generation .status-label").first).to_have_text("Failed")
    expect(page.locator(".generation .progress").first).to_be_hidden()
    page.shots.take("failed")  # type: ignore[attr-defined]


def test_a_generation_that_times_out_says_so(logged_in, worker, simulator):
    page = logged_in
    deletes_before = simulator.deletes
    generate(page, "An endless river [sim:never]")
    expect(page.locator(".generation .message").first).to_have_text(
        f"Video generation timed out after {MAX_WAIT} seconds at Runway", timeout=(MAX_WAIT + 30) * 1000
    )
    expect(page.locator(".generation .status-label").first).to_have_text("Timed out")
    page.shots.take("timed-out")  # type: ignore[attr-defined]
    job = worker.wait_for(VideoGeneration.objects.get().pk, lambda j: not j.cancel_pending, seconds=20)
    assert simulator.deletes - deletes_before == 1, job


def test_a_cancelled_generation_reads_cancelling_until_runway_has_deleted_its_task(logged_in, worker, simulator, clock):
    page = logged_in
    generate(page, "A sunrise that never ends [sim:never]")
    job = made_at_runway(worker)
    deletes_before = simulator.deletes
    # Runway's answers wait for the simulator's clock: the worker's question about the task (how it
    # is, which decides whether Runway refunds it), then its DELETE, are out until it moves.
    simulator.options = replace(simulator.options, slow_rate=1.0)
    asked_before = len(simulator.requests)

    def asked_about_the_task(_: VideoGeneration) -> bool:
        return any(r.path == f"/v1/tasks/{job.runway_task_id}" for r in simulator.requests[asked_before:])

    try:
        page.locator(".generation").first.get_by_role("button", name="Cancel").click()
        expect(page.locator("#live-status")).to_have_text("The video is being cancelled.")  # in place
        card = page.locator(".generation").first
        expect(card.locator(".status-label")).to_have_text("Cancelling…")
        page.shots.take("cancelling")  # type: ignore[attr-defined]
        worker.wait_for(job.pk, asked_about_the_task, seconds=20)
        with page.expect_response(lambda r: f"/videos/status/?ids={job.pk}" in r.url, timeout=10_000) as asked:
            pass  # the page's next status check, while the worker waits on Runway
        # Not settled: said again, or, as nothing changed since the page's last answer, not modified.
        assert asked.value.status == 304 or asked.value.json()["jobs"][0]["settled"] is False
        expect(card.locator(".status-label")).to_have_text("Cancelling…")
    finally:
        simulator.options = replace(simulator.options, slow_rate=0.0)
        clock.advance(simulator.options.slow_seconds)
    # The page was not reloaded: its status check goes on until the job has settled.
    expect(card.locator(".status-label")).to_have_text("Cancelled", timeout=20_000)
    expect(card).to_have_attribute("data-settled", "true")
    page.shots.take("cancelled")  # type: ignore[attr-defined]
    assert simulator.deletes - deletes_before == 1
    assert VideoGeneration.objects.get(pk=job.pk).cancel_pending is False


def test_an_empty_description_is_refused_on_the_page(logged_in):
    page = logged_in
    page.get_by_role("button", name=re.compile(r"^Generate")).click()
    expect(page.locator("#prompt-errors")).to_contain_text("cannot be empty")
    page.shots.take("refused")  # type: ignore[attr-defined]
    assert VideoGeneration.objects.count() == 0


def test_the_pickers_offer_only_what_the_chosen_model_allows(logged_in):
    page = logged_in
    page.get_by_text("Model, ratio, duration, seed, image").click()

    def options(select: str) -> list[str]:
        return page.eval_on_selector_all(f"{select} option", "options => options.map(o => o.value)")

    assert options("#id_ratio") == ["", "1280:720", "720:1280"]  # gen4.5 from text
    page.select_option("#id_model", "veo3.1")
    assert options("#id_duration") == ["", "4", "6", "8"]
    expect(page.locator("#id_seed")).to_be_enabled()  # Veo takes a seed (runwayml 5.24)
    page.select_option("#id_model", "gen4_turbo")
    expect(page.locator("#model-errors")).to_contain_text("Gen-4 Turbo needs an image to start from")
    page.get_by_label("…or an image URL (https)").fill("https://example.com/first.png")
    assert options("#id_ratio") == ["", "1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672"]
    assert page.eval_on_selector("#id_model", "m => m.validationMessage") == ""
    expect(page.locator("#id_seed")).to_be_enabled()
    page.shots.take("pickers")  # type: ignore[attr-defined]


def test_the_estimate_and_the_button_follow_the_chosen_model_and_duration(logged_in):
    page = logged_in
    estimate, button = page.locator("#estimate"), page.locator("#generate-form button[type=submit]")
    expect(estimate).to_have_text("Estimated cost: 60 credits (US$0.60).")  # gen4.5, 5 s
    expect(button).to_have_text("Generate · 60 credits")
    page.get_by_text("Model, ratio, duration, seed, image").click()

    page.select_option("#id_model", "veo3.1")  # 40 credits a second; 4 s by default
    expect(estimate).to_have_text("Estimated cost: 160 credits (US$1.60).")
    page.select_option("#id_duration", "8")
    expect(estimate).to_have_text("Estimated cost: 320 credits (US$3.20).")
    expect(button).to_have_text("Generate · 320 credits")
    page.get_by_label("…or an image URL (https)").fill("https://example.com/first.png")
    page.select_option("#id_model", "gen4_turbo")  # 5 credits a second, and it keeps the 8 s
    expect(button).to_have_text("Generate · 40 credits")
    page.shots.take("estimate")  # type: ignore[attr-defined]


def test_a_job_made_while_the_queue_is_down_shows_queued_and_says_why(logged_in):
    page = logged_in
    dead = RedisServer(log_dir=Path(settings.BASE_DIR) / "var").start()
    dead.kill()
    try:
        with celery_broker(dead.url):
            generate(page, "A lighthouse in a storm")
            card = page.locator(".generation").first
            expect(card.locator(".status-label")).to_have_text("Queued")
            notice = page.locator("#queue-notice")
            expect(notice).to_have_text(re.compile("The job queue is not answering right now"))
            expect(notice).to_have_attribute("role", "status")
            page.shots.take("queue-down")  # type: ignore[attr-defined]
    finally:
        dead.close()
    assert VideoGeneration.objects.get().status == Status.QUEUED


SEEK_TO_2_SECONDS = """async () => {
    const v = document.querySelector('video');
    if (v.readyState < 1) await new Promise(done => v.addEventListener('loadedmetadata', done, {once: true}));
    const seekable = v.seekable.length ? v.seekable.end(0) : 0;
    const seeked = new Promise(done => v.addEventListener('seeked', done, {once: true}));
    v.currentTime = 2;
    await seeked;
    return [v.duration, seekable, v.currentTime];
}"""


def test_a_stored_video_can_be_scrubbed(logged_in, django_user_model):
    """The sample is 3 s long: with byte ranges the player seeks to 2 s exactly (without them
    Chromium's seekable range was empty and the seek landed at 0.7 s)."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from runway_simulator import SAMPLE_VIDEO

    name = default_storage.save("videos/test/scrub.mp4", ContentFile(SAMPLE_VIDEO.read_bytes()))
    job = VideoGeneration.objects.create(
        owner=django_user_model.objects.get(username="carol"),
        prompt="Lighthouse in a storm",
        endpoint="text_to_video",
        model="gen4.5",
        ratio="1280:720",
        duration=5,
        status=Status.SUCCEEDED,
        progress=100,
        video_file=name,
    )
    page = logged_in
    page.goto(page.url + f"{job.pk}/")
    duration, seekable, position = page.evaluate(SEEK_TO_2_SECONDS)
    assert duration == pytest.approx(3.0, abs=0.1)
    assert seekable == pytest.approx(duration, abs=0.1)
    assert position == pytest.approx(2.0, abs=0.05)


def test_a_csp_violation_on_a_page_is_reported(browser, live_server):
    context = browser.new_context()
    page = context.new_page()
    problems = watch_for_problems(page)
    html = '<p style="color: red">inline</p><script>document.title = "ran"</script>'
    page.route(
        "**/csp-probe/",
        lambda route: route.fulfill(
            body=html,
            content_type="text/html",
            headers={"Content-Security-Policy": "script-src 'self'; style-src 'self'"},
        ),
    )

    page.goto(live_server.url + "/csp-probe/")
    page.wait_for_function("() => document.readyState === 'complete'")
    title = page.title()
    context.close()

    assert title != "ran"
    assert any("script-src" in problem for problem in problems), problems
    assert any("style-src" in problem for problem in problems), problems


def test_the_progress_bar_and_the_delete_question_work_under_the_csp(logged_in, django_user_model):
    page = logged_in
    owner = django_user_model.objects.get(username="carol")
    job = {"owner": owner, "endpoint": catalog.TEXT_TO_VIDEO, "model": "gen4.5", "ratio": "1280:720", "duration": 5}
    running = VideoGeneration.objects.create(
        **job, prompt="Halfway there", status=Status.RUNNING, progress=40, runway_task_id="t-1"
    )
    failed = VideoGeneration.objects.create(**job, prompt="Refused", status=Status.FAILED, message="No.")
    page.reload()

    bar = page.locator(f"#generation-{running.pk} .progress")
    ratio = bar.evaluate(
        "(p) => p.querySelector('.progress-bar').getBoundingClientRect().width / p.getBoundingClientRect().width"
    )
    assert ratio == pytest.approx(0.4, abs=0.02)

    card = page.locator(f"#generation-{failed.pk}")
    question = page.get_by_role("dialog", name="Delete “Refused”?")  # the page's own dialog, not confirm()
    card.get_by_role("button", name="Delete").click()
    question.get_by_role("button", name="Keep it").click()
    expect(card).to_be_visible()
    assert VideoGeneration.objects.filter(pk=failed.pk).exists()
    card.get_by_role("button", name="Delete").click()
    question.get_by_role("button", name="Delete", exact=True).click()
    expect(page.locator(f"#generation-{failed.pk}")).to_have_count(0)

    assert not VideoGeneration.objects.visible().filter(pk=failed.pk).exists()


def test_the_admin_pages_meet_no_csp_violation(page, live_server, django_user_model):
    django_user_model.objects.create_superuser(username="root", password=PASSWORD)
    owner = django_user_model.objects.create_user(username="dave", password=PASSWORD)
    job = VideoGeneration.objects.create(
        owner=owner,
        prompt="A quiet harbour",
        endpoint=catalog.TEXT_TO_VIDEO,
        model="gen4.5",
        ratio="1280:720",
        duration=5,
    )
    page.goto(live_server.url + "/admin/login/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(live_server.url + "/admin/")

    for path in (
        "/admin/videos/videogeneration/",
        f"/admin/videos/videogeneration/{job.pk}/change/",
        "/admin/auth/user/",
    ):
        page.goto(live_server.url + path)
        page.wait_for_load_state("load")
        page.shots.take(path.strip("/").replace("/", "-"))  # type: ignore[attr-defined]
    # The page fixture fails the test on any violation the admin's pages met.
