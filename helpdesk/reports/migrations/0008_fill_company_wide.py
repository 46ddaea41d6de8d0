"""Fill the company-wide rollups from the ones already kept (they are their sums over every
dimension), so existing figures stay whole without a recount. bench/reports.py fills its
seeded database with the same statements (``FILL``)."""

from django.db import migrations

COUNTERS = (
    "new, reopened, resolved, snoozed, customer_messages, replies, first_response_n, first_response_sum, "
    "reply_time_n, reply_time_sum, resolution_first_n, resolution_first_sum, resolution_last_n, "
    "resolution_last_sum, ratings, ratings_good"
)
_SUMMED = ", ".join(f"SUM({c})" for c in COUNTERS.split(", "))

# Each takes the company's id (or NULL for every company) twice.
FILL = (
    f"INSERT INTO reports_companyhour (company_id, at, local_day, local_hour, weekday, {COUNTERS}) "  # noqa: S608
    f"SELECT company_id, at, MIN(local_day), MIN(local_hour), MIN(weekday), {_SUMMED} FROM reports_hourlybucket "
    "WHERE company_id = %s OR %s IS NULL GROUP BY company_id, at",
    "INSERT INTO reports_companydaybin (company_id, metric, local_day, bin, count) "
    "SELECT company_id, metric, local_day, bin, SUM(count) FROM reports_dailybin "
    "WHERE company_id = %s OR %s IS NULL GROUP BY company_id, metric, local_day, bin",
    "INSERT INTO reports_companyhourbin (company_id, metric, at, local_day, local_hour, bin, count) "
    "SELECT company_id, metric, at, MIN(local_day), MIN(local_hour), bin, SUM(count) FROM reports_durationbin "
    "WHERE company_id = %s OR %s IS NULL GROUP BY company_id, metric, at, bin",
)


def fill(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for sql in FILL:
            cursor.execute(sql, [None, None])


class Migration(migrations.Migration):
    dependencies = [("reports", "0007_company_wide")]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
