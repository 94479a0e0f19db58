"""The ResNet builders: exact parameter counts, architecture switches, errors."""

import keras
import numpy as np
import pytest

from psykedelic_cli.errors import PsykError
from psykedelic_cli.models.layers import MicroConv2D, SwitchableL1
from psykedelic_cli.models.resnet import build_micro_resnet, model_name
from psykedelic_cli.models.surgery import conv_layers, parameter_report


def _classes(model, layer_class) -> list:
    return [layer for layer in model.layers if type(layer) is layer_class]


@pytest.mark.parametrize(
    ("input_shape", "n_classes", "depth", "expected"),
    [
        ((32, 32, 3), 10, 32, 470_218),
        ((32, 32, 3), 10, 56, 861_770),
        ((32, 32, 3), 10, 110, 1_742_762),
        ((32, 32, 3), 100, 32, 476_068),
        ((64, 64, 3), 200, 32, 520_968),
    ],
)
def test_thin_parameter_counts_match_the_original(input_shape, n_classes, depth, expected):
    model = build_micro_resnet(input_shape, n_classes, depth)
    assert model.name == f"MicroResNet{depth}"
    assert parameter_report(model)["total_params"] == expected
    # every weight counted: the masks are the only thing left out
    masks = sum(int(np.prod(layer.kernel_mask.shape)) for layer in conv_layers(model))
    assert model.count_params() == expected + masks


def test_resnet50_parameter_count_and_masked_convolutions():
    resnet50 = build_micro_resnet((32, 32, 3), 10, 50, seed=0)
    assert resnet50.name == "MicroResNet50"
    assert parameter_report(resnet50)["total_params"] == 23_608_202
    convs = conv_layers(resnet50)
    assert len(convs) == 53 and all(type(layer) is MicroConv2D for layer in convs)
    assert resnet50.output_shape == (None, 10)


def test_thin_resnet20_layout_on_cifar_sized_input():
    model = build_micro_resnet((32, 32, 3), 10, 20)
    convs = conv_layers(model)
    # stem + 3 stacks × 3 blocks × 2 convs + 2 projection shortcuts (stacks 2 and 3)
    assert len(convs) == 1 + 18 + 2 and all(type(layer) is MicroConv2D for layer in convs)
    assert [layer.filters for layer in convs if layer.name.endswith("_shortcut")] == [32, 64]
    assert all(layer.kernel_size == (1, 1) for layer in convs if layer.name.endswith("_shortcut"))
    assert [layer.name for layer in model.layers if "shortcut" in layer.name and "bn" in layer.name] == []
    assert isinstance(model.get_layer("pool"), keras.layers.AveragePooling2D)
    assert model.get_layer("pool").pool_size == (8, 8)
    assert model.get_layer("predictions").activation.__name__ == "softmax"
    assert len(_classes(model, keras.layers.Add)) == 9


def test_small_inputs_pool_globally():
    model = build_micro_resnet((8, 8, 1), 10, 20)
    assert isinstance(model.get_layer("pool"), keras.layers.GlobalAveragePooling2D)
    assert model.output_shape == (None, 10)
    assert model.predict(np.zeros((2, 8, 8, 1), "float32"), verbose=0).sum(axis=1) == pytest.approx([1, 1], abs=1e-5)


def test_plain_twin_has_the_same_architecture_with_keras_conv2d():
    masked = build_micro_resnet((32, 32, 3), 10, 20)
    plain = build_micro_resnet((32, 32, 3), 10, 20, masked=False)
    assert [type(layer) for layer in conv_layers(plain)] == [keras.layers.Conv2D] * 21
    assert parameter_report(plain)["total_params"] == parameter_report(masked)["total_params"] == plain.count_params()
    assert [layer.name for layer in plain.layers] == [layer.name for layer in masked.layers]


def test_no_residual_drops_shortcuts_and_projections():
    model = build_micro_resnet((32, 32, 3), 10, 20, residual=False)
    assert _classes(model, keras.layers.Add) == []
    assert [layer.name for layer in conv_layers(model) if "shortcut" in layer.name] == []
    assert len(conv_layers(model)) == 19


@pytest.mark.parametrize("penalty", [None, 0.0, 1e-4])
def test_l1_penalty_on_every_conv_kernel_and_nowhere_else(penalty):
    model = build_micro_resnet((8, 8, 1), 10, 8, l1_penalty=penalty)
    regularizers = [layer.kernel_regularizer for layer in conv_layers(model)]
    if penalty:
        assert all(isinstance(r, SwitchableL1) and r.l1 == penalty for r in regularizers)
        assert len(model.losses) == len(regularizers)
    else:
        assert regularizers == [None] * len(regularizers) and model.losses == []
    assert model.get_layer("predictions").kernel_regularizer is None


def test_seed_makes_initial_weights_reproducible_and_layers_distinct():
    first, again, other = (build_micro_resnet((8, 8, 1), 10, 8, seed=s) for s in (7, 7, 8))
    for a, b in zip(first.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first.get_weights(), other.get_weights()))
    block_kernels = [w for w in first.get_weights() if w.shape == (3, 3, 16, 16)]
    assert len(block_kernels) == 2 and not np.array_equal(*block_kernels)


@pytest.mark.parametrize("depth", [7, 9, 21, 100, 0, -4, 20.0])
def test_unsupported_depth_lists_what_is_allowed(depth):
    with pytest.raises(PsykError, match=r"unsupported ResNet depth .*6m\+2 ≥ 8.*50, 101, 152"):
        model_name(depth)
    with pytest.raises(PsykError, match="unsupported ResNet depth"):
        build_micro_resnet((32, 32, 3), 10, depth)


def test_model_names():
    assert [model_name(d) for d in (8, 20, 110, 50, 101, 152)] == [
        "MicroResNet8", "MicroResNet20", "MicroResNet110", "MicroResNet50", "MicroResNet101", "MicroResNet152"
    ]
    assert build_micro_resnet((8, 8, 1), 3, 8, name="tiny").name == "tiny"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_shape": (8, 8)}, "input shape must be"),
        ({"input_shape": (8, 0, 3)}, "input shape must be"),
        ({"n_classes": 1}, "number of classes must be an integer ≥ 2"),
        ({"l1_penalty": -1e-3}, "L1 penalty must be a finite number ≥ 0"),
        ({"depth": 50, "input_shape": (8, 8, 1)}, "ResNet50 needs inputs of at least 32×32, got 8×8"),
        ({"depth": 50, "input_shape": (32, 32, 3), "residual": False}, "thin ResNets only"),
    ],
)
def test_invalid_arguments(kwargs, message):
    arguments = {"input_shape": (8, 8, 1), "n_classes": 10, "depth": 8, **kwargs}
    with pytest.raises(PsykError, match=message):
        build_micro_resnet(
            arguments.pop("input_shape"), arguments.pop("n_classes"), arguments.pop("depth"), **arguments
        )
