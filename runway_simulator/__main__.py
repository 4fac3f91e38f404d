"""``python -m runway_simulator``: serve the simulator in the foreground until Ctrl-C, without Django."""

import argparse
import signal

from runway_simulator.options import add_arguments, options_from_arguments
from runway_simulator.simulator import RunwaySimulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m runway_simulator", description="Serve a local stand-in for Runway's developer API until Ctrl-C."
    )
    add_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="Do not log each request.")
    arguments = parser.parse_args(argv)
    try:
        simulator = RunwaySimulator(options_from_arguments(vars(arguments), verbose=not arguments.quiet))
    except ValueError as exc:
        parser.error(str(exc))
    # `kill` stops it as Ctrl-C does; SIGINT too, as a shell ignores it for background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    simulator.serve_until_interrupted(lambda line: print(line, flush=True))


if __name__ == "__main__":
    main()
