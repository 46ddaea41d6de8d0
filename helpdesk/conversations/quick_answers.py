"""Quick answers: automatic replies to customer messages that match an admin's trigger phrases.

The matching rule, in order (each step on *normalised* text: Unicode case-folded, "ё" read
as "e" (Cyrillic), every character that is not a letter or a digit read as a space, spaces collapsed):

1. **exact**: the message is the trigger phrase;
2. **contained**: the trigger phrase appears in the message as whole words ("delivery time"
   is in "hi! what is your delivery time?"), so a long message can still ask a short question;
3. **similar**: typos are forgiven. The trigger is compared with every run of consecutive
   words of the message that is about as long as the trigger (one word fewer, the same, one
   more), by difflib's similarity ratio (0..1); the best run counts if it reaches
   ``settings.QUICK_ANSWER_SIMILARITY``. Only the first ``FUZZY_MAX_WORDS`` words are
   searched this way, which keeps the cost bounded for long letters.

Exact and contained matches score 1. The rule that fires is the best match over all enabled
rules: the highest score, then exact before contained before similar, then the longer
(more specific) trigger, then the older rule. :func:`explain` says all of that for the
settings page where admins test a phrase.

This module decides and configures; ``actions.receive_message`` writes the reply.
"""

from __future__ import annotations

import threading
import time
import unicodedata
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from helpdesk.accounts.models import Company, Employee
from helpdesk.accounts.permissions import Perm
from helpdesk.errors import ActionError
from helpdesk.events import audit

from . import access
from .models import Conversation, Direction, Message, MessageKind, QuickAnswer

FUZZY_MAX_WORDS = 80
TRIGGERS_MAX = 50
TRIGGER_MAX_CHARS = 200
HOW_RANK = {"exact": 3, "contained": 2, "similar": 1}


def normalise(text: str) -> str:
    """Case-, punctuation- and spacing-insensitive form of a text, the same for both sides."""
    text = unicodedata.normalize("NFKC", text or "").casefold().replace("ё", "е")
    return " ".join("".join(char if char.isalnum() else " " for char in text).split())


@dataclass(frozen=True)
class Candidate:
    """How well one trigger of one rule matches a message."""

    rule: QuickAnswer
    trigger: str  # as the admin wrote it
    normalised_trigger: str
    how: str  # "exact", "contained" or "similar"
    score: float
    matched: str  # the normalised words of the message it was compared with
    threshold: float

    @property
    def fires(self) -> bool:
        return self.score >= self.threshold

    def sort_key(self) -> tuple:
        return (self.fires, self.score, HOW_RANK[self.how], len(self.normalised_trigger), -self.rule.pk)


@dataclass
class Verdict:
    """Which rule answers a message, and why: for receive_message and the test page."""

    text: str
    normalised: str
    threshold: float
    # The best candidate of each rule, best first (a rule with nothing comparable is left out).
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def match(self) -> Candidate | None:
        best = self.candidates[0] if self.candidates else None
        return best if best is not None and best.fires else None


class _Runs:
    """The message's runs of consecutive words by length, each distinct run once, built on demand."""

    def __init__(self, words: list[str]) -> None:
        self.words = words[:FUZZY_MAX_WORDS]
        self.by_size: dict[int, list[str]] = {}

    def of(self, size: int) -> list[str]:
        if size not in self.by_size:
            runs = (" ".join(self.words[start : start + size]) for start in range(len(self.words) - size + 1))
            self.by_size[size] = list(dict.fromkeys(runs))
        return self.by_size[size]


def _similarity(trigger: str, runs: _Runs) -> tuple[float, str]:
    """The best ratio between the trigger and a run of about as many words of the message."""
    size = len(trigger.split())
    sizes = sorted({min(max(n, 1), len(runs.words)) for n in (size - 1, size, size + 1)})
    matcher = SequenceMatcher(None, b=trigger, autojunk=False)  # b is indexed once, runs vary
    best, best_run = 0.0, ""
    for n in sizes:
        for run in runs.of(n):
            # An upper bound from the lengths alone skips most runs without comparing them.
            if 2 * min(len(run), len(trigger)) / (len(run) + len(trigger)) <= best:
                continue
            matcher.set_seq1(run)
            if matcher.quick_ratio() <= best:
                continue
            ratio = matcher.ratio()
            if ratio > best:
                best, best_run = ratio, run
    return best, best_run


def _compare(rule: QuickAnswer, trigger: str, text: str, runs: _Runs, threshold: float) -> Candidate | None:
    wanted = normalise(trigger)
    if not wanted or not text:
        return None
    if text == wanted:
        return Candidate(rule, trigger, wanted, "exact", 1.0, text, threshold)
    if f" {wanted} " in f" {text} ":
        return Candidate(rule, trigger, wanted, "contained", 1.0, wanted, threshold)
    score, run = _similarity(wanted, runs)
    return Candidate(rule, trigger, wanted, "similar", round(score, 3), run, threshold)


def explain(rules: list[QuickAnswer], text: str, *, threshold: float | None = None) -> Verdict:
    """Compare a message with every rule's triggers; the verdict names the winner, if any."""
    threshold = settings.QUICK_ANSWER_SIMILARITY if threshold is None else threshold
    normalised = normalise(text)
    runs = _Runs(normalised.split())
    verdict = Verdict(text=text, normalised=normalised, threshold=threshold)
    for rule in rules:
        compared = [_compare(rule, trigger, normalised, runs, threshold) for trigger in rule.triggers]
        best = max((c for c in compared if c is not None), key=Candidate.sort_key, default=None)
        if best is not None:
            verdict.candidates.append(best)
    verdict.candidates.sort(key=Candidate.sort_key, reverse=True)
    return verdict


def live_rules(company_id: int) -> list[QuickAnswer]:
    """The rules that may answer: enabled and not archived, oldest first."""
    return list(
        QuickAnswer.objects.filter(company_id=company_id, enabled=True, archived_at__isnull=True).order_by("pk")
    )


# The live rules per company, kept in the process: every customer message asks for them, and
# admins change them rarely. A change made here is seen at once: the entry is dropped when a
# rule is saved or deleted in this process (``forget``, from ``apps``'s signal handlers) and
# again when its transaction commits; another process sees it within
# QUICK_ANSWERS_CACHE_SECONDS. Entries are read-only: never change a rule taken from here.
_cache: dict[int, tuple[float, list[QuickAnswer]]] = {}
_cache_lock = threading.Lock()


def cached_live_rules(company_id: int) -> list[QuickAnswer]:
    """``live_rules``, at most QUICK_ANSWERS_CACHE_SECONDS old (0: always read)."""
    ttl = settings.QUICK_ANSWERS_CACHE_SECONDS
    if ttl <= 0:
        return live_rules(company_id)
    now = time.monotonic()
    entry = _cache.get(company_id)
    if entry is not None and entry[0] > now:
        return entry[1]
    rules = live_rules(company_id)
    with _cache_lock:
        _cache[company_id] = (now + ttl, rules)
    return rules


def forget(company_id: int | None = None) -> None:
    """Drop the company's cached rules (every company's with None), now and after commit."""

    def drop() -> None:
        with _cache_lock:
            if company_id is None:
                _cache.clear()
            else:
                _cache.pop(company_id, None)

    drop()
    # A message read between the change and its commit cached the old rules: drop them again.
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(drop)


def answer_for(conversation: Conversation, inbound: Message, *, fresh: bool) -> Candidate | None:
    """The quick answer to send after this customer message, or None.

    A quick answer speaks only before a person does: in a new conversation, in one this
    message reopened (``fresh``), and in an open one whose last reply was not a person's.
    Once an agent has answered, "thanks" and the like go to them, not to a bot. Never the
    same answer twice in a row: a customer who asks again wants a person.
    """
    rules = cached_live_rules(conversation.company_id)
    if not rules:  # most companies, most of the time: nothing to read
        return None
    last_reply = (
        conversation.messages.filter(kind=MessageKind.MESSAGE, direction=Direction.OUTBOUND, deleted_at__isnull=True)
        .exclude(pk=inbound.pk)
        .order_by("-pk")
        .values("automatic", "body")
        .first()
    )
    if last_reply and not last_reply["automatic"] and not fresh:
        return None
    match = explain(rules, inbound.body).match
    if match is None or (last_reply and last_reply["automatic"] and last_reply["body"] == match.rule.answer):
        return None
    return match


# --- Configuring them (Settings → Quick answers) ------------------------------------------------------------


def clean_triggers(raw: str | list[str]) -> list[str]:
    """One trigger phrase per line: blank lines dropped, repeats (after normalising) merged."""
    lines = raw.splitlines() if isinstance(raw, str) else [str(line) for line in raw]
    triggers: list[str] = []
    seen: set[str] = set()
    for line in lines:
        line = " ".join(line.split())
        if not line:
            continue
        if len(line) > TRIGGER_MAX_CHARS:
            raise ActionError(
                _("A trigger phrase can be at most %(limit)s characters long.") % {"limit": TRIGGER_MAX_CHARS},
                code="trigger_too_long",
                field="triggers",
            )
        wanted = normalise(line)
        if not wanted:
            raise ActionError(
                _("The trigger phrase “%(phrase)s” has no letters or digits, so nothing could match it.")
                % {"phrase": line},
                code="empty_trigger",
                field="triggers",
            )
        if wanted not in seen:
            seen.add(wanted)
            triggers.append(line)
    if not triggers:
        raise ActionError(_("Add at least one trigger phrase, one per line."), code="no_triggers", field="triggers")
    if len(triggers) > TRIGGERS_MAX:
        raise ActionError(
            ngettext(
                "A quick answer can have at most %(limit)s trigger phrase.",
                "A quick answer can have at most %(limit)s trigger phrases.",
                TRIGGERS_MAX,
            )
            % {"limit": TRIGGERS_MAX},
            code="too_many_triggers",
            field="triggers",
        )
    return triggers


def _clean_title(title: str) -> str:
    title = " ".join(str(title or "").split())
    if not title:
        raise ActionError(_("Give the quick answer a title."), code="no_title", field="title")
    if len(title) > 120:
        raise ActionError(_("The title can be at most 120 characters long."), code="too_long", field="title")
    return title


def _clean_answer(answer: str) -> str:
    answer = str(answer or "").strip()
    if not answer:
        raise ActionError(_("Write the answer the customer gets."), code="no_answer", field="answer")
    if len(answer) > settings.MESSAGE_MAX_CHARS:
        raise ActionError(
            _("The answer can be at most %(limit)s characters long.") % {"limit": settings.MESSAGE_MAX_CHARS},
            code="too_long",
            field="answer",
        )
    return answer


def quick_answer_state(rule: QuickAnswer) -> dict[str, Any]:
    return {
        "title": rule.title,
        "triggers": list(rule.triggers),
        "answer": rule.answer,
        "resolves": rule.resolves,
        "enabled": rule.enabled,
    }


def _lock(by: Employee) -> None:
    # Admins edit rules rarely; one lock per company keeps two edits from interleaving.
    Company.objects.select_for_update().filter(pk=by.company_id).first()


@transaction.atomic(durable=True)
def create_quick_answer(
    *, by: Employee, title: str, triggers: str | list[str], answer: str, resolves: bool = False, enabled: bool = True
) -> QuickAnswer:
    """A new automatic reply; nothing is saved unless the title, triggers and answer are sound."""
    access.require(by, Perm.MANAGE_CANNED)
    rule = QuickAnswer(
        company_id=by.company_id,
        title=_clean_title(title),
        triggers=clean_triggers(triggers),
        answer=_clean_answer(answer),
        resolves=bool(resolves),
        enabled=bool(enabled),
        created_by=by,
    )
    _lock(by)
    rule.save()
    audit.record("quick_answer.created", company=by.company_id, actor=by, obj=rule, after=quick_answer_state(rule))
    return rule


@transaction.atomic(durable=True)
def update_quick_answer(
    rule: QuickAnswer,
    *,
    by: Employee,
    title: str,
    triggers: str | list[str],
    answer: str,
    resolves: bool,
    enabled: bool,
) -> QuickAnswer:
    access.require(by, Perm.MANAGE_CANNED)
    if rule.company_id != by.company_id:
        raise ActionError(_("That belongs to another company."), code="foreign")
    cleaned = {
        "title": _clean_title(title),
        "triggers": clean_triggers(triggers),
        "answer": _clean_answer(answer),
        "resolves": bool(resolves),
        "enabled": bool(enabled),
    }
    _lock(by)
    rule = QuickAnswer.objects.select_for_update().get(pk=rule.pk)
    if rule.archived_at:
        raise ActionError(_("This quick answer is archived."), code="archived")
    before = quick_answer_state(rule)
    for name, value in cleaned.items():
        setattr(rule, name, value)
    rule.save()
    audit.record(
        "quick_answer.updated",
        company=by.company_id,
        actor=by,
        obj=rule,
        before=before,
        after=quick_answer_state(rule),
    )
    return rule


@transaction.atomic(durable=True)
def archive_quick_answer(rule: QuickAnswer, *, by: Employee) -> QuickAnswer:
    """It stops answering and leaves the list; the row (and what it sent) stays."""
    access.require(by, Perm.MANAGE_CANNED)
    if rule.company_id != by.company_id:
        raise ActionError(_("That belongs to another company."), code="foreign")
    rule = QuickAnswer.objects.select_for_update().get(pk=rule.pk)
    if rule.archived_at:
        return rule
    rule.archived_at = timezone.now()
    rule.save(update_fields=["archived_at", "updated_at"])
    audit.record("quick_answer.archived", company=by.company_id, actor=by, obj=rule)
    return rule
