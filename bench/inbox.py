"""Inbox list benchmark: the list API and the inbox page over 1,000,000 messages.

Seeds (set-based SQL, fast on 2 cores) one company with 100,000 conversations and ten
messages each (times ``--scale``), customer and agent in turn, a deleted message and a note
now and then, read markers for the assignee and the admin on part of them, and @mentions of
an agent and of a team; plus a neighbour company a tenth of its size. Then, through the whole
request stack (Django's test client, session login), it times every inbox list for an admin
(scope all), a team agent (teams) and an assigned-only agent: each view (mine, unassigned,
all, mentions) and status tab (open, snoozed, resolved), as the API (``/api/v1/conversations/``,
a page of 50) and as the server-rendered page (``/inbox/``, 100 rows). It prints p50/p95 and the
queries each request ran, a deep page by offset and by cursor, and the machine's raw limit
measured in the same run: a round trip of a trivial indexed SELECT of 50 rows.

Goal: p95 < 50 ms for every scope, view and status; a constant query count.

    .venv/bin/python bench/inbox.py --scale 0.1      # a quick run (100k messages)
    .venv/bin/python bench/inbox.py                   # the full 1M / 100k
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

from _database import recreate_database  # bench/, the script's own folder

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/smartchat_bench_i11inbox"
GOAL_P95_MS = 50.0
VIEWS = ("mine", "unassigned", "all", "mentions")
STATUSES = ("open", "snoozed", "resolved")


def say(message: str) -> None:
    print(f"bench: {message}", flush=True)


def setup_django(url: str) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "smartchat.settings",
            "DATABASE_URL": url,
            "ALLOWED_HOSTS": "testserver",
            # The bench sends thousands of requests as one user: the API's rate limit would refuse them.
            "RATE_LIMIT_API_PER_USER": "off",
        }
    )
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.pop("REDIS_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def seed_company(name: str, conversations: int, *, teams: int, agents: int):
    """The people through the services; conversations, messages, markers and mentions through SQL."""
    from django.db import connection

    from helpdesk.accounts import services
    from helpdesk.accounts.models import Role, Scope
    from helpdesk.accounts.permissions import AGENT_PERMS

    company = services.create_company(name=name)
    team_objs = [services.create_team(company=company, name=f"Team {i}") for i in range(teams)]
    admin = services.create_employee(
        company=company, email=f"admin@{company.pk}.bench", name="Admin", role="admin", password="x"
    )
    assigned_role = Role.objects.create(
        company=company, name="Assigned", scope=Scope.ASSIGNED, permissions=list(map(str, AGENT_PERMS))
    )
    staff = [
        services.create_employee(
            company=company,
            email=f"agent{i}@{company.pk}.bench",
            name=f"Agent {i}",
            role=assigned_role if i == agents - 1 else "agent",
            password="x",
            teams=[team_objs[i % teams]],
        )
        for i in range(agents)
    ]
    channels = [
        services.create_widget_channel(
            company=company, name=f"Site {i}", team=team_objs[i % teams], allowed_origins=["*"]
        )
        for i in range(3)
    ]
    c, n = company.pk, conversations
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_agents")
        cur.execute("CREATE TEMP TABLE bench_agents (idx int, id int, team int)")
        for i, employee in enumerate(staff):
            cur.execute("INSERT INTO bench_agents VALUES (%s, %s, %s)", [i, employee.pk, team_objs[i % teams].pk])
        t = time.perf_counter()
        cur.execute(
            """INSERT INTO conversations_contact
               (company_id, name, email, phone, attributes, created_at, blocked_reason)
               SELECT %s, 'c' || g, '', '', '{}', now(), '' FROM generate_series(1, %s) g""",
            [c, max(1, n // 2)],
        )
        cur.execute("SELECT min(id) FROM conversations_contact WHERE company_id = %s", [c])
        first_contact = cur.fetchone()[0]
        # A fifth open (a tenth of those unassigned, in the queue), a twentieth snoozed, the rest
        # resolved; spread over the past year; each in its agent's team.
        cur.execute(
            """INSERT INTO conversations_conversation
               (company_id, channel_id, contact_id, status, assignee_id, team_id, priority, last_activity_at,
                waiting_since, snoozed_until, last_message_preview, created_at, updated_at, resolutions)
               SELECT %(c)s, (%(channels)s::int[])[1 + g %% 3], %(fc)s + (g %% %(contacts)s), st,
                      CASE WHEN st = 'open' AND g %% 50 = 0 THEN NULL ELSE a.id END, a.team, g %% 5,
                      ts + interval '30 minutes', CASE WHEN st = 'open' AND g %% 3 = 0 THEN ts END,
                      CASE WHEN st = 'snoozed' THEN now() + interval '1 day' END,
                      'how do I …', ts, ts, CASE WHEN st = 'resolved' THEN 1 ELSE 0 END
               FROM generate_series(1, %(n)s) g
               JOIN bench_agents a ON a.idx = g %% %(agents)s
               CROSS JOIN LATERAL (
                   SELECT now() - ((g::bigint * 2654435761) %% 31536000) * interval '1 second' AS ts,
                          CASE WHEN g %% 5 = 0 THEN 'open' WHEN g %% 20 = 1 THEN 'snoozed'
                               ELSE 'resolved' END AS st
               ) t""",
            {
                "c": c,
                "channels": [ch.pk for ch in channels],
                "fc": first_contact,
                "contacts": max(1, n // 2),
                "n": n,
                "agents": len(staff),
            },
        )
        # Ten messages each: customer and agent in turn; every 7th conversation's 9th is a note,
        # every 11th's 5th (a customer's) is deleted.
        cur.execute(
            """INSERT INTO conversations_message
               (conversation_id, channel_id, direction, kind, author_employee_id, author_contact_id, body,
                automatic, while_blocked, created_at, deleted_at)
               SELECT cv.id, cv.channel_id,
                      CASE WHEN k %% 2 = 1 THEN 'in' WHEN k = 9 AND cv.id %% 7 = 0 THEN 'internal' ELSE 'out' END,
                      CASE WHEN k = 9 AND cv.id %% 7 = 0 THEN 'note' ELSE 'message' END,
                      CASE WHEN k %% 2 = 0 THEN coalesce(cv.assignee_id, %s) END,
                      CASE WHEN k %% 2 = 1 THEN cv.contact_id END,
                      'hello', false, false, cv.created_at + k * interval '3 minutes',
                      CASE WHEN k = 5 AND cv.id %% 11 = 0 THEN now() END
               FROM conversations_conversation cv CROSS JOIN generate_series(1, 10) k
               WHERE cv.company_id = %s ORDER BY cv.id, k""",
            [staff[0].pk, c],
        )
        # Read markers: the assignee read two conversations in three up to the 6th message, the
        # admin one in four to the end.
        cur.execute(
            """INSERT INTO conversations_readmarker (employee_id, conversation_id, last_read_message_id)
               SELECT cv.assignee_id, cv.id, (SELECT m.id FROM conversations_message m
                   WHERE m.conversation_id = cv.id ORDER BY m.id OFFSET 5 LIMIT 1)
               FROM conversations_conversation cv
               WHERE cv.company_id = %s AND cv.assignee_id IS NOT NULL AND cv.id %% 3 <> 0
               UNION ALL
               SELECT %s, cv.id, (SELECT max(m.id) FROM conversations_message m WHERE m.conversation_id = cv.id)
               FROM conversations_conversation cv WHERE cv.company_id = %s AND cv.id %% 4 = 0""",
            [c, admin.pk, c],
        )
        # One note in ten mentions someone: the first agent or the first team, in turn (the
        # first agent sees ~1,400 mentions a year at scale 1: a busy agent's share).
        cur.execute(
            """INSERT INTO conversations_mention (message_id, conversation_id, employee_id, team_id, created_at)
               SELECT m.id, m.conversation_id, CASE WHEN m.conversation_id %% 140 = 0 THEN %s END,
                      CASE WHEN m.conversation_id %% 140 = 70 THEN %s END, m.created_at
               FROM conversations_message m JOIN conversations_conversation cv ON cv.id = m.conversation_id
               WHERE cv.company_id = %s AND m.kind = 'note' AND m.conversation_id %% 70 = 0""",
            [staff[0].pk, team_objs[0].pk, c],
        )
        say(f"{name}: {n:,} conversations and {n * 10:,} messages seeded in {time.perf_counter() - t:.0f} s")
    return company, admin, staff


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def measure(client, url: str, repeat: int) -> tuple[list[float], int, bytes]:
    """Times of ``repeat`` requests (after one to warm up) and the queries one of them ran."""
    from django.db import connection

    # Counted by a wrapper: the request's start resets the query log CaptureQueriesContext reads.
    seen = []
    with connection.execute_wrapper(
        lambda execute, sql, params, many, context: seen.append(sql) or execute(sql, params, many, context)
    ):
        response = client.get(url)
    if response.status_code != 200:
        raise SystemExit(f"bench: {url} answered {response.status_code}: {response.content[:300]!r}")
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - t) * 1000)
        RAW.append(raw_limit(3))  # the machine's floor at this very moment (it is shared)
    return times, len(seen), response.content


RAW: list[float] = []


def raw_limit(repeat: int = 500) -> float:
    """One round trip of a trivial indexed SELECT of 50 rows: the floor of any list."""
    from django.db import connection

    with connection.cursor() as cur:
        t = time.perf_counter()
        for i in range(repeat):
            cur.execute(
                "SELECT id, status, last_activity_at FROM conversations_conversation"
                " WHERE id > %s ORDER BY id LIMIT 50",
                [i * 7],
            )
            cur.fetchall()
        return (time.perf_counter() - t) * 1000 / repeat


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 1M messages / 100k conversations")
    parser.add_argument("--repeat", type=int, default=20, help="requests per list")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--reuse", action="store_true", help="keep a database an earlier run seeded")
    args = parser.parse_args()
    n = max(100, int(100_000 * args.scale))
    say(f"scale {args.scale}: {n:,} conversations, {n * 10:,} messages for the measured company")
    if not args.reuse:
        recreate_database(args.database_url)
    setup_django(args.database_url)
    import json

    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from helpdesk.accounts.models import Company, Employee

    if args.reuse and Company.objects.filter(name="Measured").exists():
        admin = Employee.objects.get(user__email__startswith="admin@", company__name="Measured")
        staff = list(Employee.objects.filter(company=admin.company, user__email__startswith="agent").order_by("pk"))
    else:
        call_command("migrate", verbosity=0, interactive=False)
        _, admin, staff = seed_company("Measured", n, teams=4, agents=20)
        seed_company("Neighbour", max(100, n // 10), teams=2, agents=4)
        with connection.cursor() as cur:
            # Index-only scans need the visibility map a VACUUM writes (autovacuum would, in time).
            cur.execute("VACUUM ANALYZE")
    readers = {"all (admin)": admin, "teams (agent)": staff[0], "assigned (agent)": staff[-1]}
    worst, counts = 0.0, set()
    print(
        f"{'scope':17} {'list':20} {'API p50':>8} {'p95':>7} {'q':>3} {'page p50':>9} {'p95':>7} {'q':>3} {'rows':>5}"
    )
    for label, reader in readers.items():
        client = Client()
        client.force_login(reader.user)
        for status in STATUSES:
            for view in VIEWS:
                query = f"view={view}&status={status}"
                api_times, api_queries, body = measure(client, f"/api/v1/conversations/?{query}", args.repeat)
                page_times, page_queries, _ = measure(client, f"/inbox/?{query}", args.repeat)
                rows = json.loads(body)["count"]
                raw = statistics.median(RAW[-2 * args.repeat :])
                worst = max(worst, pct(api_times, 0.95), pct(page_times, 0.95))
                counts.add((label, "api", api_queries))
                counts.add((label, "page", page_queries))
                print(
                    f"{label:17} {view + ' ' + status:20} {statistics.median(api_times):8.1f} "
                    f"{pct(api_times, 0.95):7.1f} {api_queries:3} {statistics.median(page_times):9.1f} "
                    f"{pct(page_times, 0.95):7.1f} {page_queries:3} {rows:6} {raw:6.2f}",
                    flush=True,
                )
        if label == "all (admin)":
            # A deep page: by offset the database still walks past every row before it; by cursor not.
            deep = min(10_000, n // 2)
            query = "view=all&status=resolved"
            offset_times, _, _ = measure(client, f"/api/v1/conversations/?{query}&offset={deep}", args.repeat)
            first = json.loads(client.get(f"/api/v1/conversations/?{query}&offset={deep - 50}").content)
            cursor_times = [0.0]
            if first.get("next_cursor"):
                cursor_url = f"/api/v1/conversations/?{query}&cursor={first['next_cursor']}"
                cursor_times = measure(client, cursor_url, args.repeat)[0]
            say(
                f"admin, all resolved, row {deep:,}: offset p95 {pct(offset_times, 0.95):.1f} ms, "
                f"cursor p95 {pct(cursor_times, 0.95):.1f} ms"
            )
    floor = raw_limit()
    say(
        f"machine: a trivial indexed SELECT of 50 rows, one round trip: {floor:.3f} ms now, "
        f"{statistics.median(RAW):.3f} ms median beside the requests (min {min(RAW):.3f}, max {max(RAW):.3f}: "
        "the 'raw ms' column is that median beside each list's requests)"
    )
    per_kind = {}
    for label, kind, number in counts:
        per_kind.setdefault((label, kind), set()).add(number)
    say("queries per request: " + "; ".join(f"{k[0]} {k[1]} {sorted(v)}" for k, v in sorted(per_kind.items())))
    say(
        f"goal: every list's p95 < {GOAL_P95_MS:.0f} ms: worst {worst:.1f} ms "
        f"({worst / floor:.0f}x the raw round trip) {'MET' if worst < GOAL_P95_MS else 'NOT MET'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
