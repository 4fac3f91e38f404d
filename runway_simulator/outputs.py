"""Output videos: signed URLs that expire, and the sample video they serve, whole or by byte range.

A URL is ``/_sim/outputs/<task id>.mp4?_jwt=<expiry in ms>.<HMAC of id and expiry>``: enough to
refuse a tampered, borrowed or stale link, as Runway's signed URLs do, without keeping any state.
"""

import hashlib
import hmac
import re
import secrets
from pathlib import Path
from urllib.parse import parse_qs

from runway_simulator.clock import Clock
from runway_simulator.server import Reply, error

SAMPLE_VIDEO = Path(__file__).with_name("assets") / "sample.mp4"

_OUTPUT_PATH = re.compile(r"/_sim/outputs/([0-9a-f-]+)\.mp4")
_BYTE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class _UnsatisfiableRange(ValueError):
    pass


def is_output_path(path: str) -> bool:
    return _OUTPUT_PATH.fullmatch(path) is not None


class Outputs:
    """Mints output URLs valid for `ttl` seconds on `clock` and serves `video` to whoever holds one."""

    def __init__(self, *, ttl: float, video: bytes, clock: Clock, secret: bytes | None = None) -> None:
        self.ttl = ttl
        self.video = video
        self.clock = clock
        # A fresh secret per simulator, so output URLs from one run are useless to another (but a
        # simulator that keeps its tasks in a store keeps its secret there too).
        self.secret = secret or secrets.token_bytes(32)

    def url(self, task_id: str, *, base: str) -> str:
        """A signed URL for a task's video under `base` (scheme and host), valid for `ttl` seconds from now."""
        expires = int((self.clock.time() + self.ttl) * 1000)
        return f"{base}/_sim/outputs/{task_id}.mp4?_jwt={expires}.{self._sign(task_id, expires)}"

    def _sign(self, task_id: str, expires_ms: int) -> str:
        return hmac.new(self.secret, f"{task_id}.{expires_ms}".encode(), hashlib.sha256).hexdigest()

    def serve(self, path: str, query: str, *, range_header: str | None) -> Reply:
        """The answer to GET (or HEAD) of an output URL: the video, a range of it, or a 403 or 416."""
        match = _OUTPUT_PATH.fullmatch(path)
        task_id = match.group(1) if match else ""
        token = (parse_qs(query).get("_jwt") or [""])[0]
        expires_text, _, signature = token.partition(".")
        if not expires_text.isdigit() or not hmac.compare_digest(signature, self._sign(task_id, int(expires_text))):
            return error(403, "Invalid signature.")
        if int(expires_text) <= self.clock.time() * 1000:
            return error(403, "This URL has expired.")
        size = len(self.video)
        headers = {"Content-Type": "video/mp4", "Accept-Ranges": "bytes"}
        try:
            byte_range = _byte_range(range_header, size)
        except _UnsatisfiableRange:
            return error(416, "Range Not Satisfiable.", {"Content-Range": f"bytes */{size}"})
        if byte_range is None:
            return Reply(200, self.video, headers)
        first, last = byte_range
        return Reply(206, self.video[first : last + 1], {**headers, "Content-Range": f"bytes {first}-{last}/{size}"})


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The first and last byte of the one range asked for; None to send the whole file.

    A missing or malformed header, or one asking for several ranges, is ignored (RFC 9110 lets a
    server send the whole file instead); one that asks only for bytes past the end raises.
    """
    match = _BYTE_RANGE.fullmatch((header or "").strip())
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text:
        if not last_text:
            return None
        suffix = int(last_text)  # "bytes=-N": the last N bytes
        if suffix == 0:
            raise _UnsatisfiableRange
        return max(0, size - suffix), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None
    if first >= size:
        raise _UnsatisfiableRange
    return first, min(int(last_text), size - 1) if last_text else size - 1
