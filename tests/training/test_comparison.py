"""``compare_modes`` on a real small model: per-layer results keyed by layer path."""

from __future__ import annotations

import keras
import numpy as np

from psykedelic_cli.models.surgery import get_masks
from psykedelic_cli.store.schema import BASELINE
from psykedelic_cli.training.comparison import compare_modes


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
