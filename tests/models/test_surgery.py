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
    conv_layer_paths,
    conv_layers,
    get_masks,
    load_model,
    parameter_report,
    prune_model,
    save_model,
    set_l1_penalty,
    set_masks,
    strip_masks,
    transfer_weights,
    trial_masks,
)
from psykedelic_cli.pruning.modes import MODES


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
    assert {path: mask.shape for path, mask in get_masks(model).items()} == {
        "outer_a": (3, 4), "inner/inner_a": (4, 4), "inner/inner_b": (4, 4), "outer_b": (4, 2)
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


@pytest.mark.backends
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


@pytest.mark.backends
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


@pytest.mark.backends
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


@pytest.mark.backends
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


@pytest.mark.backends
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


@pytest.mark.backends
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


# Conv2D layers however nested, known by their path.


def _bits(array) -> np.ndarray:
    return np.asarray(array, dtype=np.float32).view(np.uint32)


def test_conv2d_inside_wrappers_and_custom_layers_is_found_and_pruned(nested_cnn):
    assert list(conv_layer_paths(nested_cnn)) == ["block/conv", "frames/conv"]
    statistic = {path: _mean_abs(_kernel_at(nested_cnn, path)) for path in ("block/conv", "frames/conv")}
    threshold = float(np.median(np.concatenate([s.ravel() for s in statistic.values()])))
    report = prune_model(nested_cnn, "weight", threshold=threshold)
    assert [row["layer"] for row in report["layers"]] == ["block/conv", "frames/conv"]
    for path, values in statistic.items():
        expected = (values >= threshold).astype(np.float32)
        assert 0 < expected.sum() < expected.size
        np.testing.assert_array_equal(get_masks(nested_cnn)[path], expected)
        np.testing.assert_array_equal(_kernel_at(nested_cnn, path)[:, :, expected == 0], 0.0)


def _kernel_at(model, path) -> np.ndarray:
    return keras.ops.convert_to_numpy(conv_layer_paths(model)[path].kernel)


@keras.saving.register_keras_serializable(package="psyk_tests")
class FramesNet(keras.Model):
    """A subclassed model: a Conv2D, then another inside a TimeDistributed."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.first = keras.layers.Conv2D(4, 3, padding="same", name="first")
        self.frames = keras.layers.TimeDistributed(keras.layers.Conv2D(5, 3, name="conv"), name="frames")
        self.pool = keras.layers.GlobalAveragePooling2D()

    def call(self, x):
        return self.pool(self.frames(self.first(x)[:, None])[:, 0])


@pytest.mark.parametrize("fixture", ["nested_cnn", "subclassed"])
def test_strip_masks_reaches_nested_masked_layers_and_subclassed_models(fixture, request, images, tmp_path):
    if fixture == "subclassed":
        model = FramesNet(name="frames_net")
        model(images[..., :3])
    else:
        model = request.getfixturevalue(fixture)
    prune_model(model, "random_kernels", rate=0.5, seed=2)
    plain = strip_masks(model)
    assert all(type(layer) is keras.layers.Conv2D for layer in conv_layers(plain))
    assert plain.count_params() == parameter_report(model)["total_params"]
    for path, mask in get_masks(model).items():
        np.testing.assert_array_equal(get_masks(plain)[path], mask)
    np.testing.assert_array_equal(plain.predict(images[..., :3], verbose=0), model.predict(images[..., :3], verbose=0))
    save_model(model, tmp_path / "plain.keras")
    with zipfile.ZipFile(tmp_path / "plain.keras") as archive:
        assert "psykedelic" not in archive.read("config.json").decode()


def test_equally_named_layers_of_two_towers_are_told_apart_by_path(siamese):
    assert list(conv_layer_paths(siamese)) == ["tower_a/conv", "tower_b/conv"]
    kernels = {path: _kernel_at(siamese, path) for path in ("tower_a/conv", "tower_b/conv")}
    threshold = float(np.median(_mean_abs(kernels["tower_a/conv"])))
    masks = compute_masks(siamese, "weight", threshold=threshold, contribution_threshold=1e-3, rate=0.2)
    for path, kernel in kernels.items():  # each tower judged on its own kernels
        np.testing.assert_array_equal(masks[path], (_mean_abs(kernel) >= threshold).astype(np.float32))
    assert not np.array_equal(masks["tower_a/conv"], masks["tower_b/conv"])

    with trial_masks(siamese):
        set_masks(siamese, {"tower_b/conv": np.zeros((3, 4))})
        assert get_masks(siamese)["tower_a/conv"].sum() == 12 and get_masks(siamese)["tower_b/conv"].sum() == 0
        rows = {row["layer"]: row["alive_kernels"] for row in parameter_report(siamese)["layers"]}
        assert rows == {"tower_a/conv": 12, "tower_b/conv": 0}
    np.testing.assert_array_equal(_kernel_at(siamese, "tower_b/conv"), kernels["tower_b/conv"])
    with pytest.raises(PsykError, match="no Conv2D layer named 'conv' .*named by their path, e.g. 'tower_a/conv'"):
        set_masks(siamese, {"conv": np.zeros((3, 4))})


def test_a_shared_tower_is_one_layer_and_clashing_parts_get_numbered():
    tower = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3, name="conv")], name="tower")
    left, right = keras.Input((8, 8, 3)), keras.Input((8, 8, 3))
    shared = keras.Model([left, right], keras.layers.Add()([tower(left), tower(right)]))
    assert list(conv_layer_paths(shared)) == ["tower/conv"]

    class Twin(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.first = keras.layers.Conv2D(2, 3, name="conv")
            self.second = keras.layers.Conv2D(2, 3, name="conv")

        def call(self, x):
            return self.second(self.first(x))

    inputs = keras.Input((8, 8, 3))
    twin = keras.Model(inputs, Twin(name="twin")(inputs))
    assert list(conv_layer_paths(twin)) == ["twin/conv", "twin/conv#2"]
    set_masks(twin, {"twin/conv#2": np.zeros((2, 2))})
    assert [int(mask.sum()) for mask in get_masks(twin).values()] == [6, 0]


# Non-square kernels: eigenvalue and determinant modes skip them.

SQUARE_MODES = [name for name, mode in MODES.items() if mode.requires_square]


@pytest.mark.parametrize("mode", SQUARE_MODES)
def test_square_only_modes_prune_square_layers_and_skip_the_others(mixed_kernels, mode):
    before = {path: _kernel_at(mixed_kernels, path) for path in ("square", "wide", "tall")}
    report = prune_model(mixed_kernels, mode, threshold=0.5, contribution_threshold=0.3, rate=0.5)
    assert report["skipped"] == [
        {"layer": "wide", "kernel_shape": [1, 3], "reason": f"1×3 kernels: {mode} needs square ones"},
        {"layer": "tall", "kernel_shape": [3, 1], "reason": f"3×1 kernels: {mode} needs square ones"},
    ]
    assert get_masks(mixed_kernels)["square"].sum() < 12  # pruned
    for path in ("wide", "tall"):  # intact, bit for bit
        np.testing.assert_array_equal(_bits(_kernel_at(mixed_kernels, path)), _bits(before[path]))
    assert set(compute_masks(mixed_kernels, mode, threshold=0.5, contribution_threshold=0.3, rate=0.5)) == {"square"}


def test_other_modes_prune_every_shape_and_no_square_layer_is_refused(mixed_kernels):
    report = prune_model(mixed_kernels, "weight_sorted_kernels", rate=0.5)
    assert report["skipped"] == [] and [row["alive_kernels"] for row in report["layers"]] == [8, 8, 8]
    flat = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, (1, 7), name="wide")], name="flat")
    refusal = r"min_eig needs square kernels, but no Conv2D of model 'flat' has them \(1×7\); spectral_norm"
    with pytest.raises(PsykError, match=refusal):
        prune_model(flat, "min_eig")


# NaN or infinite weights: every mode refuses them alike.


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_every_mode_refuses_non_finite_weights_naming_the_layer(siamese, mode, bad):
    kernel = _kernel_at(siamese, "tower_b/conv")
    kernel[1, 1, 2, 3] = bad
    conv_layer_paths(siamese)["tower_b/conv"].kernel.assign(kernel)
    with pytest.raises(PsykError, match=r"^layer 'tower_b/conv' has NaN or infinite weights$"):
        prune_model(siamese, mode)


def test_non_finite_weights_in_a_skipped_layer_are_refused_too(mixed_kernels):
    kernel = _kernel_at(mixed_kernels, "wide")
    kernel[0, 0, 0, 0] = np.nan
    conv_layer_paths(mixed_kernels)["wide"].kernel.assign(kernel)
    with pytest.raises(PsykError, match="layer 'wide' has NaN or infinite weights"):
        prune_model(mixed_kernels, "min_eig")


# Surviving kernels keep every bit (no flush of subnormal weights).


def _with_subnormals(model, path) -> np.ndarray:
    """Kernel (0, 0) of ``path`` all subnormal, and a subnormal entry in every other kernel."""
    kernel = _kernel_at(model, path)
    kernel[:, :, 0, 0] = np.float32(3e-39)
    kernel[0, 0] = np.float32(-1e-40)
    assert np.abs(kernel[:, :, 0, 0]).max() < np.finfo(np.float32).tiny
    conv_layer_paths(model)[path].kernel.assign(kernel)
    np.testing.assert_array_equal(_bits(_kernel_at(model, path)), _bits(kernel))
    return kernel


@pytest.mark.backends
@pytest.mark.parametrize("fixture", ["masked_cnn", "plain_cnn"])
def test_pruning_keeps_surviving_kernels_bit_for_bit(fixture, request):
    model = request.getfixturevalue(fixture)
    kernel = _with_subnormals(model, "conv_b")
    report = prune_model(model, "random_kernels", rate=0.0)
    assert report["alive_kernels"] == report["total_kernels"]  # the all-subnormal kernel lives
    np.testing.assert_array_equal(_bits(_kernel_at(model, "conv_b")), _bits(kernel))

    prune_model(model, "random_kernels", rate=0.5, seed=3)
    alive = get_masks(model)["conv_b"] != 0
    after = _kernel_at(model, "conv_b")
    np.testing.assert_array_equal(_bits(after[:, :, alive]), _bits(kernel[:, :, alive]))
    np.testing.assert_array_equal(after[:, :, ~alive], 0.0)

    plain = strip_masks(model)
    np.testing.assert_array_equal(_bits(_kernel_at(plain, "conv_b")), _bits(after))


# Weights from one model into another, layer by layer (psyk train --init).


def test_transfer_weights_turns_a_plain_pruned_model_into_masks(pruned_resnet, images):
    plain = strip_masks(pruned_resnet)
    fresh = build_micro_resnet((8, 8, 3), 4, 8, seed=9)
    transfer_weights(plain, fresh)
    for path, mask in get_masks(pruned_resnet).items():
        np.testing.assert_array_equal(get_masks(fresh)[path], mask)
        assert isinstance(conv_layer_paths(fresh)[path], MicroConv2D)
    np.testing.assert_array_equal(fresh.predict(images, verbose=0), pruned_resnet.predict(images, verbose=0))


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (lambda: build_micro_resnet((8, 8, 3), 4, 14), "layers missing from the file: stack1_block2_1_conv, "),
        (lambda: build_micro_resnet((8, 8, 1), 4, 8), r"layer 'stem_conv': kernel of shape \(3, 3, 3, 16\) in the "
                                                      r"file, \(3, 3, 1, 16\) in the model"),
        (lambda: build_micro_resnet((8, 8, 3), 7, 8), r"layer 'predictions': kernel of shape \(64, 4\) in the file"),
    ],
)
def test_transfer_weights_names_what_differs_and_writes_nothing(pruned_resnet, target, message):
    model = target()
    before = [keras.ops.convert_to_numpy(weight) for weight in model.weights]
    with pytest.raises(PsykError, match=message):
        transfer_weights(pruned_resnet, model, source_label="the file", target_label="the model")
    for weight, value in zip(model.weights, before):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(weight), value)
    with pytest.raises(PsykError, match="layers in the source but not in the target: stack1_block2"):
        transfer_weights(build_micro_resnet((8, 8, 3), 4, 14), pruned_resnet)


# Files Keras cannot read: one short line.


class Scale(keras.layers.Layer):
    """A custom layer psyk cannot import (never registered)."""

    def call(self, x):
        return x * 2.0


class UnknownNet(keras.Model):
    """A subclassed model psyk cannot import (never registered), with a long config."""

    def __init__(self, notes="a long description " * 30, **kwargs):
        super().__init__(**kwargs)
        self.notes = notes
        self.conv = keras.layers.Conv2D(2, 3)

    def call(self, x):
        return self.conv(x)

    def get_config(self):
        return {**super().get_config(), "notes": self.notes}


def test_a_custom_class_psyk_cannot_import_is_named_in_one_short_line(tmp_path, images):
    inputs = keras.Input((8, 8, 3))
    keras.Model(inputs, Scale(name="scale")(keras.layers.Conv2D(2, 3)(inputs))).save(tmp_path / "functional.keras")
    subclassed = UnknownNet()
    subclassed(images[..., :3])
    subclassed.save(tmp_path / "subclassed.keras")
    for file, name in (("functional.keras", "Scale"), ("subclassed.keras", "UnknownNet")):
        with pytest.raises(PsykError) as error:
            load_model(tmp_path / file)
        message = str(error.value)
        assert f"uses the custom class '{name}' from module " in message, message
        assert "built-in Keras layers" in message and "prune_model" in message
        assert "\n" not in message and "config" not in message and len(message) < 300 + len(str(tmp_path)), message
