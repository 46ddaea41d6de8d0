"""Every list: ``?limit=&offset=`` (50 by default, at most 200 a page); a bad value is a 400."""

from __future__ import annotations

from django.utils.translation import gettext as _
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination


class LimitOffset(LimitOffsetPagination):
    max_limit = 200

    def get_limit(self, request):
        if self.limit_query_param in request.query_params:
            self._number(request, self.limit_query_param, minimum=1)
        return super().get_limit(request)

    def get_offset(self, request):
        if self.offset_query_param in request.query_params:
            self._number(request, self.offset_query_param, minimum=0)
        return super().get_offset(request)

    def _number(self, request, name: str, *, minimum: int) -> None:
        # DRF quietly falls back to the default for a limit like "-1" or "ten"; say so instead.
        value = request.query_params[name]
        if not (value.isascii() and value.isdigit() and int(value) >= minimum):
            raise ValidationError(
                {name: [_("Must be a whole number, %(minimum)s or more.") % {"minimum": minimum}]}, code="invalid"
            )

    def get_schema_operation_parameters(self, view):
        # What _number() accepts, so the schema and the 400 agree.
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1 if parameter["name"] == self.limit_query_param else 0
        return parameters
