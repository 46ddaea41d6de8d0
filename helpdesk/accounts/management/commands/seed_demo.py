"""Create the demo company (once) and print how to sign in. Safe to run again.

The company is marked ``is_demo``: only its widget is shown on the public demo website (/demo/).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from helpdesk.accounts import services
from helpdesk.accounts.models import Company
from helpdesk.conversations.adapters import adapters
from helpdesk.conversations.models import Channel

DEMO_COMPANY = "Demo Company"
DEMO_PASSWORD = "smartchat-demo"
PEOPLE = [
    ("super@demo.smartchat", "Sasha Super", "super_admin"),
    ("admin@demo.smartchat", "Alice Admin", "admin"),
    ("bob@demo.smartchat", "Bob Agent", "agent"),
    ("dina@demo.smartchat", "Dina Agent", "agent"),
]


class Command(BaseCommand):
    help = "Create a demo company with a super-admin, an admin, two agents, a team and a widget channel."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="Where the server will listen.")

    def handle(self, *args, base_url: str, **options):
        base_url = base_url.rstrip("/")
        with transaction.atomic():
            company = Company.objects.filter(is_demo=True).order_by("pk").first()
            created = company is None
            if created:
                company = services.create_company(
                    name=DEMO_COMPANY,
                    timezone="Europe/Moscow",
                    description="A company to try Smartchat with.",
                    demo=True,
                )
                employees = [
                    services.create_employee(company=company, email=email, name=name, role=role, password=DEMO_PASSWORD)
                    for email, name, role in PEOPLE
                ]
                team = services.create_team(
                    company=company, name="Support", members=[e for e in employees if e.role.builtin == "agent"]
                )
                services.create_widget_channel(
                    company=company,
                    name="Website",
                    team=team,
                    allowed_origins=sorted({base_url, "http://127.0.0.1:8000", "http://localhost:8000"}),
                    title="Demo Company",
                    greeting="Hi! Ask us anything — a real person will answer.",
                )
            website_kinds = [adapter.kind for adapter in adapters() if adapter.website_snippet]
            channel = (
                Channel.objects.filter(company=company, kind__in=website_kinds, archived_at__isnull=True)
                .order_by("pk")
                .first()
            )
        self.stdout.write(self.style.SUCCESS("Demo company " + ("created." if created else "already exists.")))
        self.stdout.write(f"  Inbox:     {base_url}/inbox/")
        if channel:
            self.stdout.write(
                f"  Demo site: {base_url}/demo/{channel.public_key}/  (the chat widget, as a customer sees it)"
            )
        self.stdout.write(f"  Sign in with any of these, password {DEMO_PASSWORD!r}:")
        for email, name, role in PEOPLE:
            self.stdout.write(f"    {email:<24} {name:<12} {role}")
