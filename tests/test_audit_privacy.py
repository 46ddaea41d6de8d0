"""The audit log is no side door: no deleted text, no contact data outside the reader's scope.

The reader under test holds the audit-log permission but not "see deleted messages", with
a team scope that does not cover the Sales conversation (erin, Support, made an auditor).
Alice (admin, all scope) is the control: she sees contacts, but no message text either.
"""

from __future__ import annotations

import csv
import importlib
import io

import pytest
from django.apps import apps

from helpdesk.accounts import actions as admin_actions
from helpdesk.accounts.models import Role, Scope
from helpdesk.accounts.permissions import AGENT_PERMS, Perm
from helpdesk.conversations import actions
from helpdesk.events.models import AuditEntry
from tests.conftest import login

URL = "/settings/audit-log/"
EXPORT = "/settings/audit-log/export/"
SECRET = "card 4111 1111 1111 1111"


@pytest.fixture
def auditor(cast):
    """Erin, in Support, may read the audit log; she may not see deleted messages or Sales."""
    role = Role.objects.create(
        company=cast.acme,
        name="Team auditor",
        scope=Scope.TEAMS,
        permissions=[*(str(p) for p in AGENT_PERMS), Perm.VIEW_AUDIT_LOG],
    )
    admin_actions.update_employee(cast.erin, by=cast.sam, role=role)
    cast.erin.refresh_from_db()
    return cast.erin


def page_and_csv(client, employee, params=None) -> str:
    login(client, employee)
    page = client.get(URL, params or {})
    export = client.get(EXPORT, params or {})
    assert page.status_code == export.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode("utf-8-sig"))))
    return page.content.decode() + "\n".join(",".join(row) for row in rows)


def test_a_deleted_message_is_named_by_id_never_by_its_text(client, cast, auditor):
    reply = actions.post_reply(cast.conversation, by=cast.bob, body=SECRET)
    actions.delete_message(reply, by=cast.alice)
    actions.restore_message(reply, by=cast.alice)
    actions.delete_message(cast.first_message, by=cast.alice)
    for reader in (auditor, cast.alice):
        shown = page_and_csv(client, reader)
        assert "4111" not in shown and "order shipped" not in shown
    entry = AuditEntry.objects.filter(action="message.deleted", object_id=str(reply.pk)).get()
    assert entry.object_repr == f"#{cast.conversation.pk}"
    assert entry.after == {"conversation": cast.conversation.pk, "author": "Bob"}
    # A customer's message names the contact by id: their name is contact data.
    customer = AuditEntry.objects.filter(action="message.deleted", object_id=str(cast.first_message.pk)).get()
    assert customer.after == {"conversation": cast.conversation.pk, "contact": cast.conversation.contact_id}


def contact_history(cast) -> None:
    contact = cast.conversation.contact
    actions.update_contact(contact, by=cast.alice, name="Ivan Secretov", email="ivan@private.test", phone="+7 900 1")
    actions.block_contact(contact, by=cast.alice, reason="Sent Ivan's passport scan")
    actions.delete_conversation(cast.conversation, by=cast.alice)  # named after its contact


def test_contact_data_stays_inside_the_readers_scope(client, cast, auditor):
    contact_history(cast)
    shown = page_and_csv(client, auditor)
    for private in ("Secretov", "ivan@private.test", "+7 900 1", "passport"):
        assert private not in shown
    # The rows are there, by id, with the keys that changed.
    assert f"#{cast.conversation.contact_id}" in shown and f"#{cast.conversation.pk}" in shown
    assert "Contact changed" in shown and "(hidden)" in shown
    # Alice sees every contact: the same rows read in full.
    shown = page_and_csv(client, cast.alice)
    assert "Ivan Secretov" in shown and "ivan@private.test" in shown and "passport" in shown


def test_a_search_finds_no_name_outside_the_readers_scope(client, cast, auditor):
    contact_history(cast)
    login(client, auditor)
    assert client.get(URL, {"q": "Secretov"}).context["rows"] == []
    login(client, cast.alice)
    assert {row["entry"].action for row in client.get(URL, {"q": "Secretov"}).context["rows"]} == {
        "contact.updated",
        "contact.blocked",
        "conversation.deleted",
    }


def test_a_contact_that_comes_into_scope_is_shown_again(client, cast, auditor):
    contact_history(cast)
    actions.restore_conversation(cast.conversation, by=cast.alice)
    actions.assign(cast.conversation, by=cast.alice, team=cast.support)
    assert "Ivan Secretov" in page_and_csv(client, auditor)


def test_the_migration_strips_text_from_rows_written_before(cast):
    old = AuditEntry.objects.create(
        company=cast.acme, action="message.deleted", object_type="message", object_id="7", object_repr="#12: " + SECRET
    )
    other = AuditEntry.objects.create(company=cast.acme, action="team.created", object_repr="#12: a team")
    migration = importlib.import_module("helpdesk.events.migrations.0004_audit_without_message_text")
    migration.strip_message_text(apps, None)
    old.refresh_from_db()
    other.refresh_from_db()
    assert (old.object_repr, old.after) == ("#12", {"conversation": 12})
    assert other.object_repr == "#12: a team"
