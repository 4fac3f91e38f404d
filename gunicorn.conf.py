"""gunicorn's hooks for the metrics' multiprocess mode; gunicorn reads this file from the folder it
starts in (its default `./gunicorn.conf.py`; elsewhere, name it with `-c`). Every other setting
stays on gunicorn's command line.

With PROMETHEUS_MULTIPROC_DIR set, each web process writes its counts to files there and a scrape
of /metrics adds them all up (runway_project/metrics.py): the master empties the folder as it
starts, or an earlier run's counts would be added to this one's. Without it, nothing happens here.
"""

import glob
import os
from typing import Any


def on_starting(server: Any) -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if directory:
        # Not through the project's package, which the master does not load (its workers do).
        os.makedirs(directory, exist_ok=True)
        for path in glob.glob(os.path.join(directory, "*.db")):
            os.remove(path)


def child_exit(server: Any, worker: Any) -> None:
    """A process that ended: its live gauges go (its counters stay, counted)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
