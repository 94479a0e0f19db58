"""``psyk record`` on models nobody here wrote: refused before the store is touched, told apart by architecture."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
from typer.testing import CliRunner

from psykedelic_cli.cli.app import app
from psykedelic_cli.store import Store


def _save(model, folder: Path, name: str) -> Path:
    path = folder / f"{name}.keras"
    model.save(path)
    return path


def _classifier(input_shape=(8, 8, 1), classes: int = 10, kernel=(3, 3), name=None, width: int = 4):
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(width, kernel, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(width, (3, 3), padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(x), name=name)


def _record(store: Path, model: Path, *args: str):
    return CliRunner().invoke(app, ["--store", str(store), "record", str(model), "--dataset", "digits", *args])


def _refused(result, store: Path, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    assert not store.exists() or Store(store).runs() == []  # nothing in the store, not even a failed run


def test_nan_weights_and_modes_that_cannot_apply_are_refused_before_the_store(tmp_path):
    store = tmp_path / "store.json"
    broken = _classifier(name="broken")
    kernel = broken.layers[1].kernel.numpy()
    kernel[0, 0, 0, 0] = np.nan
    broken.layers[1].kernel.assign(kernel)
    _refused(_record(store, _save(broken, tmp_path, "nan")), store, "NaN", broken.layers[1].name)
    inputs = keras.Input((8, 8, 1))  # no square kernel at all: no eigenvalue mode applies
    x = keras.layers.Conv2D(4, (1, 3), padding="same")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, (3, 1), padding="same")(x))
    no_square = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    _refused(_record(store, _save(no_square, tmp_path, "no_square"), "--compare", "min_eig"), store,
             "min_eig needs square kernels")
    mixed = _classifier(kernel=(1, 3))  # a 1×3 and a 3×3 layer: min_eig prunes the square one, skips the other
    recorded = _record(store, _save(mixed, tmp_path, "mixed"), "--compare", "min_eig", "--compare", "weight")
    assert recorded.exit_code == 0, recorded.output
    assert Store(store).runs()[0]["status"] == "completed"


def test_an_unbuilt_model_is_the_one_line_prune_gives(tmp_path):
    store = tmp_path / "store.json"
    unbuilt = keras.Sequential([keras.layers.Conv2D(4, 3), keras.layers.Flatten(), keras.layers.Dense(10)])
    path = _save(unbuilt, tmp_path, "unbuilt")
    _refused(_record(store, path), store, "is not built")
    pruned = CliRunner().invoke(app, ["prune", str(path), "--mode", "det", "-o", str(tmp_path / "p.keras")])
    assert pruned.exit_code == 2 and "is not built" in pruned.stderr


def test_the_output_must_be_one_score_per_class_of_the_dataset(tmp_path):
    store = tmp_path / "store.json"
    _refused(_record(store, _save(_classifier(classes=3), tmp_path, "three")), store,
             "outputs 3 classes, but digits has 10")
    inputs = keras.Input((8, 8, 1))
    per_pixel = keras.Model(inputs, keras.layers.Conv2D(10, 1, activation="softmax")(
        keras.layers.Conv2D(4, 3, padding="same")(inputs)))
    _refused(_record(store, _save(per_pixel, tmp_path, "per_pixel")), store,
             "outputs shape (8, 8, 10) per image", "one score per class: (10,) for digits")


def test_any_size_inputs_fit_and_several_inputs_are_refused(tmp_path):
    store = tmp_path / "store.json"
    left, right = keras.Input((8, 8, 1)), keras.Input((8, 8, 1))
    joined = keras.layers.Concatenate()([keras.layers.Conv2D(2, 3)(left), keras.layers.Conv2D(2, 3)(right)])
    two = keras.Model([left, right], keras.layers.Dense(10)(keras.layers.Flatten()(joined)))
    _refused(_record(store, _save(two, tmp_path, "two")), store, "needs a single-input image classifier", "2 inputs")
    wrong = _classifier(input_shape=(16, 16, 3))
    _refused(_record(store, _save(wrong, tmp_path, "wrong")), store, "expects inputs of shape (16, 16, 3)",
             "digits images are (8, 8, 1)")
    anysize = _record(store, _save(_classifier(input_shape=(None, None, 1)), tmp_path, "anysize"), "--compare", "det")
    assert anysize.exit_code == 0, anysize.output
    (run,) = Store(store).runs()
    assert run["status"] == "completed" and run["results"]["performance"]["None"]["accuracy"] >= 0


def test_two_architectures_of_one_name_are_told_apart_and_never_averaged(tmp_path):
    store = tmp_path / "store.json"
    small, wide = _classifier(width=4), _classifier(width=8)
    assert small.name.startswith("functional") and wide.name.startswith("functional")
    for model, name in ((small, "small"), (wide, "wide"), (_classifier(width=4), "small_again")):
        model.name = "functional"  # Keras' default name for all of them
        result = _record(store, _save(model, tmp_path, name), "--compare", "weight")
        assert result.exit_code == 0, result.output
    # ids made within one second sort by their random part: find each run by its file
    runs = {Path(run["config"]["model_file"]).stem: run for run in Store(store).runs()}
    assert [runs[name]["config"]["model"] for name in ("small", "wide", "small_again")] == ["functional"] * 3
    fingerprints = {name: run["config"]["architecture"] for name, run in runs.items()}
    assert fingerprints["small"] == fingerprints["small_again"] != fingerprints["wide"]
    for run in runs.values():
        assert run["config"]["params"] == run["results"]["performance"]["None"]["total_params"]
    report = CliRunner().invoke(app, ["--store", str(store), "report", "performance", "-f", "json"])
    assert report.exit_code == 0, report.output
    counts = sorted({record["n"] for record in json.loads(report.stdout)["records"]})
    assert counts == [1, 2]  # the two same-architecture runs together, the other apart: never n = 3


def test_a_lora_enabled_model_is_recorded_on_its_effective_kernels(tmp_path):
    store = tmp_path / "store.json"
    inputs = keras.Input((8, 8, 1))
    conv = keras.layers.Conv2D(4, 3, padding="same", lora_rank=2)
    x = keras.layers.GlobalAveragePooling2D()(conv(inputs))
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    conv.lora_kernel_b.assign(keras.random.normal(conv.lora_kernel_b.shape, seed=1))
    result = _record(store, _save(model, tmp_path, "lora"), "--compare", "weight", "--compare", "min_eig")
    assert result.exit_code == 0, result.output
    (run,) = Store(store).runs()
    assert run["status"] == "completed" and set(run["results"]["performance"]) == {"None", "weight", "min_eig"}
