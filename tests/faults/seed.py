"""The fault tests' cast, on the private database named by DATABASE_URL; prints it as JSON.

Acme with a widget routed to Sales: alice (admin, sees everything), bob (agent in Sales, sees
the widget's conversations), erin (agent in Support, sees none of them). Each employee gets a
signed-in session, as a browser holds it after logging in.
"""

from __future__ import annotations

import json
import os

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smartchat.settings")
    django.setup()
    from django.test import Client

    from helpdesk.accounts import services
    from tests.faults.harness import WIDGET_ORIGIN

    acme = services.create_company(name="Acme", timezone="UTC")
    sales = services.create_team(company=acme, name="Sales")
    support = services.create_team(company=acme, name="Support")
    cast = {
        "alice": services.create_employee(company=acme, email="alice@acme.test", name="Alice", role="admin"),
        "bob": services.create_employee(company=acme, email="bob@acme.test", name="Bob", role="agent", teams=[sales]),
        "erin": services.create_employee(
            company=acme, email="erin@acme.test", name="Erin", role="agent", teams=[support]
        ),
    }
    widget = services.create_widget_channel(company=acme, name="Acme site", team=sales, allowed_origins=[WIDGET_ORIGIN])
    agents = {}
    for name, employee in cast.items():
        client = Client()
        client.force_login(employee.user)
        agents[name] = {"employee_id": employee.pk, "sessionid": client.cookies["sessionid"].value}
    print(json.dumps({"public_key": widget.public_key, "company_id": acme.pk, "agents": agents}))


if __name__ == "__main__":
    main()
