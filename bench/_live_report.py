"""The live chat bench's report: the figures as printed, and the verdicts against the goals."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from _live_common import ROOT, TARGET, Server

# --- Report ---------------------------------------------------------------------------------------


def mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.0f} MiB"


def server_log_summary(servers: list[Server]) -> dict[str, Any]:
    """What the servers logged (WARNING and above): during the run, and while sockets closed."""
    out: dict[str, Any] = {}
    for server in servers:
        if server.log_path is None or not server.log_path.exists():
            continue
        raw = server.log_path.read_bytes()
        mark = len(raw) if server.log_mark is None else server.log_mark
        parts = {}
        for part, chunk in (("run", raw[:mark]), ("teardown", raw[mark:])):
            lines = chunk.decode(errors="replace").splitlines()
            # The last line of a traceback names the exception; "Traceback", frames and blanks don't.
            # Ids become "N" so that one failure on many conversations counts as one kind.
            heads = [
                re.sub(r"(?<=/)\d+(?=/)|(?<=event )\d+", "N", line)
                for line in lines
                if line.strip() and not line.startswith((" ", "Traceback", "The above", "During"))
            ]
            parts[part] = {
                "lines": len(lines),
                "tracebacks": sum(line.startswith("Traceback") for line in lines),
                "top": Counter(heads).most_common(6),
            }
        out[str(server.log_path.relative_to(ROOT))] = parts
    return out


def target_verdict(meta: dict[str, Any], r: dict[str, Any]) -> str:
    """Judge a run against the target, if the load offered was at least the target's."""
    if meta["rate"] < TARGET["rate"] or meta["visitors"] + meta["agents"] < TARGET["sockets"]:
        return (
            f"not applicable: the offered load ({meta['rate']:g} msg/s, {meta['visitors'] + meta['agents']} "
            f"sockets) is below {TARGET['rate']:g} msg/s with {TARGET['sockets']} sockets"
        )
    acked = r["throughput"]["visitor_messages_acked"]["per_second"]
    sockets = r["sockets"]["open_at_end"]
    p99s = {
        "send to agent": r["latency_ms"]["visitor_send_to_first_agent"]["p99"],
        "reply to visitor": r["latency_ms"]["agent_reply_to_visitor"]["p99"],
    }
    lost = r["messages_with_losses"] + r["lost"]["send_failed"]
    misses = []
    if acked < TARGET["rate"] * 0.98:  # Poisson arrivals: 2% slack for the window's luck
        misses.append(f"sustained {acked:g} acked msg/s")
    if sockets < TARGET["sockets"]:
        misses.append(f"{sockets} sockets open at the end")
    for name, p99 in p99s.items():
        if p99 is None or p99 >= TARGET["p99_ms"]:
            misses.append(f"p99 {name} {'n/a' if p99 is None else f'{p99:g} ms'}")
    if lost:
        misses.append(f"{lost} messages with losses")
    if misses:
        return "NOT MET: " + ", ".join(misses)
    shown = ", ".join(f"{name} {p99:g} ms" for name, p99 in p99s.items())
    return f"MET: p99 {shown}; {acked:g} acked msg/s, {sockets} sockets, nothing lost"


def print_report(meta: dict[str, Any], r: dict[str, Any]) -> None:
    t = r["throughput"]
    print()
    print(f"Smartchat live chat benchmark  {meta['started']}  commit {meta['commit']}")
    print(f"  servers   {meta['servers_desc']}")
    print(
        f"  load      {meta['visitors']} visitors, {meta['agents']} agents ({meta['agent_role']}), "
        f"{meta['rate']:g} visitor msg/s {meta['arrivals']}, reply ratio {meta['reply_ratio']:g}; "
        f"warm-up {r['warmup_seconds']:g} s, measured {t['window_seconds']:g} s, drained {r['drain_seconds']:g} s"
    )
    print()
    print(f"  throughput in the measured window            {'per s':>8} {'total':>8}")
    for label, key in (
        ("visitor messages sent", "visitor_messages_sent"),
        ("visitor messages acked by the server", "visitor_messages_acked"),
        ("visitor messages delivered to an agent", "delivered_to_an_agent"),
        ("agent replies posted (HTTP 201)", "agent_replies_posted"),
        ("agent replies delivered to the visitor", "replies_delivered_to_visitor"),
    ):
        print(f"    {label:<42} {t[key]['per_second']:>8g} {t[key]['total']:>8}")
    print()
    print(f"  latency, ms (messages sent in the window)     {'n':>6} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}")
    for label, key in (
        ("visitor send -> ack", "visitor_send_to_ack"),
        ("visitor send -> first agent receives", "visitor_send_to_first_agent"),
        ("visitor send -> all open agents receive", "visitor_send_to_all_agents"),
        ("first agent -> all open agents receive", "first_agent_to_all_agents"),
        ("agent reply POST -> 201", "agent_reply_post_to_201"),
        ("agent reply POST -> visitor receives", "agent_reply_to_visitor"),
        ("visitor send -> reply received", "visitor_send_to_reply_received"),
    ):
        row = r["latency_ms"][key]
        cells = " ".join(f"{'-' if row[q] is None else format(row[q], '.1f'):>8}" for q in ("p50", "p95", "p99", "max"))
        print(f"    {label:<42} {row['n']:>6} {cells}")
    loop = r.get("raw_loop") or {}
    if loop:
        at, sat = loop["at_offered_rate"], loop["saturated"]
        acked = t["visitor_messages_acked"]["per_second"]
        print()
        print(
            "  raw loop  a bare uvicorn app doing the same work per message (websocket, one transaction, "
            "Redis publish, push to the agent sockets), same client and arrivals, no replies:"
        )
        for label, row in (("at the offered rate", at), ("saturated", sat)):
            lat = row["send_to_first_agent_ms"]
            print(
                f"    {label:<20} {row['offered']:>6g} msg/s offered, {row['seconds']:g} s: {row['acked_per_s']:g} "
                f"acked msg/s, send -> first agent p50 {lat['p50']} / p99 {lat['p99']} ms "
                f"(client loop lag p99 {row['client_loop_lag_p99_ms']} ms)"
            )
        if sat["acked_per_s"] >= 0.9 * sat["offered"]:
            print(f"    (the raw loop kept up with {sat['offered']:g} msg/s: not saturated, raise --raw-rate)")
        share = 100 * acked / sat["acked_per_s"] if sat["acked_per_s"] else 0.0
        print(
            f"  share     sustained {acked:g} acked msg/s = {share:.0f}% of the raw loop's {sat['acked_per_s']:g} "
            f"msg/s (goal >= 30%; never above {100 * meta['rate'] / max(sat['acked_per_s'], 1e-9):.0f}% "
            f"at {meta['rate']:g} msg/s offered)"
        )
    print()
    lost = r["lost"]
    print(
        f"  lost      {r['messages_with_losses']} of {r['messages_in_window']} messages sent in the window had "
        f"something still missing {meta['timeout']:g} s after the window"
    )
    if any(lost.values()):
        print("            " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in lost.items() if v))
    problems = {
        "late (over the timeout)": r["late_over_timeout"],
        "duplicates": r["duplicates"],
        "unknown tokens": r["unknown_tokens"],
        "sends skipped (socket closed)": r["skipped_sends_closed_socket"],
    }
    print("  other     " + (", ".join(f"{k} {v}" for k, v in problems.items() if v) or "none"))
    print("  errors    " + (", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "none"))
    print("  closed    " + (", ".join(f"{k}: {v}" for k, v in r["unexpected_socket_closes"].items()) or "none"))
    s = r["sockets"]
    print()
    print(
        f"  sockets   {s['visitors_connected']}/{meta['visitors']} visitors + {s['agents_connected']}/{meta['agents']} "
        f"agents connected; open at the end: {s['open_at_end']} (server side: "
        f"{'n/a' if s['server_side_established'] is None else s['server_side_established']} TCP incl. HTTP keep-alive)"
    )
    m = r["server_memory_bytes"]
    per = r["server_memory_per_socket_kib"]
    print(
        f"  memory    server RSS idle {mib(m.get('idle'))}, connected {mib(m.get('connected'))}, "
        f"end {mib(m.get('end'))}" + ("" if per is None else f" (~{per:g} KiB per socket)")
    )
    raw = r["raw"]
    probe = r["fanout_probe"]
    if probe:
        print(
            f"  fan-out   one event to {probe['sockets']} agents' sockets, alone "
            f"({probe['complete']}/{probe['rounds']} notes): note POST -> last socket "
            f"p50 {probe['post_to_all_ms']['p50']} / p99 "
            f"{probe['post_to_all_ms']['p99']} ms, first -> last socket p50 {probe['first_to_all_ms']['p50']} / p99 "
            f"{probe['first_to_all_ms']['p99']} ms (goal < 150 ms at 300); note POST -> its 201 "
            f"p50 {probe['post_to_201_ms']['p50']} / p99 {probe['post_to_201_ms']['p99']} ms"
        )
    print(
        f"            raw limit, a bare uvicorn app sending one frame to {raw['fanout_sockets']} sockets: "
        f"p50 {raw['fanout_ms']['p50']} / p99 {raw['fanout_ms']['p99']} ms"
    )
    print(
        f"  idle      {r['idle_inbox_socket_kib']} KiB per idle inbox socket (goal < 40 KiB); raw limit, "
        f"a bare uvicorn socket: {raw['idle_socket_kib']} KiB ({' '.join(raw['ws_flags'])})"
    )
    c = r["cpu_percent"]
    print(
        f"  cpu       servers {c['servers']:g}%, postgres {c['postgres']:g}%, redis {c['redis']:g}%, "
        f"bench client {c['client']:g}% (100% = one core); machine {c['machine']:g}% of {meta['cpus']} cores"
    )
    cl = r["client"]
    print(
        f"  client    event-loop lag p99 {cl['loop_lag_ms']['p99']} ms, max {cl['loop_lag_ms']['max']} ms; "
        f"send schedule lag p99 {cl['send_schedule_lag_ms']['p99']} ms"
    )
    for path, parts in meta.get("server_logs", {}).items():
        print(f"  log       {path}")
        for part, info in parts.items():
            print(f"              {part:<9} {info['lines']} lines, {info['tracebacks']} tracebacks")
            for line, count in info["top"]:
                print(f"                {count:>5} x {line[:140]}")
    print()
    print(
        f"  target    p99 < {TARGET['p99_ms']:g} ms at {TARGET['rate']:g} msg/s with {TARGET['sockets']} sockets: "
        f"{target_verdict(meta, r)}"
    )
    print()
