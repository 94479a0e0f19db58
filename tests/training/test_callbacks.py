"""The staged flow's callbacks on a real tiny fit: the learning curve (with the rate of each epoch's
last update), the periodic comparison, the progress bar."""

import keras
import numpy as np
import pytest
from rich.progress import Progress

from psykedelic_cli.training.callbacks import LearningCurve, PeriodicComparison, RichProgress
from psykedelic_cli.training.schedule import StepSchedule

pytestmark = pytest.mark.backends


def _model(schedule):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def _data(n=12):
    x = np.random.default_rng(0).normal(size=(n, 4)).astype("float32")
    return x, keras.utils.to_categorical(np.arange(n) % 3, 3)


def test_learning_curve_collects_epochs_stages_metrics_and_each_epochs_rate():
    schedule = StepSchedule(0.1, steps_per_epoch=3, steps=((2, 0.5),))
    model = _model(schedule)
    updates = []
    curve = LearningCurve({}, on_update=lambda c: updates.append(len(c["epoch"])), schedule=schedule)
    x, y = _data()
    model.fit(x, y, batch_size=4, epochs=2, validation_data=(x, y), callbacks=[curve], verbose=0, shuffle=False)
    curve.stage = 2
    model.fit(x, y, batch_size=4, initial_epoch=2, epochs=3, validation_data=(x, y), callbacks=[curve], verbose=0,
              shuffle=False)
    lists = curve.curve
    assert lists["epoch"] == [1, 2, 3] and lists["stage"] == [1, 1, 2] and updates == [1, 2, 3]
    assert lists["lr"] == pytest.approx([0.1, 0.1, 0.05])  # epoch 2 (0-based) is the first at ×0.5
    for key in LearningCurve.KEYS:
        assert len(lists[key]) == 3 and all(isinstance(value, float) for value in lists[key])


def test_periodic_comparison_runs_every_interval_epochs_with_its_duration():
    calls = []
    comparison = PeriodicComparison(2, compare=lambda: {"n": len(calls)},
                                    sink=lambda epoch, result, seconds: calls.append((epoch, result, seconds >= 0)))
    model = _model(0.01)
    x, y = _data()
    model.fit(x, y, batch_size=4, epochs=5, callbacks=[comparison], verbose=0)
    assert calls == [(2, {"n": 0}, True), (4, {"n": 1}, True)]
    off = PeriodicComparison(0, compare=lambda: pytest.fail("interval 0 is off"), sink=None)
    model.fit(x, y, batch_size=4, epochs=2, callbacks=[off], verbose=0)


def test_rich_progress_counts_batches_and_ends_where_an_early_stop_ended():
    model = _model(0.01)
    x, y = _data()
    with Progress(disable=True) as progress:
        bar = RichProgress(progress, "stage 1", steps_per_epoch=3, epochs=4)
        stop = keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: setattr(model, "stop_training", epoch == 1))
        model.fit(x, y, batch_size=4, epochs=4, callbacks=[bar, stop], verbose=0)
        task = progress.tasks[0]
        assert bar.done == 6 and task.completed == 6 and task.total == 6
        assert "epoch 2" in task.fields["metrics"] and "loss" in task.fields["metrics"]
