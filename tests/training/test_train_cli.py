"""``psyk train`` / ``psyk record`` end to end on digits, with a real store on disk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from psykedelic_cli.cli.app import app
from psykedelic_cli.store import Store
from psykedelic_cli.store.schema import BASE_CRITERIA, BASELINE, CONFIG_FIELDS, RECORD_CONFIG_FIELDS

PNG = b"\x89PNG\r\n\x1a\n"


def invoke(store: Path, *args: str):
    return CliRunner().invoke(app, ["--store", str(store), *args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One real run shared by the tests that only read it: history on, model saved."""
    folder = tmp_path_factory.mktemp("train")
    store = folder / "store.json"
    result = invoke(
        store, "train", "--depth", "8", "--epochs", "4", "--steps", "2", "--batch-size", "64", "--patience", "1",
        "--mode", "weight", "--threshold", "0.05", "--history-interval", "1", "--save-model",
        "--out-dir", str(folder / "out"), "--seed", "3",
    )
    assert result.exit_code == 0, result.output
    (run,) = Store(store).runs()
    return folder, store, run, result


def test_run_is_completed_with_every_result_kind(trained):
    _, _, run, _ = trained
    assert run["status"] == "completed"
    assert run["config"]["mode"] == "weight" and run["config"]["seed"] == 3
    results = run["results"]
    for kind in ("learning_curve", "performance", "pruning_per_layer", "final", "eig_stats", "set_analysis",
                 "pruning_per_threshold", "history", "per_layer_history", "pruning_stages", "timings"):
        assert kind in results, kind
    assert set(results["performance"]) == {BASELINE, *BASE_CRITERIA}
    for row in [*results["performance"].values(), results["final"]]:
        assert 0.0 <= row["accuracy"] <= 1.0
        assert 0.0 <= row["precision"] <= 1.0 and 0.0 <= row["recall"] <= 1.0
        assert row["active_params"] <= row["total_params"]
        assert row["compression_ratio"] == pytest.approx(1 - row["active_params"] / row["total_params"])
    assert results["performance"][BASELINE]["active_params"] == results["performance"][BASELINE]["total_params"]
    # History every epoch of stage 1 (2 epochs), each with the baseline and the compared modes.
    assert [entry["epoch"] for entry in results["history"]] == [1, 2]
    assert set(results["history"][0]["performance"]) == {BASELINE, *BASE_CRITERIA}
    curve = results["learning_curve"]
    assert curve["stage"][:2] == [1, 1] and set(curve["stage"]) == {1, 2}
    assert len(curve["loss"]) == len(curve["epoch"]) <= 4
    assert run["versions"]["tensorflow"] and run["host"]["hostname"]


def test_weight_mode_at_a_high_threshold_really_prunes(trained):
    _, _, run, result = trained
    # The run's table names the trained mode among the compared ones, and the final model.
    assert "weight (trained)" in result.stdout and "final: weight" in result.stdout
    stages = run["results"]["pruning_stages"]
    assert len(stages) == 1 and stages[0]["alive_kernels"] < stages[0]["total_kernels"]
    final = run["results"]["final"]
    assert final["active_params"] < final["total_params"]
    # The final model keeps the masks of the pruning stage: nothing revived in fine-tuning.
    assert final["alive_kernels"] == stages[0]["alive_kernels"]


def test_saved_model_has_zero_dead_kernels_and_charts_exist(trained):
    from psykedelic_cli.models.surgery import conv_layers, get_masks, load_model

    folder, _, run, _ = trained
    out = folder / "out" / run["id"]
    for chart in ("learning_curve.png", "per_layer.png"):
        assert (out / chart).read_bytes().startswith(PNG)
    model = load_model(out / "model.keras")
    masks = get_masks(model)
    dead = 0
    for layer in conv_layers(model):
        kernel = layer.kernel.numpy()
        dead_idx = np.argwhere(masks[layer.name] == 0)
        dead += len(dead_idx)
        for c_in, c_out in dead_idx:
            assert not kernel[:, :, c_in, c_out].any()
    assert dead == run["results"]["final"]["total_kernels"] - run["results"]["final"]["alive_kernels"] > 0


def test_record_analyses_a_saved_model(trained, tmp_path):
    folder, _, run, _ = trained
    store = tmp_path / "record.json"
    model_file = folder / "out" / run["id"] / "model.keras"
    result = invoke(store, "record", str(model_file), "--dataset", "digits", "--compare", "weight",
                    "--compare", "random_kernels", "--threshold", "0.05", "--batch-size", "100")
    assert result.exit_code == 0, result.output
    (recorded,) = Store(store).runs()
    assert recorded["status"] == "completed" and recorded["source"] == "record"
    # What record used, and no training setting it never used; its batch size is an evaluation one.
    assert set(recorded["config"]) == set(RECORD_CONFIG_FIELDS)
    assert recorded["config"]["eval_batch_size"] == 100 and recorded["config"]["model_file"] == str(model_file)
    performance = recorded["results"]["performance"]
    assert set(performance) == {BASELINE, "weight", "random_kernels"}
    # The saved model already lost kernels: the baseline counts them as dead.
    assert performance[BASELINE]["alive_kernels"] == run["results"]["final"]["alive_kernels"]
    assert performance["random_kernels"]["alive_kernels"] < performance[BASELINE]["alive_kernels"]
    assert "eig_stats" in recorded["results"] and "set_analysis" in recorded["results"]


def test_same_seed_repeats_a_run(tmp_path, tiny_args):
    store = tmp_path / "store.json"
    for _ in range(2):
        result = invoke(store, "train", *tiny_args, "--mode", "min_eig", "--seed", "7", "--out-dir", str(tmp_path))
        assert result.exit_code == 0, result.output
    first, second = Store(store).runs()
    assert first["id"] != second["id"]
    assert first["results"]["learning_curve"]["loss"] == second["results"]["learning_curve"]["loss"]
    assert first["results"]["final"] == second["results"]["final"]


def test_config_file_gives_defaults_and_the_command_line_wins(tmp_path):
    config = tmp_path / "psyk.toml"
    # Top-level keys and a [train] table: [train] overrides the top level, the command line both.
    config.write_text('depth = 14\nepochs = 2\nbatch-size = 128\nmode = "det_sorted_kernels"\n'
                      '[train]\ndepth = 8\nrate = 0.5\nepochs = 3\n')
    store = tmp_path / "store.json"
    result = invoke(store, "train", "--config", str(config), "--epochs", "4", "--stop-after-pruning",
                    "--out-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    (run,) = Store(store).runs()
    assert run["config"]["depth"] == 8 and run["config"]["batch_size"] == 128
    assert run["config"]["epochs"] == 4 and run["config"]["rate"] == 0.5
    assert run["config"]["mode"] == "det_sorted_kernels"
    assert set(run["config"]) == set(CONFIG_FIELDS)
    # --stop-after-pruning: only stage 1 was trained (2 of 4 epochs).
    assert run["results"]["learning_curve"]["epoch"] == [1, 2]
    # r = 0.5 of each neuron's alive kernels die: close to half of all kernels.
    stage = run["results"]["pruning_stages"][0]
    assert 0.4 < 1 - stage["alive_kernels"] / stage["total_kernels"] <= 0.5


def test_modes_l1_and_seeds_multiply_into_runs_and_mirrored_strategy_works(tmp_path):
    store = tmp_path / "store.json"
    result = invoke(store, "train", "--depth", "8", "--epochs", "2", "--batch-size", "128", "--stop-after-pruning",
                    "--mode", "weight", "--mode", "det", "--l1-penalty", "0", "--l1-penalty", "1e-3",
                    "--compare", "weight", "--distribute", "mirrored", "--out-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    runs = Store(store).runs()
    assert sorted((r["config"]["mode"], r["config"]["l1_penalty"]) for r in runs) == [
        ("det", 0.0), ("det", 1e-3), ("weight", 0.0), ("weight", 1e-3)]
    assert all(r["status"] == "completed" and r["config"]["distribute"] == "mirrored" for r in runs)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--steps", "1"], "--steps"),
        (["--mode", "nope"], "nope"),
        (["--optimizer", "lion"], "lion"),
        (["--threshold", "0"], "threshold"),
        (["--rate", "1.5"], "rate"),
        (["--dataset", "cifar10", "--data-dir", "/nonexistent-psyk"], "/nonexistent-psyk"),
        (["--config", "/nonexistent-psyk.toml"], "nonexistent-psyk.toml"),
        (["--dataset", "mnist"], "mnist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, needle):
    store = tmp_path / "store.json"
    result = invoke(store, "train", "--out-dir", str(tmp_path), *args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert not store.exists() or Store(store).runs() == []


def _restore_default_sigint():
    # A shell starts background jobs with SIGINT ignored and Python keeps an inherited
    # SIG_IGN, so a test run from a CI script would send Ctrl-C into the void.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.race
@pytest.mark.parametrize(
    "signal_number, exit_code, error",
    [
        (signal.SIGINT, 130, "interrupted by the user (Ctrl-C)"),
        (signal.SIGTERM, 128 + signal.SIGTERM, "terminated by SIGTERM"),
    ],
    ids=["ctrl-c", "sigterm"],
)
def test_a_stopped_training_marks_its_run_interrupted(tmp_path, signal_number, exit_code, error, wait_until):
    store = tmp_path / "store.json"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "psykedelic_cli", "--store", str(store), "train", "--depth", "8",
               "--epochs", "200", "--batch-size", "16", "--out-dir", str(tmp_path)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=_restore_default_sigint)
    try:
        wait_until(lambda: store.exists() and any(r["results"].get("learning_curve") for r in Store(store).runs()),
                   timeout=300, interval=0.5, what="the training to record an epoch")
        process.send_signal(signal_number)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == exit_code, stderr.decode()
    (run,) = Store(store).runs()
    assert run["status"] == "interrupted" and run["error"] == error
    assert run["results"]["learning_curve"]["epoch"]
    assert "Traceback" not in stderr.decode()
    if signal_number != signal.SIGINT:  # Ctrl-C exits quietly; a signal from elsewhere says what happened
        assert stderr.decode().strip().splitlines()[-1] == "psyk: error: terminated by SIGTERM"


def test_init_starts_from_saved_weights_and_refuses_another_architecture(trained, tmp_path):
    folder, _, run, _ = trained
    saved = folder / "out" / run["id"] / "model.keras"
    store = tmp_path / "store.json"
    common = ["--epochs", "2", "--batch-size", "64", "--stop-after-pruning", "--out-dir", str(tmp_path), "--seed", "3"]
    result = invoke(store, "train", "--depth", "8", "--init", str(saved), *common)
    assert result.exit_code == 0, result.output
    (warm,) = Store(store).runs()
    assert warm["config"]["init_mode"] == "model" and warm["config"]["init"] == str(saved)
    # A fresh ResNet-8 with the same seed reaches ~0.6 training accuracy after one epoch;
    # starting from the trained weights it is already far above.
    fresh_first_epoch = run["results"]["learning_curve"]["accuracy"][0]
    assert warm["results"]["learning_curve"]["accuracy"][0] > max(0.9, fresh_first_epoch)
    mismatch = invoke(store, "train", "--depth", "14", "--init", str(saved), *common)
    assert mismatch.exit_code == 2 and mismatch.stderr.count("\n") == 1
    assert "--init" in mismatch.stderr and "Traceback" not in mismatch.output
    assert len(Store(store).runs()) == 1
