"""``psyk train --init`` from what ``psyk prune`` writes: a plain Keras model, dead kernels zero, no masks."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from psykedelic_cli.cli.app import app
from psykedelic_cli.models.resnet import build_micro_resnet
from psykedelic_cli.store import Store
from psykedelic_cli.store.schema import BASELINE

TRAIN = ["--depth", "8", "--epochs", "2", "--batch-size", "64", "--stop-after-pruning", "--compare", "weight",
         "--seed", "0"]


def invoke(*args) -> object:
    return CliRunner().invoke(app, [str(arg) for arg in args])


def _pruned_file(tmp_path, input_shape=(8, 8, 1)):
    build_micro_resnet(input_shape, 10, 8, seed=0).save(tmp_path / "model.keras")
    result = invoke("prune", tmp_path / "model.keras", "-m", "random_kernels", "--rate", 0.3,
                    "-o", tmp_path / "pruned.keras", "--json")
    assert result.exit_code == 0, result.output
    return tmp_path / "pruned.keras", json.loads(result.stdout)


def test_init_from_a_plain_pruned_model_keeps_its_dead_kernels_dead(tmp_path):
    pruned, report = _pruned_file(tmp_path)
    store = tmp_path / "store.json"
    result = invoke("--store", store, "train", "--init", pruned, "--out-dir", tmp_path / "out", *TRAIN)
    assert result.exit_code == 0, result.output
    (run,) = Store(store).runs()
    assert run["status"] == "completed"
    # After a stage of training, the unpruned comparison row still has exactly the file's dead kernels.
    baseline = run["results"]["pruning_per_layer"][BASELINE]
    assert [(row["layer"], row["alive_kernels"]) for row in baseline] == [
        (row["layer"], row["alive_kernels"]) for row in report["layers"]
    ]
    assert report["alive_kernels"] < report["total_kernels"]


def test_init_from_a_model_of_another_input_names_the_difference(tmp_path):
    pruned, _ = _pruned_file(tmp_path, input_shape=(8, 8, 3))
    store = tmp_path / "store.json"
    result = invoke("--store", store, "train", "--init", pruned, *TRAIN)
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"psyk: error: --init {pruned}: cannot use these weights for ")
    assert line.endswith("layer 'stem_conv': kernel of shape (3, 3, 3, 16) in the file, (3, 3, 1, 16) in the model")
    assert not Store(store).runs()
