"""The public demo website (/demo/) shows only the demo company that `seed_demo` made.

Anyone may open it, so it must name no real company and hand out no real widget key: on an
installation without the demo company it is a 404, and so is /demo/<key>/ for any other key.
"""

from __future__ import annotations

import importlib
import io
import re

from django.apps import apps
from django.core.management import call_command
from django.urls import reverse

from helpdesk.accounts import services
from helpdesk.accounts.models import Company
from helpdesk.conversations.models import Channel
from tests.conftest import login


def seed_demo() -> str:
    """Run seed_demo as scripts/start does; return the demo site's URL it prints."""
    out = io.StringIO()
    call_command("seed_demo", "--base-url", "http://testserver", stdout=out)
    return re.search(r"Demo site: http://testserver(/demo/[\w-]+/)", out.getvalue()).group(1)


def assert_reveals_nothing(response, *channels: Channel) -> None:
    assert response.status_code == 404
    body = response.content.decode()
    for channel in channels:
        assert channel.public_key not in body and channel.company.name not in body


def test_the_printed_demo_url_opens_the_demo_company_site(client, db):
    url = seed_demo()
    demo = Company.objects.get(is_demo=True)
    channel = Channel.objects.get(company=demo)
    assert url == reverse("web:demo", args=[channel.public_key])
    response = client.get(url)
    assert response.status_code == 200
    assert f'data-channel="{channel.public_key}"' in response.content.decode()
    default = client.get(reverse("web:demo-default"))
    assert default.status_code == 302 and default.url == url
    # Running it again (as every ./scripts/start does) keeps the one demo company and its URL.
    assert seed_demo() == url and Company.objects.filter(is_demo=True).count() == 1


def test_without_a_demo_company_there_is_no_demo_site(client, cast):
    assert_reveals_nothing(client.get(reverse("web:demo-default")), cast.widget, cast.globex_widget)
    assert_reveals_nothing(client.get(reverse("web:demo", args=[cast.widget.public_key])), cast.widget)
    assert_reveals_nothing(client.get(reverse("web:demo", args=["nope"])))


def test_a_real_company_key_stays_a_404_beside_the_demo_company(client, cast):
    url = seed_demo()
    assert client.get(reverse("web:demo-default")).url == url
    assert_reveals_nothing(client.get(reverse("web:demo", args=[cast.widget.public_key])), cast.widget)
    assert_reveals_nothing(client.get(reverse("web:demo", args=[cast.globex_widget.public_key])), cast.globex_widget)


def test_a_company_that_only_calls_itself_demo_is_not_one(client, db):
    lookalike = services.create_company(name="Demo Company")
    channel = services.create_widget_channel(company=lookalike, name="Site", allowed_origins=["*"])
    assert_reveals_nothing(client.get(reverse("web:demo", args=[channel.public_key])), channel)
    assert_reveals_nothing(client.get(reverse("web:demo-default")), channel)


def test_an_archived_demo_channel_has_no_demo_site(client, db):
    url = seed_demo()
    Channel.objects.filter(company__is_demo=True).update(archived_at="2026-01-01T00:00:00Z")
    assert client.get(url).status_code == 404
    assert client.get(reverse("web:demo-default")).status_code == 404


def test_only_the_demo_company_channel_page_links_to_the_demo_site(client, cast):
    login(client, cast.alice)
    page = client.get(reverse("web:channel", args=[cast.widget.pk])).content.decode()
    assert "/demo/" not in page
    seed_demo()
    demo_admin = Company.objects.get(is_demo=True).employees.get(user__email="admin@demo.smartchat")
    login(client, demo_admin)
    channel = Channel.objects.get(company__is_demo=True)
    page = client.get(reverse("web:channel", args=[channel.pk])).content.decode()
    assert reverse("web:demo", args=[channel.public_key]) in page


def test_the_migration_marks_a_demo_company_seeded_before_the_flag(db):
    migration = importlib.import_module("helpdesk.accounts.migrations.0005_company_is_demo")
    seeded = services.create_company(name="Demo Company")
    services.create_employee(company=seeded, email="super@demo.smartchat", name="Sasha", role="super_admin")
    lookalike = services.create_company(name="Demo Company")
    services.create_employee(company=lookalike, email="boss@lookalike.test", name="Boss", role="super_admin")
    Company.objects.update(is_demo=False)
    migration.mark_the_seeded_demo_company(apps, None)
    assert set(Company.objects.filter(is_demo=True)) == {seeded}
