"""Audit rows of deleted and restored messages held the first 80 characters of the text.

Anyone with the audit-log permission could read them, whatever their scope and even
without "see deleted messages". The rows now name the message by id and conversation
only; this strips the text from the rows written before. Nothing of value is lost: the
message itself keeps its text for those who may see it.
"""

from __future__ import annotations

import re

from django.db import migrations

MESSAGE_ACTIONS = ("message.deleted", "message.restored")
CONVERSATION = re.compile(r"#(\d+)")


def strip_message_text(apps, schema_editor):
    AuditEntry = apps.get_model("events", "AuditEntry")
    rows = AuditEntry.objects.filter(action__in=MESSAGE_ACTIONS).only("id", "object_repr", "after")
    batch = []
    for entry in rows.iterator(chunk_size=2000):
        found = CONVERSATION.match(entry.object_repr)
        entry.object_repr = f"#{found[1]}" if found else ""
        if found and not entry.after:
            entry.after = {"conversation": int(found[1])}
        batch.append(entry)
        if len(batch) == 2000:
            AuditEntry.objects.bulk_update(batch, ["object_repr", "after"])
            batch = []
    AuditEntry.objects.bulk_update(batch, ["object_repr", "after"])


class Migration(migrations.Migration):
    dependencies = [("events", "0003_audit_by_object")]

    operations = [migrations.RunPython(strip_message_text, migrations.RunPython.noop, elidable=True)]
