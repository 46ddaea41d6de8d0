"""Full-text search over messages on PostgreSQL: a GIN index on the Russian configuration.

PostgreSQL's ``russian`` configuration stems Cyrillic words with the Russian Snowball
stemmer and Latin words with the English one, so one index serves both languages and
mixed messages. < and > are read as spaces: messages are plain text, and the parser would
skip words it took for HTML tags. ``helpdesk.conversations.search.Document`` renders the
very same expression, which is what lets the planner use this index. Elsewhere (SQLite) search falls back to a plain
scan and this migration does nothing.

Built CONCURRENTLY (outside a transaction) so that deploying it on a busy installation
does not stop writes to the messages table.
"""

from django.db import migrations

INDEX = "msg_search_ru"
CREATE = (
    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON conversations_message "
    "USING gin (to_tsvector('russian'::regconfig, translate(body, '<>', '  ')))"
)
DROP = f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}"


def on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("conversations", "0003_message_while_blocked_canned_unique_c")]

    operations = [migrations.RunPython(on_postgresql(CREATE), on_postgresql(DROP), elidable=False)]
