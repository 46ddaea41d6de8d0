"""Statistics benchmark: the whole dashboard over a year of data, and the write path's cost.

Seeds (with set-based SQL, fast on 2 cores) one company with 10,000,000 messages in
1,000,000 conversations over the past year (times ``--scale``), plus a second company a tenth
of its size to prove isolation, and fills the rollups from the seeded rows with the same
definitions (docs/metrics.md) in SQL. Then it times ``reports.queries.dashboard`` (every tile,
chart and workload row) for an admin (scope all), a team agent (teams) and an assigned-only
agent, for each period (today, 7d, 30d, 6m, 1y), and prints p50/p95. Then the write path:
a customer message plus an agent reply through the real actions, in rounds with the statistics'
applier keeping the rollups (a thread of this process applying the log every 0.25 s: harsher than
production, where beat runs it every 2 s in the worker's own process) and rounds without it,
beside the machine's raw limits (a SELECT 1 round trip, a bare INSERT); and what applying costs,
per event, off the write path.

Goal: dashboard p95 < 300 ms for a year; the write path at most 10 % slower with rollups.

    .venv/bin/python bench/reports.py --scale 0.1      # a quick run (1M messages)
    .venv/bin/python bench/reports.py                   # the full 10M / 1M
"""

from __future__ import annotations

import argparse
import importlib
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

from _database import database_exists, recreate_database  # bench/, the script's own folder

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/smartchat_bench_reports"
GOAL_P95_MS = 300.0
TZ = "Europe/Berlin"


def say(message: str) -> None:
    print(f"bench: {message}", flush=True)


def setup_django(url: str) -> None:
    os.environ.update({"DJANGO_SETTINGS_MODULE": "smartchat.settings", "DATABASE_URL": url})
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.pop("REDIS_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def seed_company(name: str, conversations: int, *, teams: int, agents: int):
    """The people via the services; conversations, messages and rollups via SQL."""
    from django.db import connection

    from helpdesk.accounts import services
    from helpdesk.accounts.models import Role, Scope
    from helpdesk.accounts.permissions import AGENT_PERMS, Perm

    company = services.create_company(name=name, timezone=TZ)
    team_objs = [services.create_team(company=company, name=f"Team {i}") for i in range(teams)]
    admin = services.create_employee(
        company=company, email=f"admin@{company.pk}.bench", name="Admin", role="admin", password="x"
    )
    perms = [*map(str, AGENT_PERMS), str(Perm.VIEW_REPORTS)]
    Role.objects.filter(company=company, builtin="agent").update(permissions=perms)
    assigned_role = Role.objects.create(company=company, name="Assigned", scope=Scope.ASSIGNED, permissions=perms)
    staff = []
    for i in range(agents):
        role = assigned_role if i == agents - 1 else "agent"
        staff.append(
            services.create_employee(
                company=company,
                email=f"agent{i}@{company.pk}.bench",
                name=f"Agent {i}",
                role=role,
                password="x",
                teams=[team_objs[i % teams]],
            )
        )
    channels = [
        services.create_widget_channel(
            company=company, name=f"Site {i}", team=team_objs[i % teams], allowed_origins=["*"]
        )
        for i in range(3)
    ]
    agent_ids = [e.pk for e in staff]
    role_of = {e.pk: e.role_id for e in staff}
    team_of = {e.pk: team_objs[i % teams].pk for i, e in enumerate(staff)}
    c, n = company.pk, conversations
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_agents")
        cur.execute("CREATE TEMP TABLE bench_agents (idx int, id int, role int, team int)")
        for i, pk in enumerate(agent_ids):
            cur.execute("INSERT INTO bench_agents VALUES (%s, %s, %s, %s)", [i, pk, role_of[pk], team_of[pk]])
        channel_ids = [ch.pk for ch in channels]
        t = time.perf_counter()
        cur.execute(
            """INSERT INTO conversations_contact
               (company_id, name, email, phone, attributes, created_at, blocked_reason)
               SELECT %s, 'c' || g, '', '', '{}', now(), '' FROM generate_series(1, %s) g""",
            [c, max(1, n // 2)],
        )
        cur.execute("SELECT min(id) FROM conversations_contact WHERE company_id = %s", [c])
        first_contact = cur.fetchone()[0]
        # Conversations spread over the last 365 days, resolved, assigned to an agent of the company.
        cur.execute(
            """INSERT INTO conversations_conversation
               (company_id, channel_id, contact_id, status, assignee_id, team_id, priority, last_activity_at,
                last_message_preview, created_at, updated_at, resolutions)
               SELECT %(c)s, (%(channels)s::int[])[1 + g %% 3], %(fc)s + (g %% %(contacts)s),
                      CASE WHEN g %% 50 = 0 THEN 'open' ELSE 'resolved' END, a.id, a.team, g %% 5,
                      ts, '', ts, ts, CASE WHEN g %% 50 = 0 THEN 0 ELSE 1 END
               FROM generate_series(1, %(n)s) g
               JOIN bench_agents a ON a.idx = g %% %(agents)s
               -- A spread per row: an uncorrelated LATERAL (random()) is evaluated once, for every row.
               CROSS JOIN LATERAL (
                   SELECT now() - ((g::bigint * 2654435761) %% 31536000) * interval '1 second' AS ts
               ) t""",
            {
                "c": c,
                "channels": channel_ids,
                "fc": first_contact,
                "contacts": max(1, n // 2),
                "n": n,
                "agents": len(agent_ids),
            },
        )
        # Ten messages each: customer and agent in turn, minutes apart.
        cur.execute(
            """INSERT INTO conversations_message
               (conversation_id, channel_id, direction, kind, author_employee_id, author_contact_id, body,
                automatic, while_blocked, created_at)
               SELECT cv.id, cv.channel_id, CASE WHEN k %% 2 = 1 THEN 'in' ELSE 'out' END, 'message',
                      CASE WHEN k %% 2 = 0 THEN cv.assignee_id END, CASE WHEN k %% 2 = 1 THEN cv.contact_id END,
                      'hello', false, false, cv.created_at + (k * (1 + (cv.id %% 7))) * interval '3 minutes'
               FROM conversations_conversation cv CROSS JOIN generate_series(1, 10) k
               WHERE cv.company_id = %s""",
            [c],
        )
        say(f"{name}: {n:,} conversations and {n * 10:,} messages seeded in {time.perf_counter() - t:.0f} s")
        t = time.perf_counter()
        fill_rollups(cur, c)
        say(f"{name}: rollups filled from the seeded rows in {time.perf_counter() - t:.0f} s")
    return company, admin, staff


COUNTERS = (
    "new, reopened, resolved, snoozed, customer_messages, replies, first_response_n, first_response_sum, "
    "reply_time_n, reply_time_sum, resolution_first_n, resolution_first_sum, resolution_last_n, "
    "resolution_last_sum, ratings, ratings_good"
)


def fill_rollups(cur, c: int) -> None:
    """Set-based: what recount_statistics would fold, for this simple shape of history."""
    tz = TZ
    place = f"""date_trunc('hour', {{t}} AT TIME ZONE '{tz}') AT TIME ZONE '{tz}' AS at,
                (({{t}} AT TIME ZONE '{tz}'))::date AS local_day,
                extract(hour FROM {{t}} AT TIME ZONE '{tz}')::int AS local_hour,
                (extract(isodow FROM {{t}} AT TIME ZONE '{tz}')::int - 1) AS weekday"""
    cur.execute(
        f"""CREATE TEMP TABLE bench_facts AS
        SELECT m.conversation_id, cv.contact_id, cv.team_id AS team, cv.channel_id AS channel,
               cv.assignee_id AS agent, a.role, cv.priority, m.direction, m.created_at AS t,
               CASE WHEN m.direction = 'out' THEN extract(epoch FROM m.created_at - lag(m.created_at)
                    OVER (PARTITION BY m.conversation_id ORDER BY m.id)) END AS wait,
               row_number() OVER (PARTITION BY m.conversation_id ORDER BY m.id) AS k,
               extract(epoch FROM max(m.created_at) OVER (PARTITION BY m.conversation_id)
                       - min(m.created_at) OVER (PARTITION BY m.conversation_id)) + 300 AS resolution,
               {place.format(t="m.created_at")}
        FROM conversations_message m JOIN conversations_conversation cv ON cv.id = m.conversation_id
        JOIN bench_agents a ON a.id = cv.assignee_id WHERE cv.company_id = %s""",
        [c],
    )
    binned = "CASE WHEN {v} < 1 THEN 0 ELSE floor(ln({v}) / ln(1.1))::int + 1 END"
    cur.execute(
        """INSERT INTO reports_hourlybucket (company_id, at, local_day, local_hour, weekday, team, channel, agent,
              role, priority, new, reopened, resolved, snoozed, customer_messages, replies, first_response_n,
              first_response_sum, reply_time_n, reply_time_sum, resolution_first_n, resolution_first_sum,
              resolution_last_n, resolution_last_sum, ratings, ratings_good)
        SELECT %s, at, local_day, local_hour, weekday, team, channel, agent, role, priority,
               count(*) FILTER (WHERE k = 1), 0, count(*) FILTER (WHERE k = 10), 0,
               count(*) FILTER (WHERE direction = 'in'), count(*) FILTER (WHERE direction = 'out'),
               count(*) FILTER (WHERE k = 2), coalesce(sum(wait) FILTER (WHERE k = 2), 0),
               count(*) FILTER (WHERE direction = 'out'), coalesce(sum(wait), 0),
               count(*) FILTER (WHERE k = 10), coalesce(sum(resolution) FILTER (WHERE k = 10), 0),
               count(*) FILTER (WHERE k = 10), coalesce(sum(resolution) FILTER (WHERE k = 10), 0),
               count(*) FILTER (WHERE k = 10 AND conversation_id %% 3 = 0),
               count(*) FILTER (WHERE k = 10 AND conversation_id %% 6 = 0)
        FROM bench_facts GROUP BY 2, 3, 4, 5, 6, 7, 8, 9, 10""",
        [c],
    )
    summed = ", ".join(f"sum({x})" for x in COUNTERS.split(", "))
    cur.execute(
        f"""INSERT INTO reports_dailybucket (company_id, local_day, team, channel, agent, role, priority,
              {COUNTERS})
        SELECT company_id, local_day, team, channel, agent, role, priority, {summed}
        FROM reports_hourlybucket WHERE company_id = %s GROUP BY 1, 2, 3, 4, 5, 6, 7""",
        [c],
    )
    for metric, cond, value in (
        (1, "k = 2", "wait"),
        (2, "direction = 'out'", "wait"),
        (3, "k = 10", "resolution"),
        (4, "k = 10", "resolution"),
    ):
        cur.execute(
            f"""INSERT INTO reports_durationbin (company_id, at, local_day, local_hour, weekday, team, channel, agent,
                  role, priority, metric, bin, count)
            SELECT %s, at, local_day, local_hour, weekday, team, channel, agent, role, priority, {metric},
                   {binned.format(v=value)}, count(*)
            FROM bench_facts WHERE {cond} GROUP BY 2, 3, 4, 5, 6, 7, 8, 9, 10, 12""",
            [c],
        )
    cur.execute(
        """INSERT INTO reports_dailybin (company_id, metric, local_day, team, channel, agent, role, priority, bin,
              count)
        SELECT company_id, metric, local_day, team, channel, agent, role, priority, bin, sum(count)
        FROM reports_durationbin WHERE company_id = %s GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9""",
        [c],
    )
    cur.execute(
        """INSERT INTO reports_touch (company_id, at, local_day, local_hour, weekday, team, channel, agent, role,
              priority, kind, conversation_id, contact_id)
        SELECT DISTINCT %s, at, local_day, local_hour, weekday, team, channel, agent, role, priority, kk,
               conversation_id, contact_id
        FROM bench_facts CROSS JOIN LATERAL (VALUES (1), (2), (3)) v(kk)
        WHERE (kk = 1 AND direction = 'in') OR kk = 2 OR (kk = 3 AND k = 1)""",
        [c],
    )
    cur.execute(
        """INSERT INTO reports_contactday (company_id, local_day, contact_id, team, channel, agent, role, priority, n)
        SELECT %s, local_day, contact_id, team, channel, agent, role, priority, count(*)
        FROM bench_facts WHERE direction = 'in' GROUP BY 2, 3, 4, 5, 6, 7, 8""",
        [c],
    )
    # The company-wide sums, from the rows above: the statements of the migration that fills them.
    for sql in importlib.import_module("helpdesk.reports.migrations.0008_fill_company_wide").FILL:
        cur.execute(sql, [c, c])
    # The month grain, likewise (reports.0010).
    for sql in importlib.import_module("helpdesk.reports.migrations.0010_fill_month_grain").fill_statements(
        "postgresql"
    ):
        cur.execute(sql, [c, c])
    # Each contact's last day (reports.0012), per team and per agent (reports.0014).
    cur.execute(importlib.import_module("helpdesk.reports.migrations.0012_contactlast").FILL, [c, c])
    for sql in importlib.import_module("helpdesk.reports.migrations.0014_contactlast_by_scope").FILL:
        cur.execute(sql, [c, c])
    cur.execute("DROP TABLE bench_facts")
    # Index-only scans need the visibility map a VACUUM writes (autovacuum would, in time).
    cur.execute("VACUUM ANALYZE")


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


APPLY_EVERY = 0.25  # seconds between the bench's applier runs (beat's schedule is 2 s)


def write_path(company, staff, rounds: int) -> tuple[float, float]:
    import threading

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from helpdesk.conversations import actions
    from helpdesk.conversations.models import Channel
    from helpdesk.reports import applier

    channel = Channel.objects.filter(company=company).first()
    agent = staff[0]

    def one(i: int, tag: str) -> None:
        m = actions.receive_message(
            channel=channel, external_contact_id=f"w-{tag}-{i % 50}", body="where is my order", external_id=f"{tag}{i}"
        )
        conv = m.conversation
        conv.refresh_from_db()
        actions.post_reply(conv, by=agent, body="on its way")

    # The applier, as the worker runs it, in a thread: it competes with the writes for the
    # database, the cores and (here, unlike in production) this process's GIL.
    keeping, stop = threading.Event(), threading.Event()
    cost = {"events": 0, "wall": 0.0, "cpu": 0.0, "runs": 0}

    def keep() -> None:
        while not stop.is_set():
            if not keeping.wait(0.05):
                continue
            wall, cpu = time.perf_counter(), time.thread_time()
            n = applier.apply_pending(wait=0) or 0
            if n:
                cost["events"] += n
                cost["wall"] += time.perf_counter() - wall
                cost["cpu"] += time.thread_time() - cpu
                cost["runs"] += 1
            stop.wait(APPLY_EVERY)
        connection.close()

    worker = threading.Thread(target=keep, daemon=True)
    worker.start()
    # The machine is shared: alternate short rounds with and without the applier and keep each
    # mode's median, so a neighbour's burst lands on both alike. Queries are counted too (exact).
    results: dict[bool, list[float]] = {False: [], True: []}
    queries_per_message: dict[bool, float] = {}
    per_round = max(5, rounds // 10)
    try:
        for r in range(-1, 20):
            kept = r % 2 == 0
            applier.apply_pending(wait=None)  # untimed: no round inherits another's backlog
            if kept:
                keeping.set()
            connection.queries_log.clear()  # the log keeps 9,000: a long run would count nothing
            with CaptureQueriesContext(connection) as seen:
                t = time.perf_counter()
                for i in range(per_round):
                    one(i, f"r{r}{kept}{time.time_ns()}-")
                per_message = (time.perf_counter() - t) * 1000 / (2 * per_round)
            keeping.clear()
            if r >= 0:  # the first round warms up
                results[kept].append(per_message)
                queries_per_message[kept] = len(seen.captured_queries) / (2 * per_round)
    finally:
        stop.set()
        keeping.set()
        worker.join(30)
    applier.apply_pending(wait=None)
    for kept in (False, True):
        say(
            f"write path {'with the applier running' if kept else 'with no applier'}: median "
            f"{statistics.median(results[kept]):.2f} ms per message over {len(results[kept])} rounds of "
            f"{per_round} conversations (customer message + reply, through the actions), "
            f"{queries_per_message[kept]:.1f} queries per message"
        )
    if cost["events"]:
        say(
            f"applying, off the write path: {cost['events']:,} events in {cost['runs']} batches, "
            f"{cost['wall'] * 1000 / cost['events']:.3f} ms per event ({cost['cpu'] * 1000 / cost['events']:.3f} ms "
            f"of this process's CPU), {cost['events'] / cost['runs']:.0f} events per batch"
        )
    return statistics.median(results[False]), statistics.median(results[True])


def raw_limits() -> tuple[float, float]:
    from django.db import connection

    with connection.cursor() as cur:
        t = time.perf_counter()
        for _ in range(2000):
            cur.execute("SELECT 1")
        select_ms = (time.perf_counter() - t) * 1000 / 2000
        cur.execute("CREATE TEMP TABLE bench_ins (id bigserial, body text, at timestamptz)")
        t = time.perf_counter()
        for _ in range(2000):
            cur.execute("INSERT INTO bench_ins (body, at) VALUES ('x', now())")
        insert_ms = (time.perf_counter() - t) * 1000 / 2000
    return select_ms, insert_ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 10M messages / 1M conversations")
    parser.add_argument("--repeat", type=int, default=15, help="dashboard runs per scope and period")
    parser.add_argument("--writes", type=int, default=150, help="conversations written per write-path round")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the database a previous run seeded (migrated to this code first: the reports "
        "migrations fill new rollups from the kept ones) instead of seeding afresh; --scale is ignored",
    )
    args = parser.parse_args()
    n = max(100, int(1_000_000 * args.scale))
    if args.reuse:
        if not database_exists(args.database_url):
            raise SystemExit("bench: --reuse: no such database; run once without --reuse first")
        say("reusing the seeded database")
    else:
        say(f"scale {args.scale}: {n:,} conversations, {n * 10:,} messages for the measured company")
        recreate_database(args.database_url)
    setup_django(args.database_url)
    from django.core.management import call_command

    t = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    say(f"migrated in {time.perf_counter() - t:.0f} s")
    from helpdesk.accounts.models import Company, Employee
    from helpdesk.reports import queries

    if args.reuse:
        company = Company.objects.get(name="Measured")
        admin = Employee.objects.get(company=company, user__email=f"admin@{company.pk}.bench")
        staff = list(Employee.objects.filter(company=company, user__email__startswith="agent").order_by("pk"))
        from django.db import connection

        with connection.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
    else:
        company, admin, staff = seed_company("Measured", n, teams=4, agents=20)
        seed_company("Neighbour", max(100, n // 10), teams=2, agents=4)
    readers = {
        "all (admin)": admin,
        "teams (agent)": Employee.objects.select_related("role").get(pk=staff[0].pk),
        "assigned (agent)": Employee.objects.select_related("role").get(pk=staff[-1].pk),
    }
    worst = 0.0
    print(f"{'scope':18} {'period':7} {'p50 ms':>8} {'p95 ms':>8}")
    for label, reader in readers.items():
        for preset in ("today", "7d", "30d", "6m", "1y"):
            period = queries.Period.parse(company, preset)
            queries.dashboard(reader, period)  # warm
            times = timed(lambda r=reader, p=period: queries.dashboard(r, p), args.repeat)
            p95 = pct(times, 0.95)
            worst = max(worst, p95) if preset == "1y" else worst
            print(f"{label:18} {preset:7} {statistics.median(times):8.1f} {p95:8.1f}", flush=True)
    # Where a year's dashboard goes, per scope: each part alone, the best of 3.
    year = queries.Period.parse(company, "1y")
    print(f"{'a year, alone, ms':18} {'rollups':>8} {'previous':>8} {'contacts':>8} {'unread':>8}")
    for label, reader in readers.items():

        def part(fn):
            return min(timed(fn, 3))

        def source(r=reader):
            return queries._source(r, queries.Filters())

        print(
            f"{label:18} {part(lambda: source().prefetch(year)):8.1f} "
            f"{part(lambda: source().prefetch(year.previous, ())):8.1f} "
            f"{part(lambda: source().contacts(year)):8.1f} "
            f"{part(lambda r=reader: queries.unread_now(r)):8.1f}",
            flush=True,
        )
    check = queries.dashboard(readers["all (admin)"], year)
    say(
        f"a year, all: {check.tile('customer_messages').current:,} customer messages, "
        f"first response median {check.tile('first_response_median').current:.0f} s"
    )
    select_ms, insert_ms = raw_limits()
    say(f"machine: SELECT 1 round trip {select_ms:.3f} ms, bare INSERT {insert_ms:.3f} ms")
    from helpdesk.reports import applier

    say(
        f"a reader's catch-up with nothing to apply (in every dashboard above): "
        f"{statistics.median(timed(applier.catch_up, 50)):.2f} ms median"
    )
    without, with_ = write_path(company, staff, args.writes)
    slower = (with_ - without) / without * 100
    say(
        f"write path: {without:.2f} ms -> {with_:.2f} ms per message with the rollups kept ({slower:+.1f} %), "
        f"i.e. {with_ - without:.2f} ms = {(with_ - without) / select_ms:.1f} round trips"
    )
    say(
        f"goal: dashboard p95 for a year < {GOAL_P95_MS:.0f} ms: worst {worst:.1f} ms "
        f"{'MET' if worst < GOAL_P95_MS else 'NOT MET'}; write path <= 10 % slower: "
        f"{'MET' if slower <= 10 else 'NOT MET'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
