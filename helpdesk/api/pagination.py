"""Every list: ``?limit=&offset=`` (50 by default, at most 200 a page); a bad value is a 400.

The inbox also takes ``?cursor=`` (keyset pages, :class:`InboxPages`)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import FieldDoesNotExist
from django.db.models import DateTimeField, F, Q, QuerySet
from django.db.models.expressions import OrderBy
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.utils.urls import remove_query_param, replace_query_param


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


# --- Keyset pages: the inbox's cursor --------------------------------------------------------------------------
# An offset makes the database walk past every earlier row: page 200 of a tab costs 200 pages.
# A cursor holds the list order's values of a page's last row; the next page is the rows after
# it, found by index however deep. The cursor also names the order it was cut for: used with
# another order it would skip or repeat rows, so that is a 400 like any other bad value.


@dataclass(frozen=True)
class _Key:
    name: str
    descending: bool
    nulls_last: bool

    @property
    def label(self) -> str:
        return ("-" if self.descending else "") + self.name + ("~" if self.nulls_last else "")


def list_order(queryset: QuerySet) -> list[_Key] | None:
    """The queryset's order as keys (PostgreSQL's default: NULLs last ascending, first descending), or None."""
    keys = []
    for item in queryset.query.order_by:
        if isinstance(item, str):
            name, descending, nulls_last = item.lstrip("-"), item.startswith("-"), not item.startswith("-")
        elif isinstance(item, OrderBy) and isinstance(item.expression, F):
            name, descending = item.expression.name, item.descending
            nulls_last = bool(item.nulls_last) or (not item.nulls_first and not descending)
        else:
            return None
        keys.append(_Key(name, descending, nulls_last))
    return keys if keys and keys[-1].name in ("pk", "id") else None  # the id last: a total order


def _is_time(model, name: str) -> bool:
    try:
        return isinstance(model._meta.get_field(name), DateTimeField)
    except FieldDoesNotExist:
        return False  # "pk" and annotations (ids)


def encode_cursor(keys: list[_Key], row) -> str:
    values = []
    for key in keys:
        value = row.pk if key.name == "pk" else getattr(row, key.name)
        values.append(value.isoformat() if isinstance(value, datetime) else value)
    payload = json.dumps({"o": [key.label for key in keys], "v": values}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _expect(condition: bool) -> None:
    if not condition:
        raise ValueError("not a cursor")


def decode_cursor(keys: list[_Key] | None, model, cursor: str) -> list:
    """The values a cursor holds, checked against the list's order; anything else is a 400."""
    try:
        _expect(len(cursor) <= 2000)
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
        _expect(keys is not None and isinstance(data, dict))
        _expect(data.get("o") == [key.label for key in keys] and isinstance(data.get("v"), list))
        _expect(len(data["v"]) == len(keys))
        values = []
        for key, value in zip(keys, data["v"], strict=True):
            if value is None:
                _expect(key.nulls_last or key.descending)
            elif _is_time(model, key.name):
                value = parse_datetime(value) if isinstance(value, str) else None
                _expect(value is not None and value.tzinfo is not None)
            else:
                _expect(isinstance(value, int) and not isinstance(value, bool))
            values.append(value)
        return values
    except (ValueError, TypeError, UnicodeError, binascii.Error, RecursionError):
        raise ValidationError(
            {"cursor": [_("Not a cursor this list gave out, or one from another order.")]}, code="invalid"
        ) from None


def after_cursor(keys: list[_Key], values: list) -> Q:
    """Rows strictly after the cursor's row in this order: equal on the first keys, after on the next."""

    def beyond(key: _Key, value) -> Q | None:
        if value is None:  # after a NULL: the non-NULLs if NULLs come first, else nothing
            return None if key.nulls_last else Q(**{f"{key.name}__isnull": False})
        moved = Q(**{f"{key.name}__{'lt' if key.descending else 'gt'}": value})
        return moved | Q(**{f"{key.name}__isnull": True}) if key.nulls_last else moved

    rows = Q(pk__in=[])  # nothing yet
    for i, key in enumerate(keys):
        step = beyond(key, values[i])
        if step is None:
            continue
        for earlier, value in zip(keys[:i], values[:i], strict=True):
            step &= Q(**{f"{earlier.name}__isnull": True}) if value is None else Q(**{earlier.name: value})
        rows |= step
    first, value = keys[0], values[0]
    if value is not None and not first.nulls_last:
        # Redundant, but a bound the index can range over (the OR above it cannot).
        rows &= Q(**{f"{first.name}__{'lte' if first.descending else 'gte'}": value})
    return rows


class InboxPages(LimitOffset):
    """``limit``/``offset`` as every list, or ``cursor``: the ``next_cursor`` a page gave, a keyset page."""

    cursor_query_param = "cursor"

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.keys = list_order(queryset)
        self.next_cursor = None
        cursor = request.query_params.get(self.cursor_query_param)
        if cursor is None:
            self.by_cursor = False
            rows = super().paginate_queryset(queryset, request, view)
            more = rows is not None and self.offset + self.limit < self.count
        else:
            if self.offset_query_param in request.query_params:
                raise ValidationError({"cursor": [_("Give either offset or cursor, not both.")]}, code="invalid")
            self.by_cursor = True
            self.limit = self.get_limit(request)
            values = decode_cursor(self.keys, queryset.model, cursor)
            self.count = self.get_count(queryset)
            rows = list(queryset.filter(after_cursor(self.keys, values))[: self.limit + 1])
            more, rows = len(rows) > self.limit, rows[: self.limit]
        if more and rows and self.keys is not None:
            self.next_cursor = encode_cursor(self.keys, rows[-1])
        return rows

    def get_next_link(self):
        if not self.by_cursor:
            return super().get_next_link()
        if self.next_cursor is None:
            return None
        url = remove_query_param(self.request.build_absolute_uri(), self.offset_query_param)
        return replace_query_param(url, self.cursor_query_param, self.next_cursor)

    def get_previous_link(self):
        return None if self.by_cursor else super().get_previous_link()

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        response.data["next_cursor"] = self.next_cursor
        return response

    def get_paginated_response_schema(self, schema):
        response = super().get_paginated_response_schema(schema)
        response["properties"]["next_cursor"] = {
            "type": "string",
            "nullable": True,
            "description": "Pass as ?cursor= for the next page (null on the last one).",
        }
        return response

    def get_schema_operation_parameters(self, view):
        return [
            *super().get_schema_operation_parameters(view),
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": (
                    "A page's next_cursor: the rows after that page, as fast however deep (offset walks past every "
                    "earlier row). Not with offset; the filters and ordering must be the same."
                ),
                "schema": {"type": "string"},
            },
        ]
