"""Full-text search over messages on PostgreSQL: a stored tsvector column and its GIN index.

``search_document`` is a generated column, ``to_tsvector('russian', body)`` with < and >
read as spaces, kept by PostgreSQL itself on every insert and edit. The ``russian``
configuration stems Cyrillic words with the Russian Snowball stemmer and Latin words with
the English one, so one index serves both languages and mixed messages. < and > are read
as spaces because messages are plain text, and the parser would skip words it took for
HTML tags.

Stored rather than an expression index because searches also check it row by row (newest
messages first, for common words): reading a stored vector costs far less than parsing and
stemming the text again (bench/README.md, "Search benchmark", has the figures).

The column is not a model field: Django never writes it and ``search.Document`` reads it.
Contacts get the same treatment for their name, e-mail and phone: a stored
``search_text`` column with a trigram index (pg_trgm, one of PostgreSQL's standard
extensions), which serves "contains" matches of three letters and more.

On SQLite search matches substrings instead, and this migration does nothing. Adding the
columns rewrites the two tables once, under a lock; the indexes are built CONCURRENTLY.
"""

from django.db import migrations

INDEX = "msg_search_ru"
COLUMN = "search_document"
ADD_COLUMN = (
    f"ALTER TABLE conversations_message ADD COLUMN IF NOT EXISTS {COLUMN} tsvector "
    "GENERATED ALWAYS AS (to_tsvector('russian'::regconfig, translate(body, '<>', '  '))) STORED"
)
DROP_COLUMN = f"ALTER TABLE conversations_message DROP COLUMN IF EXISTS {COLUMN}"
CREATE = f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON conversations_message USING gin ({COLUMN})"
DROP = f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}"

CONTACT_COLUMN = "search_text"
CONTACT_INDEX = "contact_search_trgm"
TRIGRAMS = "CREATE EXTENSION IF NOT EXISTS pg_trgm"
ADD_CONTACT_COLUMN = (
    f"ALTER TABLE conversations_contact ADD COLUMN IF NOT EXISTS {CONTACT_COLUMN} text "
    "GENERATED ALWAYS AS (name || ' ' || email || ' ' || phone) STORED"
)
DROP_CONTACT_COLUMN = f"ALTER TABLE conversations_contact DROP COLUMN IF EXISTS {CONTACT_COLUMN}"
CREATE_CONTACT_INDEX = (
    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {CONTACT_INDEX} ON conversations_contact "
    f"USING gin ({CONTACT_COLUMN} gin_trgm_ops)"
)
DROP_CONTACT_INDEX = f"DROP INDEX CONCURRENTLY IF EXISTS {CONTACT_INDEX}"


def on_postgresql(*statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("conversations", "0003_message_while_blocked_canned_unique_c")]

    operations = [
        migrations.RunPython(on_postgresql(ADD_COLUMN, CREATE), on_postgresql(DROP, DROP_COLUMN), elidable=False),
        migrations.RunPython(
            on_postgresql(TRIGRAMS, ADD_CONTACT_COLUMN, CREATE_CONTACT_INDEX),
            on_postgresql(DROP_CONTACT_INDEX, DROP_CONTACT_COLUMN),
            elidable=False,
        ),
    ]
