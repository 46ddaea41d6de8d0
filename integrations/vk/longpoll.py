"""The Bots Long Poll, run by the Celery worker: one poller per channel, events stored once.

A poll run takes the lease on the channel's ``LongPollState`` (integrations/lease.py), so a
second run (another worker, a beat tick) finds it taken and leaves at once. It fetches a
server with ``groups.getLongPollServer`` when it has none, then polls
``{server}?act=a_check&key=&ts=&wait=``; each event is stored through ``inbound.receive``
and ``ts`` is saved only after the whole batch is stored. A run that dies mid-batch leaves
the old ``ts``: the next run gets the same events again and the message's unique
``external_id`` makes each replay a no-op.

``failed`` 1: continue from the ts VK gives. 2: the key expired, fetch a new key and server
(same ts). 3: the history was lost, fetch a new key, server and ts. VK unreachable: the
error is recorded and the run backs off (1, 2, 4 … 60 s) until its time is up. Error 5 (the
token was revoked): the run stops and records why; the channel is not polled again until
its token changes.

vk-api's ``VkBotLongPoll`` keeps server, key and ts in memory, advances ts before the events
are handled and fetches a server on construction; we need all three persisted and ts
advanced only after storing, so this small loop speaks the protocol itself.
"""

from __future__ import annotations

import hashlib
import logging
import time

import requests
import vk_api
from django.conf import settings
from django.utils import timezone

from helpdesk.accounts import actions as account_actions
from helpdesk.conversations.models import Channel, ChannelKind
from helpdesk.conversations.secrets import SecretsUnreadable
from helpdesk.errors import ActionError
from integrations import lease

from . import inbound
from .client import TIMEOUT, vk_session
from .models import LongPollState

log = logging.getLogger(__name__)

AUTH_FAILED = 5
MAX_BACKOFF = 60.0
STATE_FIELDS = ["server", "key", "ts", "last_error", "last_error_at", "refused_token", "updated_at"]


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def polled_channels():
    """Enabled VK channels in Long Poll mode."""
    return Channel.objects.filter(
        kind=ChannelKind.VK, archived_at__isnull=True, removed_at__isnull=True, settings__mode="longpoll"
    )


class _Stop(Exception):
    def __init__(self, outcome: str):
        super().__init__(outcome)
        self.outcome = outcome


def poll(channel_id: int, *, run_seconds: float | None = None, wait: int | None = None) -> str:
    """Poll one channel for up to ``run_seconds``; what happened, in a word.

    ``"done"`` (its time ran out; poll again), ``"busy"`` (another run holds the lease),
    ``"off"`` (disabled, removed, not in Long Poll mode), ``"refused"`` (the token was refused),
    ``"lost"`` (the lease was taken over).
    """
    run_seconds = settings.VK_POLL_RUN_SECONDS if run_seconds is None else run_seconds
    wait = settings.VK_LONGPOLL_WAIT if wait is None else wait
    channel = polled_channels().filter(pk=channel_id).first()
    if channel is None:
        return "off"
    state, _ = LongPollState.objects.get_or_create(channel=channel)
    try:
        token = channel.secret_values().get("access_token", "")
    except SecretsUnreadable:
        _fail(state, "the channel's credentials can't be read (CHANNEL_SECRET_KEYS)")
        return "unreadable"
    if state.refused_token and state.refused_token == fingerprint(token):
        return "refused"
    holder = lease.new_holder()
    lease_seconds = wait + TIMEOUT + 30
    if not lease.take(LongPollState, state.pk, holder=holder, seconds=lease_seconds):
        return "busy"
    try:
        _run(channel, state, token, holder=holder, lease_seconds=lease_seconds, run_seconds=run_seconds, wait=wait)
    except _Stop as stop:
        return stop.outcome
    finally:
        lease.give_back(LongPollState, state.pk, holder=holder)
    return "done"


def _save(state: LongPollState) -> None:
    state.save(update_fields=STATE_FIELDS)  # never the lease's fields: those belong to lease.take


def _fail(state: LongPollState, words: str) -> None:
    state.last_error, state.last_error_at = words[:500], timezone.now()
    _save(state)


def _new_server(vk, channel: Channel, state: LongPollState) -> None:
    answer = vk.method("groups.getLongPollServer", {"group_id": channel.settings.get("group_id")})
    state.server, state.key = str(answer["server"]), str(answer["key"])
    if not state.ts:
        state.ts = str(answer["ts"])
    _save(state)


def _run(channel, state, token, *, holder, lease_seconds, run_seconds, wait) -> None:
    vk = vk_session(token)
    http = requests.Session()
    deadline = time.monotonic() + run_seconds
    failures = 0
    while time.monotonic() < deadline:
        if not lease.take(LongPollState, state.pk, holder=holder, seconds=lease_seconds):
            raise _Stop("lost")
        if not polled_channels().filter(pk=channel.pk).exists():
            raise _Stop("off")
        try:
            if not (state.server and state.key):
                _new_server(vk, channel, state)
            params = {"act": "a_check", "key": state.key, "ts": state.ts, "wait": wait}
            answer = http.get(state.server, params=params, timeout=wait + TIMEOUT).json()
            if not isinstance(answer, dict):
                raise ValueError("not an object")
        except vk_api.exceptions.ApiError as error:
            words = f"VK error {error.code}: {str(error.error.get('error_msg', ''))[:300]}"
            if error.code == AUTH_FAILED:
                state.refused_token = fingerprint(token)
                _fail(state, words)
                log.warning("vk channel %s: the access token was refused; polling stopped", channel.pk)
                account_actions.mark_channel_broken(channel, reason=words)
                raise _Stop("refused") from None
            failures += 1
            _fail(state, words)
        except (vk_api.exceptions.ApiHttpError, requests.RequestException, ValueError, KeyError, TypeError) as error:
            failures += 1
            _fail(state, f"VK could not be reached ({type(error).__name__})")
        else:
            failures = 0
            _handle(channel, state, answer)
            continue
        pause = min(2.0 ** (failures - 1), MAX_BACKOFF, max(deadline - time.monotonic(), 0))
        log.info("vk channel %s: long poll failed (%s); next try in %.0f s", channel.pk, state.last_error, pause)
        time.sleep(pause)


def _handle(channel: Channel, state: LongPollState, answer: dict) -> None:
    failed = answer.get("failed")
    if failed is not None:
        if failed == 1 and answer.get("ts") is not None:
            state.ts = str(answer["ts"])
        elif failed == 2:
            state.server = state.key = ""
        elif failed == 3:
            state.server = state.key = state.ts = ""
        else:
            raise_words = f"VK long poll answered failed={failed!r:.20}"
            state.server = state.key = ""
            state.last_error, state.last_error_at = raise_words, timezone.now()
        _save(state)
        return
    updates = answer.get("updates")
    for event in updates if isinstance(updates, list) else []:
        try:
            inbound.receive(channel, event)
        except ActionError as exc:
            log.info("vk channel %s: a message was not stored (%s)", channel.pk, exc.code)
    if answer.get("ts") is not None:
        state.ts = str(answer["ts"])  # only now: every event before it is stored
    if state.last_error:
        state.last_error, state.last_error_at = "", None
    _save(state)
