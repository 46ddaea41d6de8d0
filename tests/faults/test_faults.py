"""Issue 11's faults, each under live load on private PostgreSQL and Redis with real processes.

Visitors write over the widget socket, agents hear them over the inbox socket and answer
through the API (``load``). One fault each: Redis restarted, PostgreSQL restarted, one of two
web processes killed with SIGKILL, the Celery worker killed with SIGKILL while snooze wakes
are due. Then ``World.verdict`` checks every property of the issue and the figures are printed:

- every acknowledged message reached every socket allowed to see it exactly once (live or by
  resume), and none reached a socket that may not see it;
- every acknowledged message is in the database;
- no socket stayed deaf more than 5 s after the service was back;
- a send that could not be stored was refused with an error and, resent with its client_id,
  stored once; none was dropped silently;
- a resume point older than the retained window is told to reload.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from celery import Celery

from .load import CSRF
from .scenario import DEAF_LIMIT, World

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]
OUTAGE = 11


def play(world: World, fault, title: str, **timing) -> list[str]:
    async def go() -> dict:
        await world.run(fault, **timing)
        world.first_event()
        return await world.stale_resume()

    stale = asyncio.run(go())
    problems = world.verdict(stale)
    return problems


def conclude(world: World, title: str, problems: list[str]) -> None:
    world.report(title)
    assert not problems, "\n".join(problems)


def test_redis_restarted_under_load(world_factory):
    world = world_factory()
    world.clients()

    async def restart_redis(w: World) -> None:
        w.down_at = time.monotonic()
        await asyncio.to_thread(w.redis.stop)
        await asyncio.to_thread(w.redis.start)  # same port, empty: no groups, no queued tasks
        w.back_at = time.monotonic()
        w.figures["redis down, s"] = round(w.back_at - w.down_at, 2)

    conclude(world, "Redis restarted", play(world, restart_redis, "Redis restarted"))


def test_postgres_restarted_under_load(world_factory):
    world = world_factory()
    world.clients()

    async def restart_postgres(w: World) -> None:
        w.down_at = time.monotonic()
        await asyncio.to_thread(w.postgres.stop, "fast")
        # Longer than the connection pool waits for a connection (10 s): sends must be refused
        # with an error, not lost, and the sockets must hear again within 5 s of the return.
        await asyncio.sleep(OUTAGE)
        await asyncio.to_thread(w.postgres.start)
        w.back_at = time.monotonic()
        w.figures["postgres down, s"] = round(w.back_at - w.down_at, 2)

    conclude(world, "PostgreSQL restarted", play(world, restart_postgres, "PostgreSQL restarted"))


def test_one_of_two_web_processes_killed_under_load(world_factory):
    world = world_factory(webs=2)
    world.clients()

    async def kill_web(w: World) -> None:
        victim = w.webs[0]
        on_victim = sum(v.server == 0 for v in w.visitors) + sum(a.server == 0 for a in w.agents.values())
        w.down_at = time.monotonic()
        victim.kill9()
        # The other process serves all along: the clock for deafness starts at the kill.
        w.back_at = w.down_at
        w.figures["sockets on the killed process"] = on_victim

    conclude(world, "one web process killed", play(world, kill_web, "web killed"))


def test_worker_killed_while_snooze_wakes_are_due(world_factory):
    world = world_factory(worker=True)
    world.clients(quiet=4)  # four visitors write once and wait: their conversations get snoozed
    sleepers = [v for v in world.visitors if v.quiet]
    player = Celery("faults-beat", broker=world.redis.url)
    snoozed: list[int] = []
    beat: list[asyncio.Task] = []

    def play_beat(stop: float) -> None:
        # beat's schedule wakes every 30 s; the test plays beat every second.
        while time.monotonic() < stop:
            try:
                player.send_task("helpdesk.conversations.tasks.wake_due_conversations")
            except Exception:  # beat, too, just tries again next time
                pass
            time.sleep(1)

    async def kill_worker(w: World) -> None:
        quiet = {v.index for v in sleepers}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len({s.visitor for s in w.ledger.acked.values()} & quiet) < len(quiet):
            await asyncio.sleep(0.2)  # on a busy machine, opening sessions and sockets takes a while
        ids = [m for m, s in w.ledger.acked.items() if s.kind == "visitor" and s.visitor in quiet]
        with psycopg.connect(w.postgres.url(w.database)) as conn:
            conversations = [
                row[0]
                for row in conn.execute(
                    "SELECT DISTINCT conversation_id FROM conversations_message WHERE id = ANY(%s)", [ids]
                ).fetchall()
            ]
        assert len(conversations) == len(sleepers), "every quiet visitor has written its one message"
        web = w.webs[0]
        latest = datetime.now(UTC)
        async with httpx.AsyncClient(timeout=10) as http:
            for conversation in conversations:
                latest = datetime.now(UTC) + timedelta(seconds=2)
                answer = await http.post(
                    f"{web.url}/api/v1/conversations/{conversation}/snooze",
                    json={"until": latest.isoformat()},
                    headers={
                        "Cookie": f"sessionid={w.cast['agents']['alice']['sessionid']}; csrftoken={CSRF}",
                        "X-CSRFToken": CSRF,
                        "Origin": web.url,
                    },
                )
                assert answer.status_code == 200, answer.text
                snoozed.append(conversation)
        # Every wake falls due, beat starts asking, and the worker dies at its first wake run.
        await asyncio.sleep(max(0.0, (latest - datetime.now(UTC)).total_seconds()) + 0.2)
        beat.append(asyncio.create_task(asyncio.to_thread(play_beat, time.monotonic() + 20)))
        await asyncio.sleep(0.3)
        w.down_at = time.monotonic()
        w.workers[-1].kill9()
        await asyncio.sleep(1)
        await asyncio.to_thread(w.start_worker)
        w.back_at = time.monotonic()
        w.figures["worker down, s"] = round(w.back_at - w.down_at, 2)

    problems = play(world, kill_worker, "worker killed")
    # Each snoozed conversation woke once, and each inbox allowed to see it heard so, in time.
    with psycopg.connect(world.postgres.url(world.database)) as conn:
        woken = dict(
            conn.execute(
                "SELECT conversation_id, count(*) FROM events_event WHERE type = 'conversation.woken' "
                "AND conversation_id = ANY(%s) GROUP BY conversation_id",
                [snoozed],
            ).fetchall()
        )
    if sorted(woken) != sorted(snoozed) or any(count != 1 for count in woken.values()):
        problems.append(f"snoozed {snoozed}, woken (conversation: times) {woken}")
    late = {}
    for name in ("alice", "bob"):
        for conversation in snoozed:
            times = world.ledger.notices[name].get(("woken", conversation), [])
            if len(times) != 1:
                problems.append(f"{name} heard conversation {conversation} wake {len(times)} times")
            elif times[0] - world.back_at > DEAF_LIMIT:
                late[name, conversation] = round(times[0] - world.back_at, 2)
    if late:
        problems.append(f"wakes heard more than {DEAF_LIMIT} s after the new worker was ready: {late}")
    world.figures["snoozed conversations woken"] = f"{len(woken)} of {len(snoozed)}"
    conclude(world, "worker killed", problems)
