"""A job's request settings move from one column each (ratio, duration, seed) to one JSON value,
`params`, named as Runway names them, so that a model's own settings (resolution, audio, a
negative prompt, ...) need no column of their own."""

from django.db import migrations, models


def columns_to_params(apps, schema_editor):
    VideoGeneration = apps.get_model("videos", "VideoGeneration")
    jobs = list(VideoGeneration.objects.only("pk", "ratio", "duration", "seed", "params"))
    for job in jobs:
        found = {"ratio": job.ratio or None, "duration": job.duration, "seed": job.seed}
        job.params = {name: value for name, value in found.items() if value is not None}
    VideoGeneration.objects.bulk_update(jobs, ["params"], batch_size=500)


def params_to_columns(apps, schema_editor):
    VideoGeneration = apps.get_model("videos", "VideoGeneration")
    jobs = list(VideoGeneration.objects.only("pk", "params"))
    for job in jobs:
        job.ratio = job.params.get("ratio", "")
        job.duration = job.params.get("duration")
        job.seed = job.params.get("seed")
    VideoGeneration.objects.bulk_update(jobs, ["ratio", "duration", "seed"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        ("videos", "0014_prompt_folded"),
    ]

    operations = [
        migrations.AddField(
            model_name="videogeneration",
            name="params",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="The request's settings, as sent to Runway. The seed is chosen before submitting (when "
                "the model takes one) so a re-run can reproduce it.",
            ),
        ),
        migrations.RunPython(columns_to_params, params_to_columns),
        migrations.RemoveField(model_name="videogeneration", name="ratio"),
        migrations.RemoveField(model_name="videogeneration", name="duration"),
        migrations.RemoveField(model_name="videogeneration", name="seed"),
    ]
