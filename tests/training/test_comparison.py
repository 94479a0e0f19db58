"""``compare_modes`` and ``performance_row`` on real small models: per-layer results keyed by layer
path, the score formula, everything restored after each trial (on every backend)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from psykedelic_cli.models.surgery import conv_layer_paths, get_masks, set_masks
from psykedelic_cli.store.schema import BASELINE
from psykedelic_cli.training.comparison import compare_modes, performance_row

pytestmark = pytest.mark.backends


def _towers() -> keras.Model:
    """Towers ``tower_a`` (3×3 ``conv``) and ``tower_b`` (3×3 ``conv``, then a 1×3 ``wide``)."""
    keras.utils.set_random_seed(7)

    def tower(name, *extra):
        layers = [keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, padding="same", name="conv"), *extra]
        return keras.Sequential([*layers, keras.layers.GlobalAveragePooling2D()], name=name)

    left, right = keras.Input((8, 8, 3)), keras.Input((8, 8, 3))
    wide = keras.layers.Conv2D(4, (1, 3), padding="same", name="wide")
    joined = keras.layers.Concatenate()([tower("tower_a")(left), tower("tower_b", wide)(right)])
    return keras.Model([left, right], keras.layers.Dense(2)(joined), name="towers")


def test_per_layer_results_are_keyed_by_path_and_skipped_layers_stay_whole():
    model = _towers()
    before = get_masks(model)
    result = compare_modes(model, ["min_eig_sorted_kernels", "weight_sorted_kernels"], lambda m: {"accuracy": 1.0},
                           threshold=1e-4, contribution_threshold=1e-3, rate=0.5, seed=0)
    paths = ["tower_a/conv", "tower_b/conv", "tower_b/wide"]
    for mode in (BASELINE, "min_eig_sorted_kernels", "weight_sorted_kernels"):
        assert [row["layer"] for row in result["pruning_per_layer"][mode]] == paths
    alive = {mode: [row["alive_kernels"] for row in rows] for mode, rows in result["pruning_per_layer"].items()}
    assert alive == {BASELINE: [12, 12, 16], "min_eig_sorted_kernels": [8, 8, 16], "weight_sorted_kernels": [8, 8, 8]}
    for path, mask in get_masks(model).items():  # every trial restored
        np.testing.assert_array_equal(mask, before[path])


def _report(active: int, total: int) -> dict:
    return {"compression_ratio": 1 - active / total, "active_params": active, "total_params": total,
            "alive_kernels": 3, "total_kernels": 4}


def test_score_is_accuracy_relative_to_the_baseline_times_the_compression_ratio():
    metrics = {"accuracy": 0.9, "precision": 0.8, "recall": 0.7}
    row = performance_row(metrics, _report(active=250, total=1000), baseline_accuracy=0.96)
    assert row["score"] == pytest.approx((0.9 / 0.96) * 0.75)
    assert row["compression_ratio"] == 0.75 and row["active_params"] == 250 and row["total_params"] == 1000
    assert row["precision"] == 0.8 and row["recall"] == 0.7 and row["alive_kernels"] == 3
    assert performance_row(metrics, _report(250, 1000), baseline_accuracy=None)["score"] == 0.0  # the baseline row
    assert performance_row(metrics, _report(250, 1000), baseline_accuracy=0.0)["score"] == 0.0


def test_each_trial_sees_its_own_masks_and_leaves_kernels_masks_and_optimizer_state_bit_exact():
    from psykedelic_cli.models.resnet import build_micro_resnet

    model = build_micro_resnet((8, 8, 1), 10, 8, seed=3)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy")
    images = np.random.default_rng(0).normal(size=(16, 8, 8, 1)).astype("float32")
    model.fit(images, keras.utils.to_categorical(np.arange(16) % 10, 10), epochs=1, verbose=0)
    set_masks(model, {path: np.where(np.arange(mask.size).reshape(mask.shape) % 5 == 0, 0, 1)
                      for path, mask in get_masks(model).items()})  # some kernels already dead
    before = [np.array(keras.ops.convert_to_numpy(v)) for v in [*model.weights, *model.optimizer.variables]]
    seen = []

    def evaluate(trial):
        seen.append(sum(int(mask.sum()) for mask in get_masks(trial).values()))
        kernels = [keras.ops.convert_to_numpy(layer.kernel) for layer in conv_layer_paths(trial).values()]
        return {"accuracy": 0.5 + 0.01 * len(seen), "precision": 0.5, "recall": 0.5, "kernels": kernels}

    modes = ["weight_sorted_kernels", "min_eig_sorted_neurons", "det"]
    result = compare_modes(model, modes, evaluate, threshold=1e-4, contribution_threshold=1e-3, rate=0.5, seed=0)
    after = [np.array(keras.ops.convert_to_numpy(v)) for v in [*model.weights, *model.optimizer.variables]]
    for old, new in zip(before, after):
        np.testing.assert_array_equal(old.reshape(-1).view(np.uint8), new.reshape(-1).view(np.uint8))
    alive = [result["performance"][mode]["alive_kernels"] for mode in [BASELINE, *modes]]
    assert seen == alive and alive[1] < alive[0] and alive[2] < alive[0]  # each trial evaluated its own masks
    baseline = result["performance"][BASELINE]["accuracy"]
    assert result["performance"]["det"]["score"] == pytest.approx(
        result["performance"]["det"]["accuracy"] / baseline * result["performance"]["det"]["compression_ratio"])
