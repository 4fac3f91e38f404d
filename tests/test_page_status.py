# ruff: noqa: F811  (pytest's fixtures from tests/test_browser.py are imported by name, then asked for by name)
"""How a page follows its jobs, in a real browser: one status request for all its live cards every
2 s (views.statuses), a 304 when nothing changed that keeps the bar and clock moving, a card swapped
when its job ends and left out of the next request, none when nothing is live, and a hidden tab that
asks every 15 s and at once when it is seen again.

Every request's time is noted as the browser sends it (page.on("request")); the tests wait for
requests with deadlines and assert on the gaps between them. The jobs' rows are written by the test,
as the worker would write them."""

import contextlib
import functools
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from playwright.sync_api import Browser, Page, Request, Response, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

# The browser, the watched page and the logged-in user "carol" (tests/test_browser.py).
from tests.test_browser import CHROMIUM, browser, logged_in, page, watch_for_problems  # noqa: F401
from videos.models import Status, VideoGeneration

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]

STATUS = "/videos/status/?ids="
POLL = 2.0  # static/js/videos.js: POLL_MS
HIDDEN_POLL = 15.0  # and HIDDEN_POLL_MS
# A browser's timer fires a little late, never early; a request may wait on the server a little.
SLACK = 0.3


@dataclass
class StatusRequests:
    """The page's status requests as the browser sends them, with the time each was sent, and the
    status codes of their answers."""

    page: Page
    sent: list[tuple[float, frozenset[int]]] = field(default_factory=list)  # when, and which jobs
    answers: list[int] = field(default_factory=list)
    per_job: list[str] = field(default_factory=list)  # requests to a single job's status/: none expected

    def __post_init__(self) -> None:
        self.page.on("request", self._on_request)
        self.page.on("response", self._on_response)

    def _on_request(self, request: Request) -> None:
        if STATUS in request.url:
            asked = request.url.split(STATUS, 1)[1]
            self.sent.append((time.monotonic(), frozenset(int(pk) for pk in asked.split(","))))
        elif re.search(r"/videos/\d+/status/", request.url):
            self.per_job.append(request.url)

    def _on_response(self, response: Response) -> None:
        if STATUS in response.url:
            self.answers.append(response.status)

    def wait_for(self, count: int, *, seconds: float) -> list[tuple[float, frozenset[int]]]:
        """Wait until `count` requests have been sent, at most `seconds`; all of them so far."""
        self._wait("request", self.sent, count, seconds)
        return self.sent

    def wait_for_answers(self, count: int, *, seconds: float) -> list[int]:
        """Wait until `count` answers have come, at most `seconds`; their status codes so far."""
        self._wait("response", self.answers, count, seconds)
        return self.answers

    def _wait(self, event: str, seen: list[Any], count: int, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while len(seen) < count:
            left = deadline - time.monotonic()
            assert left > 0, f"{len(seen)} status {event}s in {seconds} s, not {count}: {seen}"
            with contextlib.suppress(PlaywrightTimeout):  # the assertion says how many came
                self.page.wait_for_event(event, lambda r: STATUS in r.url, timeout=left * 1000)

    def none_within(self, seconds: float) -> None:
        """No status request for `seconds` (longer than the page's interval)."""
        before = len(self.sent)
        with contextlib.suppress(PlaywrightTimeout):
            self.page.wait_for_event("request", lambda r: STATUS in r.url, timeout=seconds * 1000)
        assert self.sent[before:] == [], "a page with nothing live asked"


def gaps(sent: list[tuple[float, frozenset[int]]]) -> list[float]:
    return [round(later - earlier, 2) for (earlier, _), (later, _) in zip(sent, sent[1:], strict=False)]


def ids(*jobs: VideoGeneration) -> frozenset[int]:
    return frozenset(job.pk for job in jobs)


@pytest.fixture
def carol(logged_in, django_user_model):
    return django_user_model.objects.get(username="carol")


@pytest.fixture
def job_for(carol, make_job) -> Callable[..., VideoGeneration]:
    """A job of carol's (the logged-in user), stored directly in any state."""
    return functools.partial(make_job, owner=carol, prompt="A lighthouse in a storm")


def worker_writes(job: VideoGeneration, **fields: Any) -> None:
    VideoGeneration.objects.filter(pk=job.pk).update(**fields)


def at_runway(job_for: Callable[..., VideoGeneration], prompt: str, **fields: Any) -> VideoGeneration:
    fields = {"status": Status.RUNNING, "runway_task_id": f"t-{prompt}", "submitted_at": timezone.now(), **fields}
    return job_for(prompt=prompt, **fields)


def test_a_dashboard_asks_about_all_its_live_jobs_in_one_request_every_2_s(logged_in, job_for):
    page = logged_in
    live = [
        job_for(prompt="Queued"),
        at_runway(job_for, "Pending", status=Status.PENDING),
        at_runway(job_for, "Running", progress=20),
        at_runway(job_for, "Also running", progress=60),
    ]
    job_for(prompt="Failed", status=Status.FAILED, message="No.", finished_at=timezone.now())
    job_for(prompt="Done", status=Status.SUCCEEDED, progress=100, finished_at=timezone.now())
    requests = StatusRequests(page)
    page.reload()

    sent = requests.wait_for(4, seconds=4 * POLL + 5)

    assert [asked for _, asked in sent] == [ids(*live)] * len(sent), "one request, for the live cards only"
    assert all(POLL - SLACK <= gap <= 2 * POLL for gap in gaps(sent)), gaps(sent)  # one timer for the page
    assert requests.per_job == []
    answers = requests.wait_for_answers(4, seconds=POLL + 5)
    assert answers[0] == 200 and set(answers[1:]) == {304}, answers  # nothing changed after the first
    page.shots.take("four-live-one-request")  # type: ignore[attr-defined]


def test_a_304_keeps_the_bar_and_clock_moving_and_a_job_that_ends_swaps_its_card_and_leaves_the_request(
    logged_in, job_for
):
    page = logged_in
    now = timezone.now()
    for n in range(3):  # the model takes 60 s at Runway
        done = job_for(prompt=f"Done {n}", status=Status.SUCCEEDED, progress=100)
        sent = now - timedelta(hours=1)
        worker_writes(done, submitted_at=sent, finished_at=sent + timedelta(seconds=60))
    first = at_runway(job_for, "First")
    second = at_runway(job_for, "Second")
    for job in (first, second):
        worker_writes(job, created_at=now - timedelta(seconds=20), submitted_at=now - timedelta(seconds=10))
    requests = StatusRequests(page)
    page.reload()
    card = page.locator(f"#generation-{first.pk}")

    # The first answer is a 200; the next two, nothing having changed, 304s with no body.
    assert requests.wait_for_answers(3, seconds=3 * POLL + 5)[:3] == [200, 304, 304]
    clock = card.locator(".timing")
    expect(clock).to_have_text(re.compile(r"^0:\d\d so far, about 0:\d\d left$"))
    so_far = seconds_so_far(clock.inner_text())
    width = bar_width(page, first)
    # Two more 304s: the clock and the bar go on from the last 200, not from zero, nor stand still.
    requests.wait_for_answers(5, seconds=2 * POLL + 5)
    assert requests.answers[1:] == [304] * (len(requests.answers) - 1)
    page.wait_for_function(
        f"() => document.querySelector('#generation-{first.pk} .progress-bar').getBoundingClientRect().width > {width}",
        timeout=5_000,
    )
    later = seconds_so_far(clock.inner_text())
    assert later >= so_far + 2, (so_far, later)  # neither back to the 200's figure nor standing still
    page.shots.take("moving-on-304s")  # type: ignore[attr-defined]

    worker_writes(first, status=Status.SUCCEEDED, progress=100, finished_at=timezone.now())
    expect(card.locator(".status-label")).to_have_text("Done", timeout=3 * POLL * 1000)
    expect(card).to_have_attribute("data-settled", "true")
    expect(page.locator(f"#generation-{second.pk} .status-label")).to_have_text("Generating")
    # The card that ended leaves the request; the other goes on being asked about.
    swapped = len(requests.sent)
    assert requests.wait_for(swapped + 2, seconds=2 * POLL + 5)[-1][1] == ids(second)
    assert [asked for _, asked in requests.sent[swapped:]] == [ids(second)] * (len(requests.sent) - swapped)
    page.shots.take("one-ended")  # type: ignore[attr-defined]

    worker_writes(second, status=Status.FAILED, message="Runway declined it.", finished_at=timezone.now())
    expect(page.locator(f"#generation-{second.pk} .status-label")).to_have_text("Failed", timeout=3 * POLL * 1000)
    requests.none_within(2 * POLL + 1)  # nothing live: no more requests
    assert requests.per_job == []


def test_cards_added_in_place_join_the_pages_request(logged_in, job_for, broker):
    page = logged_in
    running = at_runway(job_for, "Running")
    requests = StatusRequests(page)
    page.reload()
    assert requests.wait_for(1, seconds=POLL + 5)[-1][1] == ids(running)

    page.get_by_label("Describe your video").fill("A paper boat on a river")
    page.get_by_role("button", name=re.compile(r"^Generate")).click()
    expect(page.locator(".generation").first.locator(".prompt")).to_have_text("A paper boat on a river")
    made = VideoGeneration.objects.get(prompt="A paper boat on a river")
    count = len(requests.sent)

    assert requests.wait_for(count + 1, seconds=POLL + 5)[-1][1] == ids(running, made)
    worker_writes(made, status=Status.PENDING, runway_task_id="t-made", submitted_at=timezone.now())
    expect(page.locator(f"#generation-{made.pk} .status-label")).to_have_text("Waiting to start", timeout=10_000)


def seconds_so_far(timing: str) -> int:
    minutes, seconds = re.match(r"^(\d+):(\d\d) so far", timing).groups()  # type: ignore[union-attr]
    return int(minutes) * 60 + int(seconds)


def bar_width(page: Page, job: VideoGeneration) -> float:
    return float(
        page.locator(f"#generation-{job.pk} .progress-bar").evaluate("(bar) => bar.getBoundingClientRect().width")
    )


# --- A tab in the background -------------------------------------------------------------------------


@pytest.fixture
def own_chromium(browser: Browser) -> Iterator[Browser]:
    """Chromium started here and driven over CDP without Playwright's defaults. Playwright keeps each
    page it opens "visible" whatever happens to it (its focus emulation holds the page as if being
    captured), so that no tab can be hidden; in a browser's own default context, a tab that another
    tab covers is hidden, as in a person's browser, with its visibilitychange event."""
    with tempfile.TemporaryDirectory() as profile:
        command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0"]
        process = subprocess.Popen(  # noqa: S603 (the test's own browser)
            [*command, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port = _devtools_port(Path(profile) / "DevToolsActivePort", process, seconds=30)
            cdp = browser.browser_type.connect_over_cdp(f"http://127.0.0.1:{port}", no_defaults=True)
            yield cdp
            cdp.close()
        finally:
            process.terminate()
            process.wait(timeout=30)


def _devtools_port(port_file: Path, process: subprocess.Popen[bytes], *, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while not (port_file.exists() and port_file.read_text().strip()):
        assert process.poll() is None, "Chromium stopped"
        assert time.monotonic() < deadline, "Chromium did not open its DevTools port"
        time.sleep(0.05)
    return port_file.read_text().split()[0]


def test_a_hidden_tab_asks_every_15_s_and_at_once_when_seen_again(own_chromium, live_server, make_job, user):
    context = own_chromium.contexts[0]
    session = Client()
    session.force_login(user)
    cookie = session.cookies[settings.SESSION_COOKIE_NAME]
    context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
    jobs = [make_job(prompt=f"Job {n}", status=Status.RUNNING, runway_task_id=f"t-{n}") for n in range(2)]
    page = context.pages[0] if context.pages else context.new_page()
    problems = watch_for_problems(page)
    requests = StatusRequests(page)
    page.goto(live_server.url + "/videos/")
    requests.wait_for(2, seconds=2 * POLL + 5)
    requests.wait_for_answers(2, seconds=POLL + 5)  # the next check is POLL away: hidden well before

    before = len(requests.sent)
    hiding = time.monotonic()
    other = context.new_page()  # a tab opened over it: the dashboard is in the background
    hidden_at = time.monotonic()
    assert page.evaluate("document.visibilityState") == "hidden"
    # The next check HIDDEN_POLL after it was hidden (Chromium runs a hidden tab's timers on whole
    # seconds: up to one more), and none before.
    sent = requests.wait_for(before + 1, seconds=HIDDEN_POLL + 5)
    first, asked = sent[before]
    assert first - hiding >= HIDDEN_POLL and first - hidden_at <= HIDDEN_POLL + 1 + SLACK, first - hidden_at
    assert asked == ids(*jobs)

    before = len(requests.sent)
    seen_at = time.monotonic()
    page.bring_to_front()  # seen again: asked at once, then every 2 s
    assert page.evaluate("document.visibilityState") == "visible"
    sent = requests.wait_for(before + 2, seconds=POLL + 5)
    (first, _), (second, _) = sent[before], sent[before + 1]
    assert first - seen_at <= 1.0, "not at once"
    assert POLL - SLACK <= second - first <= 2 * POLL, gaps(sent[before:])
    other.close()
    assert problems == [], "the page met server or script errors"
