"""Search benchmark: full-text search over a million messages, as each kind of role sees it.

Seeds a PostgreSQL database with N messages (default 1,000,000) in Russian and English
support chats, spread over conversations, teams and agents of two companies, then times
``helpdesk.conversations.search`` (what the search page and the API call) for classes of
queries (a very common word, a rare order code, two words, a phrase, a word being typed,
no match, an older page) as an admin who sees everything, an agent who sees their teams,
and an agent who sees only chats assigned to them. Prints p50 / p95 / max per class and
role, and overall; the goal is p95 under 200 ms.

Usage and the meaning of every figure: bench/README.md ("Search benchmark").
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _database import database_exists, recreate_database  # bench/, the script's own folder
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/smartchat_bench_search"
GOAL_P95_MS = 200.0
SEED_MARK = "bench-search-seed"  # the seeded company's description: "<mark> <messages> <seed>"

# Words of support chats, most frequent first; a message draws its words by 1/rank (Zipf),
# so the first ones are in a large share of messages and the last ones in few.
RUSSIAN = (
    "заказ заказа заказы доставка доставки пожалуйста здравствуйте спасибо когда где можно нужно уже ещё "
    "сегодня завтра оплата оплаты деньги денег карта картой курьер курьера посылка посылку номер адрес "
    "возврат возврата вернуть оформить получить пришёл пришла товар товара размер цвет сайт приложение "
    "ошибка ошибку пароль аккаунт вход скидка промокод трек обмен брак чек счёт подписка тариф отмена "
    "отменить сломался работает неделю дней магазин склад оператор менеджер телефон почта письмо "
    "коробка упаковка кнопка корзина списали дважды гарантия гарантии сервис ремонт претензия "
    "компенсация бонусы баллы кэшбэк рассрочка кредит самовывоз пункт выдачи постамат"
).split()
ENGLISH = (
    "order orders delivery please hello thanks when where can need already today tomorrow payment "
    "money card courier parcel tracking number address refund refunds return received arrived item "
    "size color website app error password account login discount promo code exchange broken receipt "
    "invoice subscription plan cancel cancelled working week days store warehouse agent manager phone "
    "email letter box packaging button cart charged twice warranty service repair complaint compensation "
    "points cashback installment pickup locker"
).split()
NAMES = "Иван Мария Алексей Ольга Дмитрий Анна Сергей Елена John Mary Peter Linda James Susan".split()

# What is searched, by class. Each class lists several queries so a class is not one lucky word.
QUERIES = {
    "common word": ["заказ", "доставка", "order", "спасибо", "please"],
    "medium word": ["гарантия", "компенсация", "warranty", "претензия", "cashback"],
    "rare word": [],  # order codes picked from the seeded data (a few messages each)
    "two words": ["возврат денег", "refund card", "заказ курьер", "tracking number"],
    "phrase": ['"пункт выдачи"', '"tracking number"', '"списали дважды"'],
    "being typed": ["достав", "refu", "компенс", "warran"],
    "no match": ["телепортация", "teleportation", "zeppelin"],
    "older page": ["заказ", "order", "доставка"],  # the page after the first
}


def say(message: str) -> None:
    print(f"bench: {message}", flush=True)


def setup_django(url: str) -> None:
    os.environ.update({"DJANGO_SETTINGS_MODULE": "smartchat.settings", "DATABASE_URL": url})
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))  # required with DATABASE_URL
    os.environ.pop("REDIS_URL", None)  # search needs no channel layer
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


# --- Seeding -------------------------------------------------------------------------------------


def message_text(rng: random.Random, words: list[str], weights: list[float], codes: list[str]) -> str:
    count = rng.randint(3, 24)
    picked = rng.choices(words, weights=weights, k=count)
    if rng.random() < 0.08:
        picked.insert(rng.randrange(len(picked) + 1), rng.choice(NAMES))
    if rng.random() < 0.03:  # an order code: each appears in a handful of messages
        picked.insert(rng.randrange(len(picked) + 1), rng.choice(codes))
    text = " ".join(picked)
    return text[0].upper() + text[1:] + rng.choice((".", "?", "!", ""))


def copy_rows(cursor, model, rows: list[dict]) -> None:
    """COPY rows into a model's table; columns not given take the field's default (or NULL)."""
    fields = [f for f in model._meta.concrete_fields if f.column != "id"]
    columns = [f.column for f in fields]
    given = list(rows[0].keys()) if rows else []
    defaults = {}
    for f in fields:
        if f.attname in given or f.column in given:
            continue
        if f.null:
            defaults[f.column] = None
        elif f.has_default():
            value = f.get_default()
            defaults[f.column] = json.dumps(value) if isinstance(value, dict | list) else value
        elif f.get_internal_type() in ("CharField", "TextField"):
            defaults[f.column] = ""
        else:
            raise SystemExit(f"bench: no value for {model.__name__}.{f.attname}")
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(model._meta.db_table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with cursor.copy(statement) as copy:
        for row in rows:
            values = {**defaults, **row}
            copy.write_row([values.get(f.attname, values.get(f.column)) for f in fields])


def seed(args: argparse.Namespace) -> None:
    """Two companies (the other one holds a tenth of the messages), teams, agents, N messages.

    People, teams and channels go through the real services; contacts, conversations and
    messages are COPYed in bulk (the actions would take hours for a million). The search
    index is dropped for the load and built afterwards, as an operator would for a big
    import; the time it takes is printed.
    """
    from importlib import import_module

    from django.core.management import call_command
    from django.db import connection

    from helpdesk.accounts import services
    from helpdesk.accounts.models import Role, Scope
    from helpdesk.accounts.permissions import AGENT_PERMS
    from helpdesk.conversations.models import Contact, Conversation, Message

    index = import_module("helpdesk.conversations.migrations.0004_message_search_index")
    started = time.monotonic()
    call_command("migrate", verbosity=0, interactive=False)
    rng = random.Random(args.seed)
    bench = services.create_company(name="Bench", timezone="Europe/Moscow")
    other = services.create_company(name="Other company", timezone="UTC")
    teams = [services.create_team(company=bench, name=f"Team {n}") for n in range(args.teams)]
    assigned_only = Role.objects.create(
        company=bench, name="Assigned only", scope=Scope.ASSIGNED, permissions=[str(p) for p in AGENT_PERMS]
    )
    services.create_employee(company=bench, email="admin@bench.invalid", name="Admin", role="admin")
    agents = [
        services.create_employee(
            company=bench,
            email=f"agent{n}@bench.invalid",
            name=f"Agent {n}",
            role="agent",
            teams=[teams[n % len(teams)]],
        )
        for n in range(args.agents)
    ]
    services.create_employee(company=bench, email="solo@bench.invalid", name="Solo", role=assigned_only)
    other_admin = services.create_employee(company=other, email="admin@other.invalid", name="Other", role="admin")
    channels = {
        bench.pk: services.create_widget_channel(company=bench, name="Site", allowed_origins=["*"]),
        other.pk: services.create_widget_channel(company=other, name="Site", allowed_origins=["*"]),
    }
    employees = {bench.pk: [a.pk for a in agents], other.pk: [other_admin.pk]}
    solo = bench.employees.get(display_name="Solo")

    per_conversation = args.messages_per_conversation
    conversations = max(1, args.messages // per_conversation)
    codes = [f"ZX{n:05d}" for n in range(max(1000, args.messages // 200))]
    ru_weights = [1 / (rank + 1) for rank in range(len(RUSSIAN))]
    en_weights = [1 / (rank + 1) for rank in range(len(ENGLISH))]
    now = datetime.now(UTC)
    span = timedelta(days=365)

    with connection.cursor() as django_cursor:
        django_cursor.execute(index.DROP.replace(" CONCURRENTLY", ""))
    raw = connection.connection  # psycopg's own connection, for COPY
    say(f"seeding {args.messages:,} messages in {conversations:,} conversations…")
    made = 0
    batch = 2000  # conversations per COPY round
    for first in range(0, conversations, batch):
        count = min(batch, conversations - first)
        company_of = [other if rng.random() < 0.1 else bench for _ in range(count)]
        with raw.cursor() as cursor:
            contact_rows = [
                {
                    "company_id": company.pk,
                    "name": f"{rng.choice(NAMES)} {first + n}",
                    "email": f"customer{first + n}@mail.invalid",
                    "phone": f"+7900{first + n:07d}",
                    "created_at": now - span * rng.random(),
                }
                for n, company in enumerate(company_of)
            ]
            copy_rows(cursor, Contact, contact_rows)
            contact_ids = [
                row[0]
                for row in cursor.execute(
                    "SELECT id FROM conversations_contact ORDER BY id DESC LIMIT %s", [count]
                ).fetchall()
            ][::-1]
            conversation_rows = []
            for n, company in enumerate(company_of):
                started_at = now - span * rng.random()
                in_bench = company.pk == bench.pk
                assignee = rng.choice(employees[company.pk]) if rng.random() < 0.8 else None
                if in_bench and rng.random() < 0.02:
                    assignee = solo.pk  # the assigned-only agent's own few chats
                conversation_rows.append(
                    {
                        "company_id": company.pk,
                        "channel_id": channels[company.pk].pk,
                        "contact_id": contact_ids[n],
                        "status": rng.choice(("open", "resolved", "resolved", "resolved", "snoozed")),
                        "assignee_id": assignee,
                        "team_id": rng.choice(teams).pk if in_bench else None,
                        "last_activity_at": started_at,
                        "created_at": started_at,
                        "updated_at": started_at,
                        "last_message_preview": "",
                    }
                )
            copy_rows(cursor, Conversation, conversation_rows)
            conversation_ids = [
                row[0]
                for row in cursor.execute(
                    "SELECT id FROM conversations_conversation ORDER BY id DESC LIMIT %s", [count]
                ).fetchall()
            ][::-1]
            message_rows = []
            for n, conversation_id in enumerate(conversation_ids):
                company = company_of[n]
                at = conversation_rows[n]["created_at"]
                for _ in range(max(1, int(rng.expovariate(1 / per_conversation)))):
                    if made >= args.messages:
                        break
                    russian = rng.random() < 0.7
                    inbound = rng.random() < 0.55
                    note = not inbound and rng.random() < 0.1
                    at += timedelta(minutes=rng.randint(1, 90))
                    message_rows.append(
                        {
                            "conversation_id": conversation_id,
                            "channel_id": channels[company.pk].pk,
                            "direction": "in" if inbound else "out",
                            "kind": "note" if note else "message",
                            "author_contact_id": contact_ids[n] if inbound else None,
                            "author_employee_id": None if inbound else rng.choice(employees[company.pk]),
                            "body": message_text(
                                rng, RUSSIAN if russian else ENGLISH, ru_weights if russian else en_weights, codes
                            ),
                            "created_at": at,
                        }
                    )
                    made += 1
            if message_rows:
                copy_rows(cursor, Message, message_rows)
        raw.commit()
        if (first // batch) % 25 == 0 or first + batch >= conversations:
            say(f"  {made:,} messages")
        if made >= args.messages:
            break
    if made < args.messages:  # the random lengths fell short: top up the last conversations
        say(f"  {made:,} of {args.messages:,}: topping up")
        with raw.cursor() as cursor:
            last = cursor.execute(
                "SELECT c.id, c.channel_id FROM conversations_conversation c ORDER BY c.id DESC LIMIT 500"
            ).fetchall()
            rows = []
            while made < args.messages:
                conversation_id, channel_id = rng.choice(last)
                rows.append(
                    {
                        "conversation_id": conversation_id,
                        "channel_id": channel_id,
                        "direction": "out",
                        "kind": "message",
                        "author_employee_id": agents[0].pk,
                        "body": message_text(rng, RUSSIAN, ru_weights, codes),
                        "created_at": now,
                    }
                )
                made += 1
            copy_rows(cursor, Message, rows)
        raw.commit()
    say(f"seeded in {time.monotonic() - started:.0f} s; building the search index…")
    built = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute(index.CREATE.replace(" CONCURRENTLY", ""))
        say(f"search index built in {time.monotonic() - built:.0f} s")
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("SELECT pg_size_pretty(pg_relation_size('msg_search_ru'))")
        say(f"index size {cursor.fetchone()[0]}")
    # Marked complete only now: an interrupted seeding is never reused.
    type(bench).objects.filter(pk=bench.pk).update(description=f"{SEED_MARK} {args.messages} {args.seed}")


def seeded_matches(args: argparse.Namespace) -> bool:
    from helpdesk.accounts.models import Company

    return Company.objects.filter(description=f"{SEED_MARK} {args.messages} {args.seed}").exists()


# --- Measuring -----------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def measure(args: argparse.Namespace) -> dict:
    from django.db import connection

    from helpdesk.accounts.models import Company, Employee
    from helpdesk.conversations import search
    from helpdesk.conversations.models import Message

    bench = Company.objects.get(description=f"{SEED_MARK} {args.messages} {args.seed}")
    readers = {
        "admin (all chats)": Employee.objects.get(company=bench, display_name="Admin"),
        "agent (own teams)": Employee.objects.get(company=bench, display_name="Agent 0"),
        "assigned only": Employee.objects.get(company=bench, display_name="Solo"),
    }
    rng = random.Random(args.seed)
    # Rare words: order codes that occur in the admin's company, a few times each.
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM conversations_message")
        total = cursor.fetchone()[0]
    sample = list(
        Message.objects.filter(conversation__company=bench, body__contains="ZX").values_list("body", flat=True)[:200]
    )
    codes = sorted({word.strip(".?!") for body in sample for word in body.split() if word.startswith("ZX")})
    classes = {**QUERIES, "rare word": rng.sample(codes, min(5, len(codes))) or ["ZX00001"]}

    def one(reader, query: str, older: bool) -> tuple[float, int]:
        started = time.perf_counter()
        page = search.messages(reader, query)
        if older and page.next_before:
            page = search.messages(reader, query, before=page.next_before)
        else:
            search.contacts(reader, query)  # the first page also looks for contacts
        return (time.perf_counter() - started) * 1000, len(page.hits)

    # Warm up: the first queries read the index from disk into the cache, as after a restart.
    for reader in readers.values():
        for query in classes["common word"][:2]:
            one(reader, query, False)
    results = {}
    say(f"searching {total:,} messages: {args.repeat} rounds × {sum(map(len, classes.values()))} queries × 3 readers")
    for kind, queries in classes.items():
        for label, reader in readers.items():
            timings, found = [], []
            for _round in range(args.repeat):
                for query in queries:
                    ms, hits = one(reader, query, kind == "older page")
                    timings.append(ms)
                    found.append(hits)
            results[(kind, label)] = {
                "p50_ms": statistics.median(timings),
                "p95_ms": percentile(timings, 95),
                "max_ms": max(timings),
                "hits_per_page": statistics.mean(found),
                "timings": timings,
            }
    return {"total_messages": total, "results": results}


def report(measured: dict, args: argparse.Namespace) -> bool:
    results = measured["results"]
    labels = list(dict.fromkeys(label for _kind, label in results))
    print()
    print(f"Search over {measured['total_messages']:,} messages (ms per search: the messages page + contacts)")
    print(f"{'query class':<14}" + "".join(f"{label:>28}" for label in labels))
    print(f"{'':<14}" + "".join(f"{'p50 / p95 / max  (hits)':>28}" for _ in labels))
    for kind in QUERIES:
        cells = []
        for label in labels:
            r = results[(kind, label)]
            cells.append(f"{r['p50_ms']:6.1f} /{r['p95_ms']:6.1f} /{r['max_ms']:6.1f} ({r['hits_per_page']:4.1f})")
        print(f"{kind:<14}" + "".join(f"{cell:>28}" for cell in cells))
    print()
    ok = True
    for label in labels:
        timings = [t for (kind, lab), r in results.items() if lab == label for t in r["timings"]]
        p95 = percentile(timings, 95)
        ok &= p95 < GOAL_P95_MS
        print(
            f"{label:<20} all classes: p50 {statistics.median(timings):6.1f} ms  p95 {p95:6.1f} ms"
            f"  ({len(timings)} searches)  goal p95 < {GOAL_P95_MS:.0f} ms: {'met' if p95 < GOAL_P95_MS else 'MISSED'}"
        )
    if args.json is not None:
        path = Path(args.json) if args.json else RESULTS_DIR / f"search-{time.strftime('%Y%m%d-%H%M%S')}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        flat = {
            f"{kind} | {label}": {k: v for k, v in r.items() if k != "timings"} for (kind, label), r in results.items()
        }
        path.write_text(json.dumps({"messages": measured["total_messages"], "results": flat}, indent=2))
        say(f"wrote {path}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000, help="messages to seed (default 1,000,000)")
    parser.add_argument("--messages-per-conversation", type=int, default=20)
    parser.add_argument("--teams", type=int, default=4)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5, help="rounds over every query (default 5)")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--reseed", action="store_true", help="seed again even if the database holds this seed")
    parser.add_argument("--seed", type=int, default=1, help="random seed for the data and the rare words")
    parser.add_argument("--json", nargs="?", const="", default=None, help="also write the figures as JSON")
    args = parser.parse_args()
    if "postgres" not in args.database_url:
        raise SystemExit("bench: full-text search is measured on PostgreSQL")
    fresh = args.reseed or not database_exists(args.database_url)
    if fresh:
        recreate_database(args.database_url)
    setup_django(args.database_url)
    if not fresh and not seeded_matches(args):
        say("the bench database holds other data: seeding it afresh")
        from django.db import connections

        connections.close_all()
        recreate_database(args.database_url)
        fresh = True
    if fresh:
        seed(args)
    else:
        say("reusing the seeded database (--reseed to build it again)")
    return 0 if report(measure(args), args) else 1


if __name__ == "__main__":
    sys.exit(main())
