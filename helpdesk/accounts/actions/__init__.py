"""The one writer for administration: roles, employees, teams, company settings, channels,
API tokens and two-factor sign-in.

Each action checks the actor's permission through ``access``, runs in one transaction,
locks the company row first (so two admins can't race past a rule such as "a company
keeps a super-admin") and writes an audit row with the values before and after.

The functions live in topic modules (roles, employees, teams, company, channels, presence,
api_tokens, sign_in; shared rules in _common); callers use them from here:
``actions.create_role``.
"""

from helpdesk.errors import ActionError

from .api_tokens import TOKEN_PREFIX, create_api_token, employee_for_api_key, revoke_api_token
from .channels import (
    ChannelSettingsInvalid,
    add_channel,
    channel_managers,
    channel_state,
    clean_settings,
    disable_channel,
    enable_channel,
    mark_channel_broken,
    remove_channel,
    settings_form,
    update_channel,
)
from .company import (
    LOGO_MAX_BYTES,
    LOGO_TYPES,
    WEEKDAYS,
    clean_working_hours,
    company_state,
    set_company_logo,
    update_company,
)
from .employees import (
    EMAIL_LENGTH,
    add_employee,
    deactivate_employee,
    employee_state,
    password_link,
    reactivate_employee,
    send_password_link,
    update_employee,
)
from .presence import mark_away_if_idle, presence_from_inbox, set_presence
from .roles import archive_role, create_role, role_state, unarchive_role, update_role
from .sign_in import TOTP_ISSUER, disable_totp, enable_totp, new_totp_secret, record_sign_in, totp_uri, verify_totp
from .teams import create_team, team_state, update_team

__all__ = [
    "EMAIL_LENGTH",
    "LOGO_MAX_BYTES",
    "LOGO_TYPES",
    "TOKEN_PREFIX",
    "TOTP_ISSUER",
    "WEEKDAYS",
    "ActionError",
    "ChannelSettingsInvalid",
    "add_channel",
    "add_employee",
    "archive_role",
    "channel_managers",
    "channel_state",
    "clean_settings",
    "clean_working_hours",
    "company_state",
    "create_api_token",
    "create_role",
    "create_team",
    "deactivate_employee",
    "disable_channel",
    "disable_totp",
    "employee_for_api_key",
    "employee_state",
    "enable_channel",
    "enable_totp",
    "mark_away_if_idle",
    "mark_channel_broken",
    "new_totp_secret",
    "password_link",
    "presence_from_inbox",
    "reactivate_employee",
    "record_sign_in",
    "remove_channel",
    "revoke_api_token",
    "role_state",
    "send_password_link",
    "set_company_logo",
    "set_presence",
    "settings_form",
    "team_state",
    "totp_uri",
    "unarchive_role",
    "update_channel",
    "update_company",
    "update_employee",
    "update_role",
    "update_team",
    "verify_totp",
]
