"""An uploaded clip to edit (video to video), checked before it is stored or sent: a real MP4,
QuickTime or WebM video, by its first bytes and by ffmpeg reading its streams, of a size Runway's
uploads take and of a length we accept; stored under a name we make with the extension of what it
really is.

ffmpeg (the `imageio-ffmpeg` wheel's, as for posters) may read only the one local file it is
given: its demuxer is forced from the file's first bytes and only the `file` protocol is allowed.
"""

import os
import re
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from typing import IO

import imageio_ffmpeg  # type: ignore[import-untyped]

# Runway's uploads take files of 512 bytes to 200 MB (runway-api.md); a clip goes as a data URI
# up to 5 MB and through an upload above that (services/inputs.py). Ours is lower: the worker holds
# the file in memory while it uploads it, and 64 MB is 30 seconds at 16 Mbit/s.
CLIP_MIN_BYTES = 512
CLIP_MAX_BYTES = 64 * 1000 * 1000
# Ours: Runway states no limit on a clip's length; long ones cost more and are refused at run time.
CLIP_MIN_SECONDS = 1.0
CLIP_MAX_SECONDS = 30.0
PROBE_TIMEOUT = 20.0

# Content type, stored extension, and the ffmpeg demuxer that reads it.
_KINDS = {
    "mp4": ("video/mp4", "mp4", "mp4"),
    "quicktime": ("video/quicktime", "mov", "mov"),
    "webm": ("video/webm", "webm", "matroska"),
}
CLIP_TYPES = tuple(kind[0] for kind in _KINDS.values())
NOT_A_CLIP = "The file is not an MP4, QuickTime (.mov) or WebM video."
_DURATION = re.compile(rb"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")


class ClipProblem(ValueError):
    """The upload is not a clip Runway takes; the message is for users."""


@dataclass(frozen=True)
class Clip:
    name: str  # to store it under
    content_type: str
    seconds: float


def clip_kind(head: bytes) -> str | None:
    """ "mp4", "quicktime" or "webm" from a file's first 16 bytes; None for anything else."""
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    if head[4:8] == b"ftyp":
        return "quicktime" if head[8:12] == b"qt  " else "mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free"):
        return "quicktime"  # an older QuickTime file, without a ftyp box
    return None


def checked_clip(clip: IO[bytes]) -> Clip:
    """Check an uploaded clip (leaving the file at its start) and say how to store it and how long it is.

    Raises ClipProblem when it is not a video Runway takes, or its size or length is out of bounds.
    """
    clip.seek(0)
    kind = clip_kind(clip.read(16))
    clip.seek(0, os.SEEK_END)
    size = clip.tell()
    clip.seek(0)
    if kind is None or size < CLIP_MIN_BYTES:
        raise ClipProblem(NOT_A_CLIP)
    if size > CLIP_MAX_BYTES:
        raise ClipProblem(
            f"The clip is {size / 1e6:.1f} MB; clips of up to {CLIP_MAX_BYTES / 1e6:.0f} MB can be edited."
        )
    content_type, extension, demuxer = _KINDS[kind]
    try:
        seconds = _probe(clip, demuxer)
    finally:
        clip.seek(0)
    if not CLIP_MIN_SECONDS <= seconds <= CLIP_MAX_SECONDS:
        raise ClipProblem(
            f"The clip is {seconds:.1f} seconds long; clips of {CLIP_MIN_SECONDS:g} to {CLIP_MAX_SECONDS:g} "
            "seconds can be edited."
        )
    return Clip(f"{uuid.uuid4().hex}.{extension}", content_type, seconds)


def _probe(clip: IO[bytes], demuxer: str) -> float:
    """The clip's length in seconds, once ffmpeg has decoded its first video frame."""
    with tempfile.NamedTemporaryFile(suffix=".clip") as copy:
        shutil.copyfileobj(clip, copy)
        copy.flush()
        result = _ffmpeg(copy.name, demuxer)
    found = _DURATION.search(result.stderr)
    if result.returncode != 0 or found is None:
        raise ClipProblem("The file could not be read as a video.")
    hours, minutes, seconds = found.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _ffmpeg(path: str, demuxer: str) -> subprocess.CompletedProcess[bytes]:
    try:
        ffmpeg: str = imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:
        raise ClipProblem("Clips cannot be checked here: ffmpeg is not available.") from exc
    source = ["-f", demuxer, "-protocol_whitelist", "file", "-i", f"file:{os.path.abspath(path)}"]
    # The input's description (with its Duration) at the default log level, then one decoded frame.
    command = [ffmpeg, "-nostdin", "-hide_banner", "-threads", "1", *source, "-map", "0:v:0", "-frames:v", "1"]
    command += ["-an", "-sn", "-dn", "-f", "null", "-"]
    try:
        return subprocess.run(  # noqa: S603 (a fixed argument list, no shell)
            command, stdin=subprocess.DEVNULL, capture_output=True, timeout=PROBE_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise ClipProblem("The clip took too long to read; try a shorter or smaller one.") from None
    except OSError as exc:
        raise ClipProblem("Clips cannot be checked here: ffmpeg could not be started.") from exc
