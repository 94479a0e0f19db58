"""thin_model on pruned MicroResNets and hand-made graphs: same predictions, fewer channels, reasons for the rest."""

import keras
import numpy as np
import pytest

from psykedelic_cli.errors import PsykError
from psykedelic_cli.models.layers import MicroConv2D
from psykedelic_cli.models.resnet import build_micro_resnet
from psykedelic_cli.models.surgery import prune_model
from psykedelic_cli.models.thinning import thin_model

TOLERANCE = 1e-5


def _inputs(model, n=8, seed=0):
    shape = tuple(model.inputs[0].shape[1:])
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype("float32")


def _assert_same_predictions(model, thinned, seed=0):
    x = _inputs(model, seed=seed)
    np.testing.assert_allclose(thinned.predict(x, verbose=0), model.predict(x, verbose=0), rtol=0, atol=TOLERANCE)


def _rows(report):
    return {row["layer"]: row for row in report["layers"]}


def _kill(layer, filters):
    """Zero every kernel of the given output filters of a plain Conv2D."""
    kernel = keras.ops.convert_to_numpy(layer.kernel).copy()
    kernel[..., list(filters)] = 0
    layer.kernel.assign(kernel)


def _shift_everything(model, seed=1):
    """Random biases and BatchNormalization statistics, so dead filters output constants other than 0."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.5, n), rng.normal(0, 0.5, n),
                               rng.uniform(0.5, 2, n)])
        elif isinstance(layer, keras.layers.Conv2D) and layer.use_bias:
            layer.bias.assign(rng.normal(0, 0.5, layer.bias.shape[0]).astype("float32"))


@pytest.mark.parametrize("depth", [8, 20])
def test_pruned_micro_resnet_is_smaller_with_the_same_predictions(depth, tmp_path):
    model = build_micro_resnet((8, 8, 1), 10, depth, seed=0)
    prune_model(model, "weight_sorted_neurons", rate=0.5, seed=0)
    thinned, report = thin_model(model)
    _assert_same_predictions(model, thinned)
    assert report["params_after"] < 0.6 * report["params_before"]
    assert report["flops_after"] < 0.6 * report["flops_before"]
    rows = _rows(report)
    # The first conv of a block feeds only the second: its dead filters (constant 0 here) all go.
    first = rows["stack1_block1_1_conv"]
    assert (first["filters_before"], first["filters_after"], first["dead_filters_kept"]) == (16, 8, 0)
    assert rows["stack1_block1_2_conv"]["channels_after"] == 8
    # The residual stream keeps a channel that is alive in another branch of its additions.
    stem = [entry for entry in report["kept"] if entry["layer"] == "stem_conv"]
    assert all("alive in" in entry["reason"] and "stack1_block" in entry["reason"] for entry in stem)
    assert sum(len(entry["filters"]) for entry in stem) == rows["stem_conv"]["dead_filters_kept"] > 0

    path = tmp_path / "thin.keras"
    thinned.save(path)
    loaded = keras.models.load_model(path)  # nothing of psyk needed
    assert not any(isinstance(layer, MicroConv2D) for layer in loaded.layers)
    _assert_same_predictions(model, loaded)


def test_constants_from_biases_and_batch_norm_stay_where_padding_would_change_them():
    model = build_micro_resnet((8, 8, 1), 10, 8, seed=0, masked=False)
    _shift_everything(model)
    prune_model(model, "weight_sorted_neurons", rate=0.5, seed=0)
    thinned, report = thin_model(model)
    _assert_same_predictions(model, thinned)
    rows = _rows(report)
    # conv-BN-ReLU of a dead filter is a constant > 0 somewhere; a 3×3 'same' conv reads it: kept.
    first = rows["stack1_block1_1_conv"]
    assert first["dead_filters_kept"] > 0
    reasons = [entry["reason"] for entry in report["kept"] if entry["layer"] == "stack1_block1_1_conv"]
    assert any("zero padding of stack1_block1_2_conv" in reason for reason in reasons)


def _vgg_like(seed=3):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((10, 10, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(8, 3, padding="valid", activation="relu", name="conv2")(x)  # 5×5 → 3×3, no padding
    x = keras.layers.Dropout(0.5, name="drop")(x)
    x = keras.layers.Conv2D(6, 1, padding="same", name="conv3")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(12, activation="relu", name="fc1")(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="vgg_like")


def test_vgg_like_chain_folds_constants_into_valid_convs_and_dense():
    model = _vgg_like()
    _shift_everything(model)
    _kill(model.get_layer("conv1"), [1, 4])
    _kill(model.get_layer("conv2"), [0, 2, 5])
    _kill(model.get_layer("conv3"), [3])
    thinned, report = thin_model(model)
    _assert_same_predictions(model, thinned)
    rows = _rows(report)
    assert (rows["conv1"]["filters_after"], rows["conv2"]["channels_after"]) == (6, 6)
    assert (rows["conv2"]["filters_after"], rows["conv3"]["channels_after"]) == (5, 5)
    assert rows["conv3"]["filters_after"] == 5
    assert rows["fc1"]["channels_before"] == 9 * 6 and rows["fc1"]["channels_after"] == 9 * 5
    # conv1's dead filters are constants after BN and ReLU; conv2 pads nothing, so they fold into its bias.
    assert rows["conv2"]["folded_channels"] == 2
    # conv3's dead filter outputs its bias: after Flatten it is 9 constant units fc1 folds into its bias.
    assert rows["fc1"]["folded_channels"] == 9
    assert report["kept"] == []
    assert thinned.get_layer("bn1").gamma.shape == (6,)


def _residual(seed=4, shortcut_padding="same"):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(6, 3, padding="same", name="stem")(inputs)
    b = keras.layers.Conv2D(6, 3, padding="same", name="branch")(a)
    b = keras.layers.BatchNormalization(name="branch_bn")(b)
    x = keras.layers.Add(name="add")([a, b])
    x = keras.layers.Activation("relu", name="out")(x)
    x = keras.layers.Conv2D(5, 3, padding=shortcut_padding, name="after")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="head")(x), name="residual")


def test_addition_removes_a_channel_only_where_every_branch_is_dead():
    model = _residual()
    for layer in ("stem", "branch"):
        model.get_layer(layer).bias.assign(np.zeros(6, "float32"))
    _kill(model.get_layer("stem"), [1, 2])
    _kill(model.get_layer("branch"), [2, 5])
    thinned, report = thin_model(model)
    _assert_same_predictions(model, thinned)
    rows = _rows(report)
    assert (rows["stem"]["filters_after"], rows["branch"]["filters_after"]) == (5, 5)  # channel 2 only
    assert rows["after"]["channels_after"] == 5 and rows["branch"]["channels_after"] == 5
    kept = {entry["layer"]: entry for entry in report["kept"]}
    assert kept["stem"]["filters"] == [1] and "alive in branch" in kept["stem"]["reason"]
    assert kept["branch"]["filters"] == [5] and "alive in stem" in kept["branch"]["reason"]


def test_constant_sum_after_an_addition_folds_or_stays_by_padding():
    for padding, folded in (("valid", True), ("same", False)):
        model = _residual(shortcut_padding=padding)
        _shift_everything(model)
        _kill(model.get_layer("stem"), [3])
        _kill(model.get_layer("branch"), [3])
        # stem's dead filter is read by branch too: zero its kernels there so only the sum is read.
        kernel = keras.ops.convert_to_numpy(model.get_layer("branch").kernel).copy()
        kernel[:, :, 3, :] = 0
        model.get_layer("branch").kernel.assign(kernel)
        bias = keras.ops.convert_to_numpy(model.get_layer("stem").bias).copy()
        bias[3] = 10.0  # the sum stays positive through the ReLU: a constant other than 0
        model.get_layer("stem").bias.assign(bias)
        thinned, report = thin_model(model)
        _assert_same_predictions(model, thinned)
        rows = _rows(report)
        assert rows["stem"]["filters_after"] == (5 if folded else 6)
        assert rows["after"]["folded_channels"] == (1 if folded else 0)
        if not folded:
            assert "zero padding of after" in report["kept"][0]["reason"]


def test_concatenation_maps_channels_through_its_offsets():
    keras.utils.set_random_seed(5)
    inputs = keras.Input((8, 8, 3))
    left = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="left", use_bias=False)(inputs)
    right = keras.layers.Conv2D(5, 1, name="right", use_bias=False)(inputs)
    x = keras.layers.Concatenate(name="concat")([left, right])
    x = keras.layers.BatchNormalization(name="bn", center=False, scale=False)(x)  # mean 0: zeros stay zero
    x = keras.layers.Conv2D(6, 3, padding="same", name="mix")(x)
    x = keras.layers.GlobalMaxPooling2D(name="gmp")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(x), name="concat_net")
    _kill(model.get_layer("left"), [0, 3])
    _kill(model.get_layer("right"), [1])
    thinned, report = thin_model(model)
    _assert_same_predictions(model, thinned)
    rows = _rows(report)
    assert (rows["left"]["filters_after"], rows["right"]["filters_after"], rows["mix"]["channels_after"]) == (2, 4, 6)
    mix = keras.ops.convert_to_numpy(thinned.get_layer("mix").kernel)
    original = keras.ops.convert_to_numpy(model.get_layer("mix").kernel)
    np.testing.assert_array_equal(mix, original[:, :, [1, 2, 4, 6, 7, 8]])


def test_input_channels_nobody_reads_go_with_their_filters_unless_read_elsewhere():
    keras.utils.set_random_seed(6)
    inputs = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="a")(inputs)
    b = keras.layers.Conv2D(4, 3, padding="same", name="b")(a)
    c = keras.layers.Conv2D(4, 1, name="c")(a)
    x = keras.layers.Concatenate(name="concat")([b, c])
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x), name="fan_out")
    for name, channels in (("b", [0, 1]), ("c", [1, 4])):
        kernel = keras.ops.convert_to_numpy(model.get_layer(name).kernel).copy()
        kernel[:, :, channels, :] = 0
        model.get_layer(name).kernel.assign(kernel)
    thinned, report = thin_model(model)
    _assert_same_predictions(model, thinned)
    rows = _rows(report)
    assert rows["a"]["filters_after"] == 4  # channel 1: unread by b and by c; 0 and 4 are read by one of them
    assert rows["b"]["channels_after"] == rows["c"]["channels_after"] == 4
    assert rows["a"]["dead_filters"] == 0 and report["kept"] == []


def test_global_pooling_then_dense_folds_a_constant_filter():
    keras.utils.set_random_seed(9)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="tanh", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="head")(x), name="gap_head")
    model.get_layer("conv").bias.assign(np.array([0.5, -1.0, 2.0, 0.3], "float32"))
    _kill(model.get_layer("conv"), [0, 2])
    thinned, report = thin_model(model)
    _assert_same_predictions(model, thinned)
    rows = _rows(report)
    assert (rows["conv"]["filters_after"], rows["head"]["channels_after"], rows["head"]["folded_channels"]) == (2, 2, 2)
    head, original = (keras.ops.convert_to_numpy(m.get_layer("head").bias) for m in (thinned, model))
    kernel = keras.ops.convert_to_numpy(model.get_layer("head").kernel)
    np.testing.assert_allclose(head, original + np.tanh(0.5) * kernel[0] + np.tanh(2.0) * kernel[2], atol=1e-6)


def test_inputs_of_any_size():
    keras.utils.set_random_seed(13)
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Conv2D(3, 3, padding="same", name="conv2")(x)
    x = keras.layers.Conv2D(2, (1, 3), padding="same", name="wide")(x)  # 1×3 'same' pads along the width
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x), name="any_size")
    model.get_layer("conv2").bias.assign(np.array([0.0, 0.0, 0.4], "float32"))
    _kill(model.get_layer("conv"), [1])
    _kill(model.get_layer("conv2"), [0, 2])
    thinned, report = thin_model(model)
    for size in (5, 9):
        x = np.random.default_rng(size).normal(size=(2, size, size, 3)).astype("float32")
        np.testing.assert_allclose(thinned.predict(x, verbose=0), model.predict(x, verbose=0), atol=TOLERANCE)
    rows = _rows(report)
    assert (rows["conv"]["filters_after"], rows["conv2"]["filters_after"]) == (3, 2)
    assert "zero padding of wide" in report["kept"][0]["reason"]


def test_a_shared_layer_keeps_the_channels_around_it():
    keras.utils.set_random_seed(10)
    inputs = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(4, 3, padding="same", name="conv", use_bias=False)
    shared = keras.layers.Conv2D(4, 3, padding="same", name="shared")
    x = shared(conv(inputs))
    x = keras.layers.GlobalAveragePooling2D()(shared(x))
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x), name="shared_net")
    _kill(conv, [1])
    _kill(shared, [0])
    thinned, report = thin_model(model)
    _assert_same_predictions(model, thinned)
    assert [(row["layer"], row["filters_after"]) for row in report["layers"]] == [("conv", 4), ("head", 2)]
    assert report["kept"][0] == {
        "layer": "conv", "filters": [1], "reason": "it goes into shared (a layer used more than once)"
    }
    assert report["untouched"] == [{"layer": "shared", "dead_filters": 1, "reason": "a layer used more than once"}]


def test_convolutions_inside_other_layers_are_left_as_they_are(nested_cnn):
    prune_model(nested_cnn, "weight_sorted_neurons", rate=0.5, seed=0)
    thinned, report = thin_model(nested_cnn)
    _assert_same_predictions(nested_cnn, thinned)
    assert report["params_after"] == report["params_before"]
    assert report["untouched"] == [
        {"layer": "block/conv", "dead_filters": 2, "reason": "inside block, a ConvBlock, not looked through"},
        {"layer": "frames/conv", "dead_filters": 3, "reason": "inside frames, a TimeDistributed, not looked through"},
    ]


def test_padding_layers_keep_only_the_constants_they_leave_constant():
    keras.utils.set_random_seed(11)
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = keras.layers.UpSampling2D(name="up")(x)
    x = keras.layers.ZeroPadding2D(1, name="pad")(x)  # a constant other than 0 gets a border of zeros
    x = keras.layers.Cropping2D(2, name="crop")(x)
    x = keras.layers.Conv2D(3, 3, padding="valid", name="reader")(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x), name="padded")
    model.get_layer("conv").bias.assign(np.array([0.0, 0.7, 0.0, 0.0], "float32"))
    _kill(model.get_layer("conv"), [0, 1])
    thinned, report = thin_model(model)
    _assert_same_predictions(model, thinned)
    rows = _rows(report)
    assert (rows["conv"]["filters_after"], rows["reader"]["folded_channels"]) == (3, 0)  # filter 0 (zero) goes
    assert report["kept"] == [
        {"layer": "conv", "filters": [1], "reason": "pad makes its constant position-dependent, and reader reads it"}
    ]


def test_subtract_and_multiply_tie_their_branches():
    keras.utils.set_random_seed(12)
    inputs = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(4, 1, name="a")(inputs)
    b = keras.layers.Conv2D(4, 1, name="b")(inputs)
    c = keras.layers.Conv2D(4, 1, name="c", activation="sigmoid")(inputs)
    x = keras.layers.Multiply(name="mul")([keras.layers.Subtract(name="sub")([a, b]), c])
    x = keras.layers.Conv2D(2, 1, name="reader")(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x), name="arith")
    for name in ("a", "b", "c"):
        model.get_layer(name).bias.assign(np.linspace(-1, 1, 4).astype("float32"))
        _kill(model.get_layer(name), [1, 2] if name != "c" else [2, 3])
    thinned, report = thin_model(model)
    _assert_same_predictions(model, thinned)
    rows = _rows(report)
    # Channel 2 is dead everywhere: (b2 - b2)·sigmoid(b2) = 0 folds away; 1 and 3 are alive in a branch.
    assert [rows[name]["filters_after"] for name in ("a", "b", "c", "reader")] == [3, 3, 3, 2]
    assert rows["reader"]["channels_after"] == 3


def test_depthwise_convolutions_are_looked_through_channel_by_channel():
    keras.utils.set_random_seed(14)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(6, 1, name="expand")(inputs)
    x = keras.layers.ReLU(6.0, name="relu6")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="depthwise")(x)
    x = keras.layers.Conv2D(4, 1, name="project")(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x), name="mobile")
    model.get_layer("expand").bias.assign(np.array([0, 0, 1, 0, 0, 0], "float32"))
    model.get_layer("depthwise").bias.assign(np.linspace(-1, 1, 6).astype("float32"))
    _kill(model.get_layer("expand"), [0, 2, 5])
    thinned, report = thin_model(model)
    _assert_same_predictions(model, thinned)
    rows = _rows(report)
    # 0 and 5: zero through the depthwise conv, then its bias, a constant the 1×1 projection folds.
    # 2: the constant 1 meets the depthwise conv's zero padding.
    assert (rows["expand"]["filters_after"], rows["project"]["folded_channels"]) == (4, 2)
    assert thinned.get_layer("depthwise").kernel.shape == (3, 3, 4, 1)
    reason = "depthwise makes its constant position-dependent, and project reads it"
    assert report["kept"] == [{"layer": "expand", "filters": [2], "reason": reason}]


def test_layers_not_looked_through_keep_their_channels():
    keras.utils.set_random_seed(7)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv", use_bias=False)(inputs)
    x = keras.layers.LayerNormalization(name="norm")(x)  # mixes channels
    x = keras.layers.Conv2D(3, 3, padding="same", name="conv2")(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x), name="layer_norm")
    _kill(model.get_layer("conv"), [2])
    thinned, report = thin_model(model)
    _assert_same_predictions(model, thinned)
    assert _rows(report)["conv"]["filters_after"] == 4
    assert report["kept"] == [
        {"layer": "conv", "filters": [2], "reason": "it goes into norm (a LayerNormalization, not looked through)"}
    ]


def test_a_layer_keeps_one_channel_and_model_outputs_keep_theirs():
    keras.utils.set_random_seed(8)
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(3, 3, name="all_dead", use_bias=False)(inputs)
    x = keras.layers.Conv2D(4, 3, name="last")(x)
    model = keras.Model(inputs, x, name="degenerate")
    _kill(model.get_layer("all_dead"), [0, 1, 2])
    _kill(model.get_layer("last"), [0])
    thinned, report = thin_model(model)
    _assert_same_predictions(model, thinned)
    rows = _rows(report)
    assert rows["all_dead"]["filters_after"] == 1 and rows["last"]["filters_after"] == 4
    reasons = {entry["layer"]: entry["reason"] for entry in report["kept"]}
    assert reasons == {"all_dead": "a layer keeps at least one channel", "last": "a model output"}


def test_masked_sequential_model_is_stripped_and_thinned(masked_cnn):
    prune_model(masked_cnn, "weight_sorted_neurons", rate=0.5, seed=0)
    sequential = keras.Sequential([keras.Input((8, 8, 3)), *masked_cnn.layers[1:]], name="seq")
    thinned, report = thin_model(sequential)
    _assert_same_predictions(sequential, thinned)
    assert not any(isinstance(layer, MicroConv2D) for layer in thinned.layers)
    assert [row["filters_after"] for row in report["layers"]] == [2, 3, 5]


def test_layers_called_before_in_another_model(plain_cnn):
    plain_cnn.get_layer("conv_a").kernel.assign(np.zeros((3, 3, 3, 4), "float32"))  # every filter dead
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.BatchNormalization(name="bn")(plain_cnn.get_layer("conv_a")(inputs))
    x = keras.layers.Reshape((4, 16, 4), name="reshape")(x)
    outputs = plain_cnn.layers[-1](plain_cnn.layers[-2](plain_cnn.get_layer("conv_b")(x)))
    model = keras.Model(inputs, outputs, name="reused")
    thinned, report = thin_model(model)
    _assert_same_predictions(model, thinned)
    assert _rows(report)["conv_a"]["filters_after"] == 1
    assert thinned.get_layer("reshape").output.shape == (None, 4, 16, 1)


def test_subclassed_model_is_refused():
    class Net(keras.Model):
        def __init__(self):
            super().__init__(name="net")
            self.conv = keras.layers.Conv2D(2, 3)

        def call(self, x):
            return self.conv(x)

    net = Net()
    net(np.zeros((1, 8, 8, 3), "float32"))
    with pytest.raises(PsykError, match="subclassed Net; psyk thin needs a Functional or Sequential model"):
        thin_model(net)


def test_a_lora_enabled_conv_is_thinned_on_its_effective_kernel():
    keras.utils.set_random_seed(12)
    inputs = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(4, 3, padding="same", activation="relu", use_bias=False, lora_rank=2, name="conv")
    x = keras.layers.GlobalAveragePooling2D(name="gap")(conv(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(x), name="lora_cnn")
    # Filter 1 dead in the effective kernel: base zero there, and B's column 1 zero.
    base = keras.ops.convert_to_numpy(conv._kernel).copy()
    base[..., 1] = 0
    conv._kernel.assign(base)
    factor = np.random.default_rng(0).normal(size=conv.lora_kernel_b.shape).astype("float32")
    factor[:, 1] = 0
    conv.lora_kernel_b.assign(factor)
    thinned, report = thin_model(model)
    _assert_same_predictions(model, thinned)
    assert _rows(report)["conv"]["filters_after"] == 3
    assert not thinned.get_layer("conv").lora_enabled and "conv" not in {u["layer"] for u in report["untouched"]}
