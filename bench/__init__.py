"""Benchmarks (`make bench`): in-flight scale against the blocking design, Runway calls per job, and the
web tier under load. See docs/PERFORMANCE.md for what they measure and what they found."""

from pathlib import Path

# Where the benchmarks' processes log and the reports are saved.
LOG_DIR = Path(__file__).resolve().parent.parent / "var" / "bench"
