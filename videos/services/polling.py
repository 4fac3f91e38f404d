"""Polls that wait in the worker instead of in the broker.

A job at Runway is polled every RUNWAY_POLL_INTERVAL seconds until it ends, and most polls learn
only that it is still pending or running. Sent through the broker, each such poll cost the worker
a message out, a message in, an acknowledgement, a claim (two queries) and a write, some 13 ms of
CPU (docs/PERFORMANCE.md). In a worker started with the threads pool, the poll step hands the job's
next poll to this process's Poller instead: it keeps the job on a timer, asks Runway from threads
that only talk HTTP (each with its own keep-alive connection), and writes the answers of all the
polls that came back in the last moment in ONE guarded UPDATE. An answer that changes more than a
waiting job's status and progress (the task ended or failed, the job's time is up) is handled by
the poll step itself, run at once by one of a few finisher threads (WORKER_FINISH_THREADS), which
store the video and its poster as the step's task would; an error, or a finisher that cannot
run the step (the database away), sends the poll step through the broker instead.

The row stays the truth. Each write is guarded by the step number, so a cancel or delete that took
the step meanwhile wins and the poller lets the job go; each write also moves `next_check_at` on,
so the sweep leaves a held job alone while its worker lives, and an answer handed to a finisher
marks its job as a claimed step is marked (polls_in_hand). A worker that stops hands every job
it holds back to the broker with the time left (Poller.stop); one that is killed leaves its jobs
overdue, and the sweep sends their polls again (videos/services/recovery.py).
"""

import functools
import heapq
import logging
import operator
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import IO, Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.db.models import Q
from django.utils import timezone

from runway_project import metrics
from videos.catalog import PENDING, RUNNING, SUCCEEDED, THROTTLED
from videos.models import ALLOWED_MOVES, Status, Step, VideoGeneration
from videos.runway import RunwayError, TaskState, get_client
from videos.services.bookkeeping import NextStep, enqueue

logger = logging.getLogger(__name__)

# Runway's states of a task that has not ended, and ours for each.
WAITING = {PENDING: Status.PENDING, THROTTLED: Status.THROTTLED, RUNNING: Status.RUNNING}
# How often the answers that came back are written (one UPDATE for all of them).
FLUSH_EVERY = 0.1
# The most polls one UPDATE writes.
BATCH = 200
# The longest a poster waits for the finisher threads to have nothing to do (see Poller._calm_wait).
POSTER_YIELDS_SECONDS = 30.0


@dataclass(frozen=True)
class Held:
    """A job whose next poll this process keeps: what the poll needs, without reading the row."""

    generation_id: int
    number: int  # the step number the poll must claim
    task_id: str
    status: Status  # as last written
    deadline: datetime  # when the job times out at Runway (bookkeeping.runway_deadline)
    due: float  # on the poller's clock


@dataclass(frozen=True)
class Answer:
    """What Runway said to one held poll: `state`, or the error it raised; for a task that
    succeeded, its `video`, downloaded by the same HTTP thread (None if that failed: the store
    step tries again itself)."""

    held: Held
    state: TaskState | None
    error: RunwayError | None = None
    video: IO[bytes] | None = None
    answered: float = 0.0  # when Runway's answer came back, on the poller's clock

    @property
    def next_due(self) -> float:
        """When the job's next poll is due: an interval after Runway answered this one. Not after it
        was asked (Runway may have read it at any moment until it answered, and then the next
        poll could reach it less than an interval later), nor after the answer was written (our
        own delays would add up, poll after poll)."""
        return self.answered + float(settings.RUNWAY_POLL_INTERVAL)

    def close(self) -> None:
        if self.video is not None:
            self.video.close()


def waiting_status(answer: Answer, now: datetime) -> Status | None:
    """The job's new status when the answer only says the task is still waiting (and the job may
    go on waiting); None when the poll step must handle it (an end, an error, the time up)."""
    state, held = answer.state, answer.held
    if state is None or state.status not in WAITING or now >= held.deadline:
        return None
    status = WAITING[state.status]
    if status != held.status and (held.status, status) not in ALLOWED_MOVES:
        return None
    return status


def polls_record(answers: list[Answer], *, now: datetime) -> tuple[list[Held], list[Answer]]:
    """Write the answers that say their tasks are still waiting, in one UPDATE guarded by each job's
    step number. Returns the jobs to keep polling (those written), each with its new step number,
    status and next poll's time (an interval after Runway answered), and the answers the poll step
    must handle itself (see `waiting_status`)."""
    waiting: list[tuple[Answer, Status]] = []
    others: list[Answer] = []
    for answer in answers:
        status = waiting_status(answer, now)
        if status is None:
            others.append(answer)
        else:
            waiting.append((answer, status))
    if not waiting:
        return [], others
    written = _write(waiting, now=now)
    again = [
        replace(answer.held, number=answer.held.number + 1, status=status, due=answer.next_due)
        for answer, status in waiting
        if answer.held.generation_id in written
    ]
    return again, others


def polls_in_hand(answers: list[Answer], *, now: datetime) -> None:
    """Mark each job whose answer a finisher thread of this worker will handle as a claimed step is
    marked (no next_check_at, updated now), in one UPDATE guarded by each job's step number.

    Its next poll was due when Runway answered; left so, a busy worker whose finishers are behind
    (the videos of a burst ending together, on a worker that just took over a dead one's jobs)
    would see the sweep send that poll again once it was an interval late: a second GET that
    reaches Runway under 5 s after this one, and a second download. A claimed step is the sweep's
    only after STEP_LOST_AFTER (its worker died), and so is an answer in hand.
    """
    if not answers:
        return
    held_now = functools.reduce(operator.or_, (Q(pk=a.held.generation_id, step=a.held.number) for a in answers))
    VideoGeneration.objects.filter(held_now).update(next_check_at=None, updated_at=now)


def hand_back(answer: Answer) -> None:
    """Send the poll step an answer through the broker, to handle as its own; after an error, the step
    asks again itself an interval later (or after Runway's Retry-After)."""
    held = answer.held
    answer.close()  # a message cannot carry the file: the store step downloads it again
    if answer.state is not None:
        enqueue(NextStep(held.generation_id, Step.POLL, held.number, 0), answer=asdict(answer.state))
        return
    assert answer.error is not None
    wait = max(float(settings.RUNWAY_POLL_INTERVAL), answer.error.retry_after or 0.0)
    logger.warning(
        "Generation %s: poll failed (%s); its step asks again in %.0f s", held.generation_id, answer.error, wait
    )
    enqueue(NextStep(held.generation_id, Step.POLL, held.number, wait))


def _write(waiting: list[tuple[Answer, Status]], *, now: datetime) -> set[int]:
    """One UPDATE of every waiting job whose step is still the poll's; the ids it wrote.

    Raw SQL, UPDATE ... FROM (VALUES ...) RETURNING (PostgreSQL, and SQLite from 3.35): each row's
    own values in one statement, and the rows written in its answer, for a tenth of the CPU of the
    ORM's CASE WHEN per field and a second query to find them.
    """
    rows = []
    for answer, status in waiting:
        state = answer.state
        assert state is not None
        progress = None
        if state.status == RUNNING and state.progress is not None:
            progress = max(0, min(99, round(state.progress * 100)))
        rows.append((answer.held.generation_id, answer.held.number, status.value, state.status[:32], progress))
    adapt = connection.ops.adapt_datetimefield_value
    params: list[Any] = [adapt(now + timedelta(seconds=settings.RUNWAY_POLL_INTERVAL)), adapt(now)]
    for row in rows:
        params.extend(row)
    with connection.cursor() as cursor:
        cursor.execute(_update_sql(len(rows)), params)
        return {pk for (pk,) in cursor.fetchall()}


def _update_sql(count: int) -> str:
    table = connection.ops.quote_name(VideoGeneration._meta.db_table)
    # Typed in each row: PostgreSQL would otherwise take a VALUES list's parameters for text.
    row = "(CAST(%s AS bigint), CAST(%s AS integer), %s, %s, CAST(%s AS integer))"
    # Only the table's name and placeholders are formatted in: every value is a parameter.
    return (
        f"UPDATE {table} SET step = {table}.step + 1, poll_count = {table}.poll_count + 1,"  # noqa: S608
        " status = v.column3, runway_status = v.column4,"
        f" progress = COALESCE(v.column5, {table}.progress), error_count = 0, next_check_at = %s, updated_at = %s"
        f" FROM (VALUES {', '.join([row] * count)}) AS v"
        f" WHERE {table}.id = v.column1 AND {table}.step = v.column2 RETURNING {table}.id"
    )


class Poller:
    """The timer, HTTP threads and writer of one worker process's held polls (see the module's doc).

    `threads` HTTP threads ask Runway (and download the video of a task that succeeded); one
    writer thread records their answers every FLUSH_EVERY seconds, with the one database
    connection it holds; `finishers` threads (each with a database connection) run `finish` on
    each answer that is more than "still waiting"; `posters` threads run `make_poster` on each
    poster step handed to `hold_poster`, apart, so that ffmpeg never holds up a store. `clock` is
    monotonic seconds.
    """

    def __init__(
        self,
        *,
        threads: int,
        finishers: int = 2,
        finish: Callable[[Answer], None] = hand_back,
        posters: int = 1,
        make_poster: Callable[[NextStep, VideoGeneration | None], object] = lambda step, _: enqueue(step),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.threads = threads
        self.finishers = finishers
        self.finish = finish
        self.posters = posters
        self.make_poster = make_poster
        self._heap: list[tuple[float, int, Held]] = []
        self._count = 0  # ties in the heap
        self._wake = threading.Condition()
        self._answers: queue.SimpleQueue[Answer] = queue.SimpleQueue()
        self._asking = 0  # polls out at Runway
        self._running = False
        self._executor: ThreadPoolExecutor | None = None
        self._to_finish: queue.SimpleQueue[Answer | None] = queue.SimpleQueue()
        self._unfinished = 0  # answers handed to the finishers and not finished yet
        self._calm = threading.Condition()
        self._finishing: list[threading.Thread] = []
        self._to_draw: queue.SimpleQueue[tuple[NextStep, VideoGeneration | None] | None] = queue.SimpleQueue()
        self._drawing: list[threading.Thread] = []
        self._timer = threading.Thread(target=self._schedule_loop, name="poll-timer", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name="poll-writer", daemon=True)

    # -- what the worker calls ------------------------------------------------------------------

    def start(self) -> None:
        self._running = True
        self._executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="poll")
        self._finishing = [
            threading.Thread(target=self._finish_loop, name=f"poll-finish-{n}", daemon=True)
            for n in range(self.finishers)
        ]
        self._drawing = [
            threading.Thread(target=self._poster_loop, name=f"poll-poster-{n}", daemon=True)
            for n in range(self.posters)
        ]
        for thread in (*self._finishing, *self._drawing):
            thread.start()
        self._timer.start()
        self._writer.start()
        logger.info(
            "Polls wait in this worker: %s HTTP threads, %s finishers, %s poster threads",
            self.threads,
            self.finishers,
            self.posters,
        )

    def hold(self, held: Held) -> bool:
        """Keep the job's next poll here; False when this poller is not running (the caller sends it)."""
        with self._wake:
            if not self._running:
                return False
            self._push(held)
            self._wake.notify()
        return True

    def hold_poster(self, next_step: NextStep, row: VideoGeneration | None = None) -> bool:
        """Make a poster due now on a poster thread (from `row`, the job as its step before wrote
        it, when given); False when this poller is not running."""
        with self._wake:
            if not self._running or not self._drawing:
                return False
        self._to_draw.put((next_step, row))
        return True

    def stop(self, *, wait: float = 10.0) -> int:
        """Stop holding: answers out at Runway are written (for up to `wait` seconds) and the steps
        being finished end, then every job still held goes back to the broker with the time it had
        left. Returns how many went back."""
        with self._wake:
            self._running = False
            self._wake.notify_all()
        with self._calm:
            self._calm.notify_all()  # a poster waiting for the finishers goes on
        if self._executor is not None:  # started
            self._timer.join(timeout=wait)
            self._executor.shutdown(wait=True)  # the polls out at Runway come back
            self._writer.join(timeout=wait)
        self.flush()
        for _ in self._finishing:
            self._to_finish.put(None)  # each finisher ends after the answers before it
        for thread in self._finishing:
            thread.join(timeout=wait)
        handed = self._posters_back()
        now = self.clock()
        with self._wake:
            held, self._heap = [item[2] for item in self._heap], []
        for job in held:
            enqueue(NextStep(job.generation_id, Step.POLL, job.number, max(0.0, job.due - now)))
            handed += 1
        if handed:
            logger.info("Handed %s held poll(s) back to the broker", handed)
        return handed

    @property
    def held(self) -> int:
        """Jobs kept here now (waiting for their time, or asked about at Runway)."""
        with self._wake:
            return len(self._heap) + self._asking

    # -- the threads ----------------------------------------------------------------------------

    def _push(self, held: Held) -> None:
        self._count += 1
        heapq.heappush(self._heap, (held.due, self._count, held))

    def _schedule_loop(self) -> None:
        """Hand each held poll to an HTTP thread when it is due."""
        while True:
            with self._wake:
                due = self._due_now()
                if due is None:
                    return
            for held in due:
                assert self._executor is not None
                self._executor.submit(self._ask, held)

    def _due_now(self) -> list[Held] | None:
        """Wait (with the lock held) until some poll is due; those due, or None once stopped."""
        while self._running:
            now = self.clock()
            if self._heap and self._heap[0][0] <= now:
                due = []
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap)[2])
                    metrics.poll_lag_observe(via="held", seconds=now - due[-1].due)
                self._asking += len(due)
                return due
            self._wake.wait(timeout=self._heap[0][0] - now if self._heap else None)
        return None

    def _ask(self, held: Held) -> None:
        try:
            state = get_client().get_task(held.task_id)
            answered = self.clock()
            answer = Answer(held, state, video=_download(held, state), answered=answered)
        except RunwayError as exc:
            answer = Answer(held, None, exc)
        except Exception as exc:  # noqa: BLE001 (a poll must never be dropped: its step takes it up)
            logger.exception("Generation %s: held poll failed", held.generation_id)
            answer = Answer(held, None, RunwayError(str(exc), permanent=False))
        self._answers.put(answer)

    def _write_loop(self) -> None:
        while self._running:
            time.sleep(FLUSH_EVERY)
            try:
                self.flush()
            except Exception:  # noqa: BLE001 (the database away: those jobs go overdue and the sweep sends them)
                logger.exception("Held polls could not be written")
                close_old_connections()
        connection.close()  # this thread's own

    def flush(self) -> None:
        """Write the answers that came back, and hold again the jobs that go on waiting."""
        answers: list[Answer] = []
        while len(answers) < BATCH:
            try:
                answers.append(self._answers.get_nowait())
            except queue.Empty:
                break
        if not answers:
            return
        now = timezone.now()
        try:
            again, others = polls_record(answers, now=now)
        finally:
            with self._wake:
                self._asking -= len(answers)
        if self._finishing:
            try:
                polls_in_hand([answer for answer in others if answer.error is None], now=now)
            except DatabaseError as exc:  # the finishers go on: one that cannot run its step hands it to the broker
                logger.warning("%s answer(s) could not be marked in hand: %s", len(others), exc)
                close_old_connections()
        for answer in others:
            self._finish_soon(answer)
        with self._wake:
            for held in again:
                self._push(held)
            self._wake.notify()

    def _finish_soon(self, answer: Answer) -> None:
        if not self._finishing or answer.error is not None:
            hand_back(answer)  # not started (tests), or an error: the step asks again later
            return
        with self._calm:
            self._unfinished += 1
        self._to_finish.put(answer)

    def _finish_loop(self) -> None:
        while (answer := self._to_finish.get()) is not None:
            try:
                self._finish_one(answer)
            finally:
                with self._calm:
                    self._unfinished -= 1
                    if not self._unfinished:
                        self._calm.notify_all()
        connection.close()  # this thread's own

    def _calm_wait(self) -> None:
        """Wait until no answer waits for a finisher (for POSTER_YIELDS_SECONDS at most): a poster
        comes after a video shown, and when many videos end at once, ffmpeg's runs and the poster
        steps' own work would otherwise hold up the steps that show them."""
        deadline = time.monotonic() + POSTER_YIELDS_SECONDS
        with self._calm:
            while self._unfinished and self._running and (left := deadline - time.monotonic()) > 0:
                self._calm.wait(left)

    def _poster_loop(self) -> None:
        while (item := self._to_draw.get()) is not None:
            self._calm_wait()
            close_old_connections()
            next_step, row = item
            try:
                self.make_poster(next_step, row)
            except Exception:  # noqa: BLE001 (its row still says the poster is due: the sweep sends it)
                logger.exception("Generation %s: making the poster failed", next_step.generation_id)
            finally:
                close_old_connections()
        connection.close()  # this thread's own

    def _posters_back(self) -> int:
        """Stop the poster threads once they finish the poster they make; send those still waiting
        to the broker. Returns how many were sent."""
        waiting = []
        while True:
            try:
                item = self._to_draw.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                waiting.append(item[0])
        for _ in self._drawing:
            self._to_draw.put(None)
        for thread in self._drawing:
            thread.join()
        for next_step in waiting:
            enqueue(next_step)
        return len(waiting)

    def _finish_one(self, answer: Answer) -> None:
        """Run `finish` with a usable database connection; if it fails before it ran the step, the
        broker takes the step (its claim makes a second run of it a no-op)."""
        close_old_connections()
        try:
            self.finish(answer)
            answer.close()
        except DatabaseError:
            logger.warning("Generation %s: the poll's answer goes through the broker", answer.held.generation_id)
            hand_back(answer)
        except Exception:  # noqa: BLE001 (a poll must never be dropped: its step takes it up)
            logger.exception("Generation %s: finishing the poll failed", answer.held.generation_id)
            hand_back(answer)
        finally:
            close_old_connections()


_poller: Poller | None = None


def poller_start(threads: int, finishers: int, posters: int) -> Poller:
    """Start this process's poller (a worker with the threads pool, once it is ready)."""
    global _poller
    _poller = Poller(
        threads=threads, finishers=finishers, finish=_run_poll_step, posters=posters, make_poster=_run_poster_step
    )
    _poller.start()
    return _poller


def polls_held() -> int:
    """Jobs whose polls this process's poller holds; 0 without one (the worker's metrics show it)."""
    return _poller.held if _poller is not None else 0


def poller_stop() -> None:
    """Hand this process's held polls back to the broker (a worker shutting down)."""
    global _poller
    if _poller is not None:
        _poller.stop()
        _poller = None


def _download(held: Held, state: TaskState) -> IO[bytes] | None:
    """The video of a task that succeeded, fetched by the HTTP thread that heard so (no database
    connection waits on the download); None when it cannot be had now: the store step tries again."""
    if state.status != SUCCEEDED or not state.output:
        return None
    from videos.services import steps  # the steps hand their polls to this module

    try:
        return steps.video_download(state.output[0])
    except RunwayError as exc:
        logger.info("Generation %s: the video could not be fetched with its poll (%s)", held.generation_id, exc)
        return None


def _run_poll_step(answer: Answer) -> None:
    """The poll step with Runway's answer (and video), and the steps that follow it at once
    (videos/services/steps.py)."""
    from videos.services import steps

    held, state = answer.held, answer.state
    assert state is not None
    steps.step_run_and_enqueue_next(
        step=Step.POLL, generation_id=held.generation_id, number=held.number, answer=asdict(state), video=answer.video
    )


def _run_poster_step(next_step: NextStep, row: VideoGeneration | None) -> None:
    from videos.services import steps

    steps.step_run_and_enqueue_next(
        step=next_step.step, generation_id=next_step.generation_id, number=next_step.number, row=row
    )


def hold(next_step: NextStep, row: VideoGeneration | None = None) -> bool:
    """Keep a job's next poll, or a poster due now, in this process, if it runs a poller; False
    when the caller must run or send it. `row` is the job as the step before wrote it, if known."""
    if _poller is None:
        return False
    if next_step.step == Step.MAKE_POSTER and next_step.countdown == 0:
        return _poller.hold_poster(next_step, row)
    if next_step.step != Step.POLL or not next_step.task_id or next_step.deadline is None:
        return False
    held = Held(
        generation_id=next_step.generation_id,
        number=next_step.number,
        task_id=next_step.task_id,
        status=Status(next_step.status),
        deadline=next_step.deadline,
        due=_poller.clock() + next_step.countdown,
    )
    return _poller.hold(held)
