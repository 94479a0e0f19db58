"""Model surgery on real Keras models: masks, parameter reports, pruning, trials, stripping."""

import json
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest

from psykedelic_cli.errors import PsykError
from psykedelic_cli.models.layers import MicroConv2D, SwitchableL1
from psykedelic_cli.models.resnet import build_micro_resnet
from psykedelic_cli.models.surgery import (
    compute_masks,
    conv_layers,
    get_masks,
    load_model,
    parameter_report,
    prune_model,
    save_model,
    set_l1_penalty,
    set_masks,
    strip_masks,
    trial_masks,
)


def _kernel(model, name) -> np.ndarray:
    return keras.ops.convert_to_numpy(model.get_layer(name).kernel)


def _mean_abs(kernel) -> np.ndarray:
    """(C_in, C_out) mean |w| of each kernel: the ``weight`` statistic."""
    return np.abs(kernel).mean(axis=(0, 1))


def _masks_with_dead(model, dead: dict[str, list[tuple[int, int]]]) -> dict:
    masks = get_masks(model)
    for name, pairs in dead.items():
        for pair in pairs:
            masks[name][pair] = 0
    return masks


def test_conv_layers_walks_nested_models_in_order_and_skips_other_convolutions():
    inner = keras.Sequential(
        [
            keras.Input((8, 8, 4)),
            keras.layers.Conv2D(4, 3, padding="same", name="inner_a"),
            keras.layers.DepthwiseConv2D(3, padding="same", name="depthwise"),
            keras.layers.SeparableConv2D(4, 3, padding="same", name="separable"),
            keras.layers.Conv2DTranspose(4, 3, padding="same", name="transpose"),
            MicroConv2D(4, 1, name="inner_b"),
        ],
        name="inner",
    )
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="outer_a")(inputs)
    x = inner(x)
    x = keras.layers.Conv2D(2, 3, name="outer_b")(x)
    outputs = keras.layers.Dense(3, name="dense")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    assert [layer.name for layer in conv_layers(model)] == ["outer_a", "inner_a", "inner_b", "outer_b"]
    assert {name: mask.shape for name, mask in get_masks(model).items()} == {
        "outer_a": (3, 4), "inner_a": (4, 4), "inner_b": (4, 4), "outer_b": (4, 2)
    }


def test_plain_conv_mask_is_kernel_not_all_zero(plain_cnn):
    layer = plain_cnn.get_layer("conv_b")
    kernel = _kernel(plain_cnn, "conv_b")
    kernel[:, :, 1, 4] = 0
    kernel[0, 0, 2, 2] = 0  # one zero weight does not kill a kernel
    layer.kernel.assign(kernel)
    mask = get_masks(plain_cnn)["conv_b"]
    assert mask.dtype == np.float32 and mask.shape == (4, 6)
    assert mask[1, 4] == 0 and mask.sum() == 23


@pytest.mark.parametrize("fixture", ["masked_cnn", "plain_cnn"])
def test_set_masks_zeroes_stored_weights_and_never_revives(fixture, request):
    model = request.getfixturevalue(fixture)
    before = _kernel(model, "conv_b")
    set_masks(model, _masks_with_dead(model, {"conv_b": [(0, 1), (3, 5)]}))
    after = _kernel(model, "conv_b")
    np.testing.assert_array_equal(after[:, :, 0, 1], 0)
    np.testing.assert_array_equal(after[:, :, 3, 5], 0)
    untouched = np.ones((4, 6), bool)
    untouched[0, 1] = untouched[3, 5] = False
    np.testing.assert_array_equal(after[:, :, untouched], before[:, :, untouched])

    set_masks(model, {"conv_b": np.ones((4, 6))})  # an attempt to revive
    mask = get_masks(model)["conv_b"]
    assert mask[0, 1] == 0 and mask[3, 5] == 0 and mask.sum() == 22
    set_masks(model, {"conv_b": mask * _masks_with_dead(model, {"conv_b": [(2, 2)]})["conv_b"]})
    assert get_masks(model)["conv_b"].sum() == 21


def test_set_masks_rejects_unknown_layers_and_wrong_shapes(masked_cnn):
    with pytest.raises(PsykError, match="no Conv2D layer named 'head'"):
        set_masks(masked_cnn, {"head": np.ones((6, 5))})
    with pytest.raises(PsykError, match=r"mask for layer 'conv_a' has shape \(4, 3\), expected \(3, 4\)"):
        set_masks(masked_cnn, {"conv_a": np.ones((4, 3))})


def test_parameter_report_counts_by_hand(masked_cnn):
    # conv_a 3·3·3·4 + 4 = 112, conv_b 3·3·4·6 + 6 = 222, head 6·5 + 5 = 35; masks (12 + 24) excluded
    full = parameter_report(masked_cnn)
    assert full["total_params"] == full["active_params"] == 369 and full["compression_ratio"] == 0.0
    set_masks(
        masked_cnn, _masks_with_dead(masked_cnn, {"conv_a": [(0, 0), (1, 3)], "conv_b": [(0, 0), (1, 1), (2, 2)]})
    )
    report = parameter_report(masked_cnn)
    assert report["layers"] == [
        {"layer": "conv_a", "active_params": 112 - 18, "total_params": 112, "alive_kernels": 10, "total_kernels": 12},
        {"layer": "conv_b", "active_params": 222 - 27, "total_params": 222, "alive_kernels": 21, "total_kernels": 24},
    ]
    assert report["total_params"] == 369 and report["active_params"] == 369 - 45
    assert report["compression_ratio"] == pytest.approx(45 / 369)
    assert (report["alive_kernels"], report["total_kernels"]) == (31, 36)
    json.dumps(report)  # plain Python numbers, ready for the store

    hypothetical = parameter_report(masked_cnn, {"conv_a": np.zeros((3, 4))})
    assert hypothetical["layers"][0]["active_params"] == 4 and hypothetical["layers"][1] == report["layers"][1]
    assert get_masks(masked_cnn)["conv_a"].sum() == 10  # reporting applies nothing


def test_compute_masks_applies_nothing_and_prune_model_applies_them(plain_cnn):
    statistic = {name: _mean_abs(_kernel(plain_cnn, name)) for name in ("conv_a", "conv_b")}
    threshold = float(np.median(statistic["conv_b"]))
    before = {name: _kernel(plain_cnn, name) for name in statistic}
    masks = compute_masks(plain_cnn, "weight", threshold=threshold, contribution_threshold=1e-3, rate=0.2)
    for name in statistic:
        np.testing.assert_array_equal(masks[name], (statistic[name] >= threshold).astype(np.float32))
        np.testing.assert_array_equal(_kernel(plain_cnn, name), before[name])

    report = prune_model(plain_cnn, "weight", threshold=threshold)
    assert report["mode"] == "weight"
    assert report["alive_kernels"] == sum(int(m.sum()) for m in masks.values())
    assert report["total_params"] == plain_cnn.count_params()
    for name in statistic:
        np.testing.assert_array_equal(get_masks(plain_cnn)[name], masks[name])
        kept = masks[name].astype(bool)
        np.testing.assert_array_equal(_kernel(plain_cnn, name)[:, :, kept], before[name][:, :, kept])


def test_pruning_through_the_model_is_monotone(masked_cnn):
    statistic = _mean_abs(_kernel(masked_cnn, "conv_b"))
    high, low = np.quantile(statistic, [0.75, 0.25])
    prune_model(masked_cnn, "weight", threshold=float(high))
    dead_after_high = get_masks(masked_cnn)["conv_b"] == 0
    prune_model(masked_cnn, "weight", threshold=float(low))  # would keep most kernels on fresh weights
    assert np.all(get_masks(masked_cnn)["conv_b"][dead_after_high] == 0)
    assert get_masks(masked_cnn)["conv_b"].sum() == (~dead_after_high).sum()


def test_random_mode_is_reproducible_by_seed(masked_cnn):
    def random_masks(**seed):
        return compute_masks(
            masked_cnn, "random_kernels", threshold=1e-4, contribution_threshold=1e-3, rate=0.5, **seed
        )

    first, again, other, default, default_again = (
        random_masks(seed=3), random_masks(seed=3), random_masks(seed=4), random_masks(), random_masks()
    )
    for name, mask in first.items():
        np.testing.assert_array_equal(mask, again[name])
        np.testing.assert_array_equal(default[name], default_again[name])
        c_in = mask.shape[0]
        np.testing.assert_array_equal(mask.sum(axis=0), c_in - c_in // 2)  # floor(r × alive) die per neuron
    assert not np.array_equal(first["conv_b"], other["conv_b"])


@pytest.mark.parametrize(
    ("mode", "parameters", "message"),
    [
        ("no_such_mode", {}, "unknown pruning mode 'no_such_mode'"),
        ("all", {}, "unknown pruning mode 'all'"),
        ("weight", {"threshold": 0.0}, "0"),
        ("weight", {"rate": 1.5}, "1.5"),
    ],
)
def test_compute_masks_validates_before_touching_the_model(masked_cnn, mode, parameters, message):
    arguments = {"threshold": 1e-4, "contribution_threshold": 1e-3, "rate": 0.2, **parameters}
    with pytest.raises(PsykError, match=message):
        compute_masks(masked_cnn, mode, **arguments)


def test_a_model_without_conv2d_has_nothing_to_prune():
    dense_only = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)], name="dense_only")
    with pytest.raises(PsykError, match="model 'dense_only' has no Conv2D layer to prune"):
        prune_model(dense_only, "weight")


def test_trial_masks_restores_kernels_and_masks_exactly(masked_cnn):
    set_masks(masked_cnn, _masks_with_dead(masked_cnn, {"conv_a": [(2, 3)]}))
    kernels = {name: _kernel(masked_cnn, name) for name in ("conv_a", "conv_b")}
    masks = get_masks(masked_cnn)
    with trial_masks(masked_cnn):
        prune_model(masked_cnn, "weight", threshold=1.0)  # kills every kernel
        assert parameter_report(masked_cnn)["alive_kernels"] == 0
    with pytest.raises(RuntimeError), trial_masks(masked_cnn):
        set_masks(masked_cnn, {"conv_b": np.zeros((4, 6))})
        raise RuntimeError("evaluation failed")
    for name in kernels:
        np.testing.assert_array_equal(_kernel(masked_cnn, name), kernels[name])
        np.testing.assert_array_equal(get_masks(masked_cnn)[name], masks[name])


@pytest.fixture
def pruned_resnet():
    model = build_micro_resnet((8, 8, 3), 4, 8, l1_penalty=1e-3, seed=0)
    prune_model(model, "random_kernels", rate=0.3, seed=1)
    return model


def test_strip_masks_gives_plain_keras_with_identical_predictions(pruned_resnet, images):
    plain = strip_masks(pruned_resnet)
    assert all(type(layer) is keras.layers.Conv2D for layer in conv_layers(plain))
    assert all(type(layer.kernel_regularizer) is keras.regularizers.L1 for layer in conv_layers(plain))
    assert plain.count_params() == parameter_report(pruned_resnet)["total_params"]
    for name, mask in get_masks(pruned_resnet).items():
        np.testing.assert_array_equal(get_masks(plain)[name], mask)
    np.testing.assert_array_equal(plain.predict(images, verbose=0), pruned_resnet.predict(images, verbose=0))


def test_strip_masks_zeroes_kernels_whose_mask_was_set_directly(masked_cnn):
    layer = masked_cnn.get_layer("conv_b")
    mask = np.ones((4, 6), "float32")
    mask[1, 2] = 0
    layer.kernel_mask.assign(mask)  # bypasses set_masks: the stored weights are still there
    assert np.abs(_kernel(masked_cnn, "conv_b")[:, :, 1, 2]).max() > 0
    plain = strip_masks(masked_cnn)
    np.testing.assert_array_equal(_kernel(plain, "conv_b")[:, :, 1, 2], 0.0)
    np.testing.assert_array_equal(get_masks(plain)["conv_b"], mask)


def test_stripped_file_loads_with_plain_keras_alone(pruned_resnet, images, tmp_path):
    set_l1_penalty(pruned_resnet, 0.0)
    save_model(pruned_resnet, tmp_path / "deep" / "plain.keras")
    with zipfile.ZipFile(tmp_path / "deep" / "plain.keras") as archive:
        config = archive.read("config.json").decode()
    assert "psykedelic" not in config and "SwitchableL1" not in config
    np.save(tmp_path / "images.npy", images)
    script = (
        "import sys, numpy as np, keras\n"
        f"m = keras.models.load_model({str(tmp_path / 'deep' / 'plain.keras')!r})\n"
        f"np.save({str(tmp_path / 'out.npy')!r}, m.predict(np.load({str(tmp_path / 'images.npy')!r}), verbose=0))\n"
        "assert not any(name.startswith('psykedelic') for name in sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), pruned_resnet.predict(images, verbose=0))


def test_save_model_keep_masks_and_load_model(pruned_resnet, tmp_path):
    save_model(pruned_resnet, tmp_path / "masked.keras", keep_masks=True)
    loaded = load_model(tmp_path / "masked.keras")
    assert all(type(layer) is MicroConv2D for layer in conv_layers(loaded))
    for name, mask in get_masks(pruned_resnet).items():
        np.testing.assert_array_equal(get_masks(loaded)[name], mask)
    assert not loaded.compiled


def test_load_and_save_errors(tmp_path, masked_cnn):
    with pytest.raises(PsykError, match="model file not found: .*missing.keras"):
        load_model(tmp_path / "missing.keras")
    (tmp_path / "garbage.keras").write_bytes(b"not a zip archive")
    with pytest.raises(PsykError, match="cannot read Keras model .*garbage.keras: ") as error:
        load_model(tmp_path / "garbage.keras")
    assert "\n" not in str(error.value)
    with pytest.raises(PsykError, match="saved as a .keras file, got .*model.h5"):
        save_model(masked_cnn, tmp_path / "model.h5")


def test_set_l1_penalty_switches_every_conv_regularizer():
    model = build_micro_resnet((8, 8, 1), 10, 8, l1_penalty=1e-3)
    set_l1_penalty(model, 0.0)
    assert {layer.kernel_regularizer.l1 for layer in conv_layers(model)} == {0.0}
    assert float(sum(keras.ops.convert_to_numpy(loss) for loss in model.losses)) == 0.0
    set_l1_penalty(model, 5e-4)
    assert all(isinstance(layer.kernel_regularizer, SwitchableL1) for layer in conv_layers(model))
    assert {layer.kernel_regularizer.l1 for layer in conv_layers(model)} == {5e-4}
    with pytest.raises(PsykError, match="L1 penalty must be a finite number ≥ 0, got -1"):
        set_l1_penalty(model, -1)

    without = build_micro_resnet((8, 8, 1), 10, 8)
    set_l1_penalty(without, 0.0)  # nothing to switch off
    with pytest.raises(PsykError, match="built without an L1 penalty"):
        set_l1_penalty(without, 1e-3)
