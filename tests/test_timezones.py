"""Times in the user's time zone: the `tz` cookie, the middleware that activates it, and the one
format the pages show times in."""

import re
from datetime import UTC, datetime

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from django.utils import timezone

from runway_project.timezones import TimeZoneMiddleware, zone_from
from videos.models import VideoGeneration
from videos.templatetags.when import when, zone_name

NOV_29_1305_UTC = datetime(2026, 11, 29, 13, 5, tzinfo=UTC)


def zone_seen_with(cookie: str | None) -> str:
    """The time zone a view sees, given the request's `tz` cookie."""
    seen = []

    def view(request: HttpRequest) -> HttpResponse:
        seen.append(timezone.get_current_timezone_name())
        return HttpResponse()

    request = RequestFactory().get("/")
    if cookie is not None:
        request.COOKIES["tz"] = cookie
    TimeZoneMiddleware(view)(request)
    return seen[0]


def test_the_tz_cookie_sets_the_zone_a_view_sees_and_only_for_that_request():
    assert zone_seen_with("Europe/Paris") == "Europe/Paris"
    assert zone_seen_with("America/Argentina/Buenos_Aires") == "America/Argentina/Buenos_Aires"
    assert timezone.get_current_timezone_name() == "UTC"  # not left active for the next request


@pytest.mark.parametrize(
    "cookie", [None, "", "Mars/Olympus_Mons", "../../../etc/passwd", "/etc/localtime", "Europe/" + "x" * 100, "\x00"]
)
def test_a_missing_or_invalid_zone_leaves_times_in_utc(cookie):
    assert zone_seen_with(cookie) == "UTC"


def test_zone_from_accepts_iana_names_only():
    assert zone_from("Asia/Kolkata") is not None
    assert zone_from("Etc/GMT+5") is not None
    assert zone_from("Not/AZone") is None
    assert zone_from("..") is None


def test_a_time_is_shown_short_in_the_active_zone_with_the_instant_in_utc():
    with timezone.override("Europe/Paris"):
        html = when(NOV_29_1305_UTC)
    assert html == ('<time datetime="2026-11-29T13:05:00+00:00" title="Nov 29, 2026, 14:05 CET">Nov 29, 14:05</time>')
    with timezone.override("America/New_York"):
        assert ">Nov 29, 08:05</time>" in when(NOV_29_1305_UTC)
        assert zone_name(NOV_29_1305_UTC) == "EST"
    assert when(None) == ""


@pytest.mark.django_db
def test_card_and_detail_page_show_the_same_time_in_the_browsers_zone(alice, make_job):
    job = make_job()
    VideoGeneration.objects.filter(pk=job.pk).update(created_at=NOV_29_1305_UTC, finished_at=NOV_29_1305_UTC)
    alice.cookies["tz"] = "Asia/Tokyo"

    dashboard = alice.get("/videos/").content.decode()
    detail = alice.get(f"/videos/{job.pk}/").content.decode()

    shown = '<time datetime="2026-11-29T13:05:00+00:00" title="Nov 29, 2026, 22:05 JST">Nov 29, 22:05</time>'
    assert shown in dashboard
    assert detail.count(shown) == 3  # the card, Created and Finished
    assert "(JST)" in detail
    assert not re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", detail), "a second, raw time format on the page"


@pytest.mark.django_db
def test_without_a_cookie_times_are_in_utc_and_say_so(alice, make_job):
    job = make_job()
    VideoGeneration.objects.filter(pk=job.pk).update(created_at=NOV_29_1305_UTC)
    detail = alice.get(f"/videos/{job.pk}/").content.decode()
    assert 'title="Nov 29, 2026, 13:05 UTC">Nov 29, 13:05</time> <span class="zone">(UTC)</span>' in detail


def test_every_page_loads_the_script_that_sets_the_cookie(client):
    assert '<script src="/static/js/timezone.js" defer></script>' in client.get("/accounts/login/").content.decode()


@pytest.mark.django_db
def test_the_daily_limits_next_slot_is_shown_in_the_users_zone_and_says_which(alice, make_job, settings):
    settings.RUNWAY_DAILY_LIMIT_PER_USER = 1
    alice.post("/videos/", {"prompt": "one"})  # the ledger counts what was made
    alice.cookies["tz"] = "Asia/Tokyo"
    content = alice.get("/videos/").content.decode()
    slot = re.search(r"the next at <time [^>]*>([^<]+)</time> \((\w+)\)", content)
    assert slot, "no next slot shown"
    assert slot.group(2) == "JST"
