"""Every page state we own, in a real browser, on a desktop and a phone, light and dark: no serious
or critical axe-core violation, one h1, nothing scrolling sideways, 44 px touch targets, a skip
link first, and a focus that shows. The jobs are made in the database in each state, so no
worker is needed."""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.template.loader import render_to_string
from django.test import Client
from playwright.sync_api import Browser, Page, expect

from tests.axe import (
    blocking_violations,
    focus_the_top,
    h1_count,
    overflows_sideways,
    small_touch_targets,
    tab_stops_without_visible_focus,
    wrapped_buttons,
)
from tests.test_browser import SCREENSHOTS, browser, watch_for_problems  # noqa: F401 (a fixture, and the page watcher)
from videos import catalog
from videos.models import Alert, Collection, SpendEntry, SpendKind, Status, UserBudget, VideoGeneration

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]

PHONE_WIDTHS = (360, 390)


@dataclass(frozen=True)
class Look:
    width: int
    height: int
    scheme: str

    @property
    def phone(self) -> bool:
        return self.width < 600

    def __str__(self) -> str:
        return f"{self.width}px-{self.scheme}"


LOOKS = [Look(1280, 800, "light"), Look(1280, 800, "dark"), Look(360, 740, "light"), Look(360, 740, "dark")]


@pytest.fixture(params=LOOKS, ids=str)
def look(request) -> Look:
    return request.param


class Visit:
    """A browser tab for checking pages, and what the checks found (reported all at once, at the end)."""

    def __init__(self, page: Page, look: Look, base_url: str) -> None:
        self.page = page
        self.look = look
        self.base_url = base_url
        self.problems: list[str] = []

    def open(self, path: str) -> Page:
        self.page.goto(self.base_url + path)
        return self.page

    def check(self, state: str, *, ours: bool = True, within: str | None = None) -> None:
        """Check the page as it is now. `ours` is False for Django's admin, whose layout and touch
        targets are Django's own (it is not made for phones); axe's rules and the one h1 apply to it
        too, within the part of it we made if `within` selects it."""
        page = self.page
        found = [f"axe: {line}" for line in blocking_violations(page, within=within)]
        if (count := h1_count(page)) != 1:
            found.append(f"{count} h1 elements")
        if ours and self.look.phone:
            for width in PHONE_WIDTHS:
                page.set_viewport_size({"width": width, "height": self.look.height})
                if overflows_sideways(page):
                    found.append(f"scrolls sideways at {width} px")
            page.set_viewport_size({"width": self.look.width, "height": self.look.height})
            found += [f"touch target: {small}" for small in small_touch_targets(page)]
            found += [f"a button on two lines: {words}" for words in wrapped_buttons(page)]
        self.problems += [f"{state} ({self.look}): {problem}" for problem in found]

    def show_rendered(self, path: str, html: str) -> Page:
        """A page the server renders without a request (the 503 and 413 pages), at a URL of the
        live server so that its stylesheet loads."""
        self.page.route(self.base_url + path, lambda route: route.fulfill(body=html, content_type="text/html"))
        return self.open(path)


@pytest.fixture
def visit(browser: Browser, live_server, look: Look) -> Iterator[Visit]:  # noqa: F811 (the fixture imported above)
    # Only here is the CSP bypassed: axe-core is injected as a script, which the CSP refuses.
    context = browser.new_context(
        viewport={"width": look.width, "height": look.height}, color_scheme=look.scheme, bypass_csp=True
    )
    page = context.new_page()
    errors = watch_for_problems(page)
    yield Visit(page, look, live_server.url)
    context.close()
    assert errors == [], "the pages met server or script errors"


def log_in(visit: Visit, user: User) -> None:
    """Log in as `user` through a session cookie, as the login form would leave it."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    visit.page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": visit.base_url}])


def job(owner: User, status: str, **fields: Any) -> VideoGeneration:
    values: dict[str, Any] = {
        "owner": owner,
        "prompt": f"A lighthouse in a storm, waves breaking over the rocks ({status})",
        "endpoint": catalog.TEXT_TO_VIDEO,
        "model": "gen4.5",
        "ratio": "1280:720",
        "duration": 5,
        "seed": 42,
        "status": status,
    }
    values.update(fields)
    return VideoGeneration.objects.create(**values)


def jobs_in_every_state(owner: User, video_file: str) -> dict[str, VideoGeneration]:
    return {
        "queued": job(owner, Status.QUEUED),
        "running": job(owner, Status.RUNNING, progress=45),
        "done": job(owner, Status.SUCCEEDED, progress=100, video_file=video_file),
        "failed": job(owner, Status.FAILED, message="Runway's content moderation declined this description."),
        "cancelled": job(owner, Status.CANCELLED, message="Cancelled."),
        "timed_out": job(owner, Status.TIMED_OUT, message="Video generation timed out after 600 seconds"),
    }


def test_the_login_and_error_pages_pass(visit, user):
    page = visit.open("/accounts/login/")
    visit.check("login")

    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".errorlist")).to_be_visible()
    visit.check("login with an error")

    visit.show_rendered(
        "/locked-out/",
        render_to_string("registration/locked_out.html", {"failure_limit": 5, "cooloff": "15 minutes"}),
    )
    visit.check("locked out")
    context = {"by_address": True, "address_limit": 20, "cooloff": "15 minutes"}
    visit.show_rendered("/address-locked-out/", render_to_string("registration/locked_out.html", context))
    visit.check("address locked out")
    context = {"reason": "CSRF cookie not set.", "no_cookie": True}
    visit.show_rendered("/expired/", render_to_string("403_csrf.html", context))
    visit.check("CSRF failure")
    visit.show_rendered("/down/", render_to_string("503.html"))
    visit.check("503")
    visit.show_rendered("/too-large/", render_to_string("413.html", {"message": "The image is over 16 MB."}))
    visit.check("413")
    assert not visit.problems, "\n".join(visit.problems)


def test_the_dashboard_passes_empty_and_with_form_errors(visit, user, settings):
    settings.EMAIL_CONFIGURED = True  # the "Email me when it is done" box is shown
    user.email = "alice@example.com"
    user.save()
    log_in(visit, user)
    page = visit.open("/videos/")
    expect(page.locator("#history .empty")).to_be_visible()
    expect(page.get_by_label("Email me at alice@example.com when it is done")).to_be_visible()
    page.locator("details.advanced").evaluate("details => { details.open = true; }")
    visit.check("empty dashboard")

    # Sent by the page's script: the errors come back as JSON and are shown beside the fields.
    page.get_by_role("button", name=re.compile(r"^Generate")).click()
    expect(page.locator("#prompt-errors li")).to_be_visible()
    visit.check("form errors (script)")

    # Sent as a plain form (no script): the server renders the errors.
    page.locator("#generate-form").evaluate("form => HTMLFormElement.prototype.submit.call(form)")
    expect(page.locator("#prompt-errors li")).to_be_visible()
    visit.check("form errors (server)")
    assert not visit.problems, "\n".join(visit.problems)


def test_the_api_keys_page_passes_empty_with_a_new_key_and_with_errors(visit, user):
    log_in(visit, user)
    page = visit.open("/keys/")
    visit.check("api keys, none")
    page.get_by_label("What it is for").fill("nightly batch")
    page.get_by_role("button", name="Make a key").click()
    expect(page.locator("#new-key code")).to_be_visible()
    visit.check("api keys, a new one shown")
    page.get_by_label("Webhook URL (optional)").fill("https://127.1/hook")
    page.get_by_role("button", name="Make a key").click()
    expect(page.locator("#webhook_url-errors li")).to_be_visible()
    visit.check("api keys, a refused webhook")
    assert not visit.problems, "\n".join(visit.problems)


def test_the_dashboard_and_detail_pages_pass_in_every_job_state(visit, user, stored_video):
    jobs = jobs_in_every_state(user, stored_video)
    log_in(visit, user)
    page = visit.open("/videos/")
    expect(page.locator(".generation")).to_have_count(len(jobs))
    expect(page.locator(".generation video")).to_have_count(1)
    visit.check("dashboard with a job in every state")
    # The README's picture (docs/dashboard.png) is the light desktop one of these.
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"dashboard-every-state-{visit.look}.png", full_page=True)
    for state, generation in jobs.items():
        visit.open(f"/videos/{generation.pk}/")
        expect(page.locator(f"#generation-{generation.pk}")).to_be_visible()
        visit.check(f"detail: {state}")
    assert not visit.problems, "\n".join(visit.problems)


# Django's admin on a phone is Django's own layout: light on a phone, and both schemes on a desktop.
@pytest.mark.parametrize("look", LOOKS[:3], ids=str)
def test_the_admin_pages_we_changed_pass(visit, user, django_user_model, stored_video):
    staff = django_user_model.objects.create_superuser(username="staff", password="a-long-staff-password")
    done = jobs_in_every_state(user, stored_video)["done"]
    UserBudget.objects.create(user=user, monthly_credits=5000)
    SpendEntry.objects.create(
        user=user,
        username=user.username,
        generation=done,
        generation_number=done.pk,
        job_created_at=done.created_at,
        model=done.model,
        kind=SpendKind.FINAL,
        credits=60,
    )
    Alert.objects.create(name=f"budget_80:{user.pk}:2026-12:5000", raised=True, changed_at=done.created_at)
    log_in(visit, staff)
    for state, path, within in [
        ("admin: videos", "/admin/videos/videogeneration/", None),
        ("admin: a video", f"/admin/videos/videogeneration/{done.pk}/change/", None),
        ("admin: spend", "/admin/videos/spendentry/", None),
        ("admin: alerts", "/admin/videos/alert/", None),
        # Django's own user form has violations of Django's (its permission pickers' icons, the
        # unlabelled date and time boxes of last_login): we check the budget we added to it.
        ("admin: a user's budget", f"/admin/auth/user/{user.pk}/change/", "#video_budget-group"),
    ]:
        visit.open(path)
        visit.check(state, ours=False, within=within)
    assert not visit.problems, "\n".join(visit.problems)


@pytest.mark.parametrize("look", LOOKS[:1], ids=str)
def test_the_skip_link_is_the_first_stop_and_moves_focus_to_the_content(visit, user):
    for path in ("/accounts/login/", "/videos/"):
        if path == "/videos/":
            log_in(visit, user)
        page = visit.open(path)
        # From the top of the page (the login form puts the focus in its first box).
        focus_the_top(page)
        page.keyboard.press("Tab")
        skip = page.locator(":focus")
        expect(skip).to_have_text("Skip to main content")
        expect(skip).to_be_in_viewport()
        page.keyboard.press("Enter")
        expect(page.locator("main")).to_be_focused()


def test_the_team_view_and_a_shared_videos_pages_pass(visit, user, django_user_model, stored_video):
    bob = django_user_model.objects.create_user(username="bob", password="another-test-password")
    group = Group.objects.create(name="Interns")
    group.user_set.add(user, bob)
    mine = job(user, Status.SUCCEEDED, progress=100, video_file=stored_video, shared_with="groups")
    theirs = job(bob, Status.SUCCEEDED, progress=100, video_file=stored_video, shared_with="groups")
    log_in(visit, user)

    page = visit.open("/videos/team/")
    expect(page.locator(".team-video")).to_have_count(1)
    expect(page.locator(".tabs [aria-current=page]")).to_have_text("Team")
    visit.check("team view")
    visit.open("/videos/team/?q=nothing-matches")
    expect(page.locator("#team-videos .no-match")).to_be_visible()
    visit.check("team view, no match")
    visit.open(f"/videos/{theirs.pk}/")
    expect(page.get_by_role("button", name=re.compile("^Re-run at your cost"))).to_be_visible()
    visit.check("a video shared with the user")
    visit.open(f"/videos/{mine.pk}/")
    expect(page.get_by_label("Who may see it")).to_have_value("groups")
    visit.check("the owner's page, with its sharing")
    assert not visit.problems, "\n".join(visit.problems)


def test_the_collections_pages_pass(visit, user, django_user_model, stored_video):
    bob = django_user_model.objects.create_user(username="bob", password="another-test-password")
    group = Group.objects.create(name="Interns")
    group.user_set.add(user, bob)
    mine = Collection.objects.create(owner=user, name="Trips")
    mine.videos.add(job(user, Status.SUCCEEDED, progress=100, video_file=stored_video))
    theirs = Collection.objects.create(owner=bob, name="Storms", shared_with_groups=True)
    theirs.videos.add(job(bob, Status.SUCCEEDED, progress=100, video_file=stored_video))
    log_in(visit, user)

    page = visit.open("/videos/collections/")
    expect(page.locator(".collections li")).to_have_count(2)
    visit.check("collections")
    visit.open(f"/videos/collections/{mine.pk}/")
    expect(page.get_by_label("Share it, and its done videos, with your groups")).not_to_be_checked()
    visit.check("an own collection")
    visit.open(f"/videos/collections/{theirs.pk}/")
    expect(page.locator(".team-video")).to_have_count(1)
    visit.check("a collection shared with the user")
    assert not visit.problems, "\n".join(visit.problems)


@pytest.mark.parametrize("look", [LOOKS[0], LOOKS[1]], ids=str)
def test_focus_shows_on_every_tab_stop(visit, user, stored_video):
    job(user, Status.RUNNING, progress=45)
    job(user, Status.SUCCEEDED, progress=100, video_file=stored_video)
    log_in(visit, user)
    page = visit.open("/videos/")
    expect(page.locator(".generation")).to_have_count(2)
    met, faint = tab_stops_without_visible_focus(page)
    assert met >= 10, "the tab order reached the cards' actions"
    assert not faint, "\n".join(faint)


@pytest.mark.parametrize("look", LOOKS[:1], ids=str)
def test_the_active_tab_and_filter_are_marked_current(visit, user):
    log_in(visit, user)
    page = visit.open("/videos/?status=failed")
    expect(page.locator(".tabs [aria-current=page]")).to_have_text("Generate Videos")
    current = page.locator(".filters [aria-current=page]")
    expect(current).to_have_count(1)
    expect(current).to_have_attribute("href", re.compile(r"status=failed"))


def test_the_share_pages_pass(visit, user, stored_video):
    """The owner's share links on a video's page, the new link shown once, and what an anonymous
    visitor meets: the shared video, the 404 of a dead link, the 429 of too many requests."""
    from sharing import services

    done = job(user, Status.SUCCEEDED, progress=100, video_file=stored_video)
    old = services.share_link_create(user=user, video=done, days=7)
    services.share_links_revoke(type(old.link).objects.filter(pk=old.link.pk))
    log_in(visit, user)
    page = visit.open(f"/videos/{done.pk}/")
    expect(page.get_by_role("button", name=f"Revoke link {old.link.prefix}")).to_have_count(0)
    visit.check("detail: share links, one revoked")

    page.get_by_label("Works for").select_option("30")
    page.get_by_role("button", name="Make a share link").click()
    link = page.locator("#new-link .share-url")
    expect(link).to_contain_text("/s/")
    visit.check("share link made")
    url = link.inner_text().strip()

    page.get_by_role("link", name=f"Back to video #{done.pk}").click()
    expect(page.get_by_role("button", name=re.compile(r"^Revoke link "))).to_have_count(1)
    visit.check("detail: share links, one live")

    page.context.clear_cookies()  # an anonymous visitor
    page.goto(url)
    expect(page.locator("video")).to_have_attribute("src", re.compile(r"/video\.mp4$"))
    expect(page.get_by_role("link", name="Download the video")).to_be_visible()
    visit.check("shared video")
    page.goto(url.replace("/s/", "/s/x"))
    expect(page.get_by_role("heading", name="This link does not work")).to_be_visible()
    visit.check("share link gone")
    visit.show_rendered("/s/too-many/", render_to_string("sharing/too_many.html", {"limit": 120, "wait": 42}))
    visit.check("share links: too many requests")
    assert not visit.problems, "\n".join(visit.problems)
