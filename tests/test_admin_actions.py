"""The administration writer: roles, employees, teams, company, tokens, 2FA, and their audit rows."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pyotp
import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from PIL import Image

from helpdesk.accounts import actions
from helpdesk.accounts.models import ApiToken, CompanyLogo, Employee, Role, Scope, Team
from helpdesk.accounts.permissions import Perm
from helpdesk.conversations import access
from helpdesk.errors import ActionError
from helpdesk.events.models import AuditEntry


def audit_actions(company) -> list[str]:
    return list(AuditEntry.objects.filter(company=company).order_by("id").values_list("action", flat=True))


def png(size: int = 4) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), "purple").save(buffer, "PNG")
    return buffer.getvalue()


# --- Roles ----------------------------------------------------------------------------------------------


def test_a_super_admin_creates_a_role_and_the_audit_log_shows_it(cast):
    role = actions.create_role(by=cast.sam, name="  Night shift ", permissions=["reply", "add_notes"], scope="teams")
    assert (role.name, role.scope, role.permissions) == ("Night shift", Scope.TEAMS, ["add_notes", "reply"])
    entry = AuditEntry.objects.get(action="role.created")
    assert (entry.company_id, entry.actor_id, entry.object_repr) == (cast.acme.pk, cast.sam.pk, "Night shift")
    assert entry.after == {
        "name": "Night shift",
        "scope": "teams",
        "permissions": ["add_notes", "reply"],
        "archived": False,
    }


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"name": "", "permissions": [], "scope": "all"}, "empty_name"),
        ({"name": "X", "permissions": ["reply", "fly"], "scope": "all"}, "unknown_permission"),
        ({"name": "X", "permissions": [], "scope": "everything"}, "unknown_scope"),
        ({"name": "agent", "permissions": [], "scope": "all"}, "duplicate"),  # names are unique, any case
    ],
)
def test_invalid_roles_are_refused_and_nothing_is_written(cast, kwargs, code):
    before = Role.objects.count()
    with pytest.raises(ActionError) as error:
        actions.create_role(by=cast.sam, **kwargs)
    assert error.value.code == code
    assert Role.objects.count() == before and audit_actions(cast.acme) == []


def test_only_a_role_manager_edits_roles(cast):
    with pytest.raises(PermissionDenied):
        actions.create_role(by=cast.alice, name="Mine", permissions=[], scope="all")


def test_nobody_edits_the_role_they_hold(cast):
    with pytest.raises(ActionError) as error:
        actions.update_role(cast.sam.role, by=cast.sam, name="Boss")
    assert error.value.code == "own_role"


def test_editing_a_role_records_only_what_changed(cast):
    role = cast.bob.role
    actions.update_role(role, by=cast.sam, name="Support agent", permissions=[*role.permissions, "snooze"])
    entry = AuditEntry.objects.get(action="role.updated")
    assert entry.before == {"name": "Agent"} and entry.after == {"name": "Support agent"}


def test_archiving_keeps_the_role_but_nobody_new_gets_it(cast):
    role = actions.create_role(by=cast.sam, name="Temp", permissions=["reply"], scope="assigned")
    actions.archive_role(role, by=cast.sam)
    role.refresh_from_db()
    assert role.archived and Role.objects.filter(pk=role.pk).exists()
    with pytest.raises(ActionError) as error:
        actions.update_employee(cast.bob, by=cast.alice, role=role)
    assert error.value.code == "archived_role"
    actions.unarchive_role(role, by=cast.sam)
    actions.update_employee(cast.bob, by=cast.alice, role=role)  # the caller's copy is stale: re-read
    assert audit_actions(cast.acme) == ["role.created", "role.archived", "role.unarchived", "employee.updated"]


@pytest.mark.parametrize("which", ["builtin", "held"])
def test_roles_that_are_built_in_or_held_are_not_archived(cast, which):
    role = cast.alice.role if which == "builtin" else Role.objects.get(name="Assigned only")
    with pytest.raises(ActionError) as error:
        actions.archive_role(role, by=cast.sam)
    assert error.value.code == ("builtin" if which == "builtin" else "role_in_use")


# --- Employees -----------------------------------------------------------------------------------------------


def test_adding_an_employee_and_sending_their_set_password_link(cast):
    employee = actions.add_employee(
        by=cast.alice, email=" New@Acme.test ", name="Nina", role=cast.bob.role, teams=[cast.sales], capacity=5
    )
    assert (employee.user.email, employee.capacity, list(employee.teams.all())) == ("new@acme.test", 5, [cast.sales])
    assert not employee.user.has_usable_password()
    link = actions.send_password_link(employee, by=cast.alice, base_url="https://support.acme.test")
    assert link.startswith("https://support.acme.test/") and link in mail.outbox[0].body
    assert mail.outbox[0].to == ["new@acme.test"]
    assert audit_actions(cast.acme) == ["employee.added", "employee.password_link_sent"]


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"email": "not-an-email"}, "bad_email"),
        ({"email": "bob@acme.test"}, "duplicate_email"),
        ({"name": " "}, "empty_name"),
        ({"capacity": -1}, "bad_capacity"),
    ],
)
def test_bad_employee_input_is_refused(cast, kwargs, code):
    data = {"email": "x@acme.test", "name": "X", "role": cast.bob.role, "capacity": 3, **kwargs}
    count = Employee.objects.count()
    with pytest.raises(ActionError) as error:
        actions.add_employee(by=cast.alice, **data)
    assert error.value.code == code and Employee.objects.count() == count


def test_an_admin_cannot_make_anyone_more_powerful_than_themselves(cast):
    with pytest.raises(PermissionDenied):
        actions.add_employee(by=cast.alice, email="z@acme.test", name="Z", role=cast.sam.role)
    with pytest.raises(PermissionDenied):
        actions.update_employee(cast.bob, by=cast.alice, role=cast.sam.role)
    # Nor touch someone who holds such a role.
    with pytest.raises(PermissionDenied):
        actions.deactivate_employee(cast.sam, by=cast.alice)


def test_teams_and_roles_of_another_company_are_refused(cast):
    foreign_team = Team.objects.create(company=cast.globex, name="Globex team")
    with pytest.raises(ActionError):
        actions.update_employee(cast.bob, by=cast.alice, role=cast.carol.role)
    with pytest.raises(ActionError):
        actions.update_employee(cast.bob, by=cast.alice, teams=[cast.sales, foreign_team])
    assert list(cast.bob.teams.all()) == [cast.sales]


def test_a_super_admin_is_managed_only_by_another_and_never_by_themselves(cast):
    with pytest.raises(ActionError) as error:
        actions.update_employee(cast.sam, by=cast.sam, role=cast.alice.role)
    assert error.value.code == "own_role"
    with pytest.raises(ActionError) as error:
        actions.deactivate_employee(cast.sam, by=cast.sam)
    assert error.value.code == "self"
    # With a second super-admin, one may demote the other; the demoted one can't strike back.
    actions.update_employee(cast.alice, by=cast.sam, role=cast.sam.role)
    alice = Employee.objects.get(pk=cast.alice.pk)
    actions.update_employee(cast.sam, by=alice, role=Role.objects.get(company=cast.acme, builtin="admin"))
    sam = Employee.objects.get(pk=cast.sam.pk)
    with pytest.raises(PermissionDenied):
        actions.deactivate_employee(alice, by=sam)
    assert Employee.objects.get(pk=cast.alice.pk).is_active


def test_no_change_may_leave_the_company_without_a_super_admin(cast):
    deputy = actions.create_role(by=cast.sam, name="Deputy", permissions=list(Perm.values), scope="all")
    actions.update_employee(cast.alice, by=cast.sam, role=deputy)
    actions.deactivate_employee(cast.sam, by=Employee.objects.get(pk=cast.alice.pk))
    alice = Employee.objects.get(pk=cast.alice.pk)
    # Alice is the last one left who manages roles: her own role is out of her reach, and
    # the built-in super-admin role (nobody active holds it) may lose the power freely.
    actions.update_role(cast.sam.role, by=alice, permissions=["reply"])
    with pytest.raises(ActionError) as error:
        actions.update_role(deputy, by=alice, permissions=["reply"])
    assert error.value.code == "own_role"


def test_the_super_admin_guard_refuses_a_company_left_without_one(cast):
    # The rules above keep it from happening through the product; the guard is the last line,
    # run by every action that could change who manages roles.
    Employee.objects.filter(pk=cast.sam.pk).update(is_active=False)
    with pytest.raises(ActionError) as error:
        actions.update_employee(cast.bob, by=cast.alice, capacity=3)
    assert error.value.code == "last_super_admin"
    cast.bob.refresh_from_db()
    assert cast.bob.capacity == 10


def test_deactivating_keeps_the_person_and_their_messages(cast):
    actions.deactivate_employee(cast.bob, by=cast.alice)
    cast.bob.refresh_from_db()
    cast.bob.user.refresh_from_db()
    assert not cast.bob.is_active and not cast.bob.user.is_active and cast.bob.deactivated_at
    actions.reactivate_employee(cast.bob, by=cast.alice)
    cast.bob.refresh_from_db()
    assert cast.bob.is_active and cast.bob.deactivated_at is None
    entry = AuditEntry.objects.get(action="employee.deactivated")
    assert entry.before == {"active": True} and entry.after == {"active": False}


# --- Teams and company ------------------------------------------------------------------------------------------


def test_teams_are_created_renamed_and_staffed(cast):
    team = actions.create_team(by=cast.alice, name="VIP", members=[cast.bob])
    actions.update_team(team, by=cast.alice, name="VIP desk", members=[cast.bob, cast.erin])
    assert sorted(team.members.values_list("display_name", flat=True)) == ["Bob", "Erin"]
    entry = AuditEntry.objects.get(action="team.updated")
    assert entry.before == {"name": "VIP", "members": ["Bob"]}
    with pytest.raises(ActionError):
        actions.create_team(by=cast.alice, name="vip desk")


def test_company_settings_validate_time_zone_and_hours(cast):
    actions.update_company(
        cast.acme, by=cast.alice, name="Acme Ltd", timezone_name="Asia/Tokyo", working_hours={0: ["9:00", "18:00"]}
    )
    cast.acme.refresh_from_db()
    assert (cast.acme.name, cast.acme.timezone, cast.acme.working_hours) == (
        "Acme Ltd",
        "Asia/Tokyo",
        {"0": ["09:00", "18:00"]},
    )
    for bad in ({"timezone_name": "Mars/Olympus"}, {"working_hours": {"0": ["18:00", "09:00"]}}, {"name": ""}):
        with pytest.raises(ActionError):
            actions.update_company(cast.acme, by=cast.alice, **bad)
    with pytest.raises(PermissionDenied):
        actions.update_company(cast.acme, by=cast.bob, name="Bob's")


def test_the_logo_must_be_a_real_small_image(cast):
    actions.set_company_logo(cast.acme, by=cast.alice, data=png())
    cast.acme.refresh_from_db()
    assert cast.acme.logo_content_type == "image/png"
    assert bytes(CompanyLogo.objects.get(company=cast.acme).data).startswith(b"\x89PNG")
    for bad in (b"<svg onload=alert(1)>", png()[:20], b"\x89PNG" + b"0" * (600 * 1024)):
        with pytest.raises(ActionError):
            actions.set_company_logo(cast.acme, by=cast.alice, data=bad)
    actions.set_company_logo(cast.acme, by=cast.alice, data=None)
    cast.acme.refresh_from_db()
    assert bytes(CompanyLogo.objects.get(company=cast.acme).data) == b"" and cast.acme.logo_content_type == ""


# --- API tokens and two-factor sign-in -----------------------------------------------------------------------


def test_an_api_key_is_shown_once_stored_hashed_and_dies_when_revoked(cast):
    token, key = actions.create_api_token(by=cast.bob, name="CRM")
    assert key.startswith("sc_") and key.split("_", 2)[2] not in token.secret_hash
    assert actions.employee_for_api_key(key) == (cast.bob, token)
    assert actions.employee_for_api_key(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    with pytest.raises(PermissionDenied):
        actions.revoke_api_token(token, by=cast.erin)  # not hers, and she manages nobody
    actions.revoke_api_token(token, by=cast.bob)
    assert actions.employee_for_api_key(key) is None


def test_a_deactivated_employees_key_stops_working(cast):
    _, key = actions.create_api_token(by=cast.bob, name="CRM")
    actions.deactivate_employee(cast.bob, by=cast.alice)
    assert actions.employee_for_api_key(key) is None
    assert ApiToken.objects.filter(employee=cast.bob).exists()


def test_two_factor_needs_a_right_code_and_a_code_works_once(cast):
    secret = actions.new_totp_secret()
    with pytest.raises(ActionError):
        actions.enable_totp(cast.bob, secret=secret, code="000000")
    totp = pyotp.TOTP(secret)
    actions.enable_totp(cast.bob, secret=secret, code=totp.now())
    cast.bob.refresh_from_db()
    assert cast.bob.has_2fa
    # The code that turned it on can't be replayed to sign in; the next one works, once.
    assert actions.verify_totp(cast.bob, totp.now()) is False
    next_code = totp.generate_otp(totp.timecode(datetime.now(UTC)) + 1)
    assert actions.verify_totp(cast.bob, next_code) is True
    assert actions.verify_totp(cast.bob, next_code) is False


def test_a_company_can_require_two_factor_for_admins(cast):
    assert not access.needs_2fa(cast.alice)
    actions.update_company(cast.acme, by=cast.alice, require_2fa_for_admins=True)
    cast.alice.company.refresh_from_db()
    cast.bob.company.refresh_from_db()
    assert access.needs_2fa(cast.alice) and not access.needs_2fa(cast.bob)


def test_sign_ins_are_audited_for_their_company(cast):
    actions.record_sign_in(employee=cast.bob, username="bob@acme.test", succeeded=True)
    actions.record_sign_in(employee=None, username="nobody@x.test", succeeded=False, reason="unknown")
    assert audit_actions(cast.acme) == ["signin.succeeded"]
    stranger = AuditEntry.objects.get(action="signin.failed")
    assert stranger.company_id is None and stranger.actor_name == "nobody@x.test"
