"""Share links (sharing/): made and revoked by a video's owner only; the anonymous page and file for
a usable link; the one 404 for every other; the rate limit; no token anywhere but the one page."""

import logging
import re
import secrets
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from sharing import services
from sharing.logs import redact
from sharing.models import ShareLink
from tests.conftest import MP4
from tests.test_headers import refused_by_policy
from videos.models import Status, VideoGeneration

pytestmark = pytest.mark.django_db

GONE = "This link does not work"
PROMPT = "A lighthouse in a storm, waves breaking over the rocks"


@pytest.fixture
def video(make_job, stored_video):
    return make_job(status=Status.SUCCEEDED, video_file=stored_video, prompt=PROMPT)


@pytest.fixture
def made(user, video):
    return services.share_link_create(user=user, video=video, days=7)


def page(token: str) -> str:
    return f"/s/{token}/"


def file(token: str) -> str:
    return f"/s/{token}/video.mp4"


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def create(client: Client, video: VideoGeneration, days: object = 7):
    return client.post(f"/videos/{video.pk}/share-links/", {"days": days})


def token_on(response) -> str:
    found = re.search(r"/s/([A-Za-z0-9_-]{43})/", response.content.decode())
    assert found, "the new link is on the page"
    return found[1]


# --- The owner makes a link, and sees it once ---------------------------------------------------


def test_the_owner_makes_a_link_shown_once_and_stored_only_as_its_hash(alice, video):
    response = create(alice, video)

    assert response.status_code == 201
    assert "no-store" in response["Cache-Control"]
    token = token_on(response)
    link = ShareLink.objects.get()
    assert link.token_hash == services.token_hash(token)
    assert link.prefix == token[:6]
    assert token not in repr(link) and token not in str(link)
    stored = [str(value) for value in ShareLink.objects.values_list().get()]
    assert not any(token in value for value in stored)
    assert link.expires_at - link.created_at == timedelta(days=7)
    # The video's page lists it by its prefix only.
    detail = alice.get(f"/videos/{video.pk}/").content.decode()
    assert f"{link.prefix}…" in detail
    assert token not in detail


def test_the_owner_sees_each_link_with_its_views_and_a_revoke_button(alice, user, video, made):
    Client().get(page(made.token))
    Client().get(page(made.token))
    html = alice.get(f"/videos/{video.pk}/").content.decode()

    assert "Share links" in html
    row = re.search(rf"<tr><td><code>{made.link.prefix}….*?</tr>", html, re.S)
    assert row, html
    assert "<td>2, last" in row[0]
    assert f'action="/videos/{video.pk}/share-links/{made.link.pk}/revoke/"' in row[0]
    assert "csrfmiddlewaretoken" in row[0]


def test_a_link_works_for_the_days_chosen_up_to_the_longest_allowed(alice, video, settings):
    settings.SHARE_LINK_MAX_DAYS = 7
    assert services.day_choices() == [1, 7]

    refused = create(alice, video, days=30)
    assert refused.status_code == 302
    assert not ShareLink.objects.exists()
    assert create(alice, video, days=1).status_code == 201
    link = ShareLink.objects.get()
    assert link.expires_at - link.created_at == timedelta(days=1)


def test_only_a_finished_video_can_be_shared(alice, make_job):
    running = make_job(status=Status.RUNNING)

    response = create(alice, running)

    assert response.status_code == 302
    assert not ShareLink.objects.exists()
    html = alice.get(f"/videos/{running.pk}/").content.decode()
    assert "It can be shared once it has finished." in html
    assert "Make a share link" not in html


def test_nobody_but_the_owner_makes_a_link(client, other_user, video, admin_client):
    assert create(client, video).status_code == 302  # to the login page
    client.force_login(other_user)
    assert create(client, video).status_code == 404
    assert create(admin_client, video).status_code == 404  # staff use the admin, and cannot share
    assert not ShareLink.objects.exists()
    # Nor is the form on the page staff read.
    assert "Make a share link" not in admin_client.get(f"/videos/{video.pk}/").content.decode()


def test_a_video_being_deleted_cannot_be_shared(alice, video):
    VideoGeneration.objects.filter(pk=video.pk).update(delete_pending=True)

    assert create(alice, video).status_code == 404
    assert not ShareLink.objects.exists()


# --- Anyone with the link: the video, and nothing else -----------------------------------------


def test_anyone_with_the_link_sees_the_video_alone(made, user, video):
    response = Client().get(page(made.token))

    assert response.status_code == 200
    html = response.content.decode()
    assert f'src="/s/{made.token}/video.mp4"' in html
    assert "Download the video" in html
    for private in (PROMPT, user.username, f"/videos/{video.pk}/", "/admin/", "/keys/"):
        assert private not in html
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert response["Cache-Control"] == "private, no-store"
    assert response["Referrer-Policy"] == "same-origin"
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "sessionid" not in response.cookies and "csrftoken" not in response.cookies


def test_the_file_is_served_with_ranges_under_a_name_that_says_nothing(made):
    response = Client().get(file(made.token), HTTP_RANGE="bytes=10-109")

    assert response.status_code == 206
    assert body(response) == MP4[10:110]
    assert response["Content-Range"] == f"bytes 10-109/{len(MP4)}"
    assert response["Content-Disposition"] == 'inline; filename="shared-video.mp4"'
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert response["Cache-Control"] == "private, no-cache"  # asked again before each use: a revoke stops a replay
    again = Client().get(file(made.token), HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304
    whole = Client().get(file(made.token))
    assert whole.status_code == 200 and body(whole) == MP4
    assert Client().head(file(made.token)).status_code == 200


def test_views_count_the_page_not_each_range_of_the_file(made):
    visitor = Client()
    visitor.get(page(made.token))
    for start in (0, 1000, 2000):
        visitor.get(file(made.token), HTTP_RANGE=f"bytes={start}-")

    made.link.refresh_from_db()
    assert made.link.view_count == 1
    assert made.link.last_viewed_at is not None


def test_the_file_is_streamed_not_redirected_to_a_presigned_url_that_would_outlive_a_revoke(made, settings):
    settings.VIDEO_PRESIGNED_URL_SECONDS = 60

    response = Client().get(file(made.token), HTTP_RANGE="bytes=0-99")

    assert response.status_code == 206
    assert body(response) == MP4[:100]


def test_the_front_server_sends_the_file_when_configured(made, video, settings):
    settings.VIDEO_SENDFILE_HEADER = "X-Accel-Redirect"

    response = Client().get(file(made.token))

    assert response["X-Accel-Redirect"] == f"/protected-media/{video.video_file.name}"
    assert response["X-Robots-Tag"] == "noindex, nofollow"


def test_the_share_pages_only_read(made):
    assert Client().post(page(made.token)).status_code == 405
    assert Client().post(file(made.token)).status_code == 405


# --- Every link that does not open: one 404 page -----------------------------------------------


def gone_answers(token: str) -> list:
    return [Client().get(page(token)), Client().get(file(token))]


def assert_gone(token: str) -> bytes:
    first, second = gone_answers(token)
    for response in (first, second):
        assert response.status_code == 404
        assert GONE in response.content.decode()
        assert response["X-Robots-Tag"] == "noindex, nofollow"
        assert "no-store" in response["Cache-Control"]
    return first.content


def test_a_guessed_or_mistyped_link_gets_the_404_page(made):
    guessed = assert_gone(secrets.token_urlsafe(32))
    assert assert_gone(made.token[:-1]) == guessed
    assert assert_gone(made.token + "x") == guessed
    assert assert_gone(made.token[:5] + "." + made.token[6:]) == guessed
    assert assert_gone(services.token_hash(made.token)) == guessed  # the stored hash opens nothing


def test_a_revoked_link_gets_the_same_404_page_at_once(alice, made, video):
    unknown = assert_gone(secrets.token_urlsafe(32))
    assert Client().get(page(made.token)).status_code == 200
    etag = Client().get(file(made.token))["ETag"]

    response = alice.post(f"/videos/{video.pk}/share-links/{made.link.pk}/revoke/")

    assert response.status_code == 302
    assert assert_gone(made.token) == unknown
    assert Client().get(file(made.token), HTTP_IF_NONE_MATCH=etag).status_code == 404  # a cached copy is not confirmed
    made.link.refresh_from_db()
    assert made.link.revoked_at is not None
    assert "revoked" in alice.get(f"/videos/{video.pk}/").content.decode()


def test_an_expired_link_gets_the_same_404_page(user, video):
    unknown = assert_gone(secrets.token_urlsafe(32))
    old = services.share_link_create(user=user, video=video, days=1, now=timezone.now() - timedelta(days=1, seconds=1))
    fresh = services.share_link_create(user=user, video=video, days=1, now=timezone.now() - timedelta(hours=23))

    assert assert_gone(old.token) == unknown
    assert Client().get(page(fresh.token)).status_code == 200


def test_another_users_link_cannot_be_revoked_or_seen_by_them(client, other_user, made, video, make_job, stored_video):
    client.force_login(other_user)
    theirs = make_job(owner=other_user, status=Status.SUCCEEDED, video_file=stored_video)

    assert client.post(f"/videos/{video.pk}/share-links/{made.link.pk}/revoke/").status_code == 404
    assert client.post(f"/videos/{theirs.pk}/share-links/{made.link.pk}/revoke/").status_code == 404
    assert client.get(f"/videos/{video.pk}/").status_code == 404
    their_page = client.get(f"/videos/{theirs.pk}/").content.decode()
    assert "Make a share link" in their_page
    assert f"{made.link.prefix}…" not in their_page
    made.link.refresh_from_db()
    assert made.link.revoked_at is None
    assert Client().get(page(made.token)).status_code == 200


def test_a_revoke_needs_a_login_and_a_post(client, made, video):
    url = f"/videos/{video.pk}/share-links/{made.link.pk}/revoke/"
    assert client.post(url).status_code == 302  # to the login page
    client.force_login(made.link.created_by)
    assert client.get(url).status_code == 405
    made.link.refresh_from_db()
    assert made.link.revoked_at is None


def test_deleting_the_video_kills_its_links_at_once(alice, made, video, broker):
    unknown = assert_gone(secrets.token_urlsafe(32))

    assert alice.post(f"/videos/{video.pk}/delete/").status_code == 302

    assert assert_gone(made.token) == unknown  # while the worker removes it (delete_pending)
    VideoGeneration.objects.filter(pk=video.pk).delete()  # what the worker does last
    assert not ShareLink.objects.exists()


def test_deleting_or_deactivating_the_owner_kills_their_links(user, made, video):
    user.is_active = False
    user.save()
    assert_gone(made.token)

    user.delete()

    assert not ShareLink.objects.exists()
    assert_gone(made.token)


def test_a_video_whose_file_is_gone_cannot_be_opened(made, video):
    VideoGeneration.objects.filter(pk=video.pk).update(video_file="")

    assert_gone(made.token)


# --- Rate limit ----------------------------------------------------------------------------------


def within_one_minute(ask):
    """`ask()`'s answers, from requests made within one clock minute (the limit's window): tried
    again if the minute turned while it ran, which it can do once at most."""
    for _ in range(2):
        minute = int(time.time() // 60)
        answers = ask()
        if int(time.time() // 60) == minute:
            return answers
    raise AssertionError("the minute turned twice")


def test_an_address_over_the_limit_gets_429_with_retry_after(made, settings):
    settings.SHARE_LINK_RATE_PER_MINUTE = 3
    visitor, neighbour = Client(REMOTE_ADDR="203.0.113.7"), Client(REMOTE_ADDR="203.0.113.8")

    def ask():
        from django.core.cache import cache

        cache.clear()
        answers = [visitor.get(page(made.token)), visitor.get(file(made.token)), visitor.get(page("nope"))]
        return [*answers, visitor.get(file(made.token)), neighbour.get(page(made.token))]

    answers = within_one_minute(ask)

    assert [answer.status_code for answer in answers] == [200, 200, 404, 429, 200]
    limited = answers[3]
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert "Too many requests" in limited.content.decode()
    assert limited["X-Robots-Tag"] == "noindex, nofollow"


def test_the_limit_counts_the_client_behind_trusted_proxies(made, settings):
    settings.SHARE_LINK_RATE_PER_MINUTE = 1
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "10.0.0.1"}

    def ask():
        from django.core.cache import cache

        cache.clear()
        return [
            Client(**proxy).get(page(made.token), HTTP_X_FORWARDED_FOR="198.51.100.1").status_code,
            Client(**proxy).get(page(made.token), HTTP_X_FORWARDED_FOR="198.51.100.2").status_code,
            Client(**proxy).get(page(made.token), HTTP_X_FORWARDED_FOR="198.51.100.1").status_code,
        ]

    assert within_one_minute(ask) == [200, 200, 429]


def test_the_rate_counter_resets_each_minute():
    now = 1_800_000_000.0  # a minute's start
    address = "192.0.2.1"
    from django.conf import settings

    limit = settings.SHARE_LINK_RATE_PER_MINUTE
    assert all(services.share_rate_wait(address, now=now + 1) is None for _ in range(limit))
    assert services.share_rate_wait(address, now=now + 15) == 45
    assert services.share_rate_wait(address, now=now + 60) is None


# --- The token stays secret: logs, admin ---------------------------------------------------------


def test_no_token_reaches_the_request_log(made, alice, video, settings, caplog):
    settings.SHARE_LINK_RATE_PER_MINUTE = 1
    caplog.set_level(logging.INFO)
    visitor = Client()
    visitor.get(page(made.token))
    visitor.get(page(made.token))  # 429, or 200 in a new minute
    alice.post(f"/videos/{video.pk}/share-links/{made.link.pk}/revoke/")
    assert Client(REMOTE_ADDR="192.0.2.9").get(page(made.token)).status_code == 404

    assert f"/s/{made.link.prefix}…/" in caplog.text  # "Not Found: ..."
    assert made.token not in caplog.text


def test_the_log_filter_leaves_only_the_prefix():
    token = secrets.token_urlsafe(32)
    assert redact(f"Not Found: /s/{token}/video.mp4") == f"Not Found: /s/{token[:6]}…/video.mp4"
    assert redact("Not Found: /videos/3/") == "Not Found: /videos/3/"


def test_staff_list_and_revoke_links_in_the_admin_without_the_token(admin_client, made):
    listing = admin_client.get("/admin/sharing/sharelink/")
    change = admin_client.get(f"/admin/sharing/sharelink/{made.link.pk}/change/")

    for response in (listing, change):
        assert response.status_code == 200
        html = response.content.decode()
        assert made.link.prefix in html
        assert made.token not in html
        assert made.link.token_hash not in html
    assert admin_client.get("/admin/sharing/sharelink/add/").status_code == 403
    response = admin_client.post(
        "/admin/sharing/sharelink/", {"action": "revoke", "_selected_action": [made.link.pk]}, follow=True
    )
    assert "1 link revoked." in response.content.decode()
    assert_gone(made.token)


def test_no_share_page_has_anything_the_policy_would_refuse(alice, video, made, admin_client, settings):
    made_page = create(alice, video)
    settings.SHARE_LINK_RATE_PER_MINUTE = 1
    visitor = Client(REMOTE_ADDR="192.0.2.50")
    pages = {
        "created": made_page,
        "detail with links": alice.get(f"/videos/{video.pk}/"),
        "shared": visitor.get(page(made.token)),
        "too many": within_one_minute(lambda: [visitor.get(page(made.token)) for _ in range(2)])[1],
        "gone": Client(REMOTE_ADDR="192.0.2.51").get(page("mistyped")),
        "admin list": admin_client.get("/admin/sharing/sharelink/"),
        "admin change": admin_client.get(f"/admin/sharing/sharelink/{made.link.pk}/change/"),
    }

    for name, response in pages.items():
        assert refused_by_policy(response) == [], name
    assert pages["too many"].status_code == 429
