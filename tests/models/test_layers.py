"""MicroConv2D and SwitchableL1: dead kernels stay dead through forward, backward, optimizer and saving.

Every test here runs on each Keras backend (``make test`` runs the ``backends`` tests under
JAX and PyTorch too).
"""

import keras
import numpy as np
import pytest

from psykedelic_cli.models.layers import MicroConv2D, SwitchableL1, masked_kernel
from psykedelic_cli.models.surgery import set_l1_penalty, set_masks

pytestmark = pytest.mark.backends


def _kill(layer, dead: list[tuple[int, int]]) -> np.ndarray:
    """Set the mask to 0 at ``dead`` (C_in, C_out) pairs WITHOUT touching the stored kernel."""
    mask = np.ones(layer.kernel_mask.shape, dtype="float32")
    for pair in dead:
        mask[pair] = 0
    layer.kernel_mask.assign(mask)
    return mask


def _single_layer(**kwargs) -> MicroConv2D:
    keras.utils.set_random_seed(3)
    layer = MicroConv2D(4, 3, padding="same", **kwargs)
    layer.build((None, 6, 6, 3))
    return layer


def test_mask_is_a_non_trainable_float32_weight_of_ones_shaped_c_in_by_c_out():
    layer = _single_layer(groups=1)
    assert layer.kernel_mask.path.endswith("/mask")
    assert not layer.kernel_mask.trainable
    assert layer.kernel_mask.dtype == "float32"
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.kernel_mask), np.ones((3, 4)))
    assert [w.name for w in layer.trainable_weights] == ["kernel", "bias"]
    grouped = MicroConv2D(4, 3, groups=2)
    grouped.build((None, 6, 6, 6))
    assert tuple(grouped.kernel_mask.shape) == (3, 4)


def test_a_dead_kernel_contributes_exactly_zero_to_its_output_channel():
    layer = _single_layer(use_bias=False)
    _kill(layer, [(1, 2)])
    inputs = np.zeros((2, 6, 6, 3), dtype="float32")
    inputs[..., 1] = np.random.default_rng(0).normal(size=(2, 6, 6))  # only input channel 1 is non-zero
    outputs = keras.ops.convert_to_numpy(layer(inputs))
    np.testing.assert_array_equal(outputs[..., 2], 0.0)
    assert np.all(np.abs(outputs[..., [0, 1, 3]]).max(axis=(0, 1, 2)) > 0)


def test_masked_output_equals_a_plain_conv_with_the_dead_kernels_zeroed(images):
    layer = MicroConv2D(4, 3, padding="same")
    layer.build(images.shape)
    mask = _kill(layer, [(0, 0), (2, 3), (1, 1)])
    plain = keras.layers.Conv2D(4, 3, padding="same")
    plain.build(images.shape)
    plain.set_weights([keras.ops.convert_to_numpy(layer.kernel) * mask, keras.ops.convert_to_numpy(layer.bias)])
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(images[..., :3])),
        keras.ops.convert_to_numpy(plain(images[..., :3])),
        atol=1e-6,
    )


def test_a_dead_kernel_gets_exactly_zero_gradient_and_no_l1_push():
    # Plain SGD moves a weight by exactly -lr * gradient: a dead weight that stays 0.0 had gradient 0,
    # from the loss and from the L1 penalty (JAX's own |x| has gradient 1 at 0).
    keras.utils.set_random_seed(3)
    inputs = keras.Input((6, 6, 3))
    conv = MicroConv2D(4, 3, padding="same", kernel_regularizer=SwitchableL1(0.5), name="conv")
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(conv(inputs))))
    set_masks(model, {"conv": _mask((3, 4), [(1, 2), (0, 3)])})
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = keras.ops.convert_to_numpy(conv.kernel).copy()
    batch = np.random.default_rng(1).normal(size=(2, 6, 6, 3)).astype("float32")
    model.train_on_batch(batch, np.ones((2, 2), "float32"))
    after = keras.ops.convert_to_numpy(conv.kernel)
    np.testing.assert_array_equal(after[:, :, 1, 2], 0.0)
    np.testing.assert_array_equal(after[:, :, 0, 3], 0.0)
    alive = _mask((3, 4), [(1, 2), (0, 3)]) != 0
    assert np.all(np.abs(after - before).max(axis=(0, 1))[alive] > 0)


def _mask(shape, dead) -> np.ndarray:
    mask = np.ones(shape, dtype="float32")
    for pair in dead:
        mask[pair] = 0
    return mask


def _train_then_kill_then_train(model, images, optimizer, dead, kill=None):
    """Train 3 steps (momentum builds up on every kernel), kill ``dead`` in conv_b (by ``set_masks``, or by
    ``kill(layer, dead)``), train 4 more steps; the stored conv_b kernel before and after those steps."""
    labels = keras.utils.to_categorical(np.arange(len(images)) % 5, 5)
    model.compile(optimizer=optimizer, loss="categorical_crossentropy")
    for _ in range(3):
        model.train_on_batch(images, labels)
    layer = model.get_layer("conv_b")
    if kill is None:
        set_masks(model, {"conv_b": _mask(tuple(layer.kernel_mask.shape), dead)})
    else:
        kill(layer, dead)
    before = keras.ops.convert_to_numpy(layer.kernel).copy()
    for _ in range(4):
        model.train_on_batch(images, labels)
    return before, keras.ops.convert_to_numpy(layer.kernel)


def _kill_without_the_optimizer(layer, dead) -> None:
    mask = _kill(layer, dead)
    layer.kernel.assign(keras.ops.convert_to_numpy(layer.kernel) * mask[None, None])


DEAD = [(0, 0), (3, 5), (2, 1)]


@pytest.mark.parametrize(
    "optimizer",
    [lambda: keras.optimizers.Adam(0.05), lambda: keras.optimizers.SGD(0.5, momentum=0.9)],
    ids=["adam", "sgd-momentum"],
)
def test_dead_kernel_weights_stay_exactly_zero_under_momentum(masked_cnn, images, optimizer):
    before, after = _train_then_kill_then_train(masked_cnn, images, optimizer(), DEAD)
    for c_in, c_out in DEAD:
        np.testing.assert_array_equal(after[:, :, c_in, c_out], 0.0)
    alive = np.ones((4, 6), bool)
    for pair in DEAD:
        alive[pair] = False
    assert np.all(np.abs(after - before).max(axis=(0, 1))[alive] > 0), "alive kernels must keep training"


def test_killed_behind_the_optimizers_back_momentum_would_revive_dead_weights(masked_cnn, images):
    # The control for the test above: zeroing the optimizer's slots (set_masks) is what keeps them at zero.
    _, after = _train_then_kill_then_train(masked_cnn, images, keras.optimizers.Adam(0.05), DEAD,
                                           kill=_kill_without_the_optimizer)
    assert all(np.abs(after[:, :, c_in, c_out]).max() > 0 for c_in, c_out in DEAD)


def test_a_user_kernel_constraint_still_applies_after_the_mask(images):
    keras.utils.set_random_seed(4)
    inputs = keras.Input((8, 8, 3))
    conv = MicroConv2D(6, 3, padding="same", kernel_constraint=keras.constraints.NonNeg(), name="conv_b")
    x = keras.layers.GlobalAveragePooling2D()(conv(inputs))
    model = keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(x))
    before, after = _train_then_kill_then_train(model, images, keras.optimizers.Adam(0.05), [(0, 0), (2, 5)])
    assert after.min() >= 0.0
    np.testing.assert_array_equal(after[:, :, 0, 0], 0.0)
    np.testing.assert_array_equal(after[:, :, 2, 5], 0.0)
    assert conv.get_config()["kernel_constraint"]["class_name"] == "NonNeg"


def test_save_and_load_keep_the_mask_and_the_predictions(masked_cnn, images, tmp_path):
    mask = _kill(masked_cnn.get_layer("conv_b"), DEAD)
    expected = masked_cnn.predict(images, verbose=0)
    masked_cnn.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    layer = loaded.get_layer("conv_b")
    assert isinstance(layer, MicroConv2D)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.kernel_mask), mask)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded.get_layer("conv_a").kernel_mask), np.ones((3, 4)))
    np.testing.assert_allclose(loaded.predict(images, verbose=0), expected, rtol=1e-6)


def test_config_round_trip_is_the_plain_conv2d_config():
    layer = MicroConv2D(8, (3, 1), strides=2, padding="same", groups=2, kernel_regularizer=SwitchableL1(0.01), name="c")
    config = layer.get_config()
    assert set(config) == set(keras.layers.Conv2D(8, 3).get_config())
    assert config["kernel_constraint"] is None
    clone = MicroConv2D.from_config(config)
    assert clone.get_config() == config
    assert isinstance(clone.kernel_regularizer, SwitchableL1) and clone.kernel_regularizer.l1 == 0.01


def test_switchable_l1_factor_changes_inside_an_already_compiled_step(images):
    keras.utils.set_random_seed(5)
    regularizer = SwitchableL1(0.1)
    inputs = keras.Input((8, 8, 3))
    conv = MicroConv2D(4, 3, kernel_regularizer=regularizer)
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(conv(inputs)))
    model = keras.Model(inputs, outputs)
    model.compile(loss="mse")
    targets = np.zeros((len(images), 2), "float32")
    with_penalty = model.evaluate(images, targets, verbose=0)
    set_l1_penalty(model, 0.0)
    without_penalty = model.evaluate(images, targets, verbose=0)  # no recompilation (traced again on JAX)
    l1 = np.abs(keras.ops.convert_to_numpy(conv.kernel)).sum()
    np.testing.assert_allclose(with_penalty - without_penalty, 0.1 * l1, rtol=1e-4)
    assert regularizer.get_config() == {"l1": 0.0}
    assert all("l1_penalty" not in w.path for w in model.weights)


def test_masking_keeps_every_bit_of_surviving_kernels_subnormal_ones_included():
    layer = _single_layer()
    kernel = np.random.default_rng(6).normal(size=(3, 3, 3, 4)).astype("float32")
    kernel[:, :, 0, 0] = np.float32(2e-39)  # a kernel of subnormal weights only
    kernel[1, 1, 2, 3] = np.float32(-7e-41)
    layer.kernel.assign(kernel)
    mask = _kill(layer, [(1, 2)])
    expected = np.where(mask[None, None] != 0, kernel, np.float32(0))
    masked = keras.ops.convert_to_numpy(masked_kernel(layer.kernel, layer.kernel_mask))
    np.testing.assert_array_equal(masked.view(np.uint32), expected.view(np.uint32))


def test_the_l1_factor_switched_between_fits_applies_to_the_next_fit(images):
    # On JAX the factor is a constant of the traced train step: set_l1_penalty has it traced again.
    keras.utils.set_random_seed(6)
    inputs = keras.Input((8, 8, 3))
    conv = MicroConv2D(4, 3, kernel_regularizer=SwitchableL1(0.5))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(conv(inputs))))
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    targets = np.zeros((len(images), 2), "float32")
    with_penalty = model.fit(images, targets, epochs=1, verbose=0, shuffle=False).history["loss"][0]
    set_l1_penalty(model, 0.0)
    without_penalty = model.fit(images, targets, epochs=1, verbose=0, shuffle=False).history["loss"][0]
    l1 = np.abs(keras.ops.convert_to_numpy(conv.kernel)).sum()
    np.testing.assert_allclose(with_penalty - without_penalty, 0.5 * l1, rtol=1e-4)


def test_a_pruned_model_trains_in_a_compiled_step_with_adam_and_keeps_its_dead_kernels_zero():
    # The JAX crash of issue 9: the mask read inside the compiled optimizer step.
    from psykedelic_cli.models.resnet import build_micro_resnet
    from psykedelic_cli.models.surgery import get_masks, prune_model

    model = build_micro_resnet((32, 32, 3), 10, 8, seed=0)
    prune_model(model, "weight_sorted_kernels", rate=0.5, seed=0)
    masks = get_masks(model)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy")
    batch = np.random.default_rng(0).normal(size=(8, 32, 32, 3)).astype("float32")
    model.fit(batch, keras.utils.to_categorical(np.arange(8) % 10, 10), epochs=2, verbose=0)
    from psykedelic_cli.models.surgery import conv_layer_paths

    for path, layer in conv_layer_paths(model).items():
        dead = masks[path] == 0
        assert dead.any()
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.kernel)[:, :, dead], 0.0)
