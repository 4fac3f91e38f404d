"""videos/serving.py through the two file views: ranges, conditional requests, names, modes."""

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from tests.conftest import MP4
from videos.models import Status

pytestmark = pytest.mark.django_db
SIZE = len(MP4)


@pytest.fixture
def video(make_job, stored_video):
    return make_job(status=Status.SUCCEEDED, video_file=stored_video, prompt="Lighthouse in a storm!")


def url(job):
    return f"/videos/{job.pk}/video.mp4"


def body(response):
    return b"".join(response.streaming_content)


def test_the_whole_file_says_it_takes_ranges_and_caches_privately(alice, video, settings):
    response = alice.get(url(video))
    assert response.status_code == 200
    assert body(response) == MP4
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Length"] == str(SIZE)
    assert response["Content-Type"] == "video/mp4"
    assert response["Cache-Control"] == f"private, max-age={settings.VIDEO_CACHE_SECONDS}"
    assert response["ETag"].startswith('"')
    assert response["Last-Modified"].endswith("GMT")
    assert response["Content-Disposition"] == f'inline; filename="lighthouse-in-a-storm-{video.pk}.mp4"'
    assert SIZE > 1000  # the ranges below are inside the file


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),  # the first bytes
        ("bytes=500-999", 500, 999),  # the middle
        ("bytes=-100", SIZE - 100, SIZE - 1),  # the last 100 bytes
        ("bytes=100-", 100, SIZE - 1),  # open-ended
        (f"bytes=100-{SIZE + 500}", 100, SIZE - 1),  # past the end: up to the end
    ],
)
def test_a_range_answers_206_with_those_bytes(alice, video, header, first, last):
    response = alice.get(url(video), HTTP_RANGE=header)
    assert response.status_code == 206
    assert body(response) == MP4[first : last + 1]
    assert response["Content-Range"] == f"bytes {first}-{last}/{SIZE}"
    assert response["Content-Length"] == str(last - first + 1)
    assert response["Accept-Ranges"] == "bytes"


@pytest.mark.parametrize("header", [f"bytes={SIZE}-", f"bytes={SIZE + 10}-{SIZE + 20}", "bytes=-0"])
def test_an_unsatisfiable_range_answers_416_with_the_size(alice, video, header):
    response = alice.get(url(video), HTTP_RANGE=header)
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{SIZE}"
    assert response["Accept-Ranges"] == "bytes"


@pytest.mark.parametrize("header", ["bytes=0-9,20-29", "bytes=9-0", "items=0-9", "bytes=abc"])
def test_several_ranges_or_a_malformed_one_get_the_whole_file(alice, video, header):
    response = alice.get(url(video), HTTP_RANGE=header)
    assert response.status_code == 200
    assert body(response) == MP4


def test_if_range_gives_the_range_only_while_the_file_is_the_same(alice, video):
    first = alice.get(url(video))
    etag, modified = first["ETag"], first["Last-Modified"]
    for validator in (etag, modified):
        same = alice.get(url(video), HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=validator)
        assert same.status_code == 206
        assert body(same) == MP4[:10]
    for stale in ('"something-else"', "Mon, 01 Jan 2001 00:00:00 GMT", f"W/{etag}"):
        changed = alice.get(url(video), HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=stale)
        assert changed.status_code == 200
        assert body(changed) == MP4


def test_a_revalidation_answers_304(alice, video):
    etag = alice.get(url(video))["ETag"]
    response = alice.get(url(video), HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304
    assert response["ETag"] == etag


def test_the_poster_gets_the_same_treatment(alice, make_job):
    poster = default_storage.save("posters/test/p.jpg", ContentFile(b"\xff\xd8" + b"j" * 200 + b"\xff\xd9"))
    job = make_job(status=Status.SUCCEEDED, poster=poster, prompt="")
    response = alice.get(f"/videos/{job.pk}/poster.jpg", HTTP_RANGE="bytes=0-1")
    assert response.status_code == 206
    assert body(response) == b"\xff\xd8"
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Disposition"] == f'inline; filename="video-{job.pk}.jpg"'


def test_a_long_prompt_makes_a_bounded_name(alice, make_job, stored_video):
    job = make_job(status=Status.SUCCEEDED, video_file=stored_video, prompt="Ünïcode waves " * 40)
    name = alice.get(url(job))["Content-Disposition"].split('filename="')[1].rstrip('"')
    assert name.startswith("unicode-waves-unicode-waves")
    assert name.endswith(f"-{job.pk}.mp4")
    assert len(name) <= 60 + len(f"-{job.pk}.mp4")


def test_another_users_video_answers_404_whatever_the_range(alice, make_job, other_user, stored_video):
    job = make_job(owner=other_user, status=Status.SUCCEEDED, video_file=stored_video)
    assert alice.get(url(job), HTTP_RANGE="bytes=0-9").status_code == 404


def test_staff_may_fetch_any_video(client, admin_user, video):
    client.force_login(admin_user)
    response = client.get(url(video), HTTP_RANGE="bytes=0-9")
    assert response.status_code == 206


def test_a_missing_file_answers_404_with_a_clear_message(alice, video):
    default_storage.delete(video.video_file.name)
    response = alice.get(url(video))
    assert response.status_code == 404
    assert b"The stored file for this video is missing" in response.content


def test_the_front_server_can_send_the_file(alice, video, settings):
    settings.VIDEO_SENDFILE_HEADER = "X-Accel-Redirect"
    settings.VIDEO_SENDFILE_PREFIX = "/protected-media/"
    response = alice.get(url(video))
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == f"/protected-media/{video.video_file.name}"
    assert response.content == b""
    assert response["Content-Type"] == "video/mp4"
    assert "lighthouse-in-a-storm" in response["Content-Disposition"]
    settings.VIDEO_SENDFILE_HEADER = "X-Sendfile"
    assert alice.get(url(video))["X-Sendfile"] == video.video_file.path


def test_the_front_server_is_not_told_of_another_users_file(alice, make_job, other_user, stored_video, settings):
    settings.VIDEO_SENDFILE_HEADER = "X-Accel-Redirect"
    job = make_job(owner=other_user, status=Status.SUCCEEDED, video_file=stored_video)
    response = alice.get(url(job))
    assert response.status_code == 404
    assert "X-Accel-Redirect" not in response


S3_STORAGES = {
    # The real S3 storage: presigning is computed locally from the credentials, no request is sent.
    "default": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": "private-videos",
            "endpoint_url": "http://127.0.0.1:9",
            "region_name": "eu-west-1",
            "access_key": "test-access-key",
            "secret_key": "test-secret-key",
            "querystring_auth": True,
        },
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}


def test_with_a_bucket_the_owner_is_sent_to_a_short_lived_presigned_url(alice, make_job, other_user, settings):
    settings.STORAGES = S3_STORAGES
    settings.VIDEO_PRESIGNED_URL_SECONDS = 60
    job = make_job(status=Status.SUCCEEDED, video_file="videos/1/clip.mp4", prompt="Lighthouse")
    response = alice.get(url(job))
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith("http://127.0.0.1:9/private-videos/videos/1/clip.mp4?")
    query = parse_qs(urlsplit(location).query)
    assert "Signature" in query
    assert 0 < int(query["Expires"][0]) - time.time() <= 60  # works for a minute only
    assert f"lighthouse-{job.pk}.mp4" in location  # response-content-disposition
    assert response["Cache-Control"] == "private, no-store"
    theirs = make_job(owner=other_user, status=Status.SUCCEEDED, video_file="videos/2/clip.mp4")
    assert alice.get(url(theirs)).status_code == 404
