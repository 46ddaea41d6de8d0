"""Every URL of the project, as every kind of visitor: the one gate holds everywhere.

For each named URL pattern (pages and API) the matrix says what each actor gets: anonymous,
an agent with team scope (bob, team Sales), a role that sees only assigned chats (dave), an
admin (alice), the super-admin (sam), and the super-admin of another company (gina, who
holds every permission). Ids in the URLs are Acme's, so gina must get 404 wherever an object
is named, never 403 and never data; on lists she sees her own company's.

A URL pattern without an entry here fails `test_every_url_is_in_the_matrix`: a new page or
endpoint can't be added without deciding who may reach it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from helpdesk.accounts import actions as admin_actions
from helpdesk.accounts import services
from helpdesk.conversations import actions, attachments, canned, quick_answers
from helpdesk.conversations.models import Channel
from tests.conftest import ACME_ORIGIN
from tests.test_admin_actions import png

ACTORS = ("anonymous", "bob", "dave", "alice", "sam", "gina")
LOGIN = 302  # pages send the signed-out to sign in
API_ANON = 401  # the API asks for a key or a session


@dataclass
class Entry:
    """How to call one URL, and the status each actor gets."""

    method: str
    expect: dict[str, int]
    kwargs: Callable[[SimpleNamespace], dict[str, Any]] = lambda w: {}
    data: Callable[[SimpleNamespace], Any] | None = None
    json: bool = False
    multipart: bool = False  # a file upload (an API call that is not JSON)
    headers: dict[str, str] = field(default_factory=dict)


def who(anonymous: int, bob: int, dave: int, alice: int, sam: int, gina: int) -> dict[str, int]:
    return dict(zip(ACTORS, (anonymous, bob, dave, alice, sam, gina), strict=True))


def everyone(status: int) -> dict[str, int]:
    return dict.fromkeys(ACTORS, status)


def page(bob: int, dave: int, alice: int, sam: int, gina: int) -> dict[str, int]:
    return who(LOGIN, bob, dave, alice, sam, gina)


def api(bob: int, dave: int, alice: int, sam: int, gina: int) -> dict[str, int]:
    return who(API_ANON, bob, dave, alice, sam, gina)


conversation = lambda w: {"conversation_id": w.conversation.pk}  # noqa: E731

MATRIX: dict[str, Entry] = {
    # --- Signing in and out: open to all -----------------------------------------------------------
    "web:home": Entry("get", everyone(302)),
    "web:login": Entry("get", who(200, 302, 302, 302, 302, 302)),  # signed in: on to the inbox
    "web:login-2fa": Entry("get", everyone(302)),  # no password step: back to sign in
    "web:logout": Entry("post", everyone(302)),
    "web:set-password": Entry("get", everyone(302), kwargs=lambda w: w.password_link),  # to the form
    "web:set-password-done": Entry("get", everyone(200)),
    "set_language": Entry("post", everyone(302), data=lambda w: {"language": "ru"}),
    "healthz": Entry("get", everyone(200)),
    "readyz": Entry("get", everyone(200)),
    # Off (404) unless METRICS_TOKEN or METRICS_ALLOWED_IPS is set; a session grants nothing
    # (tests/test_observability.py covers the token and the allow-list).
    "metrics": Entry("get", everyone(404)),
    # The demo website shows only seed_demo's demo company (tests/test_demo_page.py): Acme is real.
    "web:demo-default": Entry("get", everyone(404)),
    "web:demo": Entry("get", everyone(404), kwargs=lambda w: {"public_key": w.widget.public_key}),
    "widget:session": Entry(
        "post",
        everyone(200),
        kwargs=lambda w: {"public_key": w.widget.public_key},
        data=lambda w: {},
        json=True,
        headers={"Origin": ACME_ORIGIN},
    ),
    # An upload is the visitor's, by the token in its Authorization header: nobody's session gets one.
    "widget:upload": Entry(
        "post",
        everyone(401),
        kwargs=lambda w: {"public_key": w.widget.public_key},
        data=lambda w: {},
        headers={"Origin": ACME_ORIGIN},
    ),
    # VK's Callback API answers VK alone, by the channel's secret, never by a session: a key that is
    # not an enabled VK Callback channel (here the widget's) is 404 to all (tests/test_vk.py).
    "vk:callback": Entry(
        "post", everyone(404), kwargs=lambda w: {"public_key": w.widget.public_key}, data=lambda w: {}, json=True
    ),
    # Telegram's webhook likewise answers Telegram alone, by its secret header (tests/test_telegram.py).
    "telegram:webhook": Entry(
        "post", everyone(404), kwargs=lambda w: {"public_key": w.widget.public_key}, data=lambda w: {}, json=True
    ),
    # --- The inbox --------------------------------------------------------------------------------------
    "web:inbox": Entry("get", page(200, 200, 200, 200, 200)),
    # Everyone may search; what each finds is their own scope's (tests/test_search.py).
    "web:search": Entry("get", page(200, 200, 200, 200, 200), data=lambda w: {"q": "shipped"}),
    # Bob sees his team's chat; Dave only chats assigned to him; Gina's company has no such id.
    "web:conversation": Entry("get", page(200, 404, 200, 200, 404), kwargs=conversation),
    # --- Everyone's own settings ---------------------------------------------------------------------------
    # One's own presence (the top bar's menu): no id, nothing of anyone else's.
    "web:presence": Entry("post", page(302, 302, 302, 302, 302), data=lambda w: {"presence": "away"}),
    "web:two-factor": Entry("get", page(200, 200, 200, 200, 200)),
    "web:two-factor-enable": Entry("post", page(302, 302, 302, 302, 302), data=lambda w: {"code": "000000"}),
    "web:two-factor-disable": Entry("post", page(302, 302, 302, 302, 302), data=lambda w: {"code": "000000"}),
    "web:api-tokens": Entry("get", page(200, 200, 200, 200, 200)),
    # Bob's token: only Bob may revoke it here; for everyone else it does not exist.
    "web:api-token-revoke": Entry("post", page(302, 404, 404, 404, 404), kwargs=lambda w: {"token_id": w.token.pk}),
    # --- Administration -----------------------------------------------------------------------------------
    "web:settings-company": Entry("get", page(403, 403, 200, 200, 200)),
    "web:company-logo": Entry("get", page(200, 200, 200, 200, 404)),  # one's own company's logo; Globex has none
    "web:company-logo-upload": Entry("post", page(403, 403, 200, 200, 200), data=lambda w: {}),  # no file: the form
    "web:company-logo-remove": Entry("post", page(403, 403, 302, 302, 302)),
    "web:employees": Entry("get", page(403, 403, 200, 200, 200)),
    "web:employee-add": Entry("get", page(403, 403, 200, 200, 200)),
    "web:employee": Entry("get", page(403, 403, 200, 200, 404), kwargs=lambda w: {"employee_id": w.erin.pk}),
    "web:employee-send-link": Entry("post", page(403, 403, 302, 302, 404), kwargs=lambda w: {"employee_id": w.erin.pk}),
    "web:employee-deactivate": Entry(
        "post", page(403, 403, 302, 302, 404), kwargs=lambda w: {"employee_id": w.erin.pk}
    ),
    "web:employee-reactivate": Entry(
        "post", page(403, 403, 302, 302, 404), kwargs=lambda w: {"employee_id": w.erin.pk}
    ),
    "web:employee-reset-2fa": Entry("post", page(403, 403, 302, 302, 404), kwargs=lambda w: {"employee_id": w.erin.pk}),
    "web:teams": Entry("get", page(403, 403, 200, 200, 200)),
    "web:team": Entry("get", page(403, 403, 200, 200, 404), kwargs=lambda w: {"team_id": w.support.pk}),
    "web:roles": Entry("get", page(403, 403, 403, 200, 200)),
    "web:role-add": Entry("get", page(403, 403, 403, 200, 200)),
    "web:role": Entry("get", page(403, 403, 403, 200, 404), kwargs=lambda w: {"role_id": w.spare_role.pk}),
    "web:role-archive": Entry("post", page(403, 403, 403, 302, 404), kwargs=lambda w: {"role_id": w.spare_role.pk}),
    "web:role-unarchive": Entry("post", page(403, 403, 403, 302, 404), kwargs=lambda w: {"role_id": w.spare_role.pk}),
    "web:channels": Entry("get", page(403, 403, 200, 200, 200)),
    "web:channel": Entry("get", page(403, 403, 200, 200, 404), kwargs=lambda w: {"channel_id": w.widget.pk}),
    "web:channel_add": Entry("get", page(403, 403, 200, 200, 200), kwargs=lambda w: {"kind": "widget"}),
    "web:channel_state": Entry(
        "post",
        page(403, 403, 302, 302, 404),
        kwargs=lambda w: {"channel_id": w.widget.pk},
        data=lambda w: {"action": "disable"},
    ),
    # A channel link's QR code (tests/test_channel_links.py): Acme's Telegram bot, so gina gets 404.
    "web:channel_link_qr": Entry(
        "get",
        page(403, 403, 200, 200, 404),
        kwargs=lambda w: {"channel_id": w.telegram.pk, "kind": "telegram", "fmt": "png"},
        data=lambda w: {"start": "site"},
    ),
    "web:audit-log": Entry("get", page(403, 403, 200, 200, 200)),
    "web:audit-log-export": Entry("get", page(403, 403, 200, 200, 200)),
    "web:trash": Entry("get", page(403, 403, 200, 200, 200)),
    # Reports: the view-reports permission; each reader's figures are their own scope's (test_reports_page.py).
    "web:reports": Entry("get", page(403, 403, 200, 200, 200)),
    "web:reports-heatmap-cell": Entry("get", page(403, 403, 200, 200, 200), data=lambda w: {"weekday": 0, "hour": 0}),
    "web:reports-live": Entry("get", page(403, 403, 200, 200, 200)),
    "web:trash-restore": Entry(
        "post", page(403, 403, 302, 302, 404), kwargs=lambda w: {"conversation_id": w.trashed.pk}
    ),
    # --- Canned responses, quick answers, blocked contacts ---------------------------------------------------
    # Everyone keeps their own canned responses; the company's are edited with manage_canned.
    "web:canned-responses": Entry("get", page(200, 200, 200, 200, 200)),
    "web:canned-response": Entry("get", page(403, 403, 200, 200, 404), kwargs=lambda w: {"canned_id": w.canned.pk}),
    "web:canned-response-archive": Entry(
        "post", page(403, 403, 302, 302, 404), kwargs=lambda w: {"canned_id": w.canned.pk}
    ),
    "web:quick-answers": Entry("get", page(403, 403, 200, 200, 200)),
    "web:quick-answer-add": Entry("get", page(403, 403, 200, 200, 200)),
    "web:quick-answer-test": Entry("get", page(403, 403, 200, 200, 200)),
    "web:quick-answer": Entry("get", page(403, 403, 200, 200, 404), kwargs=lambda w: {"quick_answer_id": w.rule.pk}),
    "web:quick-answer-archive": Entry(
        "post", page(403, 403, 302, 302, 404), kwargs=lambda w: {"quick_answer_id": w.rule.pk}
    ),
    "web:blocked-contacts": Entry("get", page(403, 403, 200, 200, 200)),
    "web:blocked-contact-unblock": Entry(
        "post", page(403, 403, 302, 302, 404), kwargs=lambda w: {"contact_id": w.blocked.pk}
    ),
    # --- API: conversations ---------------------------------------------------------------------------------
    "api:conversations": Entry("get", api(200, 200, 200, 200, 200)),
    "api:conversation": Entry("get", api(200, 404, 200, 200, 404), kwargs=conversation),
    "api:conversation-counts": Entry("get", api(200, 200, 200, 200, 200)),  # each sees their own counts
    # Every id is checked through the gate before anything changes: out of scope or foreign is a 404.
    "api:conversation-bulk": Entry(
        "post",
        api(200, 404, 200, 200, 404),
        data=lambda w: {"ids": [w.conversation.pk], "action": "resolve"},
    ),
    "api:messages": Entry("get", api(200, 404, 200, 200, 404), kwargs=conversation),
    "api:reply": Entry("post", api(201, 404, 201, 201, 404), kwargs=conversation, data=lambda w: {"body": "Hi"}),
    # A file for the reply box: the same gate as the reply (tests/test_attachments.py).
    "api:attachments": Entry(
        "post",
        api(201, 404, 201, 201, 404),
        kwargs=conversation,
        data=lambda w: {"file": SimpleUploadedFile("note.txt", b"hello", content_type="text/plain")},
        multipart=True,
    ),
    # A file's signed link serves those who may see its conversation; for all others it does not exist.
    "attachment-file": Entry("get", who(404, 200, 404, 200, 200, 404), kwargs=lambda w: w.file),
    "api:notes": Entry("post", api(201, 404, 201, 201, 404), kwargs=conversation, data=lambda w: {"body": "FYI"}),
    # Taking the chat oneself needs only the right to answer it.
    "api:assign": Entry(
        "post",
        api(200, 404, 200, 200, 404),
        kwargs=conversation,
        data=lambda w: {"assignee_id": w.me.pk if w.me else 1},
    ),
    "api:snooze": Entry(
        "post", api(200, 404, 200, 200, 404), kwargs=conversation, data=lambda w: {"until": "2099-01-01T09:00:00Z"}
    ),
    "api:priority": Entry("post", api(200, 404, 200, 200, 404), kwargs=conversation, data=lambda w: {"priority": 3}),
    "api:wake": Entry("post", api(200, 404, 200, 200, 404), kwargs=conversation),
    "api:resolve": Entry("post", api(200, 404, 200, 200, 404), kwargs=conversation),
    "api:reopen": Entry("post", api(200, 404, 200, 200, 404), kwargs=conversation),
    "api:read": Entry("post", api(204, 404, 204, 204, 404), kwargs=conversation),
    "api:delete": Entry("post", api(403, 404, 200, 200, 404), kwargs=conversation),
    "api:message-delete": Entry(
        "post",
        api(403, 404, 200, 200, 404),
        kwargs=lambda w: {"conversation_id": w.conversation.pk, "message_id": w.first_message.pk},
    ),
    "api:message-restore": Entry(
        "post",
        api(403, 404, 200, 200, 404),
        kwargs=lambda w: {"conversation_id": w.conversation.pk, "message_id": w.deleted_message.pk},
    ),
    # A widget message has no delivery to retry (400) for whoever may see it; tests/test_delivery.py retries real ones.
    "api:message-retry": Entry(
        "post",
        api(400, 404, 400, 400, 404),
        kwargs=lambda w: {"conversation_id": w.conversation.pk, "message_id": w.first_message.pk},
    ),
    "api:search": Entry("get", api(200, 200, 200, 200, 200), data=lambda w: {"q": "shipped"}),
    "api:trash": Entry("get", api(403, 403, 200, 200, 200)),
    "api:trash-restore": Entry(
        "post", api(403, 403, 200, 200, 404), kwargs=lambda w: {"conversation_id": w.trashed.pk}
    ),
    # The inbox list as a CSV file: the export permission, then each one's own scope (tests/test_reports_api.py).
    "api:conversations-csv": Entry("get", api(403, 403, 200, 200, 200)),
    # --- API: statistics (view-reports; their CSV files export as well); Gina sees her own company's ----------
    "api:report-dashboard": Entry("get", api(403, 403, 200, 200, 200)),
    "api:report-heatmap": Entry("get", api(403, 403, 200, 200, 200)),
    "api:report-heatmap-cell": Entry("get", api(403, 403, 200, 200, 200), data=lambda w: {"weekday": 0, "hour": 9}),
    "api:report-live": Entry("get", api(403, 403, 200, 200, 200)),
    "api:report-tiles-csv": Entry("get", api(403, 403, 200, 200, 200)),
    "api:report-by-hour-csv": Entry("get", api(403, 403, 200, 200, 200)),
    "api:report-by-day-csv": Entry("get", api(403, 403, 200, 200, 200)),
    "api:report-workload-agents-csv": Entry("get", api(403, 403, 200, 200, 200)),
    "api:report-workload-teams-csv": Entry("get", api(403, 403, 200, 200, 200)),
    "api:report-workload-channels-csv": Entry("get", api(403, 403, 200, 200, 200)),
    "api:report-heatmap-csv": Entry("get", api(403, 403, 200, 200, 200)),
    "api:report-heatmap-cell-csv": Entry("get", api(403, 403, 200, 200, 200), data=lambda w: {"weekday": 0, "hour": 9}),
    "api:report-live-agents-csv": Entry("get", api(403, 403, 200, 200, 200)),
    "api:report-live-queues-csv": Entry("get", api(403, 403, 200, 200, 200)),
    # --- API: people and contacts ------------------------------------------------------------------------------
    "api:presence": Entry("post", api(200, 200, 200, 200, 200), data=lambda w: {"presence": "away"}),
    "api:employees": Entry("get", api(200, 200, 200, 200, 200)),  # colleagues' public cards, to assign chats
    "api:employee": Entry("get", api(200, 200, 200, 200, 404), kwargs=lambda w: {"employee_id": w.erin.pk}),
    "api:employee-deactivate": Entry("post", api(403, 403, 200, 200, 404), kwargs=lambda w: {"employee_id": w.erin.pk}),
    "api:employee-reactivate": Entry("post", api(403, 403, 200, 200, 404), kwargs=lambda w: {"employee_id": w.erin.pk}),
    "api:teams": Entry("get", api(200, 200, 200, 200, 200)),
    "api:team": Entry("get", api(200, 200, 200, 200, 404), kwargs=lambda w: {"team_id": w.support.pk}),
    "api:channels": Entry("get", api(403, 403, 200, 200, 200)),
    "api:channel": Entry("get", api(403, 403, 200, 200, 404), kwargs=lambda w: {"channel_id": w.widget.pk}),
    "api:roles": Entry("get", api(403, 403, 200, 200, 200)),
    "api:role": Entry("get", api(403, 403, 200, 200, 404), kwargs=lambda w: {"role_id": w.spare_role.pk}),
    "api:role-archive": Entry("post", api(403, 403, 403, 200, 404), kwargs=lambda w: {"role_id": w.spare_role.pk}),
    "api:role-unarchive": Entry("post", api(403, 403, 403, 200, 404), kwargs=lambda w: {"role_id": w.spare_role.pk}),
    # Contacts follow the conversations one may see: Dave sees no chat, so no contact.
    "api:contacts": Entry("get", api(200, 200, 200, 200, 200)),
    "api:contact": Entry(
        "get", api(200, 404, 200, 200, 404), kwargs=lambda w: {"contact_id": w.conversation.contact_id}
    ),
    "api:contact-block": Entry(
        "post",
        api(403, 403, 200, 200, 404),
        kwargs=lambda w: {"contact_id": w.conversation.contact_id},
        data=lambda w: {"reason": "Spam"},
    ),
    "api:contact-unblock": Entry("post", api(403, 403, 200, 200, 404), kwargs=lambda w: {"contact_id": w.blocked.pk}),
    "api:canned-responses": Entry("get", api(200, 200, 200, 200, 200)),  # the company's and one's own
    # API tokens are one's own; Bob's token is nobody else's business.
    "api:tokens": Entry("get", api(200, 200, 200, 200, 200)),
    "api:token": Entry("get", api(200, 404, 404, 404, 404), kwargs=lambda w: {"token_id": w.token.pk}),
    "api:token-revoke": Entry("post", api(200, 404, 404, 404, 404), kwargs=lambda w: {"token_id": w.token.pk}),
    # --- The API's own description -------------------------------------------------------------------------------
    "api-schema": Entry("get", api(200, 200, 200, 200, 200)),
    "api-docs": Entry("get", page(200, 200, 200, 200, 200)),
}


def url_names() -> set[str]:
    """Every named URL pattern of the project (Django's own admin is the operator's, checked below)."""

    def walk(patterns, namespace: str | None) -> set[str]:
        names: set[str] = set()
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace == "admin":
                    continue
                inner = ":".join(filter(None, (namespace, pattern.namespace))) or None
                names |= walk(pattern.url_patterns, inner)
            elif isinstance(pattern, URLPattern):
                assert pattern.name, f"an unnamed URL pattern: {pattern.pattern}"
                names.add(f"{namespace}:{pattern.name}" if namespace else pattern.name)
        return names

    return walk(get_resolver().url_patterns, None)


def test_every_url_is_in_the_matrix():
    names = url_names()
    assert names - MATRIX.keys() == set(), "new URLs: add them to MATRIX with who may reach them"
    assert MATRIX.keys() - names == set(), "the matrix names URLs that no longer exist"


@pytest.fixture
def world(cast, settings, tmp_path) -> SimpleNamespace:
    """The cast, plus the objects some URLs name: a spare role, a token, a trashed chat, a logo, a file."""
    from django.core.files.storage import storages

    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path}},
    }
    storages._storages.pop("attachments", None)
    spare_role = admin_actions.create_role(by=cast.sam, name="Spare", permissions=["reply"], scope="assigned")
    token, _ = admin_actions.create_api_token(by=cast.bob, name="CRM")
    trashed = actions.receive_message(channel=cast.widget, external_contact_id="gone", body="old").conversation
    actions.delete_conversation(trashed, by=cast.alice)
    deleted_message = actions.post_reply(cast.conversation, by=cast.alice, body="oops")
    actions.delete_message(deleted_message, by=cast.alice)
    admin_actions.set_company_logo(cast.acme, by=cast.alice, data=png())
    gina = services.create_employee(company=cast.globex, email="gina@globex.test", name="Gina", role="super_admin")
    canned_response = canned.create_canned_response(
        by=cast.alice, shortcut="hello", title="Hello", body="Hi!", company_wide=True
    )
    rule = quick_answers.create_quick_answer(by=cast.alice, title="Hours", triggers="opening hours", answer="9 to 6")
    telegram = Channel.objects.create(
        company=cast.acme, kind="telegram", name="Acme bot", settings={"mode": "polling", "bot_username": "acme_bot"}
    )
    blocked = actions.receive_message(
        channel=cast.widget, external_contact_id="spammer", body="spam"
    ).conversation.contact
    actions.block_contact(blocked, by=cast.alice, reason="Spam")
    user = cast.erin.user
    password_link = {
        "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
        "token": default_token_generator.make_token(user),
    }
    upload = actions.upload_attachment(
        cast.conversation, stream=io.BytesIO(png()), name="screen.png", by_employee=cast.alice
    )
    actions.post_reply(cast.conversation, by=cast.alice, body="See the screenshot", attachment_ids=[upload.pk])
    file_token = urlsplit(attachments.link(upload)).path.split("/")[2]
    return SimpleNamespace(
        **vars(cast),
        file={"token": file_token, "name": "screen.png"},
        spare_role=spare_role,
        token=token,
        trashed=trashed,
        deleted_message=deleted_message,
        password_link=password_link,
        gina=gina,
        canned=canned_response,
        rule=rule,
        blocked=blocked,
        telegram=telegram,
    )


def call(client: Client, entry: Entry, world: SimpleNamespace, name: str):
    url = reverse(name, kwargs=entry.kwargs(world))
    data = entry.data(world) if entry.data else None
    if entry.method == "get":
        return client.get(url, data or {}, headers=entry.headers)
    if entry.multipart:
        return client.post(url, data or {}, headers=entry.headers)
    if entry.json or name.startswith("api:"):
        return client.post(
            url, data if data is not None else {}, content_type="application/json", headers=entry.headers
        )
    return client.post(url, data or {}, headers=entry.headers)


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_each_actor_gets_the_expected_answer(name, world):
    entry = MATRIX[name]
    got = {}
    for actor in ACTORS:
        client = Client()
        employee = getattr(world, actor, None)
        if employee is not None:
            client.force_login(employee.user)
        world.me = employee
        # Each actor meets the same world: whatever the request changed is rolled back. Marked
        # as a test's own block (as TestCase marks its), so the actions' durable blocks may nest.
        block = transaction.atomic()
        block._from_testcase = True
        with block:
            got[actor] = call(client, entry, world, name).status_code
            transaction.set_rollback(True)
    assert {actor: (got[actor], entry.expect[actor]) for actor in ACTORS if got[actor] != entry.expect[actor]} == {}


def test_the_django_admin_is_only_for_the_platform_operator(world):
    for actor in ACTORS:
        client = Client()
        employee = getattr(world, actor, None)
        if employee is not None:
            client.force_login(employee.user)
        response = client.get(reverse("admin:index"))
        assert response.status_code == 302 and "/admin/login/" in response.url, actor
