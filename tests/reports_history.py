"""Generated histories for the statistics tests: real actions on a controlled clock."""

from __future__ import annotations

import random
import zoneinfo
from contextlib import contextmanager
from datetime import datetime, timedelta
from types import SimpleNamespace
from unittest import mock

from django.utils import timezone

from helpdesk.accounts import services
from helpdesk.accounts.models import Employee, Role, Scope
from helpdesk.accounts.permissions import AGENT_PERMS, Perm
from helpdesk.conversations import actions
from helpdesk.conversations.models import Conversation, Status
from helpdesk.conversations.quick_answers import create_quick_answer
from helpdesk.events import log as events
from helpdesk.events.models import Event
from helpdesk.reports import applier, rollups


class Clock:
    def __init__(self, start: datetime):
        self.now = start

    def __call__(self):
        return self.now


@contextmanager
def controlled_clock(start: datetime):
    """timezone.now() and the models' created_at defaults follow ``clock.now``."""
    clock = Clock(start)
    fields = [Event._meta.get_field("created_at")]
    from helpdesk.conversations.models import Contact, Conversation, Message

    fields += [m._meta.get_field("created_at") for m in (Contact, Conversation, Message)]
    fields.append(Conversation._meta.get_field("last_activity_at"))
    saved = [(f, f.default) for f in fields]
    with mock.patch("django.utils.timezone.now", clock):
        for f in fields:
            f.default = clock
            f.__dict__.pop("_get_default", None)  # Field caches its default getter
        try:
            yield clock
        finally:
            for f, default in saved:
                f.default = default
                f.__dict__.pop("_get_default", None)


def build_history(*, seed: int, tz: str, start: datetime, steps: int = 260) -> SimpleNamespace:
    rng = random.Random(seed)
    rollups.forget_tz()
    with controlled_clock(start.replace(tzinfo=zoneinfo.ZoneInfo(tz))) as clock:
        company = services.create_company(name=f"Stats {seed}", timezone=tz)
        other = services.create_company(name=f"Other {seed}", timezone="UTC")
        sales = services.create_team(company=company, name="Sales")
        support = services.create_team(company=company, name="Support")
        admin = services.create_employee(
            company=company, email=f"a{seed}@s.test", name="Admin", role="admin", password="x"
        )
        bob = services.create_employee(
            company=company, email=f"b{seed}@s.test", name="Bob", role="agent", password="x", teams=[sales]
        )
        erin = services.create_employee(
            company=company, email=f"e{seed}@s.test", name="Erin", role="agent", password="x", teams=[support]
        )
        # Managers with narrow scopes: every role here may view reports.
        perms = [*map(str, AGENT_PERMS), str(Perm.VIEW_REPORTS)]
        agent_role = Role.objects.get(company=company, builtin="agent")
        agent_role.permissions = perms
        agent_role.save()
        veteran = Role.objects.create(company=company, name="Veteran", scope=Scope.TEAMS, permissions=perms)
        assigned = Role.objects.create(company=company, name="Assigned only", scope=Scope.ASSIGNED, permissions=perms)
        vera = services.create_employee(
            company=company, email=f"v{seed}@s.test", name="Vera", role=veteran, password="x", teams=[sales, support]
        )
        dave = services.create_employee(
            company=company, email=f"d{seed}@s.test", name="Dave", role=assigned, password="x"
        )
        carol = services.create_employee(
            company=other, email=f"c{seed}@s.test", name="Carol", role="admin", password="x"
        )
        w1 = services.create_widget_channel(company=company, name="Site", team=sales, allowed_origins=["*"])
        w2 = services.create_widget_channel(company=company, name="Shop", team=support, allowed_origins=["*"])
        wo = services.create_widget_channel(company=other, name="Other", allowed_origins=["*"])
        create_quick_answer(by=admin, title="Hours", triggers=["opening hours"], answer="We open at 9.")
        create_quick_answer(by=admin, title="Thanks", triggers=["thanks bye"], answer="Bye!", resolves=True)
        agents = [bob, erin, vera, dave, admin]
        contacts = [f"v{i}" for i in range(14)]
        archived = False
        n = 0
        # The worker applies the log in batches of whatever committed since the last one: here at
        # random steps (its own dice, so the history stays the seed's), deletions and restores
        # falling inside batches as well as between them.
        batches = random.Random(seed + 1000)
        for step in range(steps):
            clock.now += timedelta(minutes=rng.choice([1, 3, 7, 15, 25, 40, 55, 70]))
            if batches.random() < 0.15:
                applier.apply_pending()
            if not archived and step > steps // 2:
                # Vera moves to the agent role and "Veteran" is archived: her past work keeps it.
                Employee.objects.filter(pk=vera.pk).update(role=Role.objects.get(company=company, builtin="agent"))
                Role.objects.filter(pk=veteran.pk).update(archived_at=clock.now)
                vera.refresh_from_db()
                archived = True
            conversations = list(Conversation.objects.filter(company=company, deleted_at__isnull=True))
            roll = rng.random()
            n += 1
            if roll < 0.32 or not conversations:
                body = rng.choice(
                    ["hi", "help please", "opening hours?", "where is my order", "thanks bye", "still there?"]
                )
                channel = rng.choice([w1, w2, wo]) if rng.random() < 0.9 else wo
                actions.receive_message(
                    channel=channel, external_contact_id=rng.choice(contacts), body=body, external_id=f"m{n}"
                )
                continue
            conv = rng.choice(conversations)
            conv = Conversation.objects.select_related("contact", "channel", "assignee", "team").get(pk=conv.pk)
            agent = Employee.objects.select_related("role").get(pk=rng.choice(agents).pk)
            try:
                if roll < 0.55:
                    actions.post_reply(conv, by=agent, body="on it")
                elif roll < 0.6:
                    actions.add_note(conv, by=agent, body="internal")
                elif roll < 0.68:
                    target = rng.choice([bob, erin, vera, dave, None])
                    actions.assign(conv, by=admin, assignee=target)
                elif roll < 0.72:
                    actions.assign(conv, by=admin, team=rng.choice([sales, support]), assignee=None)
                elif roll < 0.76:
                    actions.set_priority(conv, by=agent, priority=rng.randint(0, 4))
                elif roll < 0.84:
                    actions.resolve(conv, by=agent)
                elif roll < 0.87:
                    actions.reopen(conv, by=agent)
                elif roll < 0.91 and conv.status == Status.OPEN:
                    actions.snooze(conv, by=agent, until=clock.now + timedelta(hours=2))
                elif roll < 0.93:
                    actions.wake(conv, by=agent)
                elif roll < 0.96 and conv.status == Status.RESOLVED:
                    # A rating, as the CSAT feature records it.
                    with __import__("django.db").db.transaction.atomic():
                        events.record(conv, "conversation.rated", rating=rng.randint(1, 5), comment="")
                elif roll < 0.98:
                    actions.delete_conversation(conv, by=admin)
                else:
                    deleted = Conversation.objects.filter(company=company, deleted_at__isnull=False).first()
                    if deleted:
                        actions.restore_conversation(
                            Conversation.objects.select_related("contact", "channel", "assignee", "team").get(
                                pk=deleted.pk
                            ),
                            by=admin,
                        )
            except Exception as error:  # an action refusing (e.g. a role without the right) is part of life
                from helpdesk.errors import ActionError

                if not isinstance(error, ActionError | PermissionError) and type(error).__name__ != "PermissionDenied":
                    raise
        # At least a few ratings, whatever the dice said.
        resolved = Conversation.objects.select_related("contact", "channel", "assignee", "team").filter(
            company=company, status=Status.RESOLVED, deleted_at__isnull=True
        )
        for rating, conv in zip((5, 2, 4), resolved[:3], strict=False):
            clock.now += timedelta(minutes=5)
            with __import__("django.db").db.transaction.atomic():
                events.record(conv, "conversation.rated", rating=rating, comment="")
        applier.apply_pending()
        end = clock.now
    assert timezone.now() != end  # the clock is restored

    def fresh(e):
        return Employee.objects.select_related("role").get(pk=e.pk)

    admin, bob, erin, vera, dave, carol = map(fresh, (admin, bob, erin, vera, dave, carol))
    return SimpleNamespace(
        company=company,
        other=other,
        sales=sales,
        support=support,
        admin=admin,
        bob=bob,
        erin=erin,
        vera=vera,
        dave=dave,
        carol=carol,
        veteran=veteran,
        w1=w1,
        w2=w2,
        wo=wo,
        start=start,
        end=end,
    )
