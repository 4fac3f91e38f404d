"""Benchmarks (`make bench`): in-flight scale against the blocking design, Runway calls per job, and the
web tier under load. See docs/PERFORMANCE.md for what they measure and what they found."""
