"""Tasks: the plan a prompt's ``[sim:...]`` directives ask for, and the store of every task with,
per model, its queue for concurrency slots and its recent creates, and the organization's credits.

Billing follows Runway's documents: a task is paid for when it is created (its `estimatedCost`,
the most it may charge, comes off the balance at once), and what it finally costs (`cost`) is
known when it ends. A task that succeeds, or fails on moderation (``SAFETY.*``, which Runway's
moderation page says costs the same as a success), keeps its charge, and so does one cancelled
while it runs (a ``[sim:cancel]``, as if from Runway's dashboard, or a DELETE once it is RUNNING:
the SDK's `tasks.delete` says a task Runway sees RUNNING is not refunded). Any other failure, and
a task deleted while still PENDING or THROTTLED, are refunded in full and report a cost of 0 (the
SDK: "Fully refunded tasks report 0"). Deleting a finished task changes nothing.

The organization's usage (POST /v1/organization/usage) is what those charges and refunds add up
to per day and model: a charge on the day the task was created, a refund on the day it was given.

Times here are plain numbers on the simulator's clock, passed in as `now`: nothing here reads a
clock or runs on a timer.
"""

import bisect
import math
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

# A task's statuses, as Runway's API spells them.
PENDING = "PENDING"
THROTTLED = "THROTTLED"
RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"

DAY = 24 * 3600.0

_DIRECTIVE = re.compile(r"\[sim:([a-z_]+)(?:=([^\]]*))?\]")


@dataclass(frozen=True)
class Plan:
    """How one task will live, decided at creation from its directives and the options."""

    outcome: str = SUCCEEDED  # SUCCEEDED, FAILED or CANCELLED; "" for a task that never ends
    failure_code: str = ""
    throttle_seconds: float = 0.0
    status_alias: str = ""


@dataclass(frozen=True)
class Task:
    id: str
    model: str
    created_at: str  # as Runway writes it: ISO 8601, UTC, milliseconds
    created: float  # on the simulator's clock (its monotonic())
    number: int  # creation order, to break ties in the queue
    plan: Plan
    credits: int = 0  # the estimate, paid at creation (0 in state files from before billing)

    @property
    def ready(self) -> float:
        """When the task may take a concurrency slot: after any ``[sim:throttle]`` time."""
        return self.created + self.plan.throttle_seconds


class DirectiveError(ValueError):
    pass


@dataclass(frozen=True)
class _Directive:
    value: Literal["none", "optional", "required"]  # whether it takes "=VALUE"
    apply: Callable[[Plan, str, float], Plan]  # (plan, value, default throttle seconds) -> the changed plan

    def accepts(self, value: str) -> bool:
        return self.value == "optional" or (self.value == "required") == bool(value)


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise DirectiveError(f"Expected a number of seconds, got {value!r}.") from None
    if not 0 <= seconds < float("inf"):
        raise DirectiveError(f"Expected a number of seconds, got {value!r}.")
    return seconds


def _throttle(plan: Plan, value: str, default_throttle: float) -> Plan:
    return replace(plan, throttle_seconds=_seconds(value) if value else default_throttle)


_DIRECTIVES = {
    "fail": _Directive(
        "optional", lambda plan, value, _: replace(plan, outcome=FAILED, failure_code=value or "INTERNAL")
    ),
    "never": _Directive("none", lambda plan, value, _: replace(plan, outcome="")),
    "cancel": _Directive("none", lambda plan, value, _: replace(plan, outcome=CANCELLED)),
    "throttle": _Directive("optional", _throttle),
    "status": _Directive("required", lambda plan, value, _: replace(plan, status_alias=value)),
}


def parse_directives(prompt_text: str | None, *, default_throttle: float) -> Plan:
    """The plan a prompt asks for; raises DirectiveError on an unknown or malformed directive."""
    plan = Plan()
    for name, value in _DIRECTIVE.findall(prompt_text or ""):
        directive = _DIRECTIVES.get(name)
        if directive is None or not directive.accepts(value):
            raise DirectiveError(f"Unknown simulator directive [sim:{name}{'=' + value if value else ''}].")
        plan = directive.apply(plan, value, default_throttle)
    return plan


def failure_text(code: str) -> str:
    if code.startswith(("SAFETY.", "INPUT_PREPROCESSING.SAFETY")):
        return "The input or output was flagged by content moderation."
    if code == "ASSET.INVALID":
        return "The input image could not be used."
    if code.startswith("INTERNAL.BAD_OUTPUT"):
        return "The output did not pass quality checks."
    return "An unexpected error occurred."


def is_billed(plan: Plan) -> bool:
    """Whether a task that ends as planned keeps its charge (see the module docstring)."""
    if plan.outcome in (SUCCEEDED, CANCELLED):  # a cancel comes at the end of its run, while it is RUNNING
        return True
    return plan.outcome == FAILED and plan.failure_code.startswith(("SAFETY.", "INPUT_PREPROCESSING.SAFETY"))


def _queue_order(task: Task) -> tuple[float, int]:
    return task.ready, task.number


class TaskStore:
    """Every task, and per model the tasks waiting for a concurrency slot and the recent creates.

    Not thread-safe: the simulator calls it with its lock held.
    """

    def __init__(
        self,
        *,
        models: Iterable[str],
        task_seconds: float,
        pending_seconds: float,
        max_concurrent: int | None,
        daily_limit: int,
        credit_balance: int,
    ) -> None:
        self.task_seconds = task_seconds
        self.pending_seconds = pending_seconds
        self.max_concurrent = max_concurrent
        self.daily_limit = daily_limit
        self._tasks: dict[str, Task] = {}
        self._next_number = 0
        # Per model: tasks waiting for a slot, in the order they get one, and the slots in use
        # (task id -> when it ends, math.inf for never). Each started task's start is in _starts.
        self.models = tuple(models)
        self._waiting: dict[str, list[Task]] = {model: [] for model in self.models}
        self._slots: dict[str, dict[str, float]] = {model: {} for model in self.models}
        self._starts: dict[str, float] = {}
        self._create_times: dict[str, list[float]] = {model: [] for model in self.models}
        # The balance before any task, and what the tasks deleted since have kept: the balance is
        # these less what every task still here holds, so a refund happens when a task ends.
        self._opening_balance = credit_balance
        self._settled = 0
        # The organization's usage: (when, model, credits) for every charge (+) and refund (-) that
        # has happened, but those of tasks still here, which usage() works out as it does the balance.
        self._usage: list[tuple[float, str, int]] = []

    # -- creates and the daily limit ------------------------------------------------------------

    def create(self, model: str, plan: Plan, *, credits: int, now: float, created_at: str) -> Task:
        task = Task(str(uuid.uuid4()), model, created_at, now, self._next_number, plan, credits)
        self._next_number += 1
        self._tasks[task.id] = task
        self._create_times.setdefault(model, []).append(now)
        self._usage.append((now, model, credits))
        self._slots.setdefault(model, {})
        bisect.insort(self._waiting.setdefault(model, []), task, key=_queue_order)
        self._start_due(now)
        return task

    def daily_limit_wait(self, model: str, now: float) -> int | None:
        """Seconds until the rolling 24 hours let `model` create again; None when it may now."""
        recent = [t for t in self._create_times.setdefault(model, []) if now - t < DAY]
        self._create_times[model] = recent
        if len(recent) < self.daily_limit:
            return None
        return max(1, int(recent[-self.daily_limit] + DAY - now) + 1)

    def daily_count(self, model: str, now: float) -> int:
        return sum(1 for t in self._create_times.get(model, []) if now - t < DAY)

    # -- following and deleting ------------------------------------------------------------------

    def answer(self, task_id: str, now: float) -> dict[str, Any] | None:
        """What GET /v1/tasks/{id} says about the task at `now`, but its output; None if there is no such task."""
        self._start_due(now)
        task = self._tasks.get(task_id)
        if task is None:
            return None
        start = self._starts.get(task_id)
        answer: dict[str, Any] = {"id": task.id, "createdAt": task.created_at}
        answer.update({"status": THROTTLED} if start is None else self._state(task.plan, now - start))
        if self._has_ended(task, now):
            answer["cost"] = {"credits": self._charge(task, now)}
        else:
            answer["estimatedCost"] = {"credits": task.credits}
        return answer

    # -- credits ---------------------------------------------------------------------------------

    def _has_ended(self, task: Task, now: float) -> bool:
        start = self._starts.get(task.id)
        return start is not None and bool(task.plan.outcome) and now - start >= self.task_seconds

    def _charge(self, task: Task, now: float) -> int:
        """What `task` holds of the balance at `now`: its estimate until it ends, then its cost."""
        if not self._has_ended(task, now) or is_billed(task.plan):
            return task.credits
        return 0

    def _refund(self, task: Task, now: float) -> tuple[float, int] | None:
        """When, and how much of its charge, a task still here has been refunded by `now`; None if not."""
        start = self._starts.get(task.id)
        if self._has_ended(task, now) and not is_billed(task.plan) and start is not None:
            return start + self.task_seconds, task.credits
        return None

    def usage(self, now: float) -> list[tuple[float, str, int]]:
        """Every charge (+) and refund (-) up to `now`: (when, model, credits)."""
        self._start_due(now)
        refunds = [(r[0], t.model, -r[1]) for t in self._tasks.values() if (r := self._refund(t, now)) is not None]
        return sorted([*self._usage, *refunds])

    def _is_running(self, task: Task, now: float) -> bool:
        """Whether Runway would answer RUNNING (or a made-up status of a started task) about it now."""
        start = self._starts.get(task.id)
        return start is not None and now - start >= self.pending_seconds and not self._has_ended(task, now)

    def balance(self, now: float) -> int:
        """The organization's credits at `now`."""
        self._start_due(now)
        return self._opening_balance - self._settled - sum(self._charge(task, now) for task in self._tasks.values())

    def _state(self, plan: Plan, age: float) -> dict[str, Any]:
        """The answer about a started task, `age` seconds after it started."""
        if age < self.pending_seconds:
            return {"status": plan.status_alias or PENDING}
        if not plan.outcome or age < self.task_seconds:
            if plan.status_alias:
                return {"status": plan.status_alias}
            running_for = max(self.task_seconds - self.pending_seconds, 1e-9)
            return {"status": RUNNING, "progress": min(0.99, round((age - self.pending_seconds) / running_for, 2))}
        if plan.outcome == FAILED:
            return {"status": FAILED, "failure": failure_text(plan.failure_code), "failureCode": plan.failure_code}
        return {"status": plan.outcome}

    def ends_at(self, task_id: str, now: float) -> float | None:
        """When a task ends or ended; None while it waits for a slot, if it never ends, or if there is no such task."""
        self._start_due(now)
        task, start = self._tasks.get(task_id), self._starts.get(task_id)
        if task is None or start is None or not task.plan.outcome:
            return None
        return start + self.task_seconds

    def remove(self, task_id: str, now: float) -> bool:
        """Cancel and forget a task, freeing its slot from `now` on; False if there is no such task."""
        self._start_due(now)
        task = self._tasks.get(task_id)
        if task is None:
            return False
        # An ended task keeps what it cost; one cancelled while it runs keeps its charge too; one still
        # waiting (PENDING or THROTTLED) is refunded now.
        if self._has_ended(task, now):
            self._settled += self._charge(task, now)
            refund = self._refund(task, now)
            if refund is not None:
                self._usage.append((refund[0], task.model, -refund[1]))
        elif self._is_running(task, now):
            self._settled += task.credits
        else:
            self._usage.append((now, task.model, -task.credits))
        del self._tasks[task_id]
        waiting = self._waiting[task.model]
        if task in waiting:
            waiting.remove(task)
        slots = self._slots[task.model]
        if slots.get(task_id, -math.inf) > now:
            slots[task_id] = now
        self._starts.pop(task_id, None)
        self._start_due(now)
        return True

    # -- keeping them across a restart ------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to answer for every task later, as JSON values (times on the clock as given)."""
        return {
            "next_number": self._next_number,
            "tasks": [{**asdict(task), "plan": asdict(task.plan)} for task in self._tasks.values()],
            "starts": self._starts,
            # A slot held forever (a task that never ends) is None: JSON has no infinity.
            "slots": {
                model: {k: None if v == math.inf else v for k, v in s.items()} for model, s in self._slots.items()
            },
            "create_times": self._create_times,
            "opening_balance": self._opening_balance,
            "settled": self._settled,
            "usage": self._usage,
        }

    def restore(self, snapshot: dict[str, Any], *, shift: float) -> None:
        """Take back a snapshot, with `shift` seconds added to every time in it (the clock's change since)."""
        self._next_number = snapshot["next_number"]
        # The saved balance goes on; the credit_balance option only opens a new state file.
        self._opening_balance = snapshot.get("opening_balance", self._opening_balance)
        self._settled = snapshot.get("settled", 0)
        self._usage = [(when + shift, model, credits) for when, model, credits in snapshot.get("usage", [])]
        self._tasks = {}
        for row in snapshot["tasks"]:
            task = Task(**{**row, "created": row["created"] + shift, "plan": Plan(**row["plan"])})
            self._tasks[task.id] = task
        self._starts = {task_id: start + shift for task_id, start in snapshot["starts"].items()}
        # A model the contract no longer has (after an SDK bump) keeps its tasks' queue all the same.
        models = dict.fromkeys([*self.models, *snapshot["slots"], *(task.model for task in self._tasks.values())])
        for model in models:
            slots = snapshot["slots"].get(model, {})
            self._slots[model] = {k: math.inf if end is None else end + shift for k, end in slots.items()}
            self._create_times[model] = [t + shift for t in snapshot["create_times"].get(model, [])]
            waiting = [t for t in self._tasks.values() if t.model == model and t.id not in self._starts]
            self._waiting[model] = sorted(waiting, key=_queue_order)

    # -- concurrency -----------------------------------------------------------------------------
    # Computed when asked, not by a timer: a waiting task starts at the moment its turn came (when
    # an earlier task ended), whenever the next call happens to notice.

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

    def _turn(self, task: Task, slots: dict[str, float]) -> float:
        """When `task` gets a slot if nothing changes: math.inf if only a deletion can free one."""
        if self.max_concurrent is None:
            return task.ready
        ends = sorted(end for end in slots.values() if end > task.ready)
        if len(ends) < self.max_concurrent:
            return task.ready
        return ends[len(ends) - self.max_concurrent]
