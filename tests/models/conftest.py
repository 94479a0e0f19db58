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
