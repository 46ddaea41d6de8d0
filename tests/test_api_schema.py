"""The OpenAPI schema: generated without a warning, valid, complete, and true to the responses."""

from __future__ import annotations

import re

import pytest
import yaml
from django.core.management import call_command
from django.urls import URLPattern, reverse

from helpdesk.accounts import actions as admin_actions
from helpdesk.api import urls as api_urls
from tests.conftest import login

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> dict:
    """`manage.py spectacular --validate --fail-on-warn`: any warning or invalid spec fails here."""
    path = tmp_path_factory.mktemp("schema") / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    return yaml.safe_load(path.read_text())


def api_routes() -> list[tuple[str, set[str]]]:
    """Every /api/v1/ route as the schema spells it, with the methods its view answers."""
    routes = []
    for pattern in api_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        path = "/api/v1/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern))
        view = pattern.callback.view_class
        routes.append((path, {method for method in METHODS if hasattr(view, method)}))
    return routes


def test_every_api_route_and_method_is_in_the_schema(schema):
    for path, methods in api_routes():
        assert path in schema["paths"], f"{path} is missing from the schema"
        assert set(schema["paths"][path]) - {"parameters"} == methods, path
    assert {path for path, _ in api_routes()} == set(schema["paths"])


def test_every_operation_accepts_the_bearer_key_and_documents_its_errors(schema):
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "sc_<prefix>_<secret>",
        "description": schema["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert {"bearerAuth": []} in operation["security"], (method, path)
            assert "401" in operation["responses"], (method, path)
            error = operation["responses"]["401"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/Error"}


def test_lists_document_their_pagination_and_filters(schema):
    parameters = {p["name"] for p in schema["paths"]["/api/v1/conversations/"]["get"]["parameters"]}
    assert {"limit", "offset", "view", "status", "assignee_id", "team_id", "channel_id", "priority"} <= parameters
    employees = schema["paths"]["/api/v1/employees/"]["get"]
    assert {"role_id", "team_id", "active", "search"} <= {p["name"] for p in employees["parameters"]}
    response = employees["responses"]["200"]["content"]["application/json"]["schema"]
    assert response == {"$ref": "#/components/schemas/PaginatedEmployeeList"}


def _properties(schema, name: str) -> set[str]:
    return set(schema["components"]["schemas"][name]["properties"])


def test_the_documented_fields_are_the_fields_answered(client, cast, schema):
    token, _ = admin_actions.create_api_token(by=cast.sam, name="CRM")
    contact = cast.conversation.contact
    login(client, cast.sam)
    pages = {
        "/api/v1/conversations/?view=all": "ConversationRow",
        "/api/v1/conversations/ID/messages/": "Message",
        "/api/v1/employees/": "Employee",
        "/api/v1/teams/": "Team",
        "/api/v1/roles/": "Role",
        "/api/v1/contacts/": "Contact",
        "/api/v1/tokens/": "Token",
    }
    for url, component in pages.items():
        rows = client.get(url.replace("ID", str(cast.conversation.pk))).json()["results"]
        assert rows and set(rows[0]) == _properties(schema, component), component
    details = {
        f"/api/v1/conversations/{cast.conversation.pk}/": "ConversationDetail",
        f"/api/v1/contacts/{contact.pk}/": "ContactDetail",
        f"/api/v1/employees/{cast.bob.pk}/": "Employee",
        f"/api/v1/tokens/{token.pk}/": "Token",
        f"/api/v1/teams/{cast.sales.pk}/": "Team",
        f"/api/v1/roles/{cast.bob.role_id}/": "Role",
    }
    for url, component in details.items():
        assert set(client.get(url).json()) == _properties(schema, component), component
    created = client.post("/api/v1/tokens/", {"name": "x"}, content_type="application/json").json()
    assert set(created) == _properties(schema, "TokenCreated")
    error = client.get("/api/v1/employees/999999/").json()
    assert set(error) == _properties(schema, "Error")
    assert set(error["error"]) <= _properties(schema, "ErrorDetail")


def test_the_schema_is_served_to_employees_and_token_holders_only(client, cast):
    assert client.get(reverse("api-schema")).status_code == 401
    _, key = admin_actions.create_api_token(by=cast.bob, name="CRM")
    response = client.get(reverse("api-schema"), {"format": "json"}, headers={"authorization": f"Bearer {key}"})
    assert response.status_code == 200 and response.json()["info"]["title"] == "Smartchat API"
    login(client, cast.bob)
    response = client.get(reverse("api-schema"))
    assert response.status_code == 200 and b"openapi: 3" in response.content


def test_the_docs_page_works_offline_for_signed_in_employees(client, cast):
    response = client.get(reverse("api-docs"))
    assert response.status_code == 302 and reverse("web:login") in response["Location"]
    login(client, cast.dave)
    response = client.get(reverse("api-docs"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn.jsdelivr.net" not in html and reverse("api-schema") in html


def test_replies_and_notes_document_their_idempotency_key(schema):
    for path in ("/api/v1/conversations/{conversation_id}/reply", "/api/v1/conversations/{conversation_id}/notes"):
        operation = schema["paths"][path]["post"]
        (key,) = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
        assert key["in"] == "header" and not key.get("required", False)
        assert "409" in key["description"] and "Idempotent-Replayed" in key["description"]
        assert {"200", "201", "400", "409"} <= set(operation["responses"]), path
