"""Live chat benchmark: widget visitors and inbox agents over real websockets.

Starts Smartchat servers on PostgreSQL + Redis (or targets a running one), connects N widget
visitors and M inbox agents, has the visitors send at a set total rate, lets agents answer,
and reports sustained messages/s, latency (visitor send to agent receive, agent reply to
visitor receive) as p50/p95/p99/max, lost messages, sockets held, and server memory and CPU.

Usage and the meaning of every figure: bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
from _database import recreate_database  # bench/, the script's own folder
from _live_bench import Bench
from _live_common import (
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    HTTP_POOL_SIZE,
    LAYER_PREFIX,
    RESULTS_DIR,
    ROOT,
    Server,
    clear_layer,
    find_target_pid,
    say,
    seed,
    server_env,
    start_servers,
    start_worker_and_beat,
    stop_processes,
    stop_servers,
    wait_healthy,
)
from _live_report import print_report, server_log_summary

# --- Entry point ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=1, help="uvicorn processes to start (same PostgreSQL + Redis)")
    parser.add_argument(
        "--no-worker",
        action="store_true",
        help="start no Celery worker and beat beside the servers (by default both run, as in production:\n"
        "the statistics are applied from the event log by the worker every 2 s)",
    )
    parser.add_argument("--target", metavar="URL", help="an already running server instead (http://host:port)")
    parser.add_argument("--visitors", type=int, default=200, help="widget visitor sockets")
    parser.add_argument("--agents", type=int, default=5, help="inbox agent sockets (each sees every message)")
    parser.add_argument(
        "--probes", type=int, default=30, help="after the drain, single notes timed to every agent socket (0: skip)"
    )
    parser.add_argument(
        "--idle-sockets", type=int, default=100, help="extra idle inbox sockets opened to weigh one (0: skip)"
    )
    parser.add_argument("--rate", type=float, default=50.0, help="visitor messages per second, all visitors together")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds (after the warm-up)")
    parser.add_argument(
        "--warmup", type=float, default=None, help="seconds before measuring (default: one round of visitors, 3-30 s)"
    )
    parser.add_argument("--reply-ratio", type=float, default=1.0, help="fraction of visitor messages an agent answers")
    parser.add_argument(
        "--arrivals", choices=("poisson", "even"), default="poisson", help="spacing of visitor messages"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for stragglers; later = lost")
    parser.add_argument("--agent-role", choices=("agent", "admin"), default="agent", help="agents' built-in role")
    parser.add_argument(
        "--database-url",
        help=f"PostgreSQL (default {DEFAULT_DATABASE_URL}; with --target: the server's, or $DATABASE_URL)",
    )
    parser.add_argument(
        "--redis-url", default=DEFAULT_REDIS_URL, help=f"Redis for the channel layer (default {DEFAULT_REDIS_URL})"
    )
    parser.add_argument(
        "--server-env", action="append", default=[], metavar="KEY=VALUE", help="extra environment for started servers"
    )
    parser.add_argument(
        "--raw-rate",
        type=float,
        default=1500.0,
        help="msg/s offered to the raw loop to find its sustained rate (0: skip the raw loop)",
    )
    parser.add_argument(
        "--synchronised-pings",
        action="store_true",
        help="every agent pings at the same instant (as after a restart that reconnected all at once), "
        "not every ping interval from its own hello as browsers do",
    )
    parser.add_argument("--raw-seconds", type=float, default=5.0, help="measured seconds of the raw loop at --raw-rate")
    parser.add_argument("--seed", type=int, default=1, help="random seed for arrivals, order and replies")
    parser.add_argument(
        "--json", nargs="?", const="", metavar="PATH", help="also write results as JSON (default path: bench/results/)"
    )
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.duration <= 0 or args.visitors < 1 or args.agents < 1 or args.servers < 1:
        parser.error("--rate, --duration, --visitors, --agents and --servers must be positive")
    if not 0 <= args.reply_ratio <= 1:
        parser.error("--reply-ratio must be between 0 and 1")
    if args.target and args.servers != 1:
        parser.error("--target and --servers are exclusive: start the servers yourself")
    if args.database_url is None:
        args.database_url = os.environ.get("DATABASE_URL") if args.target else DEFAULT_DATABASE_URL
        if not args.database_url:
            parser.error("--target needs the server's database (--database-url or $DATABASE_URL) to seed a company")
    return args


def raise_open_files(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = wanted
    return soft


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
        if not head.strip():
            return "unknown (not a git checkout)"
        return head.strip() + ("+dirty" if dirty.strip() else "")
    except OSError:
        return "unknown"


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    # Client sockets + HTTP pools + setup connections, with room to spare; the servers inherit it.
    limit = raise_open_files(2 * (args.visitors + args.agents * (HTTP_POOL_SIZE + 1)) + 256)
    if limit < args.visitors + args.agents + 64:
        say(f"warning: only {limit} open files allowed; sockets will fail")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    run_id = time.strftime("%Y%m%d-%H%M%S")
    meta: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "commit": git_commit(),
        "cpus": psutil.cpu_count(),
        "visitors": args.visitors,
        "agents": args.agents,
        "agent_role": args.agent_role,
        "rate": args.rate,
        "arrivals": args.arrivals,
        "reply_ratio": args.reply_ratio,
        "duration": args.duration,
        "timeout": args.timeout,
        "seed": args.seed,
        "target": args.target,
        "server_count": 1 if args.target else args.servers,
    }
    servers: list[Server] = []
    background: list = []
    try:
        if args.target:
            say(f"seeding a fresh company into {urlsplit(args.database_url).path.lstrip('/')} for {args.target}")
            seeded = seed(args, migrate=False)
            target = args.target.rstrip("/")
            servers = [Server(target, pid=find_target_pid(target))]
            wait_healthy(servers[0], timeout=10)
            meta["servers_desc"] = f"target {target} (pid {servers[0].pid or 'not visible: no memory/CPU figures'})"
        else:
            db_name = urlsplit(args.database_url).path.lstrip("/")
            say(f"recreating database {db_name} and clearing Redis keys {LAYER_PREFIX}*")
            recreate_database(args.database_url)
            cleared = clear_layer(args.redis_url)
            say(f"migrating and seeding (cleared {cleared} stale layer keys)")
            seeded = seed(args, migrate=True)
            log_dir = RESULTS_DIR / "logs" / run_id
            log_dir.mkdir(parents=True, exist_ok=True)
            say(f"starting {args.servers} uvicorn server(s); logs in {log_dir.relative_to(ROOT)}")
            env = server_env(args, secrets.token_urlsafe(50))
            servers = start_servers(args.servers, env, log_dir)
            if not args.no_worker:
                background = start_worker_and_beat(env, log_dir)
            meta["servers_desc"] = (
                f"{len(servers)} uvicorn process(es) {', '.join(s.url for s in servers)}; "
                f"{'no worker' if args.no_worker else 'the Procfile worker and beat beside them'}; "
                f"PostgreSQL {db_name} (recreated), Redis {args.redis_url} prefix {LAYER_PREFIX}"
            )
        meta["company"] = seeded.company
        loop_factory = None
        with contextlib.suppress(ImportError):
            import uvloop

            loop_factory = uvloop.new_event_loop
        meta["client_loop"] = "uvloop" if loop_factory else "asyncio"
        bench = Bench(args, servers, seeded)
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            results = runner.run(bench.run())
    except KeyboardInterrupt:
        say("interrupted; stopping servers")
        return 130
    finally:
        stop_servers(servers)
        stop_processes(background)
    meta["server_logs"] = server_log_summary(servers)
    print_report(meta, results)
    if args.json is not None:
        path = (
            Path(args.json)
            if args.json
            else RESULTS_DIR
            / (f"live_chat-{run_id}-s{meta['server_count']}-v{args.visitors}-a{args.agents}-r{args.rate:g}.json")
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
        say(f"results written to {path}")
    lost = sum(results["lost"].values())
    return 1 if lost or results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
