"""Run the Runway API simulator in the foreground, for development without a paid key."""

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from runway_simulator import RunwaySimulator


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


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text}")
    return value


def simulator_from_options(options: dict[str, Any]) -> RunwaySimulator:
    """The simulator the command's options describe, not yet started."""
    try:
        return RunwaySimulator(
            host=options["host"],
            port=options["port"],
            task_seconds=options["task_seconds"],
            output_ttl=options["output_ttl"],
            max_concurrent=options["max_concurrent"],
            daily_limit=options["daily_limit"],
            error_rate=options["error_rate"],
            slow_rate=options["slow_rate"],
            slow_seconds=options["slow_seconds"],
            fail_rate=options["fail_rate"],
            verbose=options["verbosity"] >= 1,
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from exc


class Command(BaseCommand):
    help = "Serve a local stand-in for Runway's developer API until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Interface to listen on (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=8765, help="Port to listen on; 0 picks a free one.")
        parser.add_argument(
            "--task-seconds", type=_seconds, default=20.0, help="Seconds from a task's start to SUCCEEDED (20)."
        )
        parser.add_argument(
            "--output-ttl", type=_seconds, default=3600.0, help="Seconds an output URL stays valid (3600)."
        )
        parser.add_argument(
            "--max-concurrent",
            type=_positive,
            default=None,
            help="Tasks per model running at once; more wait THROTTLED (default: no limit; Runway's tier 1 is 1-2).",
        )
        parser.add_argument(
            "--daily-limit", type=_positive, default=200, help="Creates per model per 24 hours before 429 (200)."
        )
        parser.add_argument(
            "--error-rate", type=_rate, default=0.0, help="Fraction of API requests answered 502/503 at random."
        )
        parser.add_argument(
            "--slow-rate", type=_rate, default=0.0, help="Fraction of API requests answered --slow-seconds late."
        )
        parser.add_argument(
            "--slow-seconds",
            type=_seconds,
            default=35.0,
            help="How late a slow answer is (35, past the app's 30 s read timeout).",
        )
        parser.add_argument("--fail-rate", type=_rate, default=0.0, help="Fraction of tasks that end FAILED.")

    def handle(self, *args: Any, **options: Any) -> None:
        simulator = simulator_from_options(options).start()
        self.stdout.write(f"Runway simulator listening on {simulator.base_url}")
        self.stdout.write(
            f"Point the app at it with RUNWAY_API_BASE_URL={simulator.base_url} "
            "and any RUNWAY_API_KEY of the form key_ + 128 hex digits. Ctrl-C stops it."
        )
        try:
            simulator.wait()
        except KeyboardInterrupt:
            self.stdout.write("Stopping.")
        finally:
            simulator.stop()
