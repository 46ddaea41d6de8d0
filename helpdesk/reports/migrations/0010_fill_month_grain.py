"""Fill the month grain from the rollups already kept (it is their sum per local month), so
existing figures stay whole without a recount. bench/reports.py fills its seeded database with
the same statements (``fill_statements``)."""

from django.db import migrations

COUNTERS = (
    "new, reopened, resolved, snoozed, customer_messages, replies, first_response_n, first_response_sum, "
    "reply_time_n, reply_time_sum, resolution_first_n, resolution_first_sum, resolution_last_n, "
    "resolution_last_sum, ratings, ratings_good"
)
_SUMMED = ", ".join(f"SUM({c})" for c in COUNTERS.split(", "))
DIMS = "team, channel, agent, role, priority"


def fill_statements(vendor: str) -> tuple[str, ...]:
    """Each takes the company's id (or NULL for every company) twice."""
    # The first day of the local day's month (local_day is already in the company's zone).
    month = "CAST(date_trunc('month', local_day) AS date)" if vendor == "postgresql" else "date(local_day, 'start of month')"
    return (
        f"INSERT INTO reports_monthhourbucket (company_id, month, local_hour, {DIMS}, {COUNTERS}) "  # noqa: S608
        f"SELECT company_id, {month}, local_hour, {DIMS}, {_SUMMED} FROM reports_hourlybucket "
        f"WHERE company_id = %s OR %s IS NULL GROUP BY company_id, {month}, local_hour, {DIMS}",
        f"INSERT INTO reports_monthbin (company_id, metric, month, {DIMS}, bin, count) "  # noqa: S608
        f"SELECT company_id, metric, {month}, {DIMS}, bin, SUM(count) FROM reports_dailybin "
        f"WHERE company_id = %s OR %s IS NULL GROUP BY company_id, metric, {month}, {DIMS}, bin",
        f"INSERT INTO reports_monthhourbin (company_id, metric, month, local_hour, {DIMS}, bin, count) "  # noqa: S608
        f"SELECT company_id, metric, {month}, local_hour, {DIMS}, bin, SUM(count) FROM reports_durationbin "
        f"WHERE company_id = %s OR %s IS NULL GROUP BY company_id, metric, {month}, local_hour, {DIMS}, bin",
    )


def fill(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for sql in fill_statements(schema_editor.connection.vendor):
            cursor.execute(sql, [None, None])


class Migration(migrations.Migration):
    dependencies = [("reports", "0009_month_grain")]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
