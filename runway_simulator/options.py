"""The simulator's options, checked once, and the command-line flags that set them, shared by
``python -m runway_simulator`` and ``python manage.py runway_simulator``."""

import argparse
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, TypedDict

# Where the commands listen unless told otherwise; in Python the default is any free port.
SERVE_PORT = 8765


@dataclass(frozen=True)
class SimulatorOptions:
    """How a simulator behaves (see the package docstring); invalid values raise ValueError."""

    host: str = "127.0.0.1"
    port: int = 0
    task_seconds: float = 20.0
    pending_seconds: float | None = None  # None: a tenth of task_seconds
    output_ttl: float = 3600.0
    api_key: str | None = None  # None: accept any key of Runway's shape
    max_concurrent: int | None = None  # per model; None: no limit
    daily_limit: int = 200
    error_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 35.0
    fail_rate: float = 0.0
    latency: float = 0.0  # seconds before every API answer
    download_latency: float = 0.0  # seconds before the first byte of an output file
    download_rate: float | None = None  # bytes per second of an output file; None: as fast as it goes
    credit_balance: int = 10_000  # the organization's credits before any task (a state file keeps its own)
    random_seed: int | None = None
    verbose: bool = False
    state_file: str | None = None  # keep the tasks in this file across restarts; None: in memory only

    def __post_init__(self) -> None:
        for broken, message in self._checks():
            if broken:
                raise ValueError(message)

    def _checks(self) -> list[tuple[bool, str]]:
        rates = ("error_rate", "slow_rate", "fail_rate")
        return [
            (not 0 <= self.pending_time <= self.task_seconds, "pending_seconds must be between 0 and task_seconds"),
            (
                self.max_concurrent is not None and self.max_concurrent < 1,
                "max_concurrent must be at least 1, or None for no limit",
            ),
            *((not 0 <= getattr(self, rate) <= 1, f"{rate} must be between 0 and 1") for rate in rates),
            (self.slow_seconds < 0, "slow_seconds cannot be negative"),
            (self.credit_balance < 0, "credit_balance cannot be negative"),
            (self.latency < 0, "latency cannot be negative"),
            (self.download_latency < 0, "download_latency cannot be negative"),
            (self.download_rate is not None and self.download_rate <= 0, "download_rate must be above 0, or None"),
        ]

    @property
    def pending_time(self) -> float:
        """Seconds a started task stays PENDING before it runs."""
        return self.task_seconds / 10 if self.pending_seconds is None else self.pending_seconds


class SimulatorSettings(TypedDict, total=False):
    """SimulatorOptions' fields as keyword arguments, so RunwaySimulator(task_seconds=1.0) is type-checked."""

    host: str
    port: int
    task_seconds: float
    pending_seconds: float | None
    output_ttl: float
    api_key: str | None
    max_concurrent: int | None
    daily_limit: int
    error_rate: float
    slow_rate: float
    slow_seconds: float
    fail_rate: float
    latency: float
    download_latency: float
    download_rate: float | None
    credit_balance: int
    random_seed: int | None
    verbose: bool
    state_file: str | None


# -- the command line ------------------------------------------------------------------------------
# Argument types raise ArgumentTypeError, so argparse (and Django's CommandError) reports a bad
# flag in its own words before any simulator is made.


def _rate(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction from 0 to 1, got {text}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text}")
    return value


def _rate_of_bytes(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of bytes per second above 0, got {text}")
    return value


def _credits(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of credits, 0 or more, got {text}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text}")
    return value


# Option, argument type, help: one flag each, --task-seconds for task_seconds and so on.
_FLAGS: tuple[tuple[str, Callable[[str], Any], str], ...] = (
    ("host", str, "Interface to listen on (default %(default)s)."),
    ("port", int, "Port to listen on (default %(default)s); 0 picks a free one."),
    ("task_seconds", _seconds, "Seconds from a task's start to SUCCEEDED (%(default)s)."),
    ("output_ttl", _seconds, "Seconds an output URL stays valid (%(default)s)."),
    (
        "max_concurrent",
        _positive,
        "Tasks per model running at once; more wait THROTTLED (default: no limit; Runway's tier 1 is 1-2).",
    ),
    ("daily_limit", _positive, "Creates per model per 24 hours before 429 (%(default)s)."),
    (
        "credit_balance",
        _credits,
        "Credits the organization starts with (%(default)s); tasks are billed from it (prices.py).",
    ),
    ("error_rate", _rate, "Fraction of API requests answered 502/503 at random."),
    ("slow_rate", _rate, "Fraction of API requests answered --slow-seconds late."),
    ("slow_seconds", _seconds, "How late a slow answer is (%(default)s, past the app's 30 s read timeout)."),
    ("fail_rate", _rate, "Fraction of tasks that end FAILED."),
    ("latency", _seconds, "Seconds before every API answer, as across the internet (Runway: 0.1-0.3)."),
    ("download_latency", _seconds, "Seconds before the first byte of an output video (%(default)s)."),
    ("download_rate", _rate_of_bytes, "Bytes per second an output video is sent at (default: unlimited)."),
    (
        "state_file",
        str,
        "Keep the tasks in this JSON file, so that the simulator started again on it still answers for them "
        "(default: in memory only).",
    ),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The simulator's flags, each defaulting to its option's default (but --port to SERVE_PORT)."""
    defaults = {**asdict(SimulatorOptions()), "port": SERVE_PORT}
    for name, kind, help_text in _FLAGS:
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=defaults[name], help=help_text)


def options_from_arguments(arguments: Mapping[str, Any], *, verbose: bool) -> SimulatorOptions:
    """The options that parsed flags describe (`arguments`: e.g. vars() of argparse's namespace)."""
    return SimulatorOptions(verbose=verbose, **{name: arguments[name] for name, _, _ in _FLAGS})
