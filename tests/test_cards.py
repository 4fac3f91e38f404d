# ruff: noqa: F811  (pytest's fixtures from tests/test_browser.py are imported by name, then asked for by name)
"""The live card in a real browser: with the page open, a card follows its job through the line,
Runway and its end, and then shows exactly what a reload shows; the list's actions happen in
place; focus, the live region, the tab's title and the progress bar tell the user what happened.

The worker's part is played by the test writing the job's row as the worker would (status,
progress, files): each state comes when the test says, with no Runway clock to move."""

import functools
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from playwright.sync_api import Locator, Page, expect

from runway_simulator import SAMPLE_VIDEO
from tests.conftest import PNG

# The browser, the watched page and the logged-in user "carol" (tests/test_browser.py).
from tests.test_browser import browser, logged_in, page  # noqa: F401
from videos.models import Status, VideoGeneration

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]

# The status check is every 2 s: a change shows within two of them, or the next swap.
SHOWN = 10_000
# A hidden tab's check is every 15 s (static/js/videos.js: HIDDEN_POLL_MS).
SHOWN_IN_A_HIDDEN_TAB = 20_000
BASE_TITLE = "Generate Videos · Runway Videos"

# What a card shows a person: its words and, for each control, its role, accessible name and target.
CARD_FACTS = """(card) => ({
  text: card.innerText.replace(/\\s+/g, " ").trim(),
  controls: Array.from(card.querySelectorAll("a[href], button, video")).map((e) => [
    e.tagName,
    (e.getAttribute("aria-label") || e.textContent).replace(/\\s+/g, " ").trim(),
    e.getAttribute("href") || e.getAttribute("src") || (e.form ? e.form.getAttribute("action") : ""),
  ]),
  status: card.className,
  settled: card.dataset.settled,
  version: card.dataset.version,
  progressHidden: card.querySelector(".progress").hidden,
})"""


@pytest.fixture
def carol(logged_in, django_user_model):
    return django_user_model.objects.get(username="carol")


@pytest.fixture
def job_for(carol, make_job) -> Callable[..., VideoGeneration]:
    """A job of carol's (the logged-in user), stored directly in any state."""
    return functools.partial(make_job, owner=carol, prompt="A lighthouse in a storm")


@pytest.fixture
def sent(broker) -> Iterator[None]:
    """What the web server sends the worker (re-runs, cancels) goes to the test's queue, and is dropped."""
    yield


def worker_writes(job: VideoGeneration, **fields: Any) -> None:
    """The row as the worker leaves it after a step."""
    VideoGeneration.objects.filter(pk=job.pk).update(**fields)


def card_of(page: Page, job: VideoGeneration) -> Locator:
    return page.locator(f"#generation-{job.pk}")


def live_region(page: Page) -> Locator:
    return page.locator("#live-status")


def assert_same_as_after_reload(page: Page, job: VideoGeneration) -> dict[str, Any]:
    card = card_of(page, job)
    live = card.evaluate(CARD_FACTS)
    page.reload()
    expect(card).to_be_visible()
    reloaded = card.evaluate(CARD_FACTS)
    assert live == reloaded
    return reloaded


PLAY = "async (v) => { v.muted = true; v.loop = true; await v.play(); return !v.paused; }"


def names(facts: dict[str, Any]) -> list[str]:
    return [name for _, name, _ in facts["controls"]]


def stored(name: str, content: bytes) -> str:
    return default_storage.save(f"videos/test/{name}", ContentFile(content))


# --- A card followed with the page open ------------------------------------------------------------


def test_a_card_goes_from_its_place_in_line_to_done_and_then_shows_what_a_reload_shows(
    logged_in,
    job_for,
    other_user,
):
    page = logged_in
    earlier = timezone.now() - timedelta(seconds=5)
    ahead = job_for(owner=other_user, prompt="Someone else's job")
    worker_writes(ahead, created_at=earlier)
    job = job_for()
    page.reload()
    card = card_of(page, job)
    expect(card.locator(".queue-position")).to_have_text("Waiting in line: 1 job ahead")
    expect(card.get_by_role("progressbar", name="Progress of “A lighthouse in a storm”")).to_be_visible()

    worker_writes(ahead, status=Status.SUBMITTING)  # the worker takes the job ahead
    expect(card.locator(".queue-position")).to_have_text("Next in line", timeout=SHOWN)

    worker_writes(job, status=Status.RUNNING, runway_task_id="t-1", progress=30, submitted_at=timezone.now())
    expect(card.locator(".status-label")).to_have_text("Generating", timeout=SHOWN)
    expect(card.locator(".queue-position")).to_have_count(0)
    expect(live_region(page)).to_have_text("Video “A lighthouse in a storm” is generating.")
    expect(card.get_by_role("button", name="Cancel “A lighthouse in a storm”")).to_be_visible()
    assert int(card.locator(".progress").get_attribute("aria-valuenow") or 0) >= 30

    video = stored("lighthouse.mp4", SAMPLE_VIDEO.read_bytes())
    worker_writes(
        job, status=Status.SUCCEEDED, progress=100, video_file=video, finished_at=timezone.now(), poster_pending=True
    )
    expect(card.locator(".status-label")).to_have_text("Done", timeout=SHOWN)
    expect(live_region(page)).to_have_text("Video “A lighthouse in a storm” is done.")
    expect(card.get_by_role("link", name="Download “A lighthouse in a storm”")).to_be_visible()
    expect(card.locator(".progress")).to_be_hidden()

    # The poster comes later: the card is swapped, but its video element (playing) and the focus stay.
    card.locator("video").evaluate("(v) => { v.dataset.mark = 'the first'; }")
    assert card.locator("video").evaluate(PLAY)
    card.get_by_role("button", name="Re-run “A lighthouse in a storm”").focus()
    worker_writes(job, poster=stored("lighthouse.jpg", PNG), poster_pending=False)
    expect(card).to_have_attribute("data-settled", "true", timeout=SHOWN)
    expect(card.locator("video")).to_have_attribute("poster", f"/videos/{job.pk}/poster.jpg")
    expect(card.locator("video")).to_have_attribute("data-mark", "the first")
    assert card.locator("video").evaluate("(v) => !v.paused"), "the video plays on through the swap"
    expect(card.get_by_role("button", name="Re-run “A lighthouse in a storm”")).to_be_focused()

    facts = assert_same_as_after_reload(page, job)
    assert names(facts) == [
        "A lighthouse in a storm",
        "Download “A lighthouse in a storm”",
        "Re-run “A lighthouse in a storm”",
        "Re-run, new seed “A lighthouse in a storm”",
        "Upscale · at most 500 credits “A lighthouse in a storm”",  # 5 s at the ceiling: no published price
        "Edit & re-run “A lighthouse in a storm”",
        "Delete “A lighthouse in a storm”",
        "",  # the video
    ]


def test_a_card_that_fails_with_the_page_open_shows_what_a_reload_shows(logged_in, job_for):
    page = logged_in
    job = job_for(prompt="A storm at sea", status=Status.RUNNING, runway_task_id="t-2", progress=10)
    page.reload()
    card = card_of(page, job)
    expect(card.locator(".status-label")).to_have_text("Generating")

    worker_writes(job, status=Status.FAILED, message="Runway declined the prompt.", finished_at=timezone.now())
    expect(card.locator(".status-label")).to_have_text("Failed", timeout=SHOWN)
    expect(live_region(page)).to_have_text("Video “A storm at sea” failed: Runway declined the prompt.")
    expect(card).to_have_attribute("data-settled", "true")

    facts = assert_same_as_after_reload(page, job)
    assert names(facts) == [
        "A storm at sea",
        "Try again “A storm at sea”",
        "Edit & re-run “A storm at sea”",
        "Delete “A storm at sea”",
    ]
    assert "Runway declined the prompt." in facts["text"]


def test_a_card_cancelled_in_place_reads_cancelling_then_cancelled_as_a_reload_does(
    logged_in,
    job_for,
    sent,
):
    page = logged_in
    job = job_for(prompt="A sunrise", status=Status.RUNNING, runway_task_id="t-3", progress=20)
    page.reload()
    url = page.url
    card = card_of(page, job)
    card.get_by_role("button", name="Cancel “A sunrise”").click()

    expect(card.locator(".status-label")).to_have_text("Cancelling…")
    expect(live_region(page)).to_have_text("The video is being cancelled.")
    expect(card).to_be_focused()  # its Cancel button went: the focus stays on the card
    assert page.url == url

    worker_writes(job, cancel_pending=False)  # the worker deleted the task at Runway
    expect(card.locator(".status-label")).to_have_text("Cancelled", timeout=SHOWN)
    expect(card).to_have_attribute("data-settled", "true")

    facts = assert_same_as_after_reload(page, job)
    assert names(facts) == [
        "A sunrise",
        "Try again “A sunrise”",
        "Edit & re-run “A sunrise”",
        "Delete “A sunrise”",
    ]


# --- The new card, and the actions in place --------------------------------------------------------


def test_after_generate_the_new_card_has_the_focus_in_view_and_the_live_region_says_so(
    logged_in,
    job_for,
    sent,
):
    page = logged_in
    for n in range(6):  # enough cards for the new one's place to matter
        job_for(prompt=f"Older video {n}", status=Status.FAILED, message="No.")
    page.reload()
    page.get_by_label("Describe your video").fill("A paper boat on a river")
    page.get_by_role("button", name=re.compile(r"^Generate")).click()

    expect(page.locator(".generation").first.locator(".prompt")).to_have_text("A paper boat on a river")
    job = VideoGeneration.objects.get(prompt="A paper boat on a river")
    card = card_of(page, job)
    expect(card).to_be_focused()
    expect(card).to_be_in_viewport()
    expect(live_region(page)).to_have_text("Your video “A paper boat on a river” is on its way.")
    expect(card.locator(".queue-position")).to_have_text("Next in line")


def test_try_again_rerun_and_delete_happen_in_place(logged_in, job_for, sent):
    page = logged_in
    video = stored("done.mp4", SAMPLE_VIDEO.read_bytes())
    done = job_for(prompt="A quiet harbour", status=Status.SUCCEEDED, progress=100, video_file=video, step=4)
    failed = job_for(prompt="A storm at sea", status=Status.FAILED, message="No.", step=4)
    page.reload()
    url = page.url

    card_of(page, failed).get_by_role("button", name="Try again “A storm at sea”").click()
    expect(live_region(page)).to_have_text("Trying again with the same settings.")
    again = VideoGeneration.objects.exclude(pk__in=[done.pk, failed.pk]).get()
    expect(card_of(page, again)).to_be_focused()
    expect(page.locator(".generation").first).to_have_attribute("id", f"generation-{again.pk}")

    card_of(page, done).get_by_role("button", name="Re-run, new seed “A quiet harbour”").click()
    expect(live_region(page)).to_have_text("Running it again with a new seed.")
    rerun = VideoGeneration.objects.exclude(pk__in=[done.pk, failed.pk, again.pk]).get()
    expect(card_of(page, rerun)).to_be_focused()
    assert rerun.seed != done.seed or done.seed is None
    assert page.url == url

    delete = card_of(page, failed).get_by_role("button", name="Delete “A storm at sea”")
    delete.click()
    dialog = page.get_by_role("dialog", name="Delete “A storm at sea”?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Keep it").click()
    expect(dialog).to_be_hidden()
    expect(delete).to_be_focused()
    assert VideoGeneration.objects.visible().filter(pk=failed.pk).exists()

    delete.click()
    dialog.get_by_role("button", name="Delete", exact=True).click()
    expect(card_of(page, failed)).to_have_count(0)
    expect(live_region(page)).to_have_text("The video was deleted.")
    assert not VideoGeneration.objects.visible().filter(pk=failed.pk).exists()
    assert page.url == url


def test_delete_on_a_videos_own_page_asks_in_the_dialog_then_goes_to_the_list(logged_in, job_for):
    page = logged_in
    job = job_for(prompt="A quiet harbour", status=Status.FAILED, message="No.")
    page.goto(page.url + f"{job.pk}/")
    page.get_by_role("button", name="Delete “A quiet harbour”").click()
    page.get_by_role("dialog", name="Delete “A quiet harbour”?").get_by_role(
        "button", name="Delete", exact=True
    ).click()
    expect(page).to_have_url(re.compile(r"/videos/$"))
    expect(page.locator(".flash")).to_have_text("The video was deleted.")


# --- Progress between checks, the clock, and a job that ends in a background tab -------------------


def past_jobs_take(job_for, seconds: float) -> None:
    """The estimate (selectors.generation_estimate) from three done jobs of the model: `seconds` at Runway."""
    sent = timezone.now() - timedelta(hours=1)
    for n in range(3):
        done = job_for(prompt=f"Done {n}", status=Status.SUCCEEDED, progress=100)
        worker_writes(done, created_at=sent, submitted_at=sent, finished_at=sent + timedelta(seconds=seconds))


def test_the_bar_moves_between_checks_from_the_estimate_and_never_reads_zero_left(logged_in, job_for):
    page = logged_in
    past_jobs_take(job_for, 60)
    job = job_for(prompt="Smooth", status=Status.RUNNING, runway_task_id="t-4", progress=0)
    # Made two minutes ago but at Runway for 12 s: the wait to be sent does not count.
    worker_writes(
        job, created_at=timezone.now() - timedelta(seconds=120), submitted_at=timezone.now() - timedelta(seconds=12)
    )
    # 100 s at Runway against the 60 its model takes, and no figure from Runway.
    late = job_for(prompt="Late", status=Status.RUNNING, runway_task_id="t-5", progress=0)
    worker_writes(
        late, created_at=timezone.now() - timedelta(seconds=100), submitted_at=timezone.now() - timedelta(seconds=100)
    )
    page.reload()
    card = card_of(page, job)
    # Some 48 s left of the 60 the model takes at Runway, whatever the two minutes since it was made.
    expect(card.locator(".timing")).to_have_text(re.compile(r"^2:\d\d so far, about 0:[34]\d left$"), timeout=SHOWN)

    # No status change comes (the row stays at 0 %), yet the bar grows from one check to the next.
    width = "(p) => p.querySelector('.progress-bar').getBoundingClientRect().width"
    first = card.locator(".progress").evaluate(width)
    page.wait_for_function(
        f"() => document.querySelector('#generation-{job.pk} .progress-bar')"
        f".getBoundingClientRect().width > {first} + 4",
        timeout=SHOWN,
    )
    assert 0 < int(card.locator(".progress").get_attribute("aria-valuenow") or 0) < 100

    late_card = card_of(page, late)
    expect(late_card.locator(".timing")).to_contain_text("taking longer than usual", timeout=SHOWN)
    assert 95 <= int(late_card.locator(".progress").get_attribute("aria-valuenow") or 0) < 100  # not 100 until done
    for timing in page.locator(".timing").all_inner_texts():
        assert "0:00 left" not in timing


def test_runways_own_progress_is_carried_on_at_its_pace_between_checks_instead_of_standing_still(logged_in, job_for):
    page = logged_in
    past_jobs_take(job_for, 60)  # the model's median: a 60-second job
    # Runway said 45 % when the job had been there 9 s: at that pace it takes 20 s, not 60.
    now = timezone.now()
    job = job_for(prompt="Quick", status=Status.RUNNING, runway_task_id="t-6", progress=45)
    worker_writes(job, created_at=now - timedelta(seconds=9), submitted_at=now - timedelta(seconds=9), updated_at=now)
    page.reload()
    card = card_of(page, job)
    expect(card.locator(".timing")).to_have_text(re.compile(r"about 0:(0\d|1[01]) left$"), timeout=SHOWN)

    # The row stays at 45 % (no poll comes), and the bar goes on past it within a couple of seconds.
    page.wait_for_function(
        f"() => Number(document.querySelector('#generation-{job.pk} .progress').getAttribute('aria-valuenow')) >= 55",
        timeout=SHOWN,
    )
    assert int(card.locator(".progress").get_attribute("aria-valuenow") or 0) < 100


def test_a_job_that_ends_in_a_background_tab_shows_in_its_title_and_a_notification(logged_in, job_for):
    page = logged_in
    page.add_init_script("""
      window.shown = [];
      window.Notification = class { constructor(title, options) { window.shown.push([title, options.body]); } };
      window.Notification.permission = "granted";
    """)
    job = job_for(prompt="A night train", status=Status.RUNNING, runway_task_id="t-6", progress=50)
    page.reload()
    expect(page.locator("#notify-me")).to_be_hidden()  # already allowed: nothing to ask
    page.evaluate("""() => {
      Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
      Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
      document.dispatchEvent(new Event("visibilitychange"));
    }""")
    worker_writes(job, status=Status.SUCCEEDED, progress=100, finished_at=timezone.now())
    expect(page).to_have_title(f"✓ Done · {BASE_TITLE}", timeout=SHOWN_IN_A_HIDDEN_TAB)
    assert page.evaluate("window.shown") == [["Your video is done", "A night train"]]

    page.evaluate("""() => {
      Object.defineProperty(document, "hidden", { configurable: true, get: () => false });
      Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "visible" });
      document.dispatchEvent(new Event("visibilitychange"));
    }""")
    expect(page).to_have_title(BASE_TITLE)


def test_notify_me_asks_the_browser_once(logged_in):
    page = logged_in
    page.add_init_script("""
      window.Notification = class {};
      window.Notification.permission = "default";
      window.Notification.requestPermission = async () => "granted";
    """)
    page.reload()
    button = page.get_by_role("button", name="Notify me when videos finish")
    button.click()
    expect(button).to_be_hidden()
    expect(live_region(page)).to_have_text("You will be notified when a video finishes.")
