"""Each job gets a public UUID (the API's task id) and a note of where it was asked for.

The UUID column is added empty, filled row by row, then made unique and required: a default on
AddField would give every existing row the same value."""

import uuid

from django.db import migrations, models


def fill_public_ids(apps, schema_editor):  # type: ignore[no-untyped-def]
    VideoGeneration = apps.get_model("videos", "VideoGeneration")
    for pk in VideoGeneration.objects.filter(public_id__isnull=True).values_list("pk", flat=True).iterator():
        VideoGeneration.objects.filter(pk=pk).update(public_id=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [("videos", "0019_last_frame")]

    operations = [
        migrations.AddField(
            model_name="videogeneration",
            name="public_id",
            field=models.UUIDField(null=True, editable=False),
        ),
        migrations.RunPython(fill_public_ids, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="videogeneration",
            name="public_id",
            field=models.UUIDField(default=uuid.uuid4, unique=True, editable=False),
        ),
        migrations.AddField(
            model_name="videogeneration",
            name="origin",
            field=models.CharField(
                choices=[("web", "Web"), ("api", "API"), ("shell", "Command line")],
                default="web",
                editable=False,
                help_text="Where it was asked for.",
                max_length=8,
            ),
        ),
    ]
