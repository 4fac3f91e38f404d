"""Every write and state change of a video generation, one module per concern.

- `creation`: check a request, apply the per-user limits, store the job, hand it to the worker.
- `steps`: the worker's steps (submit, poll, store the video, make the poster, cancel at Runway).
- `actions`: what users and staff do to a job (cancel, delete, re-run, try again, run its step now).
- `recovery`: the sweep that puts lost work back to work.
- `selectors`: read-only questions for views and the admin (history, status, estimates, credits).
- `account`: the account's credit balance, read from Runway by the worker and kept for pages.
- `bookkeeping`: what the others share about a job's row (ending it, locking it, scheduling it).

Views, the admin, the management commands and the Celery tasks import the module they need; none
of them writes to a job itself.
"""
