"""The benchmarks' own PostgreSQL database: made afresh, or found already there.

Only databases whose name contains "bench" are ever dropped.
"""

from __future__ import annotations

import dj_database_url
import psycopg
from psycopg import sql


def _maintenance(database_url: str) -> psycopg.Connection:
    """A connection to the server's ``postgres`` database, as the bench database's user."""
    db = dj_database_url.parse(database_url)
    return psycopg.connect(
        host=db["HOST"] or None,
        port=db["PORT"] or None,
        user=db["USER"] or None,
        password=db["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )


def recreate_database(database_url: str) -> None:
    """Drop and create the bench database, so a run starts from empty tables."""
    name = dj_database_url.parse(database_url)["NAME"]
    if "bench" not in name:
        raise SystemExit(f"bench: refusing to drop database {name!r}: its name must contain 'bench'")
    with _maintenance(database_url) as conn:
        ident = sql.Identifier(name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))


def database_exists(database_url: str) -> bool:
    name = dj_database_url.parse(database_url)["NAME"]
    with _maintenance(database_url) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None
