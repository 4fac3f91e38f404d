"""`python -m bench.status`: benchmark 3 alone, the status requests of 200 browsers' pages through
gunicorn while the README's worker follows 1,000 jobs, for its figures without the whole of `make bench`.

    .venv/bin/python -m bench.status                      # 250 ms per Runway call
    .venv/bin/python -m bench.status --latency 0 --seconds 20

Prints the requests made, their p50, p99 and most, the share of 304s, and the errors. Like `make
bench`, it needs PostgreSQL and Redis on their local ports and makes a database of its own.
"""

import argparse
import os

from bench.flight import parse, prepared
from runway_simulator import RunwaySimulator


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.status", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--browsers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--task-seconds", type=float, default=30.0)
    parser.add_argument("--latency", type=float, default=0.25, help="seconds per Runway answer (%(default)s)")
    parser.add_argument("--poll-interval", type=int, default=5)
    parser.add_argument("--gunicorn-workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    args = parse(parser)
    with prepared(args, "bench_status") as simulator:
        _run(args, simulator)


def _run(args: argparse.Namespace, simulator: RunwaySimulator) -> None:
    from django.contrib.auth.models import User

    from bench import scenarios

    setup = scenarios.Setup.here(simulator, poll_interval=args.poll_interval, gunicorn_workers=args.gunicorn_workers)
    owners = User.objects.bulk_create(User(username=f"status{n}") for n in range(args.browsers))
    network = scenarios.Network(f"{args.latency * 1000:g} ms", args.latency, args.latency, 2e6)
    load = scenarios.status_under_load(
        setup,
        owners=owners,
        jobs=args.jobs,
        browsers=args.browsers,
        seconds=args.seconds,
        interval=2.0,
        network=network,
    )
    latencies = sorted(load.latencies)
    p = scenarios.percentile
    print(f"{len(latencies)} requests, {load.requests_per_second:.1f}/s, {network.name}:")
    print(
        f"p50 {p(latencies, 0.5) * 1000:.1f} ms, p99 {p(latencies, 0.99) * 1000:.1f} ms, most "
        f"{latencies[-1] * 1000:.1f} ms; 304s {load.not_modified_share:.0%}; errors {len(load.errors)}"
    )
    windows = ", ".join(f"{start:g}-{start + 5:g} s {p99 * 1000:.0f}" for start, p99 in load.p99_by_window())
    print(f"p99 by 5 s of the load, ms: {windows}")


if __name__ == "__main__":
    main()
