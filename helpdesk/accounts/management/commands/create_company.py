"""Create a company and its first super-admin, and print their set-password link."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, no_translations

from helpdesk.accounts import actions, services
from helpdesk.events import audit


class Command(BaseCommand):
    help = (
        "Create a company with its built-in roles and its first super-admin. The super-admin gets a "
        "link to choose a password (printed here, and e-mailed when EMAIL_BACKEND sends mail)."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="The company's name.")
        parser.add_argument("--admin-email", required=True, help="The first super-admin's e-mail (their sign-in).")
        parser.add_argument("--admin-name", default="", help="The first super-admin's name.")
        parser.add_argument("--timezone", default="UTC", help="The company's time zone, e.g. Europe/Moscow.")
        parser.add_argument("--description", default="")
        parser.add_argument("--base-url", default="", help="This installation's public address (default: PUBLIC_URL).")

    @no_translations  # an operator's terminal: English, whatever the last request spoke
    def handle(self, *args, name: str, admin_email: str, admin_name: str, timezone: str, description: str, **opts):
        base_url = (opts["base_url"] or settings.PUBLIC_URL or "http://127.0.0.1:8000").rstrip("/")
        if not name.strip():
            raise CommandError("The company name can't be empty.")
        try:
            company, admin = services.create_company_with_super_admin(
                name=name.strip(), timezone=timezone, admin_email=admin_email, admin_name=admin_name,
                description=description,
            )  # fmt: skip
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        audit.record(
            "company.created", company=company, actor=None, actor_name="platform operator", obj=company,
            after={"name": company.name, "timezone": company.timezone, "super_admin": admin.user.email},
        )  # fmt: skip
        link = actions.password_link(admin, base_url=base_url)
        self.stdout.write(
            self.style.SUCCESS(f"Created {company.name} (id {company.pk}) with super-admin {admin.user.email}.")
        )
        self.stdout.write(f"Send them this link to choose a password (it works once, for a few days):\n  {link}")
