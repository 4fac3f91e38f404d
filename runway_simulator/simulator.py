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
from typing import Any, Self
from urllib.parse import urlsplit

from runway_simulator import validation
from runway_simulator.outputs import SAMPLE_VIDEO, Outputs, is_output_path
from runway_simulator.server import Reply, Server, error, json_reply, validation_error
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
    at: float = field(default_factory=time.monotonic)  # when it arrived, for tests that check pacing


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
        self._tasks = TaskStore(
            task_seconds=task_seconds, pending_seconds=pending, max_concurrent=max_concurrent, daily_limit=daily_limit
        )
        self._outputs = Outputs(ttl=output_ttl, video=self.video)
        self._random = random.Random(random_seed)
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("The simulator is already running.")
        server = Server((self.host, self.port), self, verbose=self.verbose)
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

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Reply:
        """Answer one HTTP request; called by the server's handler threads."""
        parsed = _parse_json(body)
        with self._lock:
            self.requests.append(RecordedRequest(method, raw_path, dict(headers), parsed))
        url = urlsplit(raw_path)
        headers = {name.lower(): value for name, value in headers.items()}
        if method in ("GET", "HEAD") and is_output_path(url.path):
            return self._outputs.serve(url.path, url.query, range_header=headers.get("range"))
        if not url.path.startswith("/v1/"):
            return error(404, "Not found.")
        reply = self._api(method, url.path, headers, parsed)
        with self._lock:
            slow = self._random.random() < self.slow_rate
        if slow:
            # Woken early by stop(), so a slow answer never holds up the end of a test.
            self._stopped.wait(self.slow_seconds)
        return reply

    def _api(self, method: str, path: str, headers: dict[str, str], parsed: Any) -> Reply:
        refusal = self._random_outage() or validation.header_refusal(headers, api_key=self.api_key)
        if refusal:
            return refusal
        for route_method, pattern, answer in _ROUTES:
            match = pattern.fullmatch(path)
            if match and method == route_method:
                return answer(self, _Call(match, headers, parsed))
        return error(404, "Not found.")

    def _random_outage(self) -> Reply | None:
        with self._lock:
            unlucky = self._random.random() < self.error_rate
            status = self._random.choice((502, 503))
        if not unlucky:
            return None
        return error(status, "The service is temporarily overloaded (simulated).", {"Retry-After": "1"})

    # -- endpoints ----------------------------------------------------------------------------

    def _create(self, call: _Call) -> Reply:
        body = call.body
        if not isinstance(body, dict):
            return validation_error({None: "The request body must be a JSON object."})
        issues = validation.type_issues(body)
        if issues:
            return validation_error(issues)
        plan, issues = self._plan_for(body)
        issues.update(validation.catalog_issues(call.match.group(1), body))
        if issues:
            return validation_error(issues)
        model = body["model"]
        with self._lock:
            now = time.monotonic()
            retry_after = self._tasks.daily_limit_wait(model, now)
            if retry_after is not None:
                return error(429, f"Daily generation limit reached for {model}.", {"Retry-After": str(retry_after)})
            if plan.outcome == SUCCEEDED and self._random.random() < self.fail_rate:
                plan = replace(plan, outcome=FAILED, failure_code="INTERNAL")
            task = self._tasks.create(model, plan, now=now, created_at=_iso(time.time()))
            self.creates += 1
        return json_reply(200, {"id": task.id})

    def _plan_for(self, body: dict[str, Any]) -> tuple[Plan, dict[str | None, str]]:
        """The plan the prompt's directives ask for, and the problems with promptImage and the directives."""
        issues: dict[str | None, str] = {}
        if "promptImage" in body:
            problem = validation.image_problem(body["promptImage"])
            if problem:
                issues["promptImage"] = problem
        try:
            plan = parse_directives(body.get("promptText"), default_throttle=self.task_seconds)
        except DirectiveError as exc:
            issues["promptText"] = str(exc)
            plan = Plan()
        return plan, issues

    def _get_task(self, call: _Call) -> Reply:
        with self._lock:
            answer = self._tasks.answer(call.match.group(1), time.monotonic())
        if answer is None:
            return error(404, "Task not found.")
        if answer["status"] == SUCCEEDED:
            # Each GET mints a fresh URL, as Runway does.
            answer["output"] = [self.output_url(answer["id"], host=call.headers.get("host", ""))]
        return json_reply(200, answer)

    def _delete_task(self, call: _Call) -> Reply:
        with self._lock:
            deleted = self._tasks.remove(call.match.group(1), time.monotonic())
            if deleted:
                self.deletes += 1
        if not deleted:
            return error(404, "Task not found.")
        return Reply(204)

    def _organization(self, call: _Call) -> Reply:
        with self._lock:
            now = time.monotonic()
            used = {model: self._tasks.daily_count(model, now) for model in catalog.MODELS}
        limits = {"maxConcurrentGenerations": self.max_concurrent, "maxDailyGenerations": self.daily_limit}
        body = {
            "creditBalance": self.credit_balance,
            "tier": {
                "maxMonthlyCreditSpend": _MAX_MONTHLY_CREDIT_SPEND,
                "models": dict.fromkeys(catalog.MODELS, limits),
            },
            "usage": {"models": {model: {"dailyGenerations": used[model]} for model in catalog.MODELS}},
        }
        return json_reply(200, body)

    # -- not part of Runway's API -----------------------------------------------------------------

    def output_url(self, task_id: str, *, host: str = "") -> str:
        """A signed URL for a task's video, valid for `output_ttl` seconds from now."""
        return self._outputs.url(task_id, base=f"http://{host}" if host else self.base_url)

    def ends_at(self, task_id: str) -> float | None:
        """When (on time.monotonic()'s clock) a task ends or ended; None while it waits for a slot or if it never ends.

        Benchmarks use it to measure how late a client notices the end.
        """
        with self._lock:
            return self._tasks.ends_at(task_id, time.monotonic())


# Method, path pattern, handler: the first route whose method and pattern match answers.
_TASK_PATH = re.compile(r"/v1/tasks/([^/]+)")
_ROUTES: tuple[tuple[str, re.Pattern[str], Callable[[RunwaySimulator, _Call], Reply]], ...] = (
    ("POST", re.compile(f"/v1/({'|'.join(map(re.escape, catalog.ENDPOINTS))})"), RunwaySimulator._create),
    ("GET", re.compile("/v1/organization"), RunwaySimulator._organization),
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
