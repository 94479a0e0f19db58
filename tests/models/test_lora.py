"""Conv2D layers with LoRA on: pruned by their effective kernel, written with the factors merged."""

import keras
import numpy as np
import pytest

from psykedelic_cli.models.layers import MicroConv2D
from psykedelic_cli.models.surgery import (
    effective_kernel,
    get_masks,
    layer_statistics,
    merge_lora,
    parameter_report,
    prune_model,
    save_model,
    set_masks,
    strip_masks,
    transfer_weights,
    trial_masks,
)
from psykedelic_cli.pruning.analysis import kernel_analysis
from psykedelic_cli.store.schema import BASELINE
from psykedelic_cli.training.comparison import compare_modes
from psykedelic_cli.training.flow import conv_kernels

TINY = 1e-6
LORA_B = np.array([[1.5, 0.0, -2.0, 0.0], [0.5, 0.0, 1.0, 0.0]], dtype=np.float32)  # A·B zero on filters 1 and 3
SURVIVING = np.array([[1.0, 0.0, 1.0, 0.0]], dtype=np.float32)  # by weight ≥ 1e-3 on the effective kernel
CONV_PARAMS = 36 + 4 + 18 + 8  # kernel, bias, lora_kernel_a (3, 3, 1, 2), lora_kernel_b (2, 4)
HEAD_PARAMS = 6 * 6 * 4 * 3 + 3


def _weight(layer, name):
    return next(weight for weight in layer.weights if weight.name == name)


def lora_cnn(conv=keras.layers.Conv2D) -> keras.Model:
    """8×8×1 → ``conv`` 1→4 (3×3, LoRA rank 2, alpha 4: A·B scaled by 2) → Flatten → Dense 3.

    The kernel variable is TINY everywhere and B is ``LORA_B``: the effective kernel is
    large on filters 0 and 2 and TINY on filters 1 and 3.
    """
    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 1))
    layer = conv(4, 3, lora_rank=2, lora_alpha=4, name="conv")
    outputs = keras.layers.Dense(3, name="head")(keras.layers.Flatten()(layer(inputs)))
    model = keras.Model(inputs, outputs, name="lora_cnn")
    _weight(layer, "kernel").assign(np.full((3, 3, 1, 4), TINY, dtype=np.float32))
    layer.lora_kernel_b.assign(LORA_B)
    return model


def _factors(layer) -> list[np.ndarray]:
    return [keras.ops.convert_to_numpy(weight) for weight in (layer.lora_kernel_a, layer.lora_kernel_b)]


@pytest.fixture
def images():
    return np.random.default_rng(5).normal(size=(6, 8, 8, 1)).astype("float32")


def test_the_effective_kernel_is_base_plus_scaled_factors_and_drives_statistics_and_masks():
    model = lora_cnn()
    layer = model.get_layer("conv")
    lora_a, _ = _factors(layer)
    before = effective_kernel(layer)
    np.testing.assert_allclose(before, TINY + 2.0 * np.matmul(lora_a, LORA_B), rtol=1e-6)
    weight = layer_statistics(model)["conv"]["weight"]
    assert np.all(weight[SURVIVING == 1] > 0.1) and np.allclose(weight[SURVIVING == 0], TINY)

    report = prune_model(model, "weight", threshold=1e-3)

    np.testing.assert_array_equal(get_masks(model)["conv"], SURVIVING)
    after = effective_kernel(layer)
    np.testing.assert_array_equal(after[..., SURVIVING[0] == 0], 0.0)
    np.testing.assert_array_equal(after[..., SURVIVING[0] == 1], before[..., SURVIVING[0] == 1])
    # merged: the kernel variable holds the effective kernel, B is zero, A and LoRA itself stay
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(_weight(layer, "kernel")), after)
    np.testing.assert_array_equal(_factors(layer)[1], 0.0)
    np.testing.assert_array_equal(_factors(layer)[0], lora_a)
    assert layer.lora_enabled
    assert report["layers"] == [
        {"layer": "conv", "active_params": CONV_PARAMS - 2 * 9, "total_params": CONV_PARAMS,
         "alive_kernels": 2, "total_kernels": 4}
    ]
    assert report["total_params"] == model.count_params() == CONV_PARAMS + HEAD_PARAMS


def test_a_plain_conv_with_lora_is_written_without_it_predicting_the_same(images, tmp_path):
    model = lora_cnn()
    prune_model(model, "weight", threshold=1e-3)
    expected = model.predict(images, verbose=0)
    save_model(model, tmp_path / "plain.keras")
    save_model(model, tmp_path / "kept.keras", keep_masks=True)
    for path in ("plain.keras", "kept.keras"):
        written = keras.models.load_model(tmp_path / path)
        conv = written.get_layer("conv")
        assert type(conv) is keras.layers.Conv2D and not conv.lora_enabled and "lora_rank" not in conv.get_config()
        np.testing.assert_array_equal(effective_kernel(conv), effective_kernel(model.get_layer("conv")))
        np.testing.assert_array_equal(written.predict(images, verbose=0), expected)
        assert parameter_report(written)["total_params"] == CONV_PARAMS - 26 + HEAD_PARAMS
        np.testing.assert_array_equal(get_masks(written)["conv"], SURVIVING)


def test_merge_lora_and_strip_masks_copy_the_effective_kernel_and_leave_a_model_without_lora_alone(images):
    model = lora_cnn()
    expected = model.predict(images, verbose=0)
    for copy in (merge_lora(model), strip_masks(model)):
        assert copy is not model and not copy.get_layer("conv").lora_enabled
        np.testing.assert_allclose(copy.predict(images, verbose=0), expected, rtol=1e-6)
    merged = merge_lora(model)
    assert merge_lora(merged) is merged


def test_trial_masks_and_compare_modes_restore_the_lora_factors_exactly():
    model = lora_cnn()
    layer = model.get_layer("conv")
    kernel, factors = effective_kernel(layer), _factors(layer)
    seen = []

    def evaluate(pruned):
        seen.append(get_masks(pruned)["conv"])
        return {"accuracy": 1.0}

    result = compare_modes(model, ["weight", "weight_sorted_neurons"], evaluate,
                           threshold=1e-3, contribution_threshold=1e-3, rate=0.5, seed=0)

    alive = {mode: [row["alive_kernels"] for row in rows] for mode, rows in result["pruning_per_layer"].items()}
    assert alive == {BASELINE: [4], "weight": [2], "weight_sorted_neurons": [2]}
    np.testing.assert_array_equal(seen[1], SURVIVING)  # the two TINY filters are also the weakest neurons
    np.testing.assert_array_equal(seen[2], SURVIVING)
    assert result["performance"]["weight"]["total_params"] == CONV_PARAMS + HEAD_PARAMS
    np.testing.assert_array_equal(effective_kernel(layer), kernel)
    for restored, saved in zip(_factors(layer), factors):
        np.testing.assert_array_equal(restored, saved)
    with pytest.raises(RuntimeError), trial_masks(model):
        set_masks(model, {"conv": np.zeros((1, 4))})
        raise RuntimeError("evaluation failed")
    np.testing.assert_array_equal(_factors(layer)[1], LORA_B)


def test_the_kernel_analysis_reads_the_effective_kernel():
    model = lora_cnn()
    [(path, kernel, mask)] = conv_kernels(model)
    assert path == "conv"
    np.testing.assert_array_equal(kernel, effective_kernel(model.get_layer("conv")))
    np.testing.assert_array_equal(mask, 1.0)
    per_threshold = kernel_analysis(conv_kernels(model), 1e-3)["pruning_per_threshold"]
    at = per_threshold["thresholds"].index(1e-3)
    assert per_threshold["pruned_ratio"]["weight"][at] == 0.5  # on the TINY kernel variable alone: 1.0


def test_micro_conv2d_with_lora_keeps_dead_kernels_exactly_zero_under_training(images, tmp_path):
    model = lora_cnn(MicroConv2D)
    layer = model.get_layer("conv")
    assert layer.lora_enabled and not _weight(layer, "kernel").trainable
    prune_model(model, "weight", threshold=1e-3)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.kernel_mask), SURVIVING)
    alive_before = effective_kernel(layer)[..., SURVIVING[0] == 1]

    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    model.fit(images, np.ones((6, 3)), epochs=3, verbose=0)

    kernel = effective_kernel(layer)
    assert np.abs(_factors(layer)[1]).max() > 0  # the factors trained ...
    assert not np.allclose(kernel[..., SURVIVING[0] == 1], alive_before)  # ... moving the surviving kernels
    np.testing.assert_array_equal(kernel[..., SURVIVING[0] == 0], 0.0)  # the dead ones stayed exactly zero
    expected = model.predict(images, verbose=0)
    save_model(model, tmp_path / "kept.keras", keep_masks=True)
    written = keras.models.load_model(tmp_path / "kept.keras")
    conv = written.get_layer("conv")
    assert type(conv) is MicroConv2D and not conv.lora_enabled
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(conv.kernel_mask), SURVIVING)
    np.testing.assert_array_equal(effective_kernel(conv), kernel)
    np.testing.assert_allclose(written.predict(images, verbose=0), expected, rtol=1e-6)


def test_transfer_weights_takes_the_effective_kernel_of_a_lora_source():
    source = lora_cnn()
    prune_model(source, "weight", threshold=1e-3)
    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Dense(3, name="head")(keras.layers.Flatten()(MicroConv2D(4, 3, name="conv")(inputs)))
    target = keras.Model(inputs, outputs, name="masked")
    transfer_weights(source, target)
    np.testing.assert_array_equal(get_masks(target)["conv"], SURVIVING)
    kernels = [effective_kernel(model.get_layer("conv")) for model in (target, source)]
    np.testing.assert_array_equal(*kernels)
