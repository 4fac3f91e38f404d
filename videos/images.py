"""An uploaded input image, decoded with Pillow before it is stored or sent: only a real JPEG, PNG
or WebP picture of a sensible size passes, and it is stored under a name we make (never the one
the user gave, which could be `poly.html`) with the extension of what it really is."""

import uuid
import warnings
from typing import IO

from PIL import Image, UnidentifiedImageError

from videos import catalog

# What Runway takes, as Pillow names the formats, and the extension each is stored with.
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
# Far above any camera's picture, far below a decompression bomb's.
MAX_PIXELS = 50_000_000


class ImageProblem(ValueError):
    """The upload is not an image Runway takes; the message is for users."""


def image_stored_name(image: IO[bytes]) -> str:
    """Decode the whole image (leaving the file at its start) and return the name to store it under.

    Raises ImageProblem when Pillow cannot decode it as a JPEG, PNG or WebP picture, or it is too large.
    """
    image.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(image) as picture:
                kind = picture.format
                if kind not in EXTENSIONS:
                    raise ImageProblem(catalog.NOT_AN_IMAGE)
                if picture.width * picture.height > MAX_PIXELS:
                    raise ImageProblem("The image has too many pixels.")
                picture.load()  # the whole picture, not only its header: a truncated file fails here
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageProblem("The file could not be read as an image.") from None
    finally:
        image.seek(0)
    return f"{uuid.uuid4().hex}.{EXTENSIONS[kind]}"
