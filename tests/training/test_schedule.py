"""StepSchedule: SPEC.md's step schedule and the inverse-time decay, computed inside the optimizer."""

import keras
import numpy as np
import pytest

from psykedelic_cli.training.schedule import LR_STEPS, StepSchedule, lr_factor

pytestmark = pytest.mark.backends


def _rate(schedule, step) -> float:
    return float(keras.ops.convert_to_numpy(schedule(step)))


@pytest.mark.parametrize(
    "epoch, factor",
    [(0, 1.0), (79, 1.0), (80, 0.1), (119, 0.1), (120, 0.01), (159, 0.01), (160, 1e-3), (179, 1e-3),
     (180, 5e-4), (399, 5e-4)],
)
def test_the_factor_steps_at_epochs_80_120_160_180(epoch, factor):
    assert lr_factor(epoch) == factor
    schedule = StepSchedule(0.1, steps_per_epoch=7)
    first, last = epoch * 7, epoch * 7 + 6  # an epoch's first and last update
    assert _rate(schedule, first) == pytest.approx(0.1 * factor, rel=1e-6)
    assert _rate(schedule, last) == pytest.approx(0.1 * factor, rel=1e-6)


def test_decay_divides_by_one_plus_decay_times_the_update_count():
    schedule = StepSchedule(0.01, steps_per_epoch=10, decay=1e-3)
    for step in (0, 1, 799, 800, 1500):
        expected = 0.01 * lr_factor(step // 10) / (1 + 1e-3 * step)
        assert _rate(schedule, step) == pytest.approx(expected, rel=1e-6)
        epoch = step // 10
        assert schedule.epoch_rate(epoch) == pytest.approx(0.01 * lr_factor(epoch) / (1 + 1e-2 * epoch))


def test_the_optimizer_uses_it_in_its_compiled_step_and_it_round_trips_through_a_saved_model(tmp_path):
    schedule = StepSchedule(0.5, steps_per_epoch=2, steps=((1, 0.1), (2, 0.0)))
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")(inputs))
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss="mse")
    x, y = np.ones((4, 3), "float32"), np.zeros((4, 1), "float32")
    kernels = []
    for _ in range(3):  # epochs 0, 1, 2 of 2 updates each
        model.fit(x, y, batch_size=2, epochs=1, verbose=0, shuffle=False)
        kernels.append(np.array(keras.ops.convert_to_numpy(model.layers[1].kernel)))
    assert not np.allclose(kernels[0], 1.0) and not np.allclose(kernels[1], kernels[0])
    np.testing.assert_array_equal(kernels[2], kernels[1])  # factor 0 from epoch 2 on: no more movement
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    restored = loaded.optimizer.learning_rate
    assert float(keras.ops.convert_to_numpy(restored)) == pytest.approx(0.0)  # at update 6: epoch 3, factor 0
    assert StepSchedule.from_config(schedule.get_config()).get_config() == schedule.get_config()


@pytest.mark.parametrize(
    "arguments, message",
    [((0.0, 5), "base_lr"), ((0.1, 0), "steps_per_epoch"), ((0.1, 2.5), "steps_per_epoch"),
     ((0.1, 5, -1.0), "decay")],
)
def test_bad_arguments_name_the_value(arguments, message):
    with pytest.raises(ValueError, match=message):
        StepSchedule(*arguments)


def test_the_steps_are_the_specs():
    assert LR_STEPS == ((80, 1e-1), (120, 1e-2), (160, 1e-3), (180, 5e-4))
