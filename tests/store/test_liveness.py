"""A running run whose process is gone is told from a live one: real processes, a real SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from psykedelic_cli.cli.app import app
from psykedelic_cli.errors import PsykError
from psykedelic_cli.store import Store, new_run_document
from psykedelic_cli.store.liveness import mark_stale, process_identity, stale_reason, stale_runs, this_machine
from psykedelic_cli.store.runs import utc_now

RUNNER = """
    import sys
    from psykedelic_cli.store import Store, new_run_document

    store = Store(sys.argv[1])
    doc = new_run_document({"model": "MicroResNet20", "dataset": "digits", "mode": "det"})
    doc["results"]["learning_curve"] = {"epoch": [1, 2], "loss": [1.0, 0.5]}
    store.add_run(doc)
    print(doc["id"], flush=True)
    sys.stdin.read()  # a training that goes on until it is killed
"""


def _no_such_pid() -> int:
    """A pid no process can have: above the kernel's largest."""
    return int(Path("/proc/sys/kernel/pid_max").read_text()) + 1


def _run(clock, **host) -> dict:
    doc = new_run_document({"model": "MicroResNet20", "dataset": "digits"}, now=clock())
    doc["host"].update(host)
    return doc


@pytest.mark.race
def test_a_sigkilled_run_is_stale_and_mark_stale_keeps_its_results(tmp_path, clock):
    path = tmp_path / "psyk-store.json"
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(RUNNER), str(path)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        run_id = child.stdout.readline().strip()  # the run is in the store once its id is printed
        assert run_id, "the child died before storing its run"
        store = Store(path)
        assert store.get_run(run_id)["host"]["pid"] == child.pid
        assert stale_runs(store, now=clock()) == {}  # alive: indistinguishable from any live run so far
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()  # reaped: a zombie's pid still answers signal 0
        child.stdin.close()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert stale_runs(store, now=clock()) == {run_id: "process gone"}

    def psyk(*args):
        return CliRunner().invoke(app, ["--store", str(path), *args])

    listed = psyk("list-experiments")
    assert listed.exit_code == 0 and "running (stale: process gone)" in listed.stdout
    shown = psyk("show", run_id)
    assert "running (stale: process gone)" in shown.stdout and f"pid {child.pid}" in shown.stdout
    marked = psyk("mark-stale", "--yes")
    assert marked.exit_code == 0, marked.output
    assert f"{run_id}  running (stale: process gone)" in marked.stdout and "marked 1 run(s)" in marked.stdout
    doc = store.get_run(run_id)
    assert doc["status"] == "interrupted" and doc["finished_at"] is not None
    assert doc["error"] == "interrupted: process gone; marked by psyk mark-stale"
    assert doc["results"]["learning_curve"] == {"epoch": [1, 2], "loss": [1.0, 0.5]}
    assert "no stale runs" in psyk("mark-stale", "--yes").stdout


def test_a_run_of_a_live_process_here_is_not_stale_however_old(clock):
    doc = _run(clock)
    assert doc["host"]["pid"] == os.getpid()
    assert stale_reason(doc, now=clock.now + timedelta(days=400)) is None


def test_a_reused_pid_or_a_restarted_host_is_not_the_run_s_process(clock):
    mine = process_identity()
    assert mine["process_start"] is not None
    reused = _run(clock, process_start=mine["process_start"] + 1)  # this pid, but a process started at another time
    assert stale_reason(reused, now=clock()) == "process gone"
    rebooted = _run(clock, boot_id="another-boot")
    assert stale_reason(rebooted, now=clock()) == "process gone (its host has restarted since)"
    assert stale_reason(_run(clock, pid=_no_such_pid()), now=clock()) == "process gone"


def test_a_run_elsewhere_is_stale_after_the_silent_limit(clock):
    doc = _run(clock, hostname="gpu-box", pid=_no_such_pid())  # its pid means nothing here
    beat = clock()
    doc["heartbeat_at"] = utc_now(beat)
    assert stale_reason(doc, now=beat + timedelta(hours=6)) is None
    assert stale_reason(doc, now=beat + timedelta(hours=7)) == "no heartbeat for 7.0 h from gpu-box"
    assert stale_reason(doc, now=beat + timedelta(hours=7), silent_after=timedelta(hours=8)) is None
    del doc["heartbeat_at"]  # a run recorded before heartbeats: its last update counts
    assert stale_reason(doc, now=clock.now + timedelta(hours=7)).startswith("no heartbeat for 7.0 h")
    # Same hostname but another pid namespace (a container): the pid cannot be asked, the heartbeat can.
    contained = _run(clock, pid=_no_such_pid(), pid_namespace="pid:[1]")
    assert this_machine()["pid_namespace"] != "pid:[1]"
    assert stale_reason(contained, now=clock.now + timedelta(hours=1)) is None


def test_only_running_runs_are_stale_and_now_needs_a_time_zone(clock):
    finished = _run(clock, pid=_no_such_pid())
    finished["status"] = "completed"
    assert stale_reason(finished, now=clock()) is None
    with pytest.raises(PsykError, match="needs a time zone"):
        stale_reason(_run(clock), now=clock().replace(tzinfo=None))


def test_mark_stale_leaves_live_and_finished_runs_alone(tmp_path, clock):
    store = Store(tmp_path / "store.json")
    gone, live, finished = _run(clock, pid=_no_such_pid()), _run(clock), _run(clock, pid=_no_such_pid())
    store.add_runs([gone, live, finished])
    store.update_run(finished["id"], status="completed", now=clock())  # finished after it was listed
    marked = mark_stale(store, [gone["id"], live["id"], finished["id"]], now=clock())
    assert [doc["id"] for doc in marked] == [gone["id"]]
    assert [store.get_run(run["id"])["status"] for run in (gone, live, finished)] == [
        "interrupted", "running", "completed"]
    assert store.get_run(gone["id"])["finished_at"] == utc_now(clock.now)
