"""A stand-in for Runway's developer API, for tests and for working without a paid key.

It speaks Runway's API (as this project relies on it) over real HTTP (standard library server, one
daemon thread): the same headers, the same request checks (through `videos.catalog`, the one
table of models), the same task states and error bodies. Nothing here touches the database.

    with RunwaySimulator(task_seconds=1.0) as sim:
        requests.post(sim.base_url + "/v1/text_to_video", ...)

Or from a shell: ``python manage.py runway_simulator`` and point RUNWAY_API_BASE_URL at it.

A task is PENDING for `pending_seconds`, then RUNNING with a rising `progress`, then SUCCEEDED
`task_seconds` after it started, with one signed output URL served by the simulator itself
(`/_sim/outputs/<id>.mp4?_jwt=...`, valid for `output_ttl` seconds from each GET of the task).
The URL answers `assets/sample.mp4`, a real 3-second video, with `Content-Length`,
`Accept-Ranges: bytes` and single-range requests (206 or 416), as browsers ask for video. It was
made once with ffmpeg (the binary from the imageio-ffmpeg package):

    ffmpeg -f lavfi -i testsrc2=size=640x360:rate=24:duration=3 -c:v libx264 -profile:v main
        -pix_fmt yuv420p -preset veryslow -crf 30 -movflags +faststart -an -map_metadata -1
        -fflags +bitexact -flags:v +bitexact sample.mp4

Directives, written anywhere in promptText, ask for other behaviours (an unknown one is a 400):

- ``[sim:fail]`` or ``[sim:fail=CODE]``: the task ends FAILED with failureCode CODE (default
  ``INTERNAL``) and a `failure` text, when it would otherwise have succeeded.
- ``[sim:never]``: the task stays RUNNING forever (progress stops short of 1).
- ``[sim:throttle]`` or ``[sim:throttle=SECONDS]``: the task is THROTTLED for that long
  (default `task_seconds`) before it queues for a slot and its normal life starts.
- ``[sim:cancel]``: the task ends CANCELLED, as if cancelled from Runway's dashboard.
- ``[sim:status=NAME]``: the task reports the made-up status NAME instead of PENDING and
  RUNNING, then succeeds; clients must treat unknown statuses as "not final yet".

Constructor options add account-wide limits and trouble, as Runway's tiers and bad days do:

- `max_concurrent` (per model; None, the default, for no limit): a task created while the model
  has that many started and unfinished tasks is THROTTLED, and starts, in order of creation
  (after any ``[sim:throttle]`` time), when one of them ends: succeeds, fails, is cancelled or
  is deleted. Its PENDING, RUNNING and the rest count from that start. A ``[sim:never]`` task
  holds its slot until it is deleted. /v1/organization reports the limit as
  `maxConcurrentGenerations` (null when there is none, as Runway's API allows).
- `daily_limit`: creation answers 429 with Retry-After once a model has had that many creates in
  a rolling 24 hours.
- `error_rate`: that fraction of /v1 requests is answered 502 or 503 at random, before doing
  anything.
- `slow_rate`: that fraction of /v1 requests is answered `slow_seconds` late. The request takes
  effect at once; only the answer waits, so a client that gives up on a slow create has still
  created a task, as can happen with Runway. The default wait outlasts the app's 30 s read
  timeout.
- `fail_rate`: that fraction of tasks ends FAILED with ``INTERNAL``.
"""

import bisect
import hashlib
import hmac
import itertools
import json
import math
import random
import re
import secrets
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from videos import catalog
from videos.catalog import CANCELLED, FAILED, PENDING, RUNNING, SUCCEEDED, THROTTLED

API_VERSION = "2024-11-06"
DOC_URL = "https://docs.dev.runwayml.com/api/"
SAMPLE_VIDEO = Path(__file__).with_name("assets") / "sample.mp4"

_KEY_FORMAT = re.compile(r"key_[0-9a-f]{128}")
_TASK_PATH = re.compile(r"/v1/tasks/([^/]+)")
_OUTPUT_PATH = re.compile(r"/_sim/outputs/([0-9a-f-]+)\.mp4")
_DIRECTIVE = re.compile(r"\[sim:([a-z_]+)(?:=([^\]]*))?\]")
_BYTE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_CREATE_ENDPOINTS = {f"/v1/{endpoint}": endpoint for endpoint in catalog.ENDPOINTS}
# The catalog names fields as this project does; Runway's issues name them as on the wire.
_WIRE_FIELDS = {"prompt": "promptText", "image": "promptImage", "endpoint": None}
_WIRE_TYPES: dict[str, type] = {"model": str, "promptText": str, "ratio": str, "duration": int, "seed": int}
_DAY = 24 * 3600.0
_MAX_MONTHLY_CREDIT_SPEND = 10_000


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the simulator received it, for tests to inspect."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any | None
    at: float = field(default_factory=time.monotonic)  # when it arrived, for tests that check pacing


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Plan:
    """How one task will live, decided at creation from its directives and the options."""

    outcome: str = SUCCEEDED  # SUCCEEDED, FAILED or CANCELLED; "" for a task that never ends
    failure_code: str = ""
    throttle_seconds: float = 0.0
    status_alias: str = ""


@dataclass(frozen=True)
class _Task:
    id: str
    model: str
    created_at: str
    created: float  # time.monotonic() at creation
    number: int  # creation order, to break ties in the queue
    plan: _Plan

    @property
    def ready(self) -> float:
        """When the task may take a concurrency slot: after any ``[sim:throttle]`` time."""
        return self.created + self.plan.throttle_seconds


def _queue_order(task: _Task) -> tuple[float, int]:
    return task.ready, task.number


class _DirectiveError(ValueError):
    pass


class _UnsatisfiableRange(ValueError):
    pass


def _json_reply(status: int, body: Any, headers: dict[str, str] | None = None) -> _Reply:
    return _Reply(status, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})})


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> _Reply:
    return _json_reply(status, {"error": message, "docUrl": DOC_URL}, headers)


def _validation_error(issues: dict[str | None, str]) -> _Reply:
    body = {
        "error": "Validation of body failed",
        "issues": [{"path": [path] if path else [], "message": message} for path, message in issues.items()],
        "docUrl": DOC_URL,
    }
    return _json_reply(400, body)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    names: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)


def _type_issues(body: dict[str, Any]) -> dict[str | None, str]:
    """Fields present with the wrong JSON type, in the words of Runway's (zod) validator."""
    issues: dict[str | None, str] = {}
    if "model" not in body:
        issues["model"] = "Required"
    for name, expected in _WIRE_TYPES.items():
        if name not in body:
            continue
        value = body[name]
        if isinstance(value, bool) or not isinstance(value, expected):
            wanted = "string" if expected is str else "integer"
            issues[name] = f"Expected {wanted}, received {_type_name(value)}"
    return issues


def _image_uri_problem(uri: Any) -> str | None:
    if not isinstance(uri, str) or not uri:
        return "Expected an image URI."
    if uri.startswith("https://"):
        if len(uri) > catalog.IMAGE_URL_MAX_LENGTH:
            return f"An image URL may be at most {catalog.IMAGE_URL_MAX_LENGTH} characters."
        return None
    if uri.startswith("data:"):
        mime, _, rest = uri[len("data:") :].partition(";")
        if mime not in catalog.IMAGE_TYPES or not rest.startswith("base64,"):
            return f"A data URI must be base64 of one of: {', '.join(catalog.IMAGE_TYPES)}."
        if len(uri) > catalog.IMAGE_DATA_URI_MAX_LENGTH:
            return f"A data URI may be at most {catalog.IMAGE_DATA_URI_MAX_LENGTH} characters."
        return None
    if uri.startswith("runway://"):
        return None
    return "An image must be an HTTPS URL, a data:image URI or a runway:// URI."


def _image_problem(value: Any) -> str | None:
    """The shape of promptImage only; the simulator never fetches the image."""
    if isinstance(value, str):
        return _image_uri_problem(value)
    if not isinstance(value, list) or not value:
        return "Expected a URI or a list of {uri, position} objects."
    for item in value:
        if not isinstance(item, dict):
            return "Expected a list of {uri, position} objects."
        if item.get("position") not in ("first", "last"):
            return 'Each image needs a position, "first" or "last".'
        problem = _image_uri_problem(item.get("uri"))
        if problem:
            return problem
    return None


def _parse_directives(prompt_text: str | None, *, default_throttle: float) -> _Plan:
    """The plan a prompt asks for; raises _DirectiveError on an unknown or malformed directive."""
    plan = _Plan()
    for name, value in _DIRECTIVE.findall(prompt_text or ""):
        if name == "fail":
            plan = _replace(plan, outcome=FAILED, failure_code=value or "INTERNAL")
        elif name == "never" and not value:
            plan = _replace(plan, outcome="")
        elif name == "cancel" and not value:
            plan = _replace(plan, outcome=CANCELLED)
        elif name == "throttle":
            plan = _replace(plan, throttle_seconds=_seconds(value) if value else default_throttle)
        elif name == "status" and value:
            plan = _replace(plan, status_alias=value)
        else:
            raise _DirectiveError(f"Unknown simulator directive [sim:{name}{'=' + value if value else ''}].")
    return plan


def _replace(plan: _Plan, **changes: Any) -> _Plan:
    return _Plan(**{**plan.__dict__, **changes})


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise _DirectiveError(f"Expected a number of seconds, got {value!r}.") from None
    if not 0 <= seconds < float("inf"):
        raise _DirectiveError(f"Expected a number of seconds, got {value!r}.")
    return seconds


def _failure_text(code: str) -> str:
    if code.startswith(("SAFETY.", "INPUT_PREPROCESSING.SAFETY")):
        return "The input or output was flagged by content moderation."
    if code == "ASSET.INVALID":
        return "The input image could not be used."
    if code.startswith("INTERNAL.BAD_OUTPUT"):
        return "The output did not pass quality checks."
    return "An unexpected error occurred."


class RunwaySimulator:
    """Runway's developer API on a local port; see the module docstring for what it does."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        task_seconds: float = 20.0,
        pending_seconds: float | None = None,
        output_ttl: float = 3600.0,
        api_key: str | None = None,
        max_concurrent: int | None = None,
        daily_limit: int = 200,
        error_rate: float = 0.0,
        slow_rate: float = 0.0,
        slow_seconds: float = 35.0,
        fail_rate: float = 0.0,
        credit_balance: int = 10_000,
        random_seed: int | None = None,
        verbose: bool = False,
    ) -> None:
        pending = task_seconds / 10 if pending_seconds is None else pending_seconds
        if not 0 <= pending <= task_seconds:
            raise ValueError("pending_seconds must be between 0 and task_seconds")
        if max_concurrent is not None and max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1, or None for no limit")
        for name, rate in (("error_rate", error_rate), ("slow_rate", slow_rate), ("fail_rate", fail_rate)):
            if not 0 <= rate <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        if slow_seconds < 0:
            raise ValueError("slow_seconds cannot be negative")
        self.host = host
        self.port = port
        self.task_seconds = task_seconds
        self.pending_seconds = pending
        self.output_ttl = output_ttl
        self.api_key = api_key
        self.max_concurrent = max_concurrent
        self.daily_limit = daily_limit
        self.error_rate = error_rate
        self.slow_rate = slow_rate
        self.slow_seconds = slow_seconds
        self.fail_rate = fail_rate
        self.credit_balance = credit_balance
        self.verbose = verbose
        self.video = SAMPLE_VIDEO.read_bytes()
        self.requests: list[RecordedRequest] = []
        self.creates = 0
        self.deletes = 0
        self._lock = threading.Lock()
        self._tasks: dict[str, _Task] = {}
        self._numbers = itertools.count()
        # Per model: tasks waiting for a slot, in the order they get one, and the slots in use
        # (task id -> when it ends, math.inf for never). Each started task's start is in _starts.
        self._waiting: dict[str, list[_Task]] = {model: [] for model in catalog.MODELS}
        self._slots: dict[str, dict[str, float]] = {model: {} for model in catalog.MODELS}
        self._starts: dict[str, float] = {}
        self._create_times: dict[str, list[float]] = {model: [] for model in catalog.MODELS}
        self._random = random.Random(random_seed)
        # A fresh secret per simulator, so output URLs from one run are useless to another.
        self._secret = secrets.token_bytes(32)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("The simulator is already running.")
        server = _Server((self.host, self.port), _Handler)
        server.simulator = self
        self._server = server
        self._stopped.clear()
        # A short poll interval so stop() returns quickly; tests start and stop many of these.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="runway-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        server.server_close()
        thread.join()
        self._server = self._thread = None
        self._stopped.set()

    def wait(self) -> None:
        """Block until stop() is called from another thread; Ctrl-C interrupts it."""
        self._stopped.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("The simulator is not running.")
        host, port = str(self._server.server_address[0]), self._server.server_address[1]
        # A server on every interface is still reached through the loopback one.
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 - a comparison, not a bind
        return f"http://{shown}:{port}"

    # -- dispatch -----------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> _Reply:
        """Answer one HTTP request; called by the server's handler threads."""
        parsed = _parse_json(body)
        with self._lock:
            self.requests.append(RecordedRequest(method, raw_path, dict(headers), parsed))
        url = urlsplit(raw_path)
        headers = _lower_keys(headers)
        if method in ("GET", "HEAD") and _OUTPUT_PATH.fullmatch(url.path):
            return self._output(url.path, url.query, range_header=headers.get("range"))
        if not url.path.startswith("/v1/"):
            return _error(404, "Not found.")
        reply = self._api(method, url.path, headers, parsed)
        with self._lock:
            slow = self._random.random() < self.slow_rate
        if slow:
            # Woken early by stop(), so a slow answer never holds up the end of a test.
            self._stopped.wait(self.slow_seconds)
        return reply

    def _api(self, method: str, path: str, headers: dict[str, str], parsed: Any) -> _Reply:
        refusal = self._random_outage() or self._check_headers(headers)
        if refusal:
            return refusal
        if method == "POST" and path in _CREATE_ENDPOINTS:
            return self._create(_CREATE_ENDPOINTS[path], parsed)
        if path == "/v1/organization" and method == "GET":
            return self._organization()
        match = _TASK_PATH.fullmatch(path)
        if match and method == "GET":
            return self._get_task(match.group(1), host=headers.get("host", ""))
        if match and method == "DELETE":
            return self._delete_task(match.group(1))
        return _error(404, "Not found.")

    def _random_outage(self) -> _Reply | None:
        with self._lock:
            unlucky = self._random.random() < self.error_rate
            status = self._random.choice((502, 503))
        if not unlucky:
            return None
        return _error(status, "The service is temporarily overloaded (simulated).", {"Retry-After": "1"})

    def _check_headers(self, headers: dict[str, str]) -> _Reply | None:
        scheme, _, key = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key:
            return _error(401, "Missing API key: send Authorization: Bearer <key>.")
        accepted = hmac.compare_digest(key, self.api_key) if self.api_key else bool(_KEY_FORMAT.fullmatch(key))
        if not accepted:
            return _error(401, "Invalid API key.")
        version = headers.get("x-runway-version")
        if version != API_VERSION:
            return _error(400, f"The X-Runway-Version header must be {API_VERSION}.")
        return None

    # -- endpoints ----------------------------------------------------------------------------

    def _create(self, endpoint: str, parsed: Any) -> _Reply:
        if not isinstance(parsed, dict):
            return _validation_error({None: "The request body must be a JSON object."})
        issues = _type_issues(parsed)
        if issues:
            return _validation_error(issues)
        plan, issues = self._plan_for(parsed)
        issues.update(_catalog_issues(endpoint, parsed))
        if issues:
            return _validation_error(issues)
        model = parsed["model"]
        with self._lock:
            retry_after = self._daily_limit_wait(model)
            if retry_after is not None:
                return _error(429, f"Daily generation limit reached for {model}.", {"Retry-After": str(retry_after)})
            if plan.outcome == SUCCEEDED and self._random.random() < self.fail_rate:
                plan = _replace(plan, outcome=FAILED, failure_code="INTERNAL")
            task = _Task(str(uuid.uuid4()), model, _now_iso(), time.monotonic(), next(self._numbers), plan)
            self._tasks[task.id] = task
            self._create_times[model].append(task.created)
            bisect.insort(self._waiting[model], task, key=_queue_order)
            self._start_due(task.created)
            self.creates += 1
        return _json_reply(200, {"id": task.id})

    def _plan_for(self, body: dict[str, Any]) -> tuple[_Plan, dict[str | None, str]]:
        issues: dict[str | None, str] = {}
        if "promptImage" in body:
            problem = _image_problem(body["promptImage"])
            if problem:
                issues["promptImage"] = problem
        try:
            plan = _parse_directives(body.get("promptText"), default_throttle=self.task_seconds)
        except _DirectiveError as exc:
            issues["promptText"] = str(exc)
            plan = _Plan()
        return plan, issues

    def _daily_limit_wait(self, model: str) -> int | None:
        """Seconds until the rolling 24 hours let `model` create again; None when it may now."""
        now = time.monotonic()
        recent = [t for t in self._create_times.setdefault(model, []) if now - t < _DAY]
        self._create_times[model] = recent
        if len(recent) < self.daily_limit:
            return None
        return max(1, int(recent[-self.daily_limit] + _DAY - now) + 1)

    # -- concurrency ----------------------------------------------------------------------------
    # Computed when asked, not by a timer: a waiting task starts at the moment its turn came (when
    # an earlier task ended), whenever the next request happens to notice. Called with _lock held.

    def _start_due(self, now: float) -> None:
        """Start every waiting task whose turn has come by `now`, from the moment it came."""
        for model, queue in self._waiting.items():
            slots = self._slots[model]
            while queue and (start := self._turn(queue[0], slots)) <= now:
                task = queue.pop(0)
                self._starts[task.id] = start
                slots[task.id] = start + self.task_seconds if task.plan.outcome else math.inf
            # A slot that ended before anything still waiting (or anything created from now on)
            # was ready can no longer matter.
            horizon = min(now, queue[0].ready) if queue else now
            for task_id in [task_id for task_id, end in slots.items() if end <= horizon]:
                del slots[task_id]

    def _turn(self, task: _Task, slots: dict[str, float]) -> float:
        """When `task` gets a slot if nothing changes: math.inf if only a deletion can free one."""
        if self.max_concurrent is None:
            return task.ready
        ends = sorted(end for end in slots.values() if end > task.ready)
        if len(ends) < self.max_concurrent:
            return task.ready
        return ends[len(ends) - self.max_concurrent]

    # -- tasks --------------------------------------------------------------------------------

    def _get_task(self, task_id: str, *, host: str) -> _Reply:
        now = time.monotonic()
        with self._lock:
            self._start_due(now)
            task = self._tasks.get(task_id)
            start = self._starts.get(task_id)
        if task is None:
            return _error(404, "Task not found.")
        answer: dict[str, Any] = {"id": task.id, "createdAt": task.created_at}
        answer.update({"status": THROTTLED} if start is None else self._state(task, now - start))
        if answer["status"] == SUCCEEDED:
            # Each GET mints a fresh URL, as Runway does.
            answer["output"] = [self.output_url(task.id, host=host)]
        return _json_reply(200, answer)

    def ends_at(self, task_id: str) -> float | None:
        """When (on time.monotonic()'s clock) a task ends or ended; None while it waits for a slot or if it never ends.

        Not part of Runway's API: benchmarks use it to measure how late a client notices the end.
        """
        with self._lock:
            self._start_due(time.monotonic())
            task, start = self._tasks.get(task_id), self._starts.get(task_id)
        if task is None or start is None or not task.plan.outcome:
            return None
        return start + self.task_seconds

    def _state(self, task: _Task, age: float) -> dict[str, Any]:
        """The answer about a started task, `age` seconds after it started."""
        plan = task.plan
        if age < self.pending_seconds:
            return {"status": plan.status_alias or PENDING}
        if not plan.outcome or age < self.task_seconds:
            running_for = max(self.task_seconds - self.pending_seconds, 1e-9)
            progress = min(0.99, round((age - self.pending_seconds) / running_for, 2))
            if plan.status_alias:
                return {"status": plan.status_alias}
            return {"status": RUNNING, "progress": progress}
        if plan.outcome == FAILED:
            return {"status": FAILED, "failure": _failure_text(plan.failure_code), "failureCode": plan.failure_code}
        return {"status": plan.outcome}

    def _delete_task(self, task_id: str) -> _Reply:
        now = time.monotonic()
        with self._lock:
            self._start_due(now)
            task = self._tasks.pop(task_id, None)
            if task is not None:
                self.deletes += 1
                waiting = self._waiting[task.model]
                if task in waiting:
                    waiting.remove(task)
                slots = self._slots[task.model]
                if slots.get(task_id, -math.inf) > now:
                    slots[task_id] = now  # its slot is free from now on
                self._starts.pop(task_id, None)
                self._start_due(now)
        if task is None:
            return _error(404, "Task not found.")
        return _Reply(204)

    def _organization(self) -> _Reply:
        now = time.monotonic()
        with self._lock:
            used = {m: sum(1 for t in self._create_times.get(m, []) if now - t < _DAY) for m in catalog.MODELS}
        limits = {"maxConcurrentGenerations": self.max_concurrent, "maxDailyGenerations": self.daily_limit}
        body = {
            "creditBalance": self.credit_balance,
            "tier": {"maxMonthlyCreditSpend": _MAX_MONTHLY_CREDIT_SPEND, "models": {m: limits for m in catalog.MODELS}},
            "usage": {"models": {m: {"dailyGenerations": used[m]} for m in catalog.MODELS}},
        }
        return _json_reply(200, body)

    # -- outputs ------------------------------------------------------------------------------

    def output_url(self, task_id: str, *, host: str = "") -> str:
        """A signed URL for a task's video, valid for `output_ttl` seconds from now."""
        expires = int((time.time() + self.output_ttl) * 1000)
        base = f"http://{host}" if host else self.base_url
        return f"{base}/_sim/outputs/{task_id}.mp4?_jwt={expires}.{self._sign(task_id, expires)}"

    def _sign(self, task_id: str, expires_ms: int) -> str:
        return hmac.new(self._secret, f"{task_id}.{expires_ms}".encode(), hashlib.sha256).hexdigest()

    def _output(self, path: str, query: str, *, range_header: str | None) -> _Reply:
        match = _OUTPUT_PATH.fullmatch(path)
        task_id = match.group(1) if match else ""
        token = (parse_qs(query).get("_jwt") or [""])[0]
        expires_text, _, signature = token.partition(".")
        if not expires_text.isdigit() or not hmac.compare_digest(signature, self._sign(task_id, int(expires_text))):
            return _error(403, "Invalid signature.")
        if int(expires_text) <= time.time() * 1000:
            return _error(403, "This URL has expired.")
        size = len(self.video)
        headers = {"Content-Type": "video/mp4", "Accept-Ranges": "bytes"}
        try:
            byte_range = _byte_range(range_header, size)
        except _UnsatisfiableRange:
            return _error(416, "Range Not Satisfiable.", {"Content-Range": f"bytes */{size}"})
        if byte_range is None:
            return _Reply(200, self.video, headers)
        first, last = byte_range
        return _Reply(206, self.video[first : last + 1], {**headers, "Content-Range": f"bytes {first}-{last}/{size}"})


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


def _catalog_issues(endpoint: str, body: dict[str, Any]) -> dict[str | None, str]:
    """The catalog's verdict on a body whose types are already right, keyed by wire field."""
    problems = catalog.check_fields(
        endpoint=endpoint,
        model=body["model"],
        prompt_text=body.get("promptText"),
        ratio=body.get("ratio"),
        duration=body.get("duration"),
        seed=body.get("seed"),
        has_image=body.get("promptImage") is not None,
    )
    return {_WIRE_FIELDS.get(name, name): message for name, message in problems.items()}


def _parse_json(body: bytes) -> Any | None:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _lower_keys(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


class _Server(ThreadingHTTPServer):
    simulator: RunwaySimulator


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "RunwaySimulator/1"
    # Keep-alive, as Runway's API allows: a client may send many requests on one connection. An idle
    # one is closed after `timeout` seconds, as servers do.
    protocol_version = "HTTP/1.1"
    timeout = 15
    # Headers and body go out in separate writes; without this, on a kept-alive connection the body
    # waits for the client's delayed acknowledgement of the headers (40 ms on Linux).
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._answer("GET")

    def do_HEAD(self) -> None:
        self._answer("HEAD")

    def do_POST(self) -> None:
        self._answer("POST")

    def do_DELETE(self) -> None:
        self._answer("DELETE")

    def do_PUT(self) -> None:
        self._answer("PUT")

    def do_PATCH(self) -> None:
        self._answer("PATCH")

    def _answer(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        reply = self.server.simulator.handle(method, self.path, dict(self.headers.items()), body)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.status != 204:
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        # Quiet under tests; the management command turns this on. Headers (the key) are never logged.
        if self.server.simulator.verbose:
            sys.stderr.write(f"{self.log_date_time_string()} {format % args}\n")
