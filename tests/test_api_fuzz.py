"""Schemathesis over the API's OpenAPI schema, on the real ASGI app, as an admin and an agent.

Every operation is fuzzed, reads and writes, with valid and invalid input. Each operation
starts from a fresh cast (its writes roll back afterwards), so what one operation destroys (a
deactivated employee, a revoked token, a trashed conversation) never reaches the next.
Checks: no 5xx, status codes and bodies as the schema documents them, and every error in the
API's one JSON shape.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from helpdesk.accounts import actions as admin_actions
from smartchat.asgi import application
from tests.asgi_session import asgi_session
from tests.test_api_tokens import bearer

# What /api/schema/ serves (test_the_fuzzed_schema_is_the_served_one), built here so that
# collection needs no database.
RAW_SCHEMA = json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str))
schema = schemathesis.openapi.from_dict(RAW_SCHEMA)
# The keys are ours (alice's and bob's, below): no generated, negated or missing Authorization.
schema.config.generation.update(with_security_parameters=False)
BASE_URL = "http://testserver"
EXCLUDED_CHECKS = [
    # Replaced by valid_input_parses below: a rule of an action is a documented 400.
    schemathesis.checks.positive_data_acceptance,
    # Sends its probe through a session of its own, which cannot reach the app in this thread;
    # test_every_operation_refuses_anonymous_requests below covers the same ground.
    schemathesis.checks.ignored_auth,
]

# Path parameters: now and then an id that exists in the cast, so that writes reach real objects.
KNOWN_IDS: dict[str, list[int]] = {}


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    def mixed(name, value):
        known = KNOWN_IDS.get(name)
        if not known or type(value) is not int:  # a negative case's "abc" or true stays as it is
            return st.just(value)
        return st.one_of(st.just(value), st.sampled_from(known))

    return st.fixed_dictionaries({name: mixed(name, value) for name, value in (path_parameters or {}).items()})


@schemathesis.check
def error_shape(ctx, response, case):
    """Every 4xx and 5xx body is {"error": {"code": str, "message": str, "fields"?: {str: [str]}}}."""
    if response.status_code < 400:
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(f"{response.status_code} answered non-JSON: {response.content[:200]!r}") from None
    assert isinstance(body, dict) and set(body) == {"error"}, f"not the error shape: {body!r}"
    error = body["error"]
    assert isinstance(error, dict) and {"code", "message"} <= set(error) <= {"code", "message", "fields"}, body
    assert isinstance(error["code"], str) and isinstance(error["message"], str), body
    fields = error.get("fields", {})
    assert isinstance(fields, dict), body
    assert all(isinstance(m, list) and all(isinstance(s, str) for s in m) for m in fields.values()), body
    return True


@schemathesis.check
def valid_input_parses(ctx, response, case):
    """A body the schema calls valid always parses: never a 400 parse_error.

    Replaces schemathesis's positive_data_acceptance, which also fails every documented 400 that
    the schema cannot express: a rule of an action (a duplicate name, a snooze in the past),
    fields that go together (until or preset; assign needs assignee_id or team_id), text without
    NUL bytes or lone surrogates, a search with at least one word.
    """
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    code = json.loads(response.content)["error"]["code"]
    assert code != "parse_error", f"a schema-valid body did not parse: {response.content[:300]!r}"
    return True


@pytest.fixture
def keys(cast) -> dict[str, str]:
    """Alice's (admin) and Bob's (agent) API keys, made as people make them."""
    KNOWN_IDS.clear()
    KNOWN_IDS.update(
        conversation_id=[cast.conversation.pk],
        message_id=[cast.first_message.pk],
        employee_id=[cast.bob.pk, cast.dave.pk],
        team_id=[cast.sales.pk],
        role_id=[cast.dave.role_id],
        contact_id=[cast.conversation.contact_id],
    )
    return {name: admin_actions.create_api_token(by=getattr(cast, name), name="fuzz")[1] for name in ("alice", "bob")}


@schema.parametrize()
@schema.given(who=st.sampled_from(["alice", "bob"]))
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same cases on every run: CI is reproducible
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is shown as found
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
def test_the_api_holds_against_fuzzed_requests(case, who, keys):
    with asgi_session(application) as session:
        case.call_and_validate(
            base_url=BASE_URL,
            session=session,
            headers=bearer(keys[who]),
            additional_checks=[error_shape, valid_input_parses],
            excluded_checks=EXCLUDED_CHECKS,
        )


def test_the_fuzzed_schema_is_the_served_one(client, cast):
    _, key = admin_actions.create_api_token(by=cast.bob, name="schema")
    served = client.get("/api/schema/", {"format": "json"}, headers=bearer(key))
    assert served.status_code == 200
    assert json.loads(served.content) == RAW_SCHEMA


@pytest.mark.parametrize(
    ("path", "method"),
    [(path, method) for path, item in RAW_SCHEMA["paths"].items() for method in item if method != "parameters"],
)
def test_every_operation_refuses_anonymous_requests(client, cast, path, method):
    url = path.format_map(KnownIdsDefault(cast.conversation.pk))
    response = client.generic(method.upper(), url, "{}", content_type="application/json")
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"code", "message"}


class KnownIdsDefault(dict):
    def __init__(self, value: int) -> None:
        super().__init__()
        self.value = value

    def __missing__(self, key: str) -> int:
        return self.value
