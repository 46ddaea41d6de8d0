"""The API's JSON parser: DRF's, but through ``safejson`` (a depth limit, one error for every failure)."""

from __future__ import annotations

import json

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from helpdesk import safejson


def _refuse_constant(name: str):
    raise safejson.BadJSON(f"{name} is not JSON")


class SafeJSONParser(JSONParser):
    """Bad JSON, JSON that is not UTF-8, NaN or Infinity (strict JSON, as DRF's) and JSON nested
    deeper than ``safejson.MAX_DEPTH`` are all a 400 ``parse_error``.

    DRF's own parser lets ``RecursionError`` (about a thousand ``[``) escape as a 500.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        try:
            text = stream.read().decode(encoding)
            value = safejson.loads(text)
            if "NaN" in text or "Infinity" in text:  # only now: the depth is known to be safe
                json.loads(text, parse_constant=_refuse_constant)
        except (ValueError, LookupError):  # BadJSON and UnicodeDecodeError are ValueErrors
            raise ParseError(
                _("The body is not valid JSON: UTF-8, without NaN or Infinity, nested at most %(depth)s levels.")
                % {"depth": safejson.MAX_DEPTH}
            ) from None
        return value
