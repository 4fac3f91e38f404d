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

from runway_simulator import validation
from runway_simulator.clock import Clock, SystemClock
from runway_simulator.options import SimulatorOptions, SimulatorSettings
from runway_simulator.outputs import SAMPLE_VIDEO, Outputs, is_output_path
from runway_simulator.server import Reply, Server, error, json_reply, validation_error
from runway_simulator.state import StateFile
from runway_simulator.tasks import DirectiveError, Plan, TaskStore, parse_directives
from videos import catalog
from videos.catalog import FAILED, SUCCEEDED

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
        self._tasks = TaskStore(
            task_seconds=self.options.task_seconds,
            pending_seconds=self.options.pending_time,
            max_concurrent=self.options.max_concurrent,
            daily_limit=self.options.daily_limit,
            credit_balance=self.options.credit_balance,
        )
        self._outputs = Outputs(ttl=self.options.output_ttl, video=self.video, clock=self.clock)
        self._state = StateFile(self.options.state_file) if self.options.state_file else None
        if self._state is not None:
            saved = self._state.load(self.clock)
            if saved is not None:
                snapshot, self._outputs.secret, shift = saved
                self._tasks.restore(snapshot, shift=shift)
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
        body = call.body
        if not isinstance(body, dict):
            return validation_error({None: "The request body must be a JSON object."})
        issues = validation.type_issues(body) or validation.unknown_field_issues(body)
        if issues:
            return validation_error(issues)
        plan, issues = self._plan_for(body)
        issues.update(validation.catalog_issues(call.match.group(1), body))
        if issues:
            return validation_error(issues)
        model = body["model"]
        credits = _estimated_credits(call.match.group(1), body)
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

    def _plan_for(self, body: dict[str, Any]) -> tuple[Plan, dict[str | None, str]]:
        """The plan the prompt's directives ask for, and the problems with promptImage and the directives."""
        issues: dict[str | None, str] = {}
        if "promptImage" in body:
            problem = validation.image_problem(body["promptImage"], model=body["model"])
            if problem:
                issues["promptImage"] = problem
        if "contentModeration" in body:
            problem = validation.content_moderation_problem(body["contentModeration"])
            if problem:
                issues["contentModeration"] = problem
        try:
            plan = parse_directives(body.get("promptText"), default_throttle=self.options.task_seconds)
        except DirectiveError as exc:
            issues["promptText"] = str(exc)
            plan = Plan()
        return plan, issues

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

        Only creates and deletes change what later answers depend on: when a waiting task starts
        follows from the tasks and the slots freed by deletes.
        """
        if self._state is not None:
            self._state.save(self._tasks.snapshot(), secret=self._outputs.secret, clock=self.clock)

    def _organization(self, call: _Call) -> Reply:
        with self._lock:
            now = self.clock.monotonic()
            used = {model: self._tasks.daily_count(model, now) for model in catalog.MODELS}
            balance = self._tasks.balance(now)
        limits = {
            "maxConcurrentGenerations": self.options.max_concurrent,
            "maxDailyGenerations": self.options.daily_limit,
        }
        body = {
            "creditBalance": balance,
            "tier": {
                "maxMonthlyCreditSpend": _MAX_MONTHLY_CREDIT_SPEND,
                "models": dict.fromkeys(catalog.MODELS, limits),
            },
            "usage": {"models": {model: {"dailyGenerations": used[model]} for model in catalog.MODELS}},
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
_ROUTES: tuple[tuple[str, re.Pattern[str], Callable[[RunwaySimulator, _Call], Reply]], ...] = (
    ("POST", re.compile(f"/v1/({'|'.join(map(re.escape, catalog.ENDPOINTS))})"), RunwaySimulator._create),
    ("GET", re.compile("/v1/organization"), RunwaySimulator._organization),
    ("POST", re.compile("/v1/organization/usage"), RunwaySimulator._usage),
    ("GET", _TASK_PATH, RunwaySimulator._get_task),
    ("DELETE", _TASK_PATH, RunwaySimulator._delete_task),
)


def _estimated_credits(endpoint: str, body: dict[str, Any]) -> int:
    """The most a valid create may charge, at the catalog's published prices.

    Without a duration Runway makes its default, the longest video the model offers (10 s for
    Gen-4, 8 s for Veo). Veo is billed at its price with audio whatever `audio` says.
    """
    offer = catalog.offer_for(model=body["model"], endpoint=endpoint)
    assert offer is not None  # the request passed the catalog's checks
    duration = body.get("duration")
    return catalog.estimated_credits(model=offer.model, duration=duration if duration else max(offer.durations))


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
