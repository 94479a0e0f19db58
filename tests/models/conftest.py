"""Small real Keras models for the models tests."""

import keras
import numpy as np
import pytest

from psykedelic_cli.models.layers import MicroConv2D


@pytest.fixture
def images():
    """A fixed batch of 16 random 8×8×3 images."""
    return np.random.default_rng(0).normal(size=(16, 8, 8, 3)).astype("float32")


@pytest.fixture
def masked_cnn():
    """Two MicroConv2D (3→4→6 channels) then a softmax head, seeded weights."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((8, 8, 3))
    x = MicroConv2D(4, 3, padding="same", activation="relu", name="conv_a")(inputs)
    x = MicroConv2D(6, 3, padding="same", activation="relu", name="conv_b")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs, name="masked_cnn")


@pytest.fixture
def plain_cnn():
    """A plain Keras Sequential: Conv2D 3→4 (3×3), Conv2D 4→6 (3×3), GAP, Dense 6→5."""
    keras.utils.set_random_seed(2)
    return keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a"),
            keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv_b"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(5, activation="softmax", name="head"),
        ],
        name="plain_cnn",
    )


@keras.saving.register_keras_serializable(package="psyk_tests")
class ConvBlock(keras.layers.Layer):
    """A custom composite layer: a Conv2D (``conv``) and a BatchNormalization it creates itself."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.conv = keras.layers.Conv2D(filters, 3, padding="same", name="conv")
        self.norm = keras.layers.BatchNormalization(name="norm")

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.norm.build((*input_shape[:-1], self.filters))

    def call(self, x):
        return keras.ops.relu(self.norm(self.conv(x)))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


@pytest.fixture
def nested_cnn():
    """Conv2D layers seen only through their holders: ``block/conv`` in a ConvBlock and
    ``frames/conv`` (a MicroConv2D) in a TimeDistributed; 8×8×3 in, 5 classes out."""
    keras.utils.set_random_seed(4)
    inputs = keras.Input((8, 8, 3))
    x = ConvBlock(4, name="block")(inputs)
    x = keras.layers.Reshape((1, 8, 8, 4))(x)
    x = keras.layers.TimeDistributed(MicroConv2D(6, 3, padding="same", name="conv"), name="frames")(x)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Reshape((8, 8, 6))(x))
    outputs = keras.layers.Dense(5, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs, name="nested_cnn")


@pytest.fixture
def siamese():
    """Two towers (sub-models ``tower_a`` and ``tower_b``) each holding a Conv2D named ``conv``, seeded weights."""
    keras.utils.set_random_seed(5)

    def tower(name):
        return keras.Sequential(
            [keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="conv"), keras.layers.GlobalAveragePooling2D()],
            name=name,
        )

    left, right = keras.Input((8, 8, 3)), keras.Input((8, 8, 3))
    joined = keras.layers.Concatenate()([tower("tower_a")(left), tower("tower_b")(right)])
    return keras.Model([left, right], keras.layers.Dense(2, name="head")(joined), name="siamese")


@pytest.fixture
def mixed_kernels():
    """InceptionV3's mix in small: Conv2D ``square`` 3×3, ``wide`` 1×3 and ``tall`` 3×1, seeded weights."""
    keras.utils.set_random_seed(6)
    return keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3, padding="same", name="square"),
            keras.layers.Conv2D(4, (1, 3), padding="same", name="wide"),
            keras.layers.Conv2D(4, (3, 1), padding="same", name="tall"),
            keras.layers.GlobalAveragePooling2D(),
        ],
        name="mixed_kernels",
    )
