"""``psyk sweep`` with the local executor: the grid, the plan against the store, and real sweeps on digits
(resume, --retry-failed, a failing run, Ctrl-C). The Ray executor: ``test_sweep_ray.py``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from psykedelic_cli.cli.app import app
from psykedelic_cli.errors import PsykError
from psykedelic_cli.store import Store, new_run_document
from psykedelic_cli.training.config import TrainConfig
from psykedelic_cli.training.executors import tasks_of
from psykedelic_cli.training.sweep import identity, plan_sweep, read_grid

TINY = 'depth = 8\nepochs = 4\nbatch-size = 64\npatience = 1\ncompare = ["weight"]\n'


def invoke(store: Path, *args: str):
    return CliRunner().invoke(app, ["--store", str(store), "sweep", *args])


def grid_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(text)
    return path


def test_lists_are_axes_and_the_sweep_table_excludes_includes_and_repeats(tmp_path):
    grid = read_grid(grid_file(tmp_path, 'depth = 8\nmode = ["weight", "det"]\nl1-penalty = [0, 1e-4]\n'
                               'compare = [["weight"], ["det", "weight"]]\n[train]\nseed = 3\n'
                               '[sweep]\nexclude = [{mode = "det", l1-penalty = 0}]\n'
                               'include = [{depth = 14, mode = "min_eig", compare = ["weight"]}]\nrepeat = 2\n'))
    runs = [(c.depth, c.mode, c.l1_penalty, c.compare, c.seed) for c in grid.configs()]
    assert runs == [
        (8, mode, l1, compare, seed)
        for mode, l1 in (("weight", 0.0), ("weight", 1e-4), ("det", 1e-4))
        for compare in (("weight",), ("det", "weight"))
        for seed in (3, 4)
    ] + [(14, "min_eig", l1, ("weight",), seed) for l1 in (0.0, 1e-4) for seed in (3, 4)]
    # A list option (compare) is one value; a list of lists is an axis. Floats stay floats.
    assert all(isinstance(c.l1_penalty, float) for c in grid.configs())


def test_runs_alike_but_for_the_mode_form_one_task(tmp_path):
    configs = read_grid(grid_file(tmp_path, TINY + 'mode = ["weight", "det", "min_eig"]\nseed = [0, 1]\n'
                                  '[sweep]\ninclude = [{share-first-stage = false, mode = ["det", "weight"]}]\n'
                                  )).configs()
    plan = plan_sweep(configs, Store(tmp_path / "none.json"), now=_now())
    tasks = [[config.mode for _, config in task] for task in tasks_of(plan.to_run)]
    # seed 0 and 1 (the include repeats the seed axis: 2 × 2 unshared runs, already in the grid but for
    # share_first_stage, which does not tell runs apart: each combination once).
    assert tasks == [["weight", "det", "min_eig"], ["weight", "det", "min_eig"]]


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ('depth = [8, "x"]\n', ["depth", '"x"', "an integer"]),
        ("lr = true\n", ["lr", "true", "a number"]),
        ('mode = ["weight", "nope"]\n', ["mode", '"nope"', "pruning mode"]),
        ("rate = [0.5, 2]\n", ["rate", "2", "[0, 1]"]),
        ("colour = 3\n", ["unknown option 'colour'", "allowed:"]),
        ("[sweep]\nrepeat = 0\n", ["sweep.repeat", "0", "≥ 1"]),
        ("[sweep]\nlimit = 3\n", ["sweep.limit", "exclude, include, repeat"]),
        ('[sweep]\nexclude = {mode = "det"}\n', ["sweep.exclude", "a list of tables"]),
        ("[sweep]\ninclude = [{epochs = 3, steps = 4}]\n", ["--epochs must be at least --steps (4); got 3"]),
        ("[sweep]\ninclude = [{depht = 8}]\n", ["unknown option 'sweep.include.depht'"]),
        ("depth = \n", ["not a readable TOML file"]),
        ("depth = []\n", ["depth = []", "at least one value"]),
    ],
)
def test_a_bad_grid_is_one_line_naming_the_file_and_the_key_and_exit_2(tmp_path, text, needles):
    store = tmp_path / "store.json"
    path = grid_file(tmp_path, text)
    result = invoke(store, str(path))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0], result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "Traceback" not in result.output and not store.exists()


def test_a_missing_grid_file_and_wrong_executor_options_are_refused(tmp_path):
    result = invoke(tmp_path / "s.json", str(tmp_path / "nope.toml"))
    assert result.exit_code == 2 and "grid file not found" in result.stderr
    result = invoke(tmp_path / "s.json", str(grid_file(tmp_path, TINY)), "--address", "auto")
    assert result.exit_code == 2 and "--executor ray" in result.stderr


def _now():
    from datetime import datetime, timezone

    return datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)


def _stored(store: Store, config: TrainConfig, status: str, clock) -> str:
    doc = new_run_document(config.store_config("MicroResNet8", {"architecture": "a", "params": 1}), now=clock())
    doc["status"] = status
    if status == "running":  # a process that is gone: stale, so it counts as interrupted
        doc["host"] = {**doc["host"], "pid": 2**22 + 12345, "process_start": 1}
    return store.add_run(doc)


def test_the_plan_skips_completed_runs_and_retries_failed_ones_only_when_asked(tmp_path, clock):
    store = Store(tmp_path / "store.json")
    configs = read_grid(grid_file(tmp_path, TINY + 'mode = ["weight", "det", "min_eig", "det_corr", "random_kernels"]\n'
                                  )).configs()
    ids = {
        "weight": _stored(store, configs[0], "completed", clock),
        "det": _stored(store, configs[1], "failed", clock),
        "min_eig": _stored(store, configs[2], "running", clock),
    }
    _stored(store, configs[0], "failed", clock)  # an older failure of a completed combination
    _stored(store, configs[3].replace(epochs=6), "completed", clock)  # another setting: not this run
    plan = plan_sweep(configs, store, now=clock(), retry_failed=False)
    assert [(run.config.mode, run.state, run.run_id) for run in plan.runs] == [
        ("weight", "completed", ids["weight"]), ("det", "failed", ids["det"]),
        ("min_eig", "interrupted", ids["min_eig"]), ("det_corr", "new", None), ("random_kernels", "new", None)]
    assert [run.config.mode for run in plan.to_run] == ["det_corr", "random_kernels"]
    retried = plan_sweep(configs, store, now=clock(), retry_failed=True)
    assert [run.config.mode for run in retried.to_run] == ["det", "min_eig", "det_corr", "random_kernels"]
    # Runs match by what they store, and a shared first stage does not tell them apart.
    assert identity(configs[0]) == identity(configs[0].replace(share_first_stage=False))


def test_a_grid_value_is_checked_like_the_option(tmp_path):
    with pytest.raises(PsykError, match="threshold must be a positive number"):
        read_grid(grid_file(tmp_path, "threshold = [1e-4, -1]\n"))


def _restore_default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.race
def test_ctrl_c_then_resume_then_retry_failed_with_one_failing_run(tmp_path, wait_until):
    """A real sweep: Ctrl-C marks its unfinished runs interrupted (exit 130); a re-run skips them and the
    failing run fails alone (exit 1); --retry-failed trains them, branched from one first stage."""
    bad = tmp_path / "bad.weights.h5"
    bad.write_text("not weights")
    grid = grid_file(tmp_path, TINY.replace("epochs = 4", "epochs = 12") + f'out-dir = "{tmp_path / "out"}"\n'
                     f'mode = ["weight", "det"]\n[sweep]\ninclude = [{{init = "{bad}", mode = "weight"}}]\n')
    store = tmp_path / "store.json"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen([sys.executable, "-m", "psykedelic_cli", "--store", str(store), "sweep", str(grid)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=_restore_default_sigint)
    try:
        wait_until(lambda: store.exists() and any(r["results"].get("learning_curve") for r in Store(store).runs()),
                   timeout=300, interval=0.2, what="the sweep to record an epoch")
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, stderr.decode()
    interrupted = Store(store).runs()
    assert sorted((r["config"]["mode"], r["status"]) for r in interrupted) == [("det", "interrupted"),
                                                                                ("weight", "interrupted")]
    assert all(r["error"] == "interrupted by the user (Ctrl-C)" for r in interrupted)
    assert any(r["results"]["learning_curve"]["epoch"] for r in interrupted)
    weight, det = sorted(interrupted, key=lambda r: r["config"]["mode"] != "weight")
    assert det["results"]["first_stage"] == {"trained_by": weight["id"], "shared_with": [weight["id"]]}

    resumed = invoke(store, str(grid))  # the interrupted runs are skipped; the failing one fails alone
    assert resumed.exit_code == 1, resumed.output
    assert "1 of 1 run(s) did not complete" in resumed.stderr and "--retry-failed" in resumed.stderr
    assert resumed.stdout.count("skipped (interrupted)") == 2 and "failed: --init" in resumed.stdout
    assert len(Store(store).runs()) == 2

    retried = invoke(store, str(grid), "--retry-failed")
    assert retried.exit_code == 1 and "1 of 3 run(s) did not complete" in retried.stderr
    runs = {r["config"]["mode"]: r for r in Store(store).runs(status="completed")}
    assert set(runs) == {"weight", "det"} and len(Store(store).runs()) == 4
    # One first stage, trained by the weight run, recorded by both.
    assert runs["det"]["results"]["first_stage"] == {"trained_by": runs["weight"]["id"],
                                                     "shared_with": [runs["weight"]["id"]]}
    assert runs["weight"]["results"]["first_stage"]["shared_with"] == [runs["det"]["id"]]
    done = invoke(store, str(grid), "--dry-run")
    assert done.exit_code == 0
    assert "in the store: 2 completed; to train: 1 in 1 task(s)" in " ".join(done.stderr.split())


def test_the_driver_writes_what_a_worker_relays_and_ends_the_runs_of_a_lost_task(tmp_path, clock):
    from psykedelic_cli.training.executors import RelayStore, SweepDriver

    store = Store(tmp_path / "store.json")
    driver = SweepDriver(store)
    relay = RelayStore(driver.handle, [4, 5])  # a worker's view of the store: messages to the driver
    docs = [new_run_document(TrainConfig(mode=mode).store_config("MicroResNet8", {"architecture": "a", "params": 1}),
                             now=clock()) for mode in ("weight", "det")]
    first, second = relay.add_runs(docs)
    relay.update_run(first, results={"learning_curve": {"epoch": [1, 2]}}, heartbeat_at="x", now=clock())
    relay.update_run(first, status="completed", results={"final": {"accuracy": 0.5}}, now=clock())
    assert store.get_run(first) == relay.get_run(first)  # the driver's store holds what the worker wrote
    assert store.get_run(first)["status"] == "completed" and store.get_run(first)["heartbeat_at"] == "x"
    assert (driver.runs[first].index, driver.runs[first].epochs, driver.runs[second].index) == (4, 2, 5)
    # The worker is lost: its run still running ends interrupted, and a run it never started is told why.
    driver.task_ended([(4, None), (5, None), (6, None)], None, lost="its Ray worker died (WorkerCrashedError)")
    lost = store.get_run(second)
    assert lost["status"] == "interrupted" and lost["error"] == "interrupted: its Ray worker died (WorkerCrashedError)"
    assert store.get_run(first)["status"] == "completed"
    assert driver.task_errors == {6: "its Ray worker died (WorkerCrashedError)"}
