from django.db import migrations, models


def fold_prompts(apps, schema_editor):
    """Every job made before the column: its prompt case-folded, as services/creation.py stores it."""
    VideoGeneration = apps.get_model("videos", "VideoGeneration")
    jobs = list(VideoGeneration.objects.only("pk", "prompt"))
    for job in jobs:
        job.prompt_folded = job.prompt.casefold()
    VideoGeneration.objects.bulk_update(jobs, ["prompt_folded"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        ("videos", "0013_refunds_and_usage"),
    ]

    operations = [
        migrations.AddField(
            model_name="videogeneration",
            name="prompt_folded",
            field=models.TextField(blank=True, editable=False),
        ),
        migrations.RunPython(fold_prompts, migrations.RunPython.noop),
    ]
