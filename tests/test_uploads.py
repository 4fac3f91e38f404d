"""Uploads: an oversized body is refused before it is read, and an image is checked to its last byte,
in bounded memory, and stored under a name we make, with the extension of what it really is;
nothing is saved on refusal."""

import io
import json
import struct
import subprocess
import sys
import zlib

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from runway_project.uploads import RequestSizeLimitMiddleware, too_large_message
from tests.conftest import PNG, picture
from videos import images
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


# --- The image check: every byte read, in bounded memory ----------------------------------------

MB = 1_000_000


def checked(data: bytes) -> str:
    """What videos/images.py says of a file: the extension it is stored with, or its refusal."""
    try:
        return images.image_stored_name(io.BytesIO(data)).rsplit(".", 1)[1]
    except images.ImageProblem as problem:
        return str(problem)


def png_chunk(name: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + name + body + struct.pack(">I", zlib.crc32(name + body))


def made_png(width: int, height: int, raw: bytes, *, colour: int = 2, depth: int = 8, interlace: int = 0) -> bytes:
    """A PNG written by hand around `raw` pixel data (each row led by its filter type), with right checksums."""
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)
    chunks = png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b"")
    return images.PNG_SIGNATURE + chunks


def adam7_rows(width: int, height: int, bytes_per_pixel: int) -> bytes:
    """The pixel data of an interlaced PNG: Adam7's seven passes, their rows filtered with type 0."""
    raw = b""
    for x0, y0, dx, dy in (
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    ):
        columns, rows = len(range(x0, width, dx)), len(range(y0, height, dy))
        if columns and rows:
            raw += (b"\0" + bytes(range(7)) * columns * bytes_per_pixel)[: 1 + columns * bytes_per_pixel] * rows
    return raw


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"])
def test_a_png_of_every_kind_pillow_writes_passes(mode):
    data = io.BytesIO()
    Image.new("RGB", (333, 211), (200, 120, 40)).convert(mode).save(data, format="PNG")
    assert checked(data.getvalue()) == "png"


def test_an_interlaced_png_passes_and_one_with_a_byte_missing_or_too_many_does_not():
    raw = adam7_rows(37, 23, 3)
    with Image.open(io.BytesIO(made_png(37, 23, raw, interlace=1))) as picture:
        picture.load()  # a real interlaced PNG, as Pillow reads it

    assert checked(made_png(37, 23, raw, interlace=1)) == "png"
    assert checked(made_png(37, 23, raw[:-1], interlace=1)) == images.UNREADABLE
    assert checked(made_png(37, 23, raw + b"\0", interlace=1)) == images.UNREADABLE


def test_a_png_whose_pixels_are_broken_under_right_checksums_is_refused():
    rows = (b"\0" + bytes(3 * 16)) * 16
    assert checked(made_png(16, 16, rows)) == "png"
    assert checked(made_png(16, 16, b"\x07" + rows[1:])) == images.UNREADABLE  # no filter type 7
    compressed = bytearray(zlib.compress(rows))
    compressed[-1] ^= 0xFF  # the data's own checksum (Adler-32) is wrong
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0))
    broken = images.PNG_SIGNATURE + header + png_chunk(b"IDAT", bytes(compressed)) + png_chunk(b"IEND", b"")
    assert checked(broken) == images.UNREADABLE


def test_a_png_with_a_chunk_that_fails_its_checksum_is_refused():
    text = PngInfo()
    text.add_text("Comment", "a comment, which no reader needs")
    data = io.BytesIO()
    Image.new("RGB", (64, 36), (200, 120, 40)).save(data, format="PNG", pnginfo=text)
    assert checked(data.getvalue()) == "png"

    broken = data.getvalue().replace(b"which no reader", b"which no Reader")  # its checksum not made again
    assert checked(broken) == images.UNREADABLE


def test_too_many_pixels_are_refused_from_the_header_before_any_pixel_is_read():
    header = images.PNG_SIGNATURE + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 8000, 8000, 8, 2, 0, 0, 0))

    assert checked(header + b"garbage") == (
        "The image is 8000 × 8000 pixels; images of up to 50 million pixels can be used. Make it smaller."
    )


def test_a_jpeg_with_a_thumbnail_in_its_exif_is_one_scan_and_passes():
    thumbnail = picture("JPEG", (16, 16))
    data = io.BytesIO()
    Image.new("RGB", (640, 480), (10, 200, 30)).save(data, format="JPEG", exif=b"Exif\0\0" + thumbnail)

    with Image.open(io.BytesIO(data.getvalue())) as opened:
        assert images._jpeg_scans(io.BytesIO(data.getvalue()), opened.applist) == 1
    assert checked(data.getvalue()) == "jpg"
    assert checked(data.getvalue()[:-2]) == images.UNREADABLE  # every byte is read, to the end


@pytest.mark.parametrize("mode", ["L", "RGB", "CMYK"])
def test_jpegs_of_every_kind_pass_read_at_an_eighth_of_their_size(mode):
    data = io.BytesIO()
    Image.new("RGB", (1001, 777), (10, 200, 30)).convert(mode).save(data, format="JPEG")
    assert checked(data.getvalue()) == "jpg"
    data = io.BytesIO()
    Image.new("RGB", (1001, 777), (10, 200, 30)).convert(mode).save(data, format="JPEG", progressive=True)
    assert checked(data.getvalue()) == "jpg"


def test_the_webp_size_is_read_from_each_kind_of_header():
    for options in ({"lossless": False}, {"lossless": True}, {"exif": b"Exif\0\0MM"}):
        data = io.BytesIO()
        Image.new("RGBA", (1234, 567), (1, 2, 3, 4)).save(data, format="WEBP", **options)
        assert images._webp_size(data.getvalue()[:30]) == (1234, 567), options
        assert checked(data.getvalue()) == "webp"


# Each measured in a process of its own, made in another (whose making holds the whole picture):
# how much the check adds to the peak memory of the process that runs it. The peak is Linux's
# VmHWM, the process's own since it started: getrusage's ru_maxrss would start at the RSS of the
# (large) test process that forked it, and hide most of what is measured.
MEASURE = """
import io, json, re, sys
from videos.images import ImageProblem, image_stored_name

def peak():
    with open("/proc/self/status") as status:
        return int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read()).group(1)) * 1024

data = open(sys.argv[1], "rb").read()
before = peak()
try:
    said = image_stored_name(io.BytesIO(data))
except ImageProblem as problem:
    said = str(problem)
print(json.dumps({"bytes": peak() - before, "said": said}))
"""
MAKE = """
import json, sys
from PIL import Image
picture = Image.new("RGB", (int(sys.argv[2]), int(sys.argv[3])), (200, 120, 40))
picture.save(sys.argv[1], sys.argv[4], **json.loads(sys.argv[5]))
"""


def check_in_a_process(tmp_path, size: tuple[int, int], kind: str, **options) -> tuple[int, str]:
    path = tmp_path / f"picture.{kind.lower()}"
    subprocess.run(  # noqa: S603 (our own code)
        [sys.executable, "-c", MAKE, str(path), str(size[0]), str(size[1]), kind, json.dumps(options)],
        check=True,
        timeout=120,
    )
    measured = subprocess.run(  # noqa: S603 (our own code)
        [sys.executable, "-c", MEASURE, str(path)],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(measured.stdout)
    return int(result["bytes"]), str(result["said"])


@pytest.mark.parametrize(("kind", "options"), [("PNG", {}), ("JPEG", {})], ids=["png", "baseline jpeg"])
def test_checking_a_7000_by_7000_picture_under_the_pixel_cap_takes_a_few_mb_not_the_whole_picture(
    tmp_path, kind, options
):
    # Decoded whole, it took 190 MB (Pillow's 4 bytes a pixel): now a PNG is inflated a piece at a
    # time and a JPEG decoded at an eighth of each side. 4 to 6 MB measured.
    used, said = check_in_a_process(tmp_path, (7000, 7000), kind, **options)

    assert said.endswith((".png", ".jpg")), said
    assert used < 32 * MB, f"the check of a 7000 x 7000 {kind} took {used / MB:.0f} MB"


@pytest.mark.parametrize(
    ("size", "kind", "options", "refusal"),
    [
        ((7000, 7000), "WEBP", {}, "The image is a WebP of 7000 × 7000 pixels; WebP images of up to 5.9 million"),
        ((7000, 7000), "JPEG", {"progressive": True}, "The image is a progressive JPEG of 7000 × 7000 pixels"),
    ],
    ids=["webp", "progressive jpeg"],
)
def test_a_picture_whose_decoder_would_need_more_than_the_budget_is_refused_before_it_is_decoded(
    tmp_path, size, kind, options, refusal
):
    used, said = check_in_a_process(tmp_path, size, kind, **options)

    assert said.startswith(refusal), said
    assert "Save it as a" in said and "or make it smaller" in said
    assert used < 32 * MB, f"refusing it took {used / MB:.0f} MB"  # 750 MB and 330 MB, decoded whole


@pytest.mark.parametrize(
    ("size", "kind", "options"),
    [((2400, 2400), "WEBP", {}), ((5600, 5600), "JPEG", {"progressive": True})],
    ids=["webp", "progressive jpeg"],
)
def test_one_that_just_fits_the_budget_passes_within_it(tmp_path, size, kind, options):
    # The costs are estimated from the header: these show the estimates hold (about 95 and 98 MiB measured).
    used, said = check_in_a_process(tmp_path, size, kind, **options)

    assert said.endswith((".webp", ".jpg")), said
    assert used < images.MAX_CHECK_BYTES * 1.1, f"{used / MB:.0f} MB"
