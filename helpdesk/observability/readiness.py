"""What ``/readyz`` checks: a process may take traffic once its services answer and the schema is current.

``/healthz`` (smartchat/health.py) says whether the process is alive and its services answer;
readiness adds the migrations, so a web process started before ``migrate`` finished stays out
of the load balancer instead of answering 500s.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

REDIS_TIMEOUT = 2.0
# Migrations are never unapplied under a running process: once current, stop asking (the
# migration graph takes a while to load).
_migrated = False


def database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def redis() -> str:
    if not settings.REDIS_URL:
        return "not configured"
    import redis as redis_py

    client = redis_py.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT
    )
    try:
        client.ping()
    finally:
        client.close()
    return "ok"


def migrations() -> str:
    global _migrated
    if _migrated:
        return "ok"
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        raise Pending(f"{len(pending)} migration(s) not applied, first {pending[0][0].app_label}.{pending[0][0].name}")
    _migrated = True
    return "ok"


class Pending(Exception):
    pass


def readiness() -> tuple[bool, dict[str, str], str]:
    """(ready, each check's answer, the first failure's reason)."""
    checks: dict[str, str] = {}
    reasons: list[str] = []
    for name, probe in (("database", database), ("redis", redis), ("migrations", migrations)):
        if name == "migrations" and checks.get("database") != "ok":
            checks[name] = "unknown"
            continue
        try:
            checks[name] = probe()
        except Pending as exc:
            checks[name] = "pending"
            reasons.append(str(exc))
        except Exception as exc:  # a readiness check reports failures, it does not raise them
            checks[name] = f"error: {type(exc).__name__}"
            reasons.append(f"{name} does not answer ({type(exc).__name__})")
    return not reasons, checks, "; ".join(reasons)
