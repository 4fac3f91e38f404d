"""A stand-in for Runway's developer API, for tests and for working without a paid key.

It speaks Runway's API over real HTTP (standard library server, one daemon thread): the same
headers, the same task states and error bodies, and the same request checks, judged by its own
statement of Runway's contract (contract.json, derived from the pinned official SDK's request
types by contract.py; validation.py words each issue as Runway's zod validator does), never by
the product's rules, so that a product that sends what Runway would refuse is caught. It serves
every video endpoint of that contract (text_to_video, image_to_video, video_to_video,
video_upscale, character_performance) for every model it lists, ephemeral uploads
(POST /v1/uploads and the upload URL it hands out, uploads.py), tasks, and the organization and
its usage. It does not use Django or a database, nor import the product, as moto stands in for
AWS and fakeredis for Redis; it keeps its tasks in memory, or with `state_file`
(``--state-file``) in a JSON file that a simulator started again on it reads back, so that it
still answers for them, their lives going on by its clock (state.py).

    with RunwaySimulator(task_seconds=1.0) as sim:
        requests.post(sim.base_url + "/v1/text_to_video", ...)

Or from a shell: ``python -m runway_simulator`` (or ``python manage.py runway_simulator``, the
same flags) and point RUNWAY_API_BASE_URL at it.

Time is the simulator's `clock`: task ages, throttling, the daily limit's 24 hours, output URL
expiry, `createdAt` and slow answers all read it. It is the machine's (SystemClock) unless one
is given; tests give a ManualClock and move it instead of sleeping:

    clock = ManualClock()
    with RunwaySimulator(task_seconds=10.0, clock=clock) as sim:
        task_id = ...  # POST /v1/text_to_video
        clock.advance(10.0)  # GET /v1/tasks/{task_id} now answers SUCCEEDED

Each task is billed from the simulator's own price table (prices.py: Runway's published prices
where there are any, made-up ones for the partner models): the create and an unfinished task
carry `estimatedCost`, a finished one `cost` (0 when refunded: a failure other than moderation, a
cancellation, a deletion before the end), and the organization's `creditBalance` pays the
estimate at creation and gets refunds back (tasks.py says why).

A task is PENDING for `pending_seconds`, then RUNNING with a rising `progress`, then SUCCEEDED
`task_seconds` after it started, with one signed output URL served by the simulator itself
(`/_sim/outputs/<id>.mp4?_jwt=...`, valid for `output_ttl` seconds from each GET of the task).
The URL answers `assets/sample.mp4`, a real 3-second video, with `Content-Length`,
`Accept-Ranges: bytes` and single-range requests (206 or 416), as browsers ask for video. It was
made once with ffmpeg (the binary from the imageio-ffmpeg package):

    ffmpeg -f lavfi -i testsrc2=size=640x360:rate=24:duration=3 -c:v libx264 -profile:v main
        -pix_fmt yuv420p -preset veryslow -crf 30 -movflags +faststart -an -map_metadata -1
        -fflags +bitexact -flags:v +bitexact sample.mp4

Directives, written anywhere in promptText, ask for other behaviours (an unknown one is a 400):

- ``[sim:fail]`` or ``[sim:fail=CODE]``: the task ends FAILED with failureCode CODE (default
  ``INTERNAL``) and a `failure` text, when it would otherwise have succeeded.
- ``[sim:never]``: the task stays RUNNING forever (progress stops short of 1).
- ``[sim:throttle]`` or ``[sim:throttle=SECONDS]``: the task is THROTTLED for that long
  (default `task_seconds`) before it queues for a slot and its normal life starts.
- ``[sim:cancel]``: the task ends CANCELLED, as if cancelled from Runway's dashboard.
- ``[sim:status=NAME]``: the task reports the made-up status NAME instead of PENDING and
  RUNNING, then succeeds; clients must treat unknown statuses as "not final yet".

Constructor options add account-wide limits and trouble, as Runway's tiers and bad days do:

- `max_concurrent` (per model; None, the default, for no limit): a task created while the model
  has that many started and unfinished tasks is THROTTLED, and starts, in order of creation
  (after any ``[sim:throttle]`` time), when one of them ends: succeeds, fails, is cancelled or
  is deleted. Its PENDING, RUNNING and the rest count from that start. A ``[sim:never]`` task
  holds its slot until it is deleted. /v1/organization reports the limit as
  `maxConcurrentGenerations` (null when there is none, as Runway's API allows).
- `credit_balance`: the organization's credits before any task (a state file keeps its own).
- `daily_limit`: creation answers 429 with Retry-After once a model has had that many creates in
  a rolling 24 hours.
- `error_rate`: that fraction of /v1 requests is answered 502 or 503 at random, before doing
  anything.
- `slow_rate`: that fraction of /v1 requests is answered `slow_seconds` late. The request takes
  effect at once; only the answer waits, so a client that gives up on a slow create has still
  created a task, as can happen with Runway. The default wait outlasts the app's 30 s read
  timeout.
- `fail_rate`: that fraction of tasks ends FAILED with ``INTERNAL``.

And the distance of the internet, which loopback hides (Runway's API answers in 100-300 ms):

- `latency`: every /v1 answer goes out that many seconds after its request arrived (the request
  takes effect on arrival).
- `download_latency` and `download_rate`: an output video's first byte goes out that many seconds
  after the request, and the rest at that many bytes per second (None: as fast as it goes).

Each connection is served by a thread of its own, with a listen backlog of 1,024, so hundreds of
clients waiting on slow answers at once are served side by side: the simulator is never the
bottleneck of a benchmark that measures its client.
"""

from runway_simulator.clock import Clock, ManualClock, SystemClock
from runway_simulator.options import SimulatorOptions
from runway_simulator.outputs import SAMPLE_VIDEO
from runway_simulator.simulator import RecordedRequest, RunwaySimulator
from runway_simulator.validation import API_VERSION

__all__ = [
    "API_VERSION",
    "SAMPLE_VIDEO",
    "Clock",
    "ManualClock",
    "RecordedRequest",
    "RunwaySimulator",
    "SimulatorOptions",
    "SystemClock",
]
