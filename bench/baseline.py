"""The design this project replaced, for comparison only: one task per video that blocks until it ends.

The original integration guide (like the `wait_for_task_output` helper of Runway's SDK) creates the
task, then sleeps between polls in the same worker slot until the video is done, so a worker
with N slots makes at most N videos at a time. This task does the same work at the end as ours
(keep a copy of the video and a poster frame) so the two differ only in how they wait. The
benchmark's worker loads it with `--include bench.baseline`; the product never does.
"""

import time

from celery import shared_task
from django.conf import settings
from django.core.files.base import ContentFile
from django.utils import timezone

from videos.catalog import CANCELLED, FAILED, SUCCEEDED
from videos.models import Status, VideoGeneration
from videos.posters import poster_from_video
from videos.runway import get_client
from videos.services import steps


@shared_task(ignore_result=True)
def blocking_generation(generation_id: int) -> None:
    generation = VideoGeneration.objects.get(pk=generation_id)
    client = get_client()
    payload = steps.generation_payload(generation=generation)
    generation.runway_task_id = client.create_video(endpoint=generation.endpoint, payload=payload).id
    generation.status = Status.PENDING
    generation.submitted_at = timezone.now()
    generation.save()
    while True:
        time.sleep(settings.RUNWAY_POLL_INTERVAL)
        state = client.get_task(generation.runway_task_id)
        generation.poll_count += 1
        if state.status in (SUCCEEDED, FAILED, CANCELLED):
            break
    if state.status == SUCCEEDED:
        generation.video_file.name = steps.video_store(generation=generation, url=state.output[0])
        with generation.video_file.open("rb") as video:
            generation.poster.save("poster.jpg", ContentFile(poster_from_video(video)), save=False)
        generation.status = Status.SUCCEEDED
    else:
        generation.status = Status.FAILED
    generation.finished_at = timezone.now()
    generation.save()
