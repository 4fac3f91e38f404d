"""Run the Runway API simulator in the foreground, for development without a paid key."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from videos.simulator import RunwaySimulator


class Command(BaseCommand):
    help = "Serve a local stand-in for Runway's developer API until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Interface to listen on (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=8765, help="Port to listen on; 0 picks a free one.")
        parser.add_argument("--task-seconds", type=float, default=20.0, help="Seconds from create to SUCCEEDED.")
        parser.add_argument(
            "--error-rate", type=float, default=0.0, help="Fraction of API requests answered 502/503 at random."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        simulator = RunwaySimulator(
            host=options["host"],
            port=options["port"],
            task_seconds=options["task_seconds"],
            error_rate=options["error_rate"],
            verbose=options["verbosity"] >= 1,
        ).start()
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
