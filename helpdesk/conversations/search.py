"""Search across messages, notes and contacts, only within what the employee may see.

Every search starts from the gate (:func:`access.visible_conversations` and
:func:`access.visible_contacts`), so a narrower role finds only what its inbox shows.
Deleted messages and conversations are never found, whoever searches.

On PostgreSQL, messages are found by full-text search in the ``russian`` configuration,
which stems Russian words with the Russian stemmer and Latin words with the English one
("возврата" finds "возврат", "refunds" finds "refund"). The query reads like a web search
box: words must all appear, ``"quoted phrases"`` match in order, ``or`` (``или``) gives
alternatives and ``-word`` excludes; the last word also matches as a prefix while it is
being typed ("refu" finds "refund"). Results are newest first, a page at a time, and each
carries a snippet with the matching words marked. On SQLite (the embedded default) the
same function matches every word as a case-insensitive substring.

The GIN index is created by migration 0004 on exactly the expression :class:`Document`
renders; keep the two in step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.contrib.postgres.search import SearchQuery, SearchVectorField
from django.db import connection
from django.db.models import Case, F, Func, OuterRef, Q, QuerySet, Subquery, TextField, Value, When
from django.db.models.functions import Length
from django.utils.translation import gettext as _

from helpdesk.accounts.models import Employee

from . import access
from .models import Contact, Message, MessageKind

CONFIG = "russian"
MAX_QUERY_LENGTH = 200
MAX_WORDS = 16
PAGE_SIZE = 20
CONTACTS_SHOWN = 5
# The last word is matched as a prefix from this length on: shorter ones would match half the table.
PREFIX_FROM = 3
WHOLE_UP_TO = 280  # characters: a message this short is its own snippet
SNIPPET_CONTEXT = 60  # characters around the first match, for the SQLite snippet

_WORD = re.compile(r"\w+")
# In the highlighted text from PostgreSQL: match start/stop markers, and stand-ins for < and >
# (ts_headline's parser would otherwise take "a<b and c>d" for an HTML tag and drop it).
_START, _STOP = "\x02", "\x03"
_LT, _GT = "\ue000", "\ue001"


# Web-search syntax: a phrase, an alternative or an exclusion. Such a query is taken as written.
_OPERATORS = re.compile(r'"|(?:^|\s)-\w|(?:^|\s)or(?:\s|$)', re.IGNORECASE)
_OR_RU = re.compile(r"(?<=\s)или(?=\s)", re.IGNORECASE)


class SearchError(ValueError):
    """The query can't be searched; the message says why, for the person who typed it."""


@dataclass(frozen=True)
class Segment:
    text: str
    match: bool


@dataclass(frozen=True)
class MessageHit:
    message: Message
    segments: list[Segment]

    @property
    def conversation(self):
        return self.message.conversation


@dataclass(frozen=True)
class MessagePage:
    hits: list[MessageHit]
    # Pass as ``before`` for the next (older) page; None on the last one.
    next_before: int | None


def clean(text: str | None) -> str:
    """The query as it will be searched, or SearchError when there is nothing to search for."""
    text = " ".join((text or "").split())
    if len(text) > MAX_QUERY_LENGTH:
        raise SearchError(_("Search for at most %(count)s characters.") % {"count": MAX_QUERY_LENGTH})
    if not _WORD.search(text):
        raise SearchError(_("Type a word to search for."))
    return text


def searchable_messages(employee: Employee) -> QuerySet[Message]:
    """The messages and notes this employee may find: visible conversations, nothing deleted."""
    return Message.objects.filter(
        conversation__in=access.visible_conversations(employee),
        deleted_at__isnull=True,
        kind__in=[MessageKind.MESSAGE, MessageKind.NOTE],
    )


def messages(employee: Employee, text: str, *, before: int | None = None, limit: int = PAGE_SIZE) -> MessagePage:
    """One page of the employee's messages matching the query, newest first."""
    text = clean(text)
    rows = searchable_messages(employee)
    if before is not None:
        rows = rows.filter(pk__lt=before)
    if _full_text():
        query = _ts_query(text)
        rows = rows.annotate(document=Document(F("body"))).filter(document=query)
    else:
        for word in _words(text):
            rows = rows.filter(body__icontains=word)
    found = list(
        rows.select_related("conversation__contact", "author_employee", "author_contact").order_by("-pk")[: limit + 1]
    )
    more = len(found) > limit
    found = found[:limit]
    snippets = _headlines(found, text) if _full_text() else {m.pk: _snippet(m.body, _words(text)) for m in found}
    hits = [MessageHit(m, snippets.get(m.pk) or [Segment(m.body, False)]) for m in found]
    return MessagePage(hits, found[-1].pk if more and found else None)


def contacts(employee: Employee, text: str, *, limit: int = CONTACTS_SHOWN) -> list[Contact]:
    """Contacts whose name, e-mail or phone contains every word, most recent first.

    Each carries ``latest_conversation_id`` and ``latest_conversation_status``: their most
    recent conversation that this employee may open (every contact found has one).
    """
    latest = access.visible_conversations(employee).filter(contact=OuterRef("pk")).order_by("-last_activity_at", "-pk")
    rows = access.visible_contacts(employee).annotate(
        latest_conversation_id=Subquery(latest.values("pk")[:1]),
        latest_conversation_status=Subquery(latest.values("status")[:1]),
    )
    for word in _words(clean(text)):
        rows = rows.filter(Q(name__icontains=word) | Q(email__icontains=word) | Q(phone__icontains=word))
    return list(rows.filter(latest_conversation_id__isnull=False).order_by("-created_at", "-pk")[:limit])


def only_common_words(text: str) -> bool:
    """True when PostgreSQL ignores every word of the query (all stop words like "the" or "и")."""
    if not _full_text():
        return False
    parts = _ts_parts(clean(text))
    functions = {"websearch": "websearch_to_tsquery", "raw": "to_tsquery"}
    sql = " && ".join(f"{functions[kind]}('{CONFIG}'::regconfig, %s)" for kind, _value in parts)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT numnode({sql})", [value for _kind, value in parts])
        return cursor.fetchone()[0] == 0


# --- PostgreSQL --------------------------------------------------------------------------------


class Document(Func):
    """The words of a message: the expression migration 0004 indexes, character for character.

    Messages are plain text, never HTML; PostgreSQL's parser would take "a<b and c>d" or
    "<script>…" for tags and skip the words inside, so < and > are read as spaces.
    """

    function = "to_tsvector"
    template = f"%(function)s('{CONFIG}'::regconfig, translate(%(expressions)s, '<>', '  '))"
    output_field = SearchVectorField()


def _full_text() -> bool:
    return connection.vendor == "postgresql"


def _ts_parts(text: str) -> list[tuple[str, str]]:
    """The query as web-search syntax; a plain list of words takes its last one as a prefix."""
    text = _OR_RU.sub(" or ", text)  # PostgreSQL's web-search syntax knows only the English word
    last = re.search(r"(?:^|\s)(\w+)$", text)
    if not last or len(last.group(1)) < PREFIX_FROM or _OPERATORS.search(text):
        return [("websearch", text)]
    head = text[: last.start(1)]
    prefix = ("raw", f"'{last.group(1)}':*")  # \w+ only: nothing to escape
    return [("websearch", head), prefix] if _WORD.search(head) else [prefix]


def _ts_query(text: str) -> SearchQuery:
    queries = [SearchQuery(value, config=CONFIG, search_type=kind) for kind, value in _ts_parts(text)]
    query = queries[0]
    for more in queries[1:]:
        query &= more
    return query


class _Headline(Func):
    function = "ts_headline"
    output_field = TextField()


def _headlines(found: list[Message], text: str) -> dict[int, list[Segment]]:
    """Snippets with the matches marked, for one page of hits (never for the whole result)."""
    if not found:
        return {}
    body = Func(F("body"), Value(f"<>{_START}{_STOP}"), Value(f"{_LT}{_GT}"), function="translate")
    marks = f"StartSel={_START}, StopSel={_STOP}, ShortWord=0"
    # A short message is shown whole; a long one as up to two fragments around the matches.
    options = Case(
        When(length__lte=WHOLE_UP_TO, then=Value(f"{marks}, HighlightAll=true")),
        default=Value(f'{marks}, MaxWords=24, MinWords=10, MaxFragments=2, FragmentDelimiter=" … "'),
    )
    rows = (
        Message.objects.filter(pk__in=[m.pk for m in found])
        .annotate(length=Length("body"))
        .annotate(headline=_Headline(Value(CONFIG), body, _ts_query(text), options))
        .values_list("pk", "headline")
    )
    return {pk: _segments(headline) for pk, headline in rows}


def _segments(headline: str) -> list[Segment]:
    headline = headline.replace(_LT, "<").replace(_GT, ">")
    segments = []
    for part in headline.split(_START):
        marked, _sep, rest = part.partition(_STOP)
        if _sep:
            segments.append(Segment(marked, True))
            if rest:
                segments.append(Segment(rest, False))
        elif part:
            segments.append(Segment(part, False))
    return segments


# --- Elsewhere (SQLite) ------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text) if w.lower() not in ("or", "или")][:MAX_WORDS]


def _snippet(body: str, words: list[str]) -> list[Segment]:
    pattern = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)), re.IGNORECASE)
    first = pattern.search(body)
    start = max(0, (first.start() if first else 0) - SNIPPET_CONTEXT)
    end = min(len(body), (first.end() if first else 0) + SNIPPET_CONTEXT * 2)
    window = ("…" if start else "") + body[start:end] + ("…" if end < len(body) else "")
    segments, at = [], 0
    for match in pattern.finditer(window):
        if match.start() > at:
            segments.append(Segment(window[at : match.start()], False))
        segments.append(Segment(match.group(0), True))
        at = match.end()
    if at < len(window):
        segments.append(Segment(window[at:], False))
    return segments
