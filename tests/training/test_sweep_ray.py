"""``psyk sweep --executor ray`` on a local Ray instance shared by the module (Ray starts in seconds here):
a worker killed with SIGKILL mid-run, Ctrl-C in the driver, and the CLI end to end."""

from __future__ import annotations

import os
import signal
from datetime import datetime, timezone
from pathlib import Path

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


def _sweep(tmp_path: Path, on_change):
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID + f'[train]\nout-dir = "{tmp_path / "out"}"\n')
    store = Store(tmp_path / "store.json")
    plan = plan_sweep(read_grid(grid).configs(), store, now=datetime.now(timezone.utc))
    driver = SweepDriver(store, on_change=on_change)
    return store, driver, tasks_of(plan.to_run)


@pytest.mark.race
def test_a_worker_killed_mid_run_leaves_its_run_interrupted_and_the_sweep_goes_on(local_ray, tmp_path):
    killed = []

    def kill_the_det_branch(driver):
        # The det run is the branch of the first task: kill its worker once det has trained an epoch.
        for state in driver.runs.values():
            if state.doc["config"]["mode"] == "det" and state.epochs >= 3 and not killed:
                killed.append(state.doc["host"]["pid"])
                os.kill(state.doc["host"]["pid"], signal.SIGKILL)

    store, driver, tasks = _sweep(tmp_path, kill_the_det_branch)
    assert [[config.mode for _, config in task] for task in tasks] == [["weight", "det"], ["weight"]]
    execute(tasks, driver, "ray", RayOptions())
    runs = {(r["config"]["mode"], r["config"]["seed"]): r for r in store.runs()}
    assert killed and killed[0] != os.getpid()  # a worker process, never this one, wrote nothing itself
    det = runs[("det", 0)]
    assert det["status"] == "interrupted" and "Ray worker died" in det["error"]
    assert det["results"]["learning_curve"]["epoch"][:3] == [1, 2, 3]  # its progress came back before it died
    assert runs[("weight", 0)]["status"] == runs[("weight", 1)]["status"] == "completed"
    assert all(r["status"] != "running" for r in runs.values())


def test_ctrl_c_in_the_driver_cancels_the_tasks_and_marks_their_runs_interrupted(local_ray, tmp_path):
    pressed = []

    def ctrl_c_after_an_epoch(driver):
        if not pressed and any(state.epochs for state in driver.runs.values()):
            pressed.append(True)
            raise KeyboardInterrupt

    store, driver, tasks = _sweep(tmp_path, ctrl_c_after_an_epoch)
    with pytest.raises(KeyboardInterrupt):
        execute(tasks, driver, "ray", RayOptions())
    runs = store.runs()
    assert runs and all(r["status"] == "interrupted" for r in runs)
    assert {r["error"] for r in runs} == {"interrupted by the user (Ctrl-C)"}


def test_the_cli_sweeps_on_ray_and_a_rerun_skips_what_is_done(local_ray, tmp_path):
    grid = tmp_path / "grid.toml"
    text = GRID.replace("epochs = 4", "epochs = 2\nstop-after-pruning = true").split("[sweep]")[0]
    grid.write_text(text + f'out-dir = "{tmp_path / "out"}"\n')
    store = tmp_path / "store.json"
    result = CliRunner().invoke(app, ["--store", str(store), "sweep", str(grid), "--executor", "ray"])
    assert result.exit_code == 0, result.output
    assert "to train: 2 in 1 task(s)" in " ".join(result.stderr.split())
    runs = Store(store).runs()
    assert len(runs) == 2 and all(r["status"] == "completed" for r in runs)
    assert {r["host"]["pid"] for r in runs} != {os.getpid()}  # trained by Ray workers
    again = CliRunner().invoke(app, ["--store", str(store), "sweep", str(grid), "--executor", "ray"])
    assert again.exit_code == 0 and again.stdout.count("skipped (completed)") == 2
    assert len(Store(store).runs()) == 2
