"""CSV files that open in Excel, streamed: a UTF-8 BOM, formula-safe cells, rows read as they are sent.

Every export goes through here: the audit log (helpdesk/web/audit_views.py), the reports and the
conversation list (helpdesk/api/exports.py). A view fixes its words and time zone before it
returns (the rows are written afterwards, maybe in another thread), then hands ``stream`` its
header, its rows (a queryset is read with ``iterator()``, never loaded whole) and a function
that turns one row into a list of cells.
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.core.handlers.asgi import ASGIRequest
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse

CHUNK = 2000
BOM = "\ufeff"
CONTENT_TYPE = "text/csv; charset=utf-8"
# What a spreadsheet may take for the start of a formula (OWASP's CSV injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> str:
    """One cell as text. Text that starts like a formula would run as one in a spreadsheet (a
    contact's name is whatever a stranger typed): it gets a leading apostrophe and stays plain text.
    Numbers are written as numbers (a negative change is a number, not a formula)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ", timespec="seconds") if isinstance(value, datetime) else value.isoformat()
    text = str(value)
    return "'" + text if text[:1] in FORMULA_STARTS else text


class _Echo:
    """A file-like object whose write returns the line, so csv.writer yields strings."""

    def write(self, value: str) -> str:
        return value


def stream(
    request: HttpRequest,
    *,
    header: list[str],
    rows: QuerySet | Iterable[Any],
    line: Callable[[Any], list[Any]],
    filename: str,
) -> StreamingHttpResponse:
    """The response: the BOM and header first, then one line per row as it is read."""
    writer = csv.writer(_Echo())
    first = BOM + writer.writerow([cell(name) for name in header])

    def text(row) -> str:
        return writer.writerow([cell(value) for value in line(row)])

    # Under ASGI (uvicorn) Django would read a synchronous iterator to the end before sending
    # the first byte; an asynchronous one is sent as it is read. Memory stays flat either way.
    request = getattr(request, "_request", request)  # DRF's Request wraps Django's
    if isinstance(request, ASGIRequest):
        content: Iterable[str] | AsyncIterator[str] = _async_lines(first, rows, text)
    else:
        content = _sync_lines(first, rows, text)
    response = StreamingHttpResponse(content, content_type=CONTENT_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _sync_lines(first: str, rows, text) -> Iterator[str]:
    yield first
    items = rows.iterator(chunk_size=CHUNK) if isinstance(rows, QuerySet) else rows
    for row in items:
        yield text(row)


async def _async_lines(first: str, rows, text) -> AsyncIterator[str]:
    yield first
    if isinstance(rows, QuerySet):
        async for row in rows.aiterator(chunk_size=CHUNK):
            yield text(row)
    else:
        for row in rows:
            yield text(row)
