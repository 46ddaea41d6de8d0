"""Fill the daily buckets and bins from the hourly ones already kept (they are their sums per
local day), so existing figures stay whole without a recount."""

from django.db import migrations

COUNTERS = (
    "new, reopened, resolved, snoozed, customer_messages, replies, first_response_n, first_response_sum, "
    "reply_time_n, reply_time_sum, resolution_first_n, resolution_first_sum, resolution_last_n, "
    "resolution_last_sum, ratings, ratings_good"
)
DIMS = "team, channel, agent, role, priority"


def fill(apps, schema_editor):
    summed = ", ".join(f"SUM({c})" for c in COUNTERS.split(", "))
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO reports_dailybucket (company_id, local_day, {DIMS}, {COUNTERS}) "  # noqa: S608
            f"SELECT company_id, local_day, {DIMS}, {summed} FROM reports_hourlybucket "
            f"GROUP BY company_id, local_day, {DIMS}"
        )
        cursor.execute(
            f"INSERT INTO reports_dailybin (company_id, metric, local_day, {DIMS}, bin, count) "  # noqa: S608
            f"SELECT company_id, metric, local_day, {DIMS}, bin, SUM(count) FROM reports_durationbin "
            f"GROUP BY company_id, metric, local_day, {DIMS}, bin"
        )


class Migration(migrations.Migration):
    dependencies = [("reports", "0004_dailybin")]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
