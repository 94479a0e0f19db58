"""Telling a live ``running`` run from one whose process is gone (killed by SIGKILL, a node that died).

A run records the process that runs it in ``host`` (:func:`process_identity`: hostname,
pid, the process's start time, the boot id and the pid namespace) and, on each of its
writes, a ``heartbeat_at`` time stamp. A running run is *stale*:

* on this machine (same hostname, boot id and pid namespace): when its pid is no longer
  alive, is a zombie, or now belongs to a process started at another time (pid reuse);
* after a reboot of this machine (same hostname, another boot id): always;
* elsewhere, or when it recorded no pid: when its last heartbeat (else its last update)
  is older than ``silent_after`` (:data:`SILENT_AFTER` by default): a run writes at least
  once per epoch, so only a run whose epoch or analysis takes longer looks silent.

The current time is an argument of every check, never read from a clock here.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from psykedelic_cli.errors import PsykError

if TYPE_CHECKING:
    from psykedelic_cli.store.runs import Store

SILENT_AFTER = timedelta(hours=6)
"""How long a run on another machine may write nothing before it counts as stale."""

_MACHINE_FIELDS = ("hostname", "boot_id", "pid_namespace")


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _process_stat(pid: int) -> tuple[str, int] | None:
    """``(state, start time in clock ticks since boot)`` of ``pid`` from /proc (None without /proc)."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name in (...) may hold spaces
    return fields[0], int(fields[19])  # fields 3 and 22 of proc(5)


def this_machine() -> dict:
    """What identifies this machine's process table: hostname, boot id and pid namespace
    (the last two None where the system does not tell)."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = None
    return {
        "hostname": socket.gethostname(),
        "boot_id": _read("/proc/sys/kernel/random/boot_id"),
        "pid_namespace": namespace,
    }


def process_identity() -> dict:
    """This process as a run's ``host`` records it: :func:`this_machine`, the pid and the
    process start time (clock ticks since boot; None without /proc), so that a reused pid is
    not taken for the run's process."""
    pid = os.getpid()
    stat = _process_stat(pid)
    return {**this_machine(), "pid": pid, "process_start": stat[1] if stat else None}


def _pid_alive(pid: int, start: int | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    stat = _process_stat(pid)
    if stat is None:
        return True  # no /proc: signal 0 is all there is to ask
    state, started = stat
    return state != "Z" and (start is None or started == start)


def _moment(stamp: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(stamp) if stamp else None
    except ValueError:
        return None


def stale_reason(
    doc: dict, *, now: datetime, silent_after: timedelta = SILENT_AFTER, machine: dict | None = None
) -> str | None:
    """Why the run ``doc`` counts as stale (module docstring), or None: not running, or maybe alive.

    ``now`` is an aware datetime; ``machine`` defaults to :func:`this_machine` (tests pass another).
    """
    if doc.get("status") != "running":
        return None
    if now.tzinfo is None:
        raise PsykError(f"a time stamp needs a time zone, got the naive {now.isoformat()}")
    host = doc.get("host") or {}
    machine = this_machine() if machine is None else machine
    if host.get("hostname") == machine["hostname"]:
        known = [name for name in _MACHINE_FIELDS[1:] if host.get(name) and machine.get(name)]
        if "boot_id" in known and host["boot_id"] != machine["boot_id"]:
            return "process gone (its host has restarted since)"
        same_table = all(host[name] == machine[name] for name in known)
        if same_table and isinstance(host.get("pid"), int):
            return None if _pid_alive(host["pid"], host.get("process_start")) else "process gone"
    last = _moment(doc.get("heartbeat_at")) or _moment(doc.get("updated_at")) or _moment(doc.get("created_at"))
    if last is None or now - last <= silent_after:
        return None
    hours = (now - last).total_seconds() / 3600
    return f"no heartbeat for {hours:.1f} h from {host.get('hostname') or 'an unknown host'}"


def stale_runs(
    store: Store, *, now: datetime, silent_after: timedelta = SILENT_AFTER, machine: dict | None = None
) -> dict[str, str]:
    """``{run id: reason}`` of the store's stale running runs (reads only their heads)."""
    heads = store.runs(status="running", kinds=())
    reasons = {doc["id"]: stale_reason(doc, now=now, silent_after=silent_after, machine=machine) for doc in heads}
    return {run_id: reason for run_id, reason in reasons.items() if reason}


def mark_stale(
    store: Store,
    ids: Iterable[str],
    *,
    now: datetime,
    silent_after: timedelta = SILENT_AFTER,
    machine: dict | None = None,
) -> list[dict]:
    """Mark the runs ``ids`` ``interrupted`` (their results kept, the reason as the error) in
    one write, each only if it is still running and stale when the store is locked: a run
    that finished or wrote meanwhile is left alone. Returns the runs marked."""
    marked = []
    with store.storage.transaction():  # one write; under the lock the file is the latest state
        for run_id in ids:
            doc = store.get_run(run_id, kinds=())
            reason = stale_reason(doc, now=now, silent_after=silent_after, machine=machine)
            if reason:
                error = f"interrupted: {reason}; marked by psyk mark-stale"
                marked.append(store.update_run(doc["id"], status="interrupted", error=error, now=now))
    return marked
