from pathlib import Path
from time import monotonic, sleep
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from django.utils.timesince import timesince

from videos import catalog
from videos.catalog import VideoRequest
from videos.models import Status, VideoGeneration
from videos.services import account, creation, ledger, queue, selectors, steps

SERVICE_ACCOUNT = "runway-cli"
WATCH_INTERVAL = 1.0
# How long --wait gives a worker beyond the job's own limit before saying none is running.
WORKER_GRACE = 60
BAR_WIDTH = 20


class Command(BaseCommand):
    help = "Generate a video with Runway: validate, store and enqueue it like the dashboard does."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "prompt",
            nargs="?",
            help="What the video shows (optional with --credits, and with --image for a model that needs none).",
        )
        parser.add_argument("--image", help="A JPEG/PNG/WebP file or an https URL: make the video from this image.")
        parser.add_argument("--model", choices=catalog.MODELS, help="Runway model (default from settings).")
        parser.add_argument("--ratio", help=f"Width:height (default {catalog.DEFAULT_RATIO}).")
        parser.add_argument("--duration", type=int, help=f"Seconds (default {catalog.DEFAULT_DURATION}).")
        parser.add_argument("--seed", type=int, help="Seed, to reproduce a result (default: random, stored).")
        parser.add_argument("--user", help=f"Owner's username (default: the service account {SERVICE_ACCOUNT!r}).")
        parser.add_argument("--wait", action="store_true", help="Follow the job until it ends.")
        parser.add_argument(
            "--inline", action="store_true", help="Run the job in this process (no worker needed); implies --wait."
        )
        parser.add_argument("--credits", action="store_true", help="Print the Runway account's credit balance.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["prompt"] is None and not options["credits"] and not options["image"]:
            raise CommandError("Give a PROMPT for the video (or --credits to see the credit balance).")
        if options["credits"]:
            self._print_credits()
        if options["prompt"] is None and not options["image"]:
            return
        generation = self._create(options)
        self.stdout.write(str(generation.pk))
        if queue.queue_unreachable():
            self.stderr.write(queue.QUEUE_DOWN_MESSAGE)
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
        request = VideoRequest(
            prompt=options["prompt"] or "",
            model=options["model"],
            ratio=options["ratio"],
            duration=options["duration"],
            seed=options["seed"],
            image=image,
            image_url=image_url,
        )
        self._print_estimate(request)
        try:
            return creation.generation_create(owner=owner, request=request, enqueue=not options["inline"])
        except ValidationError as exc:
            problems = " ".join(
                " ".join(msgs) if field == NON_FIELD_ERRORS else f"{field}: {' '.join(msgs)}"
                for field, msgs in exc.message_dict.items()
            )
            raise CommandError(problems) from None
        finally:
            if image is not None:
                image.close()

    def _print_estimate(self, request: VideoRequest) -> None:
        """What the video will cost at the published prices, before anything is sent (on stderr:
        stdout stays the job's number, then where its video is)."""
        resolved = request.resolved(text_model=settings.RUNWAY_TEXT_MODEL, image_model=settings.RUNWAY_IMAGE_MODEL)
        if resolved.model not in catalog.CREDITS_PER_SECOND or resolved.duration is None:
            return  # the request check says what is wrong with it
        estimate = ledger.catalog_estimate(model=resolved.model, duration=resolved.duration, endpoint=resolved.endpoint)
        self.stderr.write(
            f"Estimate: {ledger.credits_text(estimate)} for {catalog.label_for(resolved.model)}, "
            f"{resolved.duration} s (Runway's own figure is recorded when it accepts the request)"
        )

    def _print_cost(self, generation: VideoGeneration) -> None:
        """What the job cost, from the spend ledger, once it has ended."""
        cost = selectors.generation_cost(generation=generation)
        if cost is None:
            return
        whose = "" if cost.from_runway else ", our estimate: Runway gave no figure"
        if cost.final:
            self.stderr.write(f"Cost: {ledger.credits_text(cost.credits)}{whose}")
        else:
            self.stderr.write(f"Cost so far: {ledger.credits_text(cost.credits)}{whose} (not final yet)")

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

    def _owner(self, username: str | None) -> Any:
        User = get_user_model()
        if username:
            try:
                return User.objects.get(username=username)
            except User.DoesNotExist:
                raise CommandError(f"No user named {username!r}.") from None
        user, created = User.objects.get_or_create(username=SERVICE_ACCOUNT)
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        return user

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
        deadline = monotonic() + settings.RUNWAY_MAX_WAIT + WORKER_GRACE
        try:
            progress.show(generation)
            while not generation.is_final:
                if monotonic() > deadline:
                    raise CommandError(
                        f"Video #{generation.pk} is still {generation.status}: is a worker running "
                        "(celery -A runway_project worker)? Or run with --inline."
                    )
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
            self.stdout.write(self.style.SUCCESS(f"#{generation.pk} succeeded: {_where(generation)}"))
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


def _image(given: str | None) -> "tuple[File[Any] | None, str]":
    """The --image option as a file to upload, or as a URL for Runway to fetch."""
    if not given:
        return None, ""
    if "://" in given:
        return None, given
    path = Path(given)
    if not path.is_file():
        raise CommandError(f"No image file at {path}.")
    return File(path.open("rb"), name=path.name), ""


def _where(generation: VideoGeneration) -> str:
    """Where our copy of the video is: a local path, or the storage's URL."""
    try:
        return str(generation.video_file.path)
    except NotImplementedError:
        return str(generation.video_file.url)
