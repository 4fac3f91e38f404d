"""Uploads: an oversized body is refused before it is read, and an image is decoded with Pillow and
stored under a name we make, with the extension of what it really is; nothing is saved on refusal."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory

from runway_project.uploads import RequestSizeLimitMiddleware, too_large_message
from tests.conftest import PNG, picture
from videos.catalog import IMAGE_MAX_BYTES
from videos.models import VideoGeneration

DASHBOARD = "/videos/"
pytestmark = pytest.mark.django_db


def post_image(client, name: str, data: bytes, **headers):
    upload = SimpleUploadedFile(name, data, content_type="application/octet-stream")
    return client.post(DASHBOARD, {"prompt": "From this picture", "image": upload}, headers=headers)


def test_a_body_over_the_cap_is_refused_with_a_clear_page_before_it_is_read(settings):
    settings.REQUEST_MAX_BYTES = 1000
    body = io.BytesIO(b"x" * 10)  # says 50 MB is coming: reading it would wait for ever

    def unreachable(request):
        raise AssertionError("the request went on")

    request = RequestFactory().post(DASHBOARD, data=b"", content_type="multipart/form-data; boundary=x")
    request.META.update(CONTENT_LENGTH=str(50_000_000), **{"wsgi.input": body})
    response = RequestSizeLimitMiddleware(unreachable)(request)

    assert response.status_code == 413
    assert too_large_message() in response.content.decode()
    assert body.tell() == 0  # not a byte of the body was read


def test_an_oversized_upload_through_the_form_answers_413_and_saves_nothing(alice, settings):
    settings.REQUEST_MAX_BYTES = 50_000
    response = post_image(alice, "big.png", PNG + b"\0" * 60_000, accept="application/json")
    assert response.status_code == 413
    assert response.json()["errors"]["image"][0]["message"] == too_large_message()
    assert not VideoGeneration.objects.exists()


def test_an_image_just_over_the_limit_is_refused_by_the_form(alice):
    response = post_image(alice, "big.png", PNG + b"\0" * (IMAGE_MAX_BYTES + 1 - len(PNG)))
    assert response.status_code == 400
    assert "images of up to 20 MB can be used" in response.content.decode()
    assert not VideoGeneration.objects.exists()


def test_a_file_that_only_starts_like_a_png_is_refused_and_nothing_is_saved(alice, media_files):
    response = post_image(alice, "fake.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 200)
    assert response.status_code == 400
    assert "could not be read as an image" in response.content.decode()
    assert not VideoGeneration.objects.exists()
    assert media_files() == []


@pytest.mark.parametrize(("kind", "extension"), [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp")])
def test_an_image_is_stored_under_a_made_up_name_with_its_real_extension(alice, kind, extension, broker):
    response = post_image(alice, "poly.html", picture(kind))
    assert response.status_code == 302
    stored = VideoGeneration.objects.get().image.name
    assert stored.startswith("inputs/") and stored.endswith(f".{extension}")
    assert "poly" not in stored and "html" not in stored


@pytest.fixture
def media_files(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return lambda: sorted(p.name for p in (tmp_path / "media").rglob("*") if p.is_file())
