"""`manage.py generate_video`: a video from the command line, made, checked, limited and billed as
the dashboard makes one (the same service), owned by a user whose dashboard then shows it."""

import argparse
import logging
import math
from pathlib import Path
from time import monotonic, sleep
from typing import IO, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from django.utils.timesince import timesince

from videos import catalog, clips
from videos.catalog import VideoRequest
from videos.models import Origin, Status, VideoGeneration
from videos.services import account, creation, ledger, queue, selectors, steps

WATCH_INTERVAL = 1.0
# How long --wait gives a worker beyond the job's own limits before saying none is running; and
# after how long in line it says, once, that no worker has taken the job yet.
WORKER_GRACE = 60
WORKER_HINT_AFTER = 30.0
BAR_WIDTH = 20
# Log lines of the `videos` loggers by --verbosity: none but warnings at 1 (the default), the
# steps' at 2, every poll at 3.
LOG_LEVELS = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO, 3: logging.DEBUG}


def _plain(text: str) -> str:
    return text


class Command(BaseCommand):
    help = (
        "Generate a video with Runway: validate, store and enqueue it as the dashboard does, owned by --user "
        "(default: the first superuser), so that it shows on that user's dashboard."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "prompt",
            nargs="?",
            help="What the video shows (optional with --credits, and with --image for a model that needs none).",
        )
        parser.add_argument("--image", help="A JPEG/PNG/WebP file or an https URL: make the video from this image.")
        parser.add_argument(
            "--video", help="An MP4, MOV or WebM clip: edit it (video to video) as the prompt describes."
        )
        parser.add_argument("--model", choices=catalog.MODELS, help="Runway model (default from settings).")
        parser.add_argument("--ratio", help=f"Width:height (default {catalog.DEFAULT_RATIO}).")
        parser.add_argument("--duration", type=int, help=f"Seconds (default {catalog.DEFAULT_DURATION}).")
        parser.add_argument("--seed", type=int, help="Seed, to reproduce a result (default: random, stored).")
        parser.add_argument("--resolution", help="Output resolution, for the models that take one (e.g. 720p).")
        parser.add_argument(
            "--audio",
            action=argparse.BooleanOptionalAction,
            help="With sound or without (--no-audio), for the models that have the choice (default: the model's).",
        )
        parser.add_argument("--negative-prompt", default="", help="What the video should avoid (Veo).")
        parser.add_argument(
            "--user", help="The owner's username: the video shows on their dashboard (default: the first superuser)."
        )
        parser.add_argument("--wait", action="store_true", help="Follow the job until it ends.")
        parser.add_argument(
            "--inline", action="store_true", help="Run the job in this process (no worker needed); implies --wait."
        )
        parser.add_argument("--credits", action="store_true", help="Print the Runway account's credit balance.")

    def handle(self, *args: Any, **options: Any) -> None:
        # Say only what a person reads here: the product's log lines go to stderr, and only warnings
        # unless -v 2 or 3 asks for more. Nothing here is coloured but a real error.
        products_log = logging.getLogger("videos")
        level = products_log.level
        products_log.setLevel(LOG_LEVELS.get(options["verbosity"], logging.DEBUG))
        try:
            self._generate(options)
        finally:
            products_log.setLevel(level)

    def _generate(self, options: dict[str, Any]) -> None:
        has_input = bool(options["image"] or options["video"])
        if options["prompt"] is None and not options["credits"] and not has_input:
            raise CommandError("Give a PROMPT for the video (or --credits to see the credit balance).")
        if options["credits"]:
            self._print_credits()
        if options["prompt"] is None and not has_input:
            return
        generation = self._create(options)
        self.stdout.write(str(generation.pk))
        if queue.queue_unreachable():
            self._note(queue.QUEUE_DOWN_MESSAGE)
        if options["inline"]:
            self._run_inline(generation)
        elif options["wait"]:
            self._watch(generation)
        else:
            self._report_if_final(generation)

    def _create(self, options: dict[str, Any]) -> VideoGeneration:
        """The job the options ask for, made through the same service as the form's."""
        owner = self._owner(options["user"])
        image, image_url = _image(options["image"])
        video = _file(options["video"], "clip")
        request = VideoRequest(
            prompt=options["prompt"] or "",
            model=options["model"],
            ratio=options["ratio"],
            duration=options["duration"],
            seed=options["seed"],
            image=image,
            image_url=image_url,
            video=video,
            resolution=options["resolution"],
            audio=options["audio"],
            negative_prompt=options["negative_prompt"],
        )
        self._print_estimate(request)
        try:
            return creation.generation_create(
                owner=owner, request=request, enqueue=not options["inline"], origin=Origin.SHELL
            )
        except ValidationError as exc:
            problems = " ".join(
                " ".join(msgs) if field == NON_FIELD_ERRORS else f"{field}: {' '.join(msgs)}"
                for field, msgs in exc.message_dict.items()
            )
            raise CommandError(problems) from None
        finally:
            for opened in (image, video):
                if opened is not None:
                    opened.close()

    def _print_estimate(self, request: VideoRequest) -> None:
        """What the video will cost at the published prices, before anything is sent (on stderr:
        stdout stays the job's number, then where its video is)."""
        resolved = request.resolved(
            text_model=settings.RUNWAY_TEXT_MODEL,
            image_model=settings.RUNWAY_IMAGE_MODEL,
            video_model=settings.RUNWAY_VIDEO_MODEL,
        )
        offer = catalog.offer_for(model=resolved.model or "", endpoint=resolved.endpoint)
        clip_seconds = _clip_seconds(resolved.video)
        if offer is None or (resolved.video is not None and clip_seconds is None):
            return  # the request check says what is wrong with it
        estimate = ledger.catalog_estimate(
            model=offer.model,
            duration=resolved.duration,
            endpoint=offer.endpoint,
            audio=resolved.audio,
            clip_seconds=clip_seconds,
        )
        length = resolved.duration or (math.ceil(clip_seconds) if clip_seconds else None)
        seconds = f", {length} s" if length else ""
        bound = "" if ledger.price(offer, audio=resolved.audio).known else "at most "
        self._note(
            f"Estimate: {bound}{ledger.credits_text(estimate)} for {offer.label}{seconds} "
            "(Runway's own figure is recorded when it accepts the request)"
        )

    def _print_cost(self, generation: VideoGeneration) -> None:
        """What the job cost, from the spend ledger, once it has ended."""
        cost = selectors.generation_cost(generation=generation)
        if cost is None:
            return
        whose = "" if cost.from_runway else ", our estimate: Runway gave no figure"
        if cost.final:
            self._note(f"Cost: {ledger.credits_text(cost.credits)}{whose}")
        else:
            self._note(f"Cost so far: {ledger.credits_text(cost.credits)}{whose} (not final yet)")

    def _print_credits(self) -> None:
        # A command line may wait on Runway: it asks now, and keeps the figure for the dashboard too.
        balance = account.credit_balance_refresh()
        if balance.credits is None or balance.fetched_at is None:
            self.stdout.write(f"Runway credits: unknown (Runway did not give a balance: {balance.last_error})")
            return
        # 1 credit = 1 US cent.
        figure = f"Runway credits: {balance.credits} (US${balance.credits / 100:,.2f})"
        if balance.last_error:
            age = timesince(balance.fetched_at).replace("\xa0", " ")
            figure += f" {age} ago; Runway did not answer now: {balance.last_error}"
        self.stdout.write(figure)

    def _note(self, text: str) -> None:
        """A line for the person at the terminal, on stderr (stdout keeps the job's number, then where
        its video is, for scripts), in plain text: Django would colour it as an error."""
        self.stderr.write(text, style_func=_plain)

    def _owner(self, username: str | None) -> Any:
        """The user whose video it is: --user, or the first superuser (`make run`'s `admin`)."""
        User = get_user_model()
        if username:
            try:
                return User.objects.get(username=username)
            except User.DoesNotExist:
                raise CommandError(f"No user named {username!r}.") from None
        first = User.objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
        if first is None:
            raise CommandError(
                "No user to own the video: give one with --user NAME, or make one first "
                "(python manage.py createsuperuser)."
            )
        return first

    def _run_inline(self, generation: VideoGeneration) -> None:
        progress = Progress(self.stdout)
        try:
            progress.show(generation)
            next_step = generation.next_step
            number = generation.step
            while next_step is not None:
                scheduled = steps.step_run(step=next_step, generation_id=generation.pk, number=number)
                generation.refresh_from_db()
                progress.show(generation)
                if scheduled is None:
                    break
                next_step, number = scheduled.step, scheduled.number
                sleep(scheduled.countdown)
        finally:
            progress.end()
        self._report_if_final(generation)

    def _watch(self, generation: VideoGeneration) -> None:
        progress = Progress(self.stdout)
        started = monotonic()
        deadline = started + settings.RUNWAY_MAX_QUEUE_WAIT + settings.RUNWAY_MAX_WAIT + WORKER_GRACE
        hinted = False
        try:
            progress.show(generation)
            while not generation.is_final:
                if monotonic() > deadline:
                    raise CommandError(f"Video #{generation.pk} is still {generation.status}: {_no_worker_hint()}")
                if not hinted and generation.status == Status.QUEUED and monotonic() - started > WORKER_HINT_AFTER:
                    progress.end()
                    self._note(f"No worker has taken it in {WORKER_HINT_AFTER:.0f} s: {_no_worker_hint()}")
                    hinted = True
                sleep(WATCH_INTERVAL)
                generation.refresh_from_db()
                progress.show(generation)
        finally:
            progress.end()
        self._report_if_final(generation)

    def _report_if_final(self, generation: VideoGeneration) -> None:
        if generation.is_final:
            self._print_cost(generation)
        if generation.status == Status.SUCCEEDED:
            self.stdout.write(f"#{generation.pk} succeeded: {_where(generation)}")
        elif generation.is_final:
            raise CommandError(f"#{generation.pk} {generation.status}: {generation.message}")


class Progress:
    """A job's progress: on a terminal one bar redrawn in place, otherwise a line per change."""

    def __init__(self, stdout: OutputWrapper) -> None:
        self.stdout = stdout
        self.tty = stdout.isatty()
        self.started = monotonic()
        self.shown: tuple[str, int] | None = None
        self.width = 0  # of the longest bar drawn, to blank out what a shorter one leaves behind

    def show(self, generation: VideoGeneration) -> None:
        label = generation.get_status_display().lower()
        if self.tty:
            percent = 100 if generation.status == Status.SUCCEEDED else generation.progress
            filled = BAR_WIDTH * percent // 100
            seconds = int(monotonic() - self.started)
            bar = f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {percent}%  {label}  {seconds // 60}:{seconds % 60:02}"
            self.width = max(self.width, len(bar))
            self.stdout.write("\r" + bar.ljust(self.width), ending="")
            self.stdout.flush()
            return
        now = (generation.status, generation.progress)
        if now != self.shown and not generation.is_final:
            progress = f" {generation.progress}%" if generation.status == Status.RUNNING else ""
            self.stdout.write(f"#{generation.pk} {label}{progress}")
        self.shown = now

    def end(self) -> None:
        """Finish the bar's line, so that what follows starts on a line of its own."""
        if self.tty and self.width:
            self.stdout.write("")
            self.width = 0


def _no_worker_hint() -> str:
    """What to check when no worker takes a job: one running, and on this installation's queue."""
    return (
        f"is a worker running for this installation, on queue {settings.CELERY_TASK_DEFAULT_QUEUE!r} "
        "(celery -A runway_project worker, with the same DATABASE_URL, or `make run`)? Or run with --inline."
    )


def _image(given: str | None) -> "tuple[File[Any] | None, str]":
    """The --image option as a file to upload, or as a URL for Runway to fetch."""
    if given and "://" in given:
        return None, given
    return _file(given, "image"), ""


def _file(given: str | None, what: str) -> "File[Any] | None":
    if not given:
        return None
    path = Path(given)
    if not path.is_file():
        raise CommandError(f"No {what} file at {path}.")
    return File(path.open("rb"), name=path.name)


def _clip_seconds(video: "IO[bytes] | None") -> float | None:
    """The clip's length, for the estimate; None without a clip or for one that is not (the service says why)."""
    if video is None:
        return None
    try:
        return clips.checked_clip(video).seconds
    except clips.ClipProblem:
        return None


def _where(generation: VideoGeneration) -> str:
    """Where our copy of the video is: a local path, or the storage's URL."""
    try:
        return str(generation.video_file.path)
    except NotImplementedError:
        return str(generation.video_file.url)
