"""The ResNets we train: thin CIFAR ResNets (depth 6m+2) and bottleneck ResNet 50/101/152.

Thin (He et al. 2016, ResNet v1 for CIFAR): conv-BN-ReLU, three stacks of m basic
blocks with 16/32/64 filters, a 1×1 projection shortcut without BN where a stack
downsamples, then 8×8 average pooling, flatten and a softmax Dense (global average
pooling on inputs under 32×32). Bottleneck: the ``keras.applications`` ResNet layout
with global average pooling and a new softmax Dense.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import keras
import numpy as np

from psykedelic_cli.errors import PsykError
from psykedelic_cli.models.layers import MicroConv2D, SwitchableL1

BOTTLENECK_DEPTHS = {50: "ResNet50", 101: "ResNet101", 152: "ResNet152"}
"""Depths built as ``keras.applications`` bottleneck ResNets (50 and 152 are also 6m+2: bottleneck wins)."""

THIN_FILTERS = (16, 32, 64)
THIN_POOL = 8
MIN_BOTTLENECK_SIDE = 32  # keras.applications refuses smaller inputs


def _is_thin(depth: int) -> bool:
    return depth >= 8 and (depth - 2) % 6 == 0 and depth not in BOTTLENECK_DEPTHS


def model_name(depth: int) -> str:
    """``"MicroResNet{depth}"`` for a supported depth, else PsykError listing the allowed ones."""
    if not isinstance(depth, (int, np.integer)) or not (_is_thin(depth) or depth in BOTTLENECK_DEPTHS):
        raise PsykError(
            f"unsupported ResNet depth {depth!r}; use a thin depth 6m+2 ≥ 8 (8, 14, 20, 32, 44, 56, 110, …) "
            f"or a bottleneck depth {', '.join(map(str, BOTTLENECK_DEPTHS))}"
        )
    return f"MicroResNet{int(depth)}"


def _initializer_seeds(seed: int | None) -> Iterator[int | None]:
    """Distinct per-layer initializer seeds drawn from ``seed`` (None: Keras's global RNG).

    A Keras initializer with a fixed seed draws the same values at every call, so each
    layer needs its own.
    """
    if seed is None:
        return itertools.repeat(None)
    rng = np.random.default_rng(seed)
    return (int(rng.integers(2**31 - 1)) for _ in itertools.count())


def _l1_regularizer(l1_penalty: float | None) -> SwitchableL1 | None:
    return SwitchableL1(l1_penalty) if l1_penalty else None


def _check_arguments(input_shape, n_classes, l1_penalty) -> tuple[int, int, int]:
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(d, (int, np.integer)) and d > 0 for d in shape):
        raise PsykError(f"input shape must be (height, width, channels) of positive integers, got {shape}")
    if not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise PsykError(f"number of classes must be an integer ≥ 2, got {n_classes!r}")
    if l1_penalty is not None and not (math.isfinite(l1_penalty) and l1_penalty >= 0):
        raise PsykError(f"L1 penalty must be a finite number ≥ 0, got {l1_penalty!r}")
    return tuple(int(d) for d in shape)


def _softmax_head(features, n_classes: int, seeds: Iterator[int | None]):
    return keras.layers.Dense(
        n_classes,
        activation="softmax",
        kernel_initializer=keras.initializers.HeNormal(seed=next(seeds)),
        name="predictions",
    )(features)


def _thin_resnet(input_shape, n_classes, depth, *, residual, conv_class, l1_penalty, seeds, name):
    blocks_per_stack = (depth - 2) // 6

    def conv(x, filters, kernel_size, strides, layer_name):
        return conv_class(
            filters,
            kernel_size,
            strides=strides,
            padding="same",
            kernel_initializer=keras.initializers.HeNormal(seed=next(seeds)),
            kernel_regularizer=_l1_regularizer(l1_penalty),
            name=layer_name,
        )(x)

    def conv_bn(x, filters, strides, layer_name, relu=True):
        x = conv(x, filters, 3, strides, f"{layer_name}_conv")
        x = keras.layers.BatchNormalization(name=f"{layer_name}_bn")(x)
        return keras.layers.Activation("relu", name=f"{layer_name}_relu")(x) if relu else x

    inputs = keras.Input(shape=input_shape, name="image")
    x = conv_bn(inputs, THIN_FILTERS[0], 1, "stem")
    for stack, filters in enumerate(THIN_FILTERS, start=1):
        for block in range(1, blocks_per_stack + 1):
            prefix = f"stack{stack}_block{block}"
            strides = 2 if stack > 1 and block == 1 else 1
            y = conv_bn(x, filters, strides, f"{prefix}_1")
            y = conv_bn(y, filters, 1, f"{prefix}_2", relu=False)
            if residual:
                shortcut = conv(x, filters, 1, strides, f"{prefix}_shortcut") if strides > 1 else x
                y = keras.layers.Add(name=f"{prefix}_add")([shortcut, y])
            x = keras.layers.Activation("relu", name=f"{prefix}_out")(y)
    if min(input_shape[:2]) < 32:
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    else:
        x = keras.layers.AveragePooling2D(pool_size=THIN_POOL, name="pool")(x)
        x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, _softmax_head(x, n_classes, seeds), name=name)


def _bottleneck_resnet(input_shape, n_classes, depth, *, conv_class, l1_penalty, seeds, name):
    if min(input_shape[:2]) < MIN_BOTTLENECK_SIDE:
        raise PsykError(
            f"ResNet{depth} needs inputs of at least {MIN_BOTTLENECK_SIDE}×{MIN_BOTTLENECK_SIDE}, "
            f"got {input_shape[0]}×{input_shape[1]}; use a thin depth (e.g. 20 or 32) for small images"
        )
    application = getattr(keras.applications, BOTTLENECK_DEPTHS[depth])
    base = application(include_top=False, weights=None, input_shape=input_shape, pooling="avg")
    plain = keras.Model(base.input, _softmax_head(base.output, n_classes, seeds), name=name)

    def rebuild(layer):
        config = layer.get_config()
        if isinstance(layer, keras.layers.Conv2D):
            config["kernel_initializer"]["config"]["seed"] = next(seeds)
            config["kernel_regularizer"] = _l1_regularizer(l1_penalty)
            return conv_class.from_config(config)
        return layer.__class__.from_config(config)

    return keras.models.clone_model(plain, clone_function=rebuild)


def build_micro_resnet(
    input_shape,
    n_classes: int,
    depth: int,
    *,
    residual: bool = True,
    l1_penalty: float | None = None,
    masked: bool = True,
    seed: int | None = None,
    name: str | None = None,
) -> keras.Model:
    """A thin (depth 6m+2) or bottleneck (50/101/152) ResNet classifier with softmax output.

    ``masked`` builds every convolution as ``MicroConv2D`` (``False``: the same
    architecture with plain ``keras.layers.Conv2D``). ``l1_penalty`` puts a
    ``SwitchableL1`` on every conv kernel (``set_l1_penalty`` changes it later).
    ``residual=False`` drops the shortcuts (thin ResNets only). ``seed`` makes the
    initial weights reproducible. The model is named ``model_name(depth)`` unless
    ``name`` is given.
    """
    input_shape = _check_arguments(input_shape, n_classes, l1_penalty)
    default_name = model_name(depth)
    name = name or default_name
    conv_class = MicroConv2D if masked else keras.layers.Conv2D
    seeds = _initializer_seeds(seed)
    if depth in BOTTLENECK_DEPTHS:
        if not residual:
            raise PsykError(f"residual=False (--no-residual) applies to thin ResNets only, not ResNet{depth}")
        return _bottleneck_resnet(
            input_shape, n_classes, depth, conv_class=conv_class, l1_penalty=l1_penalty, seeds=seeds, name=name
        )
    return _thin_resnet(
        input_shape,
        n_classes,
        depth,
        residual=residual,
        conv_class=conv_class,
        l1_penalty=l1_penalty,
        seeds=seeds,
        name=name,
    )
