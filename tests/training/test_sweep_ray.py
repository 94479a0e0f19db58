"""``psyk sweep --executor ray`` on a local Ray instance shared by the module (Ray starts in seconds here):
a worker killed with SIGKILL mid-run, Ctrl-C in the driver, and the CLI end to end."""

from __future__ import annotations

import os
import signal
import threading
from datetime import datetime, timezone

import pytest

ray = pytest.importorskip("ray")

from typer.testing import CliRunner  # noqa: E402

from psykedelic_cli.cli.app import app  # noqa: E402
from psykedelic_cli.store import Store  # noqa: E402
from psykedelic_cli.training.executors import RayOptions, SweepDriver, execute, tasks_of  # noqa: E402
from psykedelic_cli.training.sweep import plan_sweep, read_grid  # noqa: E402

GRID = ('depth = 8\nepochs = 4\nbatch-size = 64\npatience = 1\ncompare = ["weight"]\nthreshold = 0.05\n'
        'mode = ["weight", "det"]\n[sweep]\ninclude = [{seed = 1, mode = "weight"}]\n')


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.mark.race
def test_the_cli_sweeps_on_ray_a_killed_worker_leaves_its_run_interrupted_and_a_rerun_skips_what_is_done(
        local_ray, tmp_path, wait_until):
    grid = tmp_path / "grid.toml"
    # 3 epochs per stage and patience 2: the det branch cannot stop early, it trains on after the kill;
    # the other task (seed 1) is a tiny one.
    text = GRID.replace("epochs = 4", "epochs = 6").replace("patience = 1", "patience = 2").replace(
        'include = [{seed = 1, mode = "weight"}]', 'include = [{seed = 1, mode = "weight", epochs = 2}]')
    grid.write_text(text + f'[train]\nout-dir = "{tmp_path / "out"}"\n')
    store = tmp_path / "store.json"
    killed = []

    def det_pid():
        # The det run is the branch of the first task: its worker is killed once det has trained an epoch
        # (the shared first stage is epochs 1-3).
        runs = Store(store).runs() if store.exists() else []
        det = [r for r in runs if r["config"]["mode"] == "det" and len(r["results"].get("learning_curve", {}).get(
            "epoch", [])) >= 4]
        return det and det[0]["host"]["pid"]

    def killer():
        killed.append(wait_until(det_pid, timeout=600, interval=0.1, what="the det branch to train an epoch"))
        os.kill(killed[0], signal.SIGKILL)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    result = CliRunner().invoke(app, ["--store", str(store), "sweep", str(grid), "--executor", "ray"])
    thread.join(timeout=60)
    assert "to train: 3 in 2 task(s)" in " ".join(result.stderr.split())
    assert result.exit_code == 1 and "1 of 3 run(s) did not complete" in result.stderr, result.output
    runs = {(r["config"]["mode"], r["config"]["seed"]): r for r in Store(store).runs()}
    assert killed and killed[0] != os.getpid()  # a worker process: it sent its results, the driver wrote them
    det = runs[("det", 0)]
    assert det["status"] == "interrupted" and "Ray worker died" in det["error"]
    assert det["results"]["learning_curve"]["epoch"][:4] == [1, 2, 3, 4]  # its progress came back before it died
    assert runs[("weight", 0)]["status"] == runs[("weight", 1)]["status"] == "completed"
    assert all(r["status"] != "running" for r in runs.values()) and len(runs) == 3

    again = CliRunner().invoke(app, ["--store", str(store), "sweep", str(grid), "--executor", "ray"])
    assert again.exit_code == 0, again.output
    assert again.stdout.count("skipped (completed)") == 2 and again.stdout.count("skipped (interrupted)") == 1
    assert len(Store(store).runs()) == 3


def test_ctrl_c_in_the_driver_cancels_the_tasks_and_marks_their_runs_interrupted(local_ray, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID + f'[train]\nout-dir = "{tmp_path / "out"}"\n')
    store = Store(tmp_path / "store.json")
    plan = plan_sweep(read_grid(grid).configs(), store, now=datetime.now(timezone.utc))
    pressed = []

    def ctrl_c_once_runs_exist(driver):
        if driver.runs and not pressed:
            pressed.append(True)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        execute(tasks_of(plan.to_run), SweepDriver(store, on_change=ctrl_c_once_runs_exist), "ray", RayOptions())
    runs = store.runs()
    assert runs and all(r["status"] == "interrupted" for r in runs)
    assert {r["error"] for r in runs} == {"interrupted by the user (Ctrl-C)"}


def test_sigterm_ends_a_ray_sweep_as_terminated_though_ray_was_waiting(local_ray, tmp_path):
    from psykedelic_cli.cli.common import stop_gracefully_on_termination
    from psykedelic_cli.errors import Terminated

    grid = tmp_path / "grid.toml"
    grid.write_text(GRID + f'[train]\nout-dir = "{tmp_path / "out"}"\n')
    store = Store(tmp_path / "store.json")
    plan = plan_sweep(read_grid(grid).configs(), store, now=datetime.now(timezone.utc))
    sent = []

    def sigterm_soon(driver):  # from another thread: it lands while the driver waits inside Ray
        if driver.runs and not sent:
            sent.append(threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)))
            sent[0].start()

    with pytest.raises(Terminated), stop_gracefully_on_termination():
        execute(tasks_of(plan.to_run), SweepDriver(store, on_change=sigterm_soon), "ray", RayOptions())
    runs = store.runs()
    assert runs and {(r["status"], r["error"]) for r in runs} == {("interrupted", "terminated by SIGTERM")}
