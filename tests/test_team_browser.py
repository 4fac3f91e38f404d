"""The Team view in a real Chromium, under the site's Content-Security-Policy: a member finds a video
their colleague shared, plays it, and runs it again at their own cost; once unshared it is gone."""

import re
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.test import Client
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.test_browser import SEEK_TO_2_SECONDS, browser, watch_for_problems  # noqa: F401 (a fixture)
from videos import catalog
from videos.models import SpendEntry, Status, VideoGeneration

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    problems = watch_for_problems(context.new_page())
    yield context
    context.close()
    assert problems == [], "the pages met server or script errors"


def logged_in(context: BrowserContext, user: User, base_url: str) -> Page:
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": base_url}])
    return context.pages[0]


def test_a_member_finds_plays_and_reruns_a_shared_video_until_it_is_unshared(
    context, live_server, user, other_user, stored_video, broker
):
    Group.objects.create(name="Interns").user_set.add(user, other_user)
    shared = VideoGeneration.objects.create(
        owner=other_user,
        prompt="Lighthouse in a storm",
        endpoint=catalog.TEXT_TO_VIDEO,
        model="gen4.5",
        ratio="1280:720",
        duration=5,
        seed=7,
        status=Status.SUCCEEDED,
        progress=100,
        video_file=stored_video,
        shared_with="groups",
    )
    page = logged_in(context, user, live_server.url)

    page.goto(f"{live_server.url}/videos/")
    page.get_by_role("link", name="Team").click()
    card = page.locator(f"#shared-{shared.pk}")
    expect(card).to_contain_text("By bob")
    duration, seekable, position = page.evaluate(SEEK_TO_2_SECONDS)
    assert duration == pytest.approx(3.0, abs=0.1) and position == pytest.approx(2.0, abs=0.05)
    assert seekable == pytest.approx(duration, abs=0.1)

    card.get_by_role("button", name=re.compile(r"^Re-run at your cost")).click()
    expect(page.get_by_text("Running it again, same seed.")).to_be_visible()
    copy = VideoGeneration.objects.get(owner=user)
    assert page.url == f"{live_server.url}/videos/{copy.pk}/"
    assert (copy.prompt, copy.seed) == ("Lighthouse in a storm", 7)
    assert SpendEntry.objects.filter(user=user).credits() > 0  # charged to the member who ran it
    assert not SpendEntry.objects.filter(user=other_user).exists()

    VideoGeneration.objects.filter(pk=shared.pk).update(shared_with="")  # its owner took it back
    page.goto(f"{live_server.url}/videos/team/")
    expect(page.get_by_text("Nothing is shared with you yet.")).to_be_visible()
    answer = page.goto(f"{live_server.url}/videos/{shared.pk}/")
    assert answer is not None and answer.status == 404
