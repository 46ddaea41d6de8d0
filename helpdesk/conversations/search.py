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

Migration 0004 keeps each message's words in a stored ``search_document`` column with a
GIN index; :class:`Document` reads it. Which way PostgreSQL walks is chosen here, not left
to its planner (see :func:`_few_matching_ids`): a page of the newest matches is either
"the few matches, from the index, sorted" or "the newest messages, checked one by one
until a page is full", and a wrong guess between them costs a scan of the whole table.
Contacts are matched on a stored ``search_text`` column with a trigram index.
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from dataclasses import dataclass

from django.contrib.postgres.search import SearchQuery, SearchVectorField
from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Case,
    Expression,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Length
from django.utils.translation import gettext as _

from helpdesk.accounts.models import Employee

from . import access
from .models import Contact, Message, MessageKind

CONFIG = "russian"
COLUMN = "search_document"  # migration 0004
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
    rows = searchable_messages(employee).select_related("conversation__contact", "author_employee", "author_contact")
    rows = rows.order_by("-pk") if before is None else rows.filter(pk__lt=before).order_by("-pk")
    if _full_text():
        found = _newest_matches(rows, _ts_query(text), limit + 1)
        snippets = _headlines(found[:limit], text)
    else:
        for word in _words(text):
            rows = rows.filter(body__icontains=word)
        found = list(rows[: limit + 1])
        snippets = {m.pk: _snippet(m.body, _words(text)) for m in found[:limit]}
    more, found = len(found) > limit, found[:limit]
    hits = [MessageHit(m, snippets.get(m.pk) or [Segment(m.body, False)]) for m in found]
    return MessagePage(hits, found[-1].pk if more else None)


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
        if _full_text():  # the trigram index on name, e-mail and phone together
            rows = rows.filter(_ILike(ContactText(), Value(f"%{_like_escaped(word)}%")))
        else:
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


class Document(Expression):
    """A message's words: the ``search_document`` column migration 0004 adds (PostgreSQL only)."""

    output_field = SearchVectorField()

    def as_sql(self, compiler, connection):
        return f"{compiler.quote_name_unless_alias(Message._meta.db_table)}.{connection.ops.quote_name(COLUMN)}", []


class ContactText(Expression):
    """A contact's name, e-mail and phone: the ``search_text`` column of migration 0004."""

    output_field = TextField()

    def as_sql(self, compiler, connection):
        return (
            f"{compiler.quote_name_unless_alias(Contact._meta.db_table)}.{connection.ops.quote_name('search_text')}",
            [],
        )


class _ILike(Func):
    """``a ILIKE b``, which the trigram index serves (Django's icontains wraps a in UPPER())."""

    arg_joiner = " ILIKE "
    template = "%(expressions)s"
    output_field = BooleanField()


def _like_escaped(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# How many matches (in the whole table) still count as "few": fetched by id and sorted in
# a few milliseconds. Above this, the newest messages are checked one by one instead.
FEW_MATCHES = 2_000
# PostgreSQL's estimate of matches above which a word is surely common: its statistics
# keep the frequent words, so a high estimate is reliable (a low one is not).
SURELY_COMMON = 50_000


def _newest_matches(rows: QuerySet[Message], query: SearchQuery, count: int) -> list[Message]:
    if (ids := _few_matching_ids(query)) is not None:
        return list(rows.filter(pk__in=ids)[:count]) if ids else []
    with _settings(enable_bitmapscan="off", enable_seqscan="off"):  # newest first until enough are found
        return list(rows.annotate(document=Document()).filter(document=query)[:count])


def _few_matching_ids(query: SearchQuery) -> list[int] | None:
    """The ids of all messages (any company, any state) matching, if few; None if many.

    Why not leave it to the planner: its statistics know the common words, but for any
    other word (an order number, a name, a typo) its guess can be a thousand rows, and with
    ``ORDER BY id DESC LIMIT 21`` it then walks the messages newest first, checking each,
    expecting a page soon: for a word that is nowhere, that is every message (seconds on a
    million). So the index alone is asked first, capped: few matches are fetched by id and
    sorted; many mean walking newest first fills a page quickly.
    """
    matches = Message.objects.annotate(document=Document()).filter(document=query).values_list("pk", flat=True)
    sql, params = matches.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]["Plan Rows"] > SURELY_COMMON:
        return None  # skip counting a common word's matches
    with _settings(enable_seqscan="off", enable_indexscan="off"):  # through the search index only
        ids = list(matches[: FEW_MATCHES + 1])
    return ids if len(ids) <= FEW_MATCHES else None


@contextmanager
def _settings(**options: str):
    """PostgreSQL planner settings for the statements inside, undone after the block.

    ``SET LOCAL`` would otherwise last until the caller's transaction ends.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        for name, value in options.items():  # our own names and values, never the user's
            cursor.execute(f"SET LOCAL {name} TO {value}")
        try:
            yield
        finally:
            if not connection.needs_rollback:
                for name in options:
                    cursor.execute(f"SET LOCAL {name} TO DEFAULT")


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
