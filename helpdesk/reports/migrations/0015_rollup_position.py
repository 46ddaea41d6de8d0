"""The applier's position in the event log (applier.py). Until now every event's rollups were
written in its own transaction, so they are kept up to the end of the log as it stands: the
position starts there (a snapshot on PostgreSQL, the last id elsewhere).

Stop the web processes and workers of the previous release before migrating: an event they
wrote after this snapshot, rollups included, would be applied a second time.
"""

from django.db import migrations, models


def start_at_the_end_of_the_log(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_current_snapshot()::text")
        else:
            cursor.execute("SELECT COALESCE(MAX(id), 0) FROM events_event")
        position = cursor.fetchone()[0]
    apps.get_model("reports", "RollupPosition").objects.create(pk=1, position=str(position))


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0014_contactlast_by_scope"),
        ("events", "0005_relay_txid_notify"),
    ]

    operations = [
        migrations.CreateModel(
            name="RollupPosition",
            fields=[
                ("id", models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
                ("position", models.TextField()),
                ("applied_at", models.DateTimeField(blank=True, null=True)),
            ],
        ),
        migrations.RunPython(start_at_the_end_of_the_log, migrations.RunPython.noop),
    ]
