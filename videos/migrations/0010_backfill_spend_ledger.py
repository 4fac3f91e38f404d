"""Reservations in the spend ledger for the jobs made before it existed (the last 31 days), so that
the daily limit and this month's budget count them after the upgrade as they counted before."""

from datetime import timedelta

from django.db import migrations
from django.utils import timezone

# The published prices when the ledger came (videos/catalog.py then), frozen here: a migration
# must not change with the code.
CREDITS_PER_SECOND = {"gen4_turbo": 5, "gen4.5": 12, "veo3.1": 40, "veo3.1_fast": 15}
DEFAULT_SECONDS = {"gen4_turbo": 5, "gen4.5": 5, "veo3.1": 4, "veo3.1_fast": 4}
NOTE = "Written at the upgrade that brought the ledger: our estimate."


def backfill(apps, schema_editor):
    VideoGeneration = apps.get_model("videos", "VideoGeneration")
    SpendEntry = apps.get_model("videos", "SpendEntry")
    since = timezone.now() - timedelta(days=31)
    entries = []
    jobs = VideoGeneration.objects.filter(created_at__gte=since).select_related("owner")
    for job in jobs.iterator():
        seconds = job.duration or DEFAULT_SECONDS.get(job.model, 5)
        # A job that never reached Runway cost nothing, but it counted towards the daily limit.
        credits = CREDITS_PER_SECOND.get(job.model, 0) * seconds if job.runway_task_id else 0
        entries.append(
            SpendEntry(
                user_id=job.owner_id,
                username=job.owner.username,
                generation_id=job.pk,
                generation_number=job.pk,
                job_created_at=job.created_at,
                model=job.model,
                kind="reserved",
                credits=credits,
                note=NOTE,
            )
        )
    SpendEntry.objects.bulk_create(entries, batch_size=500, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [("videos", "0009_spend_ledger")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
