"""ContactLast: per contact, its last day with customer messages (the contacts tile of a period
ending today, RollupSource.contacts), filled from the contact days already kept, so existing
figures stay whole without a recount. bench/reports.py fills its seeded database with the same
statement (``FILL``)."""

from django.db import migrations, models

# Takes the company's id (or NULL for every company) twice.
FILL = (
    "INSERT INTO reports_contactlast (company_id, contact_id, last_day) "
    "SELECT company_id, contact_id, MAX(local_day) FROM reports_contactday "
    "WHERE company_id = %s OR %s IS NULL GROUP BY company_id, contact_id"
)


def fill(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(FILL, [None, None])


class Migration(migrations.Migration):

    dependencies = [
        ('reports', '0011_contactday_by_scope'),
    ]

    operations = [
        migrations.CreateModel(
            name='ContactLast',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('company_id', models.IntegerField()),
                ('contact_id', models.BigIntegerField()),
                ('last_day', models.DateField()),
            ],
            options={
                'indexes': [models.Index(fields=['company_id', 'last_day'], name='reports_contactlast_day')],
                'constraints': [models.UniqueConstraint(fields=('company_id', 'contact_id'), name='reports_contactlast_key')],
            },
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
