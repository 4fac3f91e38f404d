"""A poster frame (a JPEG thumbnail) for a stored video, for the history grid of thumbnails.

ffmpeg comes from the `imageio-ffmpeg` wheel, which ships a static binary, so `pip install`
is all a machine needs: nothing to install with apt, and the same ffmpeg everywhere.

The video came from outside (Runway), and the poster is shown to users, so ffmpeg may read
only the one local MP4 it is given: the MP4 demuxer is forced (playlist and concat formats
can pull in other files or URLs) and only the `file` protocol is allowed.
"""

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from typing import IO

import imageio_ffmpeg  # type: ignore[import-untyped]

TIMEOUT_SECONDS = 20.0
JPEG_QUALITY = 3  # ffmpeg's -q:v scale: 2 is best, 31 worst
NICENESS = 10  # added to ffmpeg's: it runs when more urgent work leaves the CPU free
# ffmpeg processes a worker process runs at once. Its pool has dozens of threads (they mostly wait
# on Runway); one ffmpeg per thread would take ~45 MB each and a core each for nothing. A poster
# that finds them all busy raises PosterBusy at once rather than hold a thread that polls need.
AT_ONCE = os.cpu_count() or 1
_RUNNING = threading.BoundedSemaphore(AT_ONCE)


class PosterError(Exception):
    """ffmpeg could not make a poster: the input is not a video, or ffmpeg failed or took too long."""


class PosterBusy(Exception):  # noqa: N818 - a state, not a failure: try again later
    """Every ffmpeg this process may run is running: the poster can be made later."""


def poster_from_video(
    video: IO[bytes] | str | os.PathLike[str],
    *,
    width: int = 640,
    at_seconds: float = 0.5,
    timeout: float = TIMEOUT_SECONDS,
) -> bytes:
    """Return a JPEG of the frame at `at_seconds` (the first frame if the video is shorter), `width` pixels wide.

    A file object is read from its current position. `timeout` bounds the whole call. Raises
    PosterBusy, having done nothing, when this process already runs one ffmpeg per core.
    """
    if width <= 0 or at_seconds < 0:
        raise ValueError("width must be positive and at_seconds not negative")
    deadline = time.monotonic() + timeout
    if not _RUNNING.acquire(blocking=False):
        raise PosterBusy
    try:
        if isinstance(video, str | os.PathLike):
            return _poster(os.fspath(video), width=width, at_seconds=at_seconds, deadline=deadline)
        # A seekable copy, not a pipe: an MP4's index (moov) may sit at its end.
        with tempfile.NamedTemporaryFile(suffix=".mp4") as copy:
            shutil.copyfileobj(video, copy)
            copy.flush()
            return _poster(copy.name, width=width, at_seconds=at_seconds, deadline=deadline)
    finally:
        _RUNNING.release()


def _poster(path: str, *, width: int, at_seconds: float, deadline: float) -> bytes:
    result = _ffmpeg(path, width=width, at_seconds=at_seconds, deadline=deadline)
    if at_seconds and not (result.returncode == 0 and result.stdout):
        # Shorter than at_seconds, or not a video at all, which the first frame will tell.
        result = _ffmpeg(path, width=width, at_seconds=0, deadline=deadline)
    if result.returncode == 0 and result.stdout:
        return result.stdout
    lines = result.stderr.decode(errors="replace").strip().splitlines()
    reason = lines[-1] if lines else f"no video frame (exit status {result.returncode})"
    raise PosterError(f"ffmpeg could not make a poster: {reason}")


def _ffmpeg(path: str, *, width: int, at_seconds: float, deadline: float) -> subprocess.CompletedProcess[bytes]:
    try:
        ffmpeg: str = imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:
        raise PosterError(f"ffmpeg is not available: {exc}") from exc
    # One thread: for a single frame, more only add work.
    seek = ["-threads", "1", *(["-ss", f"{at_seconds:.3f}"] if at_seconds else [])]
    # "file:" keeps a name such as "-" or "http://..." from meaning anything but a local file.
    source = ["-f", "mp4", "-protocol_whitelist", "file", "-i", f"file:{os.path.abspath(path)}"]
    output = ["-frames:v", "1", "-vf", f"scale={width}:-1", "-q:v", str(JPEG_QUALITY), "-threads", "1"]
    command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", *seek, *source, "-an", "-sn", "-dn"]
    command += [*output, "-f", "image2pipe", "-c:v", "mjpeg", "pipe:1"]
    try:
        process = subprocess.Popen(  # noqa: S603 (a fixed argument list, no shell)
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError as exc:
        raise PosterError(f"ffmpeg could not be started: {exc}") from exc
    with process:
        # A thumbnail can wait: polls, the web server and the database come first for the CPU. Added
        # to this thread's own (a worker runs at WORKER_NICENESS), at most 19, the lowest there is.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, process.pid, min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICENESS))
        try:
            stdout, stderr = process.communicate(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired as exc:
            process.kill()
            process.communicate()
            raise PosterError("ffmpeg took too long to make a poster and was stopped") from exc
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
