"""Personal API tokens: ``Authorization: Bearer sc_<prefix>_<secret>`` (or ``Token ...``).

A request without such a header is left to the next authenticator (the browser's session,
which checks CSRF). A header that names our scheme but carries a malformed, unknown or
revoked key, or the key of a deactivated employee, is refused with 401: the client meant
to use a token, so falling back to "anonymous" would only hide the mistake.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from helpdesk.accounts import actions

KEYWORDS = ("bearer", "token")


class ApiTokenAuthentication(BaseAuthentication):
    www_authenticate_realm = "api"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower().decode(errors="replace") not in KEYWORDS:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(_("The Authorization header must be: Bearer <API key>."))
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("That API key is not valid.")) from None
        found = actions.employee_for_api_key(key)
        if found is None:
            raise exceptions.AuthenticationFailed(_("That API key is not valid, revoked, or its owner is deactivated."))
        employee, token = found
        return employee.user, token

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) to anonymous requests, with this challenge.
        return f'Bearer realm="{self.www_authenticate_realm}"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """The bearer scheme as the OpenAPI schema shows it."""

    target_class = ApiTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "sc_<prefix>_<secret>",
            "description": str(
                _("A personal API key from Settings → API tokens. It acts as its employee, with their role.")
            ),
        }
