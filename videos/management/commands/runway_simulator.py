"""Run the Runway API simulator in the foreground, for development without a paid key.

The same as ``python -m runway_simulator``, with the same flags, for those used to manage.py.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from runway_simulator import RunwaySimulator
from runway_simulator.options import add_arguments, options_from_arguments


def simulator_from_options(options: dict[str, Any]) -> RunwaySimulator:
    """The simulator the command's options describe, not yet started."""
    try:
        return RunwaySimulator(options_from_arguments(options, verbose=options["verbosity"] >= 1))
    except ValueError as exc:
        raise CommandError(str(exc)) from exc


class Command(BaseCommand):
    help = "Serve a local stand-in for Runway's developer API until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        simulator_from_options(options).serve_until_interrupted(self.stdout.write)
