"""Share links in a real Chromium, under the site's Content-Security-Policy: the owner makes and
revokes a link without JavaScript, and a visitor with no account plays and seeks the video."""

import re
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import Browser, BrowserContext, expect

from sharing.models import ShareLink
from tests.test_browser import SEEK_TO_2_SECONDS, browser, watch_for_problems  # noqa: F401 (a fixture)
from videos import catalog
from videos.models import Status, VideoGeneration

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def contexts(browser: Browser) -> Iterator[tuple[BrowserContext, BrowserContext]]:  # noqa: F811
    """The owner's tab, without JavaScript (the forms must work without it), and a visitor's on a
    phone; each fails the test on a server error, script error or CSP violation."""
    owner = browser.new_context(viewport={"width": 1100, "height": 900}, java_script_enabled=False)
    visitor = browser.new_context(viewport={"width": 390, "height": 800})
    problems = [watch_for_problems(context.new_page()) for context in (owner, visitor)]
    yield owner, visitor
    owner.close()
    visitor.close()
    assert problems == [[], []], "the pages met server or script errors"


def test_a_visitor_plays_a_shared_video_until_its_owner_revokes_the_link(contexts, live_server, user, stored_video):
    owner, visitor = contexts
    video = VideoGeneration.objects.create(
        owner=user,
        prompt="Lighthouse in a storm",
        endpoint=catalog.TEXT_TO_VIDEO,
        model="gen4.5",
        ratio="1280:720",
        duration=5,
        status=Status.SUCCEEDED,
        progress=100,
        video_file=stored_video,
    )
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    owner.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
    mine = owner.pages[0]
    mine.goto(f"{live_server.url}/videos/{video.pk}/")
    mine.get_by_label("Works for").select_option("1")
    mine.get_by_role("button", name="Make a share link").click()
    url = mine.locator("#new-link .share-url").inner_text().strip()
    assert re.fullmatch(rf"{re.escape(live_server.url)}/s/[A-Za-z0-9_-]{{43}}/", url)

    theirs = visitor.pages[0]
    theirs.goto(url)
    expect(theirs.get_by_role("heading", name="A shared video")).to_be_visible()
    assert "Lighthouse" not in theirs.content() and user.username not in theirs.content()
    duration, seekable, position = theirs.evaluate(SEEK_TO_2_SECONDS)  # ranges, as on the owner's page
    assert duration == pytest.approx(3.0, abs=0.1)
    assert seekable == pytest.approx(duration, abs=0.1)
    assert position == pytest.approx(2.0, abs=0.05)
    assert ShareLink.objects.get().view_count == 1

    mine.get_by_role("link", name=f"Back to video #{video.pk}").click()
    expect(mine.locator(".share-links tbody tr")).to_have_count(1)
    expect(mine.locator(".share-links tbody td").nth(3)).to_have_text(re.compile(r"^1, last "))
    mine.get_by_role("button", name=re.compile(r"^Revoke link ")).click()
    expect(mine.get_by_text(re.compile(r"Link .{6}… revoked: it no longer works\."))).to_be_visible()

    answer = theirs.goto(url)
    assert answer is not None and answer.status == 404
    expect(theirs.get_by_role("heading", name="This link does not work")).to_be_visible()
    answer = theirs.goto(url + "video.mp4")
    assert answer is not None and answer.status == 404
