"""ContactLastTeam and ContactLastAgent: each contact's last day per credited team and agent (a
teams or assigned reader's contacts of a period ending today, RollupSource.contacts), filled from
the contact days already kept. bench/reports.py fills its seeded database with the same
statements (``FILL``)."""

from django.db import migrations, models

# Each takes the company's id (or NULL for every company) twice.
FILL = tuple(
    f"INSERT INTO reports_contactlast{table} (company_id, {dims}, contact_id, last_day) "  # noqa: S608
    f"SELECT company_id, {dims}, contact_id, MAX(local_day) FROM reports_contactday "
    f"WHERE (company_id = %s OR %s IS NULL) AND {table} <> 0 GROUP BY company_id, {dims}, contact_id"
    for table, dims in (("team", "team"), ("agent", "agent, team"))
)


def fill(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for sql in FILL:
            cursor.execute(sql, [None, None])


class Migration(migrations.Migration):

    dependencies = [
        ('reports', '0013_month_grain_by_scope'),
    ]

    operations = [
        migrations.CreateModel(
            name='ContactLastAgent',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('company_id', models.IntegerField()),
                ('agent', models.IntegerField()),
                ('team', models.IntegerField()),
                ('contact_id', models.BigIntegerField()),
                ('last_day', models.DateField()),
            ],
            options={
                'indexes': [models.Index(fields=['company_id', 'agent', 'last_day'], include=('team', 'contact_id'), name='reports_contactlastagent_day')],
                'constraints': [models.UniqueConstraint(fields=('company_id', 'agent', 'team', 'contact_id'), name='reports_contactlastagent_key')],
            },
        ),
        migrations.CreateModel(
            name='ContactLastTeam',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('company_id', models.IntegerField()),
                ('team', models.IntegerField()),
                ('contact_id', models.BigIntegerField()),
                ('last_day', models.DateField()),
            ],
            options={
                'indexes': [models.Index(fields=['company_id', 'team', 'last_day'], include=('contact_id',), name='reports_contactlastteam_day')],
                'constraints': [models.UniqueConstraint(fields=('company_id', 'team', 'contact_id'), name='reports_contactlastteam_key')],
            },
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
