"""Counting across processes: prometheus_client's multiprocess mode, set up before any metric exists.

Web processes, the worker and the poller each count what happens in them (requests, sockets,
events, task failures). With ``PROMETHEUS_MULTIPROC_DIR`` set, each process writes its values
to memory-mapped files in that directory, and any web process's ``/metrics`` adds up the files
of every process: one scrape shows the whole machine. Without it each process keeps its own
values in memory (the embedded default, development), and ``/metrics`` shows only its own.

Files are named by host name and process id rather than the process id alone, so containers
sharing the directory through a volume (each one's process is pid 1) never write the same file.
"""

from __future__ import annotations

import glob
import os
import socket
from pathlib import Path

# Underscores separate the parts of the files' names; a host name has none of its own here.
_HOST = socket.gethostname().replace("_", "-").replace("/", "-") or "host"


def identifier() -> str:
    """This process's name in the directory: ``<host>-<pid>`` (asked on every write: a fork changes it)."""
    return f"{_HOST}-{os.getpid()}"


def directory() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def prepare(path: str) -> None:
    """Called by settings, before any metric exists: count into ``path`` when it is set."""
    from prometheus_client import disable_created_metrics, values

    # No "<counter>_created" series beside each counter: nothing here reads them, and they
    # double what every scrape stores.
    disable_created_metrics()
    if not path:
        return
    Path(path).mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    values.ValueClass = values.MultiProcessValue(process_identifier=identifier)
    # A restarted container has the same host name and pid as before: its open-socket gauges
    # from the previous life must not be added to this one's.
    _forget(identifier())


def forget_dead_processes() -> None:
    """Drop the live gauges (open sockets) of this host's processes that are gone.

    Counters of dead processes stay: what they counted happened. Processes on other hosts
    (other containers sharing the volume) cannot be checked from here; see docs/operations.md.
    """
    path = directory()
    if not path:
        return
    prefix = f"{_HOST}-"
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        owner = Path(name).stem.split("_", 2)[-1]
        if not owner.startswith(prefix):
            continue
        try:
            pid = int(owner[len(prefix) :])
        except ValueError:
            continue
        if not _alive(pid):
            _forget(owner)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _forget(owner: str) -> None:
    from prometheus_client import multiprocess

    path = directory()
    if path:
        multiprocess.mark_process_dead(owner, path)
