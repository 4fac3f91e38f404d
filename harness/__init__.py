"""Runs the product's own processes for the tests and the benchmarks: a Celery worker or beat and
gunicorn, configured as production runs them (DEBUG off) but pointed at a given database, broker
queue and Runway (usually the simulator). Neither the product nor `make run` uses it.

- `harness.processes`: a process in a session of its own, logging to a file; ports; waiting.
- `harness.stack`: the worker, beat and gunicorn themselves, and the environment they read.
- `harness.s3`: an S3 bucket on moto's server (a process of its own) that those processes share
  through their environment, as machines that share no disk share a bucket.
"""
