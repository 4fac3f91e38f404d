"""An uploaded input image, checked to the last byte before it is stored or sent: only a real JPEG,
PNG or WebP picture of a sensible size passes, and it is stored under a name we make (never the one
the user gave, which could be `poly.html`) with the extension of what it really is.

The check runs in a web worker, so its memory is bounded (MAX_CHECK_BYTES) whatever the picture's
size, instead of holding the whole decoded picture (4 bytes a pixel for Pillow, about 17 for a
WebP: a 7000 x 7000 PNG of a few hundred KB took 200 MB, a WebP as large 790 MB):

- PNG: its chunks are walked with their checksums, and its compressed pixels inflated a piece at a
  time, each row's filter checked, until exactly as many bytes as the header promises have come
  (a truncated or corrupt file fails); no picture is ever built. Pillow is not needed for it.
- JPEG: Pillow decodes the whole file at an eighth of its size (libjpeg's scaled decoding, `draft`),
  which reads every byte of it. A progressive JPEG (or any with several scans) makes libjpeg keep
  every coefficient of the full-size picture, about 3 to 6 bytes a pixel: it must fit the budget.
- WebP: Pillow's decoder (libwebp's) holds the full-size picture several times over, about 17 bytes
  a pixel, and makes its canvases as the file is opened: the size, read from the header first,
  must fit the budget.
"""

import math
import struct
import uuid
import warnings
import zlib
from collections.abc import Callable
from typing import IO

from PIL import Image, UnidentifiedImageError

from videos import catalog

# What Runway takes, by MIME type, and the extension each is stored with.
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
# Far above any camera's picture, far below a decompression bomb's.
MAX_PIXELS = 50_000_000
# The most memory one check may hold for the picture's pixels. PNG and a baseline JPEG take a few
# MB at any size up to MAX_PIXELS; a WebP or a progressive JPEG whose decoder would need more is
# refused, with what to do instead.
MAX_CHECK_BYTES = 100_000_000
# What Pillow's WebP decoder holds a pixel (libwebp's canvas and its copy of the frame before, the
# frame's bytes, Pillow's picture, 4 bytes each); 16.2 to 18 measured from 49 MP down to 4 MP.
WEBP_BYTES_PER_PIXEL = 17
# Inflated PNG data looked at in one go, and file bytes read in one go.
_PIECE = 1 << 20
_READ = 1 << 16

UNREADABLE = "The file could not be read as an image."


class ImageProblem(ValueError):
    """The upload is not an image Runway takes; the message is for users."""


def image_stored_name(image: IO[bytes]) -> str:
    """Check the whole image (leaving the file at its start) and return the name to store it under.

    Raises ImageProblem when it is not a JPEG, PNG or WebP picture whose every byte reads, or it is
    too large.
    """
    image.seek(0)
    try:
        kind = catalog.image_type(image.read(30))
        image.seek(0)
        if kind is None:
            raise ImageProblem(catalog.NOT_AN_IMAGE)
        check: Callable[[IO[bytes]], None] = {"image/png": _png, "image/jpeg": _jpeg, "image/webp": _webp}[kind]
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            check(image)
    except ImageProblem:
        raise
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        EOFError,
        ValueError,
        IndexError,
        zlib.error,
        struct.error,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ):
        raise ImageProblem(UNREADABLE) from None
    finally:
        image.seek(0)
    return f"{uuid.uuid4().hex}.{EXTENSIONS[kind]}"


def _too_many_pixels(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise SyntaxError("no pixels")
    if width * height > MAX_PIXELS:
        raise ImageProblem(
            f"The image is {width} × {height} pixels; images of up to {MAX_PIXELS // 1_000_000} million "
            "pixels can be used. Make it smaller."
        )


# --- PNG ---------------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The bit depths each colour type allows (greyscale, RGB, palette, greyscale and alpha, RGBA), and
# its samples a pixel.
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_PNG_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Adam7's seven passes over an interlaced picture: first column and row, then the steps between.
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


class _Rows:
    """The inflated pixel data of a PNG, checked as it comes: rows of the lengths its header gives
    (a pass at a time when interlaced), each led by a filter type of 0 to 4, and nothing more."""

    def __init__(self, width: int, height: int, bits_per_pixel: int, interlaced: bool) -> None:
        passes = _ADAM7 if interlaced else ((0, 0, 1, 1),)
        self.left: list[list[int]] = []  # per pass: [rows still to come, bytes a row with its filter byte]
        for x0, y0, dx, dy in passes:
            columns, rows = -(-(width - x0) // dx), -(-(height - y0) // dy)
            if columns > 0 and rows > 0:
                self.left.append([rows, 1 + -(-(columns * bits_per_pixel) // 8)])
        self.into_row = 0  # bytes of the current row already seen

    @property
    def complete(self) -> bool:
        return not self.left

    def feed(self, data: bytes) -> None:
        at = 0
        while at < len(data):
            if not self.left:
                raise SyntaxError("more pixel data than the header says")
            rows, length = self.left[0]
            if self.into_row:  # the rest of a row begun in an earlier piece
                taken = min(length - self.into_row, len(data) - at)
                at += taken
                self.into_row = (self.into_row + taken) % length
                if not self.into_row:
                    self._rows_done(1)
                continue
            span = min(rows * length, len(data) - at)
            if max(data[at : at + span : length]) > 4:
                raise SyntaxError("unknown PNG filter type")
            whole, self.into_row = divmod(span, length)
            at += span
            self._rows_done(whole)

    def _rows_done(self, count: int) -> None:
        self.left[0][0] -= count
        if not self.left[0][0]:
            self.left.pop(0)


def _png(image: IO[bytes]) -> None:
    head = image.read(16)
    if head != PNG_SIGNATURE + struct.pack(">I4s", 13, b"IHDR"):
        raise SyntaxError("not a PNG file, or not one that starts with its header")
    header = bytearray()
    _png_chunk(image, head[8:], lambda name, block: header.extend(block))
    rows = _png_rows(bytes(header))
    inflate = zlib.decompressobj()

    def pixels(name: bytes, block: bytes) -> None:
        if name == b"IDAT":
            _inflated(inflate, block, rows)

    # To IEND; a file that ends without one once all the pixels have come is taken, as readers do.
    while (head := image.read(8)) or not rows.complete:
        if _png_chunk(image, head, pixels) == b"IEND":
            break
    if not rows.complete:
        raise EOFError("the PNG's pixel data ends early")


def _png_chunk(image: IO[bytes], head: bytes, take: Callable[[bytes, bytes], None]) -> bytes:
    """Read the chunk whose length and name are `head`, handing its data to `take(name, block)` a
    block at a time; its name, once its checksum is found right."""
    length, name = struct.unpack(">I4s", head)
    if length > 0x7FFFFFFF:
        raise SyntaxError("broken PNG file")
    crc = zlib.crc32(name)
    while length:
        block = image.read(min(length, _READ))
        if not block:
            raise EOFError("truncated PNG file")
        length -= len(block)
        crc = zlib.crc32(block, crc)
        take(name, block)
    if image.read(4) != struct.pack(">I", crc):
        raise SyntaxError(f"broken PNG file: {name!r} fails its checksum")
    return bytes(name)


def _png_rows(header: bytes) -> _Rows:
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", header)
    _too_many_pixels(width, height)
    if depth not in _PNG_DEPTHS.get(colour, ()) or compression or filtering or interlace not in (0, 1):
        raise SyntaxError("unknown PNG format")
    return _Rows(width, height, depth * _PNG_SAMPLES[colour], interlaced=interlace == 1)


def _inflated(inflate: "zlib._Decompress", data: bytes, rows: _Rows) -> None:
    """Inflate `data` a piece of at most _PIECE bytes at a time, each checked then dropped (a full
    piece may leave more output waiting in zlib even once the input is used up: asked for again)."""
    while not inflate.eof:
        piece = inflate.decompress(data, _PIECE)
        rows.feed(piece)
        data = inflate.unconsumed_tail
        if not data and len(piece) < _PIECE:
            return


# --- JPEG --------------------------------------------------------------------------------------

# libjpeg's coefficients: 64 of 2 bytes for each 8 x 8 block of each component.
_BLOCK_BYTES = 64 * 2


def _jpeg(image: IO[bytes]) -> None:
    with Image.open(image) as picture:
        if picture.format != "JPEG":  # an MPO (several pictures in one file) is not one Runway takes
            raise ImageProblem(catalog.NOT_AN_IMAGE)
        width, height = picture.size
        _too_many_pixels(width, height)
        if picture.info.get("progressive") or _jpeg_scans(image, picture.applist) > 1:  # type: ignore[attr-defined]
            needed = _jpeg_coefficient_bytes(picture.size, picture.layer)  # type: ignore[attr-defined]
            if needed > MAX_CHECK_BYTES:
                limit = MAX_CHECK_BYTES * width * height / needed / 1e6
                raise ImageProblem(
                    f"The image is a progressive JPEG of {width} × {height} pixels; one like it can have up to "
                    f"about {limit:.0f} million pixels here. Save it as a standard (baseline) JPEG or a PNG, "
                    "or make it smaller."
                )
        # An eighth of each side (1/64 of the pixels), from every byte of the file.
        picture.draft(None, (max(1, width // 8), max(1, height // 8)))
        picture.load()


def _jpeg_scans(image: IO[bytes], segments: list[tuple[str, bytes]]) -> int:
    """How many scans (SOS markers, 0xFF 0xDA) the JPEG has. Its compressed data escapes any 0xFF of
    its own, so the bytes 0xFF 0xDA are a marker wherever they are, but inside a segment Pillow read
    (an APP segment's thumbnail, a comment): those are not counted."""
    position = image.tell()
    image.seek(0)
    found, last = 0, b""
    while block := image.read(_PIECE):
        found += (last + block).count(b"\xff\xda")
        last = block[-1:]
    image.seek(position)
    return found - sum(data.count(b"\xff\xda") for _, data in segments)


def _jpeg_coefficient_bytes(size: tuple[int, int], components: list[tuple[int, int, int, int]]) -> int:
    """What libjpeg keeps of a progressive or multi-scan JPEG: every component's coefficients."""
    width, height = size
    most_h = max(h for _, h, _, _ in components)
    most_v = max(v for _, _, v, _ in components)
    blocks = 0
    for _, h, v, _ in components:
        blocks += math.ceil(math.ceil(width * h / most_h) / 8) * math.ceil(math.ceil(height * v / most_v) / 8)
    return blocks * _BLOCK_BYTES


# --- WebP --------------------------------------------------------------------------------------


def _webp(image: IO[bytes]) -> None:
    width, height = _webp_size(image.read(30))
    image.seek(0)
    _too_many_pixels(width, height)
    if width * height * WEBP_BYTES_PER_PIXEL > MAX_CHECK_BYTES:
        limit = MAX_CHECK_BYTES / WEBP_BYTES_PER_PIXEL / 1e6
        raise ImageProblem(
            f"The image is a WebP of {width} × {height} pixels; WebP images of up to {limit:.1f} million pixels "
            "(e.g. 2400 × 2400) can be used here. Save it as a PNG or JPEG, or make it smaller."
        )
    # Pillow's decoder makes its canvases as the file is opened: only once the size is known to fit.
    with Image.open(image) as picture:
        if picture.format != "WEBP" or picture.size != (width, height):
            raise SyntaxError("broken WebP file")
        picture.load()


def _webp_size(head: bytes) -> tuple[int, int]:
    """The picture's size, from the first chunk of the file (RIFF's header, then VP8X, VP8L or VP8)."""
    chunk = head[12:16]
    if chunk == b"VP8X":  # the extended format: its canvas, 24 bits less one a side
        return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
    if chunk == b"VP8L" and head[20] == 0x2F:  # lossless: 14 bits less one a side
        bits = int.from_bytes(head[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":  # lossy: a key frame's 14 bits a side
        return int.from_bytes(head[26:28], "little") & 0x3FFF, int.from_bytes(head[28:30], "little") & 0x3FFF
    raise SyntaxError("broken WebP file")
