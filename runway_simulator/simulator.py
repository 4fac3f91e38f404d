"""The simulator itself: its life cycle, and the answer to each request (see the package docstring)."""

import json
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, Unpack
from urllib.parse import urlsplit

from runway_simulator import contract, prices, validation
from runway_simulator.clock import Clock, SystemClock
from runway_simulator.options import SimulatorOptions, SimulatorSettings
from runway_simulator.outputs import SAMPLE_VIDEO, Outputs, is_output_path
from runway_simulator.server import Issue, Reply, Server, error, json_reply, validation_error
from runway_simulator.state import StateFile
from runway_simulator.tasks import FAILED, SUCCEEDED, DirectiveError, Plan, TaskStore, parse_directives
from runway_simulator.uploads import Upload, UploadStore, upload_id

_MAX_MONTHLY_CREDIT_SPEND = 10_000


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the simulator received it, for tests to inspect."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any | None
    # When it arrived, on the machine's time.monotonic() whatever the simulator's clock: tests use it
    # to check how a real client paces its polls.
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class _Call:
    """An API request that passed the header checks, as a route's handler sees it."""

    match: re.Match[str]  # the route's path pattern on the request's path
    headers: dict[str, str]  # with lower-case names
    body: Any | None  # parsed JSON


class RunwaySimulator:
    """Runway's developer API on a local port; see the package docstring for what it does."""

    def __init__(
        self,
        options: SimulatorOptions | None = None,
        /,
        *,
        clock: Clock | None = None,
        **settings: Unpack[SimulatorSettings],
    ) -> None:
        """A simulator with `options` (or the defaults) changed by any SimulatorOptions field given by name.

        `clock` is the machine's (SystemClock) unless given, e.g. a ManualClock in tests.
        """
        self.options = SimulatorOptions(**settings) if options is None else replace(options, **settings)
        self.clock = SystemClock() if clock is None else clock
        self.video = SAMPLE_VIDEO.read_bytes()
        self.requests: list[RecordedRequest] = []
        self.creates = 0
        self.deletes = 0
        self._lock = threading.Lock()
        # Runway's contract, as the pinned SDK states it (contract.py): endpoint -> model -> body schema.
        self.schemas = validation.model_schemas(contract.load())
        self.models = tuple(dict.fromkeys(model for models in self.schemas.values() for model in models))
        self._tasks = TaskStore(
            models=self.models,
            task_seconds=self.options.task_seconds,
            pending_seconds=self.options.pending_time,
            max_concurrent=self.options.max_concurrent,
            daily_limit=self.options.daily_limit,
            credit_balance=self.options.credit_balance,
        )
        self._outputs = Outputs(ttl=self.options.output_ttl, video=self.video, clock=self.clock)
        self._uploads = UploadStore()
        self._state = StateFile(self.options.state_file) if self.options.state_file else None
        if self._state is not None:
            saved = self._state.load(self.clock)
            if saved is not None:
                self._outputs.secret = saved.secret
                self._tasks.restore(saved.tasks, shift=saved.shift)
                self._uploads.restore(saved.uploads, shift=saved.shift)
        self._random = random.Random(self.options.random_seed)
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("The simulator is already running.")
        server = Server((self.options.host, self.options.port), self, pause=self._pause, verbose=self.options.verbose)
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
        self.clock.wake()

    def set_network(self, *, latency: float, download_latency: float = 0.0, download_rate: float | None = None) -> None:
        """Change how far away the simulator is, while it runs (the `latency` and download options)."""
        self.options = replace(
            self.options, latency=latency, download_latency=download_latency, download_rate=download_rate
        )

    def _pause(self, seconds: float) -> None:
        # On the simulator's clock, so a test advances it instead of waiting; woken early by stop(),
        # so a slow answer never holds up the end of a test.
        self.clock.wait(seconds, self._stopped)

    def wait(self) -> None:
        """Block until stop() is called from another thread; Ctrl-C interrupts it."""
        self._stopped.wait()

    def serve_until_interrupted(self, say: Callable[[str], object]) -> None:
        """Start, `say` where to point the app, and serve until Ctrl-C: what the commands do."""
        self.start()
        say(f"Runway simulator listening on {self.base_url}")
        say(
            f"Point the app at it with RUNWAY_API_BASE_URL={self.base_url} "
            "and any RUNWAY_API_KEY of the form key_ + 128 hex digits. Ctrl-C stops it."
        )
        try:
            self.wait()
        except KeyboardInterrupt:
            say("Stopping.")
        finally:
            self.stop()

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

    @property
    def uploads(self) -> list[Upload]:
        """Every upload POST /v1/uploads handed out, in order, with what arrived of its file."""
        with self._lock:
            return self._uploads.all()

    # -- dispatch -----------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Reply:
        """Answer one HTTP request; called by the server's handler threads."""
        parsed = _parse_json(body)
        with self._lock:
            self.requests.append(RecordedRequest(method, raw_path, dict(headers), parsed))
        url = urlsplit(raw_path)
        headers = {name.lower(): value for name, value in headers.items()}
        if method in ("GET", "HEAD") and is_output_path(url.path):
            reply = self._outputs.serve(url.path, url.query, range_header=headers.get("range"))
            return reply.later(self.options.download_latency, rate=self.options.download_rate)
        upload = upload_id(url.path)
        if upload is not None:
            return self._receive_upload(method, upload, headers, body).later(self.options.latency)
        if not url.path.startswith("/v1/"):
            return error(404, "Not found.")
        # The request takes effect as it arrives; only its answer is late, by the network's
        # latency, and now and then by a slow server (`slow_rate`).
        reply = self._api(method, url.path, headers, parsed).later(self.options.latency)
        with self._lock:
            slow = self._random.random() < self.options.slow_rate
        return reply.later(self.options.slow_seconds) if slow else reply

    def _api(self, method: str, path: str, headers: dict[str, str], parsed: Any) -> Reply:
        refusal = self._random_outage() or validation.header_refusal(headers, api_key=self.options.api_key)
        if refusal:
            return refusal
        allowed = []
        for route_method, pattern, answer in _ROUTES:
            match = pattern.fullmatch(path)
            if match and method == route_method:
                return answer(self, _Call(match, headers, parsed))
            if match:
                allowed.append(route_method)
        if allowed:
            return error(405, f"Method {method} not allowed.", {"Allow": ", ".join(allowed)})
        return error(404, "Not found.")

    def _random_outage(self) -> Reply | None:
        with self._lock:
            unlucky = self._random.random() < self.options.error_rate
            status = self._random.choice((502, 503))
        if not unlucky:
            return None
        return error(status, "The service is temporarily overloaded (simulated).", {"Retry-After": "1"})

    # -- endpoints ----------------------------------------------------------------------------

    def _create(self, call: _Call) -> Reply:
        endpoint, body = call.match.group(1), call.body
        with self._lock:
            now = self.clock.monotonic()
            issues = validation.create_issues(
                self.schemas[endpoint], body, runway_uri_problem=lambda uri: self._uploads.uri_problem(uri, now=now)
            )
        plan, directive_issues = self._plan_for(body)
        if issues or directive_issues:
            return validation_error([*issues, *directive_issues])
        assert isinstance(body, dict)  # create_issues found none: an object, of one of the endpoint's models
        model = body["model"]
        credits = prices.estimated_credits(endpoint, body, self.schemas[endpoint][model])
        with self._lock:
            now = self.clock.monotonic()
            retry_after = self._tasks.daily_limit_wait(model, now)
            if retry_after is not None:
                return error(429, f"Daily generation limit reached for {model}.", {"Retry-After": str(retry_after)})
            if plan.outcome == SUCCEEDED and self._random.random() < self.options.fail_rate:
                plan = replace(plan, outcome=FAILED, failure_code="INTERNAL")
            task = self._tasks.create(model, plan, credits=credits, now=now, created_at=_iso(self.clock.time()))
            self.creates += 1
            self._save()
        return json_reply(200, {"id": task.id, "estimatedCost": {"credits": credits}})

    def _plan_for(self, body: Any) -> tuple[Plan, list[Issue]]:
        """The plan a promptText's directives ask for (every endpoint without one: a plain success), and
        the issue with them, if any."""
        prompt = body.get("promptText") if isinstance(body, dict) else None
        try:
            return parse_directives(
                prompt if isinstance(prompt, str) else None, default_throttle=self.options.task_seconds
            ), []
        except DirectiveError as exc:
            return Plan(), [(("promptText",), str(exc))]

    # -- uploads (uploads.py) -----------------------------------------------------------------

    def _start_upload(self, call: _Call) -> Reply:
        issues = validation.upload_issues(call.body)
        if issues:
            return validation_error(issues)
        assert isinstance(call.body, dict)  # upload_issues found none
        with self._lock:
            upload = self._uploads.start(call.body["filename"], now=self.clock.monotonic())
            self._save()
        host = call.headers.get("host", "")
        base = f"http://{host}" if host else self.base_url
        return json_reply(
            200, {"uploadUrl": base + upload.path, "fields": upload.fields, "runwayUri": upload.runway_uri}
        )

    def _receive_upload(self, method: str, upload: str, headers: dict[str, str], body: bytes) -> Reply:
        """The upload URL: a multipart POST of the fields handed out and the file, answered as S3 does."""
        if method != "POST":
            return error(405, f"Method {method} not allowed.", {"Allow": "POST"})
        with self._lock:
            refusal = self._uploads.receive(upload, headers.get("content-type", ""), body, now=self.clock.monotonic())
            if refusal is None:
                self._save()
        if refusal is not None:
            return error(refusal.status, refusal.message)
        return Reply(204)

    def _get_task(self, call: _Call) -> Reply:
        with self._lock:
            answer = self._tasks.answer(call.match.group(1), self.clock.monotonic())
        if answer is None:
            return error(404, "Task not found.")
        if answer["status"] == SUCCEEDED:
            # Each GET mints a fresh URL, as Runway does.
            answer["output"] = [self.output_url(answer["id"], host=call.headers.get("host", ""))]
        return json_reply(200, answer)

    def _delete_task(self, call: _Call) -> Reply:
        with self._lock:
            deleted = self._tasks.remove(call.match.group(1), self.clock.monotonic())
            if deleted:
                self.deletes += 1
                self._save()
        if not deleted:
            return error(404, "Task not found.")
        return Reply(204)

    def _save(self) -> None:
        """Write the tasks to the state file, if there is one; called with the lock held after each change.

        Only creates, deletes and uploads change what later answers depend on: when a waiting task starts
        follows from the tasks and the slots freed by deletes.
        """
        if self._state is not None:
            self._state.save(
                self._tasks.snapshot(), secret=self._outputs.secret, clock=self.clock, uploads=self._uploads.snapshot()
            )

    def _organization(self, call: _Call) -> Reply:
        with self._lock:
            now = self.clock.monotonic()
            used = {model: self._tasks.daily_count(model, now) for model in self.models}
            balance = self._tasks.balance(now)
        limits = {
            "maxConcurrentGenerations": self.options.max_concurrent,
            "maxDailyGenerations": self.options.daily_limit,
        }
        body = {
            "creditBalance": balance,
            "tier": {
                "maxMonthlyCreditSpend": _MAX_MONTHLY_CREDIT_SPEND,
                "models": dict.fromkeys(self.models, limits),
            },
            "usage": {"models": {model: {"dailyGenerations": used[model]} for model in self.models}},
        }
        return json_reply(200, body)

    def _usage(self, call: _Call) -> Reply:
        """Credits spent per day (UTC) and model: each task's charge on the day it was created, and
        its refund, if any, on the day it was given (tasks.py)."""
        with self._lock:
            now = self.clock.monotonic()
            offset = self.clock.time() - now  # from the clock's monotonic() to seconds since the epoch
            events = self._tasks.usage(now)
        days, issues = validation.usage_range(call.body, today=datetime.fromtimestamp(now + offset, UTC).date())
        if days is None:
            return validation_error(issues)
        start, before = days
        spent: dict[tuple[str, str], int] = {}
        for when, model, credits in events:
            day = datetime.fromtimestamp(when + offset, UTC).date()
            if start <= day < before:
                spent[day.isoformat(), model] = spent.get((day.isoformat(), model), 0) + credits
        results = [
            {"date": day, "usedCredits": [{"model": m, "amount": c} for (d, m), c in sorted(spent.items()) if d == day]}
            for day in sorted({day for day, _ in spent})
        ]
        return json_reply(200, {"models": sorted({model for _, model in spent}), "results": results})

    # -- not part of Runway's API -----------------------------------------------------------------

    def output_url(self, task_id: str, *, host: str = "") -> str:
        """A signed URL for a task's video, valid for the `output_ttl` option's seconds from now."""
        return self._outputs.url(task_id, base=f"http://{host}" if host else self.base_url)

    def ends_at(self, task_id: str) -> float | None:
        """When a task ends or ended, on `clock.monotonic()`; None while it waits for a slot or if it never ends.

        Benchmarks use it to measure how late a client notices the end.
        """
        with self._lock:
            return self._tasks.ends_at(task_id, self.clock.monotonic())


# Method, path pattern, handler: the first route whose method and pattern match answers.
_TASK_PATH = re.compile(r"/v1/tasks/([^/]+)")
_CREATE_PATH = re.compile(f"/v1/({'|'.join(map(re.escape, contract.ENDPOINT_MODULES))})")
_ROUTES: tuple[tuple[str, re.Pattern[str], Callable[[RunwaySimulator, _Call], Reply]], ...] = (
    ("POST", _CREATE_PATH, RunwaySimulator._create),
    ("POST", re.compile("/v1/uploads"), RunwaySimulator._start_upload),
    ("GET", re.compile("/v1/organization"), RunwaySimulator._organization),
    ("POST", re.compile("/v1/organization/usage"), RunwaySimulator._usage),
    ("GET", _TASK_PATH, RunwaySimulator._get_task),
    ("DELETE", _TASK_PATH, RunwaySimulator._delete_task),
)


def _iso(timestamp: float) -> str:
    """A time as Runway writes it: ISO 8601 in UTC, to the millisecond, with a Z."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_json(body: bytes) -> Any | None:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None
