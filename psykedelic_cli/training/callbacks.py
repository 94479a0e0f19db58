"""Keras callbacks of the staged flow: learning curve, history, progress (the learning rate is
``schedule.StepSchedule``, inside the optimizer)."""

from __future__ import annotations

import time
from typing import Callable

import keras


class LearningCurve(keras.callbacks.Callback):
    """Collects the per-epoch logs (and the stage) into the schema's ``learning_curve`` lists.

    ``lr`` is the rate of the epoch's last update: ``schedule(iterations - 1)`` when the optimizer
    runs on a ``schedule`` (its ``learning_rate`` is already the next update's), else its rate.
    """

    KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")

    def __init__(self, curve: dict, on_update: Callable[[dict], None] | None = None, schedule=None):
        super().__init__()
        self.curve = curve
        self.schedule = schedule
        self.stage = 1
        self.on_update = on_update

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.curve.setdefault("epoch", []).append(epoch + 1)
        self.curve.setdefault("stage", []).append(self.stage)
        for key in self.KEYS:
            value = logs.get(key)
            self.curve.setdefault(key, []).append(None if value is None else float(value))
        self.curve.setdefault("lr", []).append(self._last_rate())
        if self.on_update is not None:
            self.on_update(self.curve)

    def _last_rate(self) -> float:
        optimizer = self.model.optimizer
        if self.schedule is None:
            return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        step = max(int(keras.ops.convert_to_numpy(optimizer.iterations)) - 1, 0)
        return float(keras.ops.convert_to_numpy(self.schedule(step)))


class PeriodicComparison(keras.callbacks.Callback):
    """Every ``interval`` epochs, runs ``compare()`` and hands its result with the epoch to ``sink``."""

    def __init__(self, interval: int, compare: Callable[[], dict], sink: Callable[[int, dict, float], None]):
        super().__init__()
        self.interval = interval
        self.compare = compare
        self.sink = sink

    def on_epoch_end(self, epoch, logs=None):
        if self.interval and (epoch + 1) % self.interval == 0:
            start = time.perf_counter()
            result = self.compare()
            self.sink(epoch + 1, result, time.perf_counter() - start)


class RichProgress(keras.callbacks.Callback):
    """One rich progress bar over all batches of a stage, with the latest metrics.

    An early-stopped stage ends its bar where training stopped.
    """

    def __init__(self, progress, description: str, steps_per_epoch: int, epochs: int):
        super().__init__()
        self.progress = progress
        self.task = progress.add_task(description, total=steps_per_epoch * epochs, metrics="")
        self.done = 0

    def on_train_batch_end(self, batch, logs=None):
        self.done += 1
        self.progress.advance(self.task)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        shown = "  ".join(f"{key} {logs[key]:.4f}" for key in ("loss", "accuracy", "val_accuracy") if key in logs)
        self.progress.update(self.task, metrics=f"epoch {epoch + 1}  {shown}")

    def on_train_end(self, logs=None):
        self.progress.update(self.task, total=self.done, completed=self.done)
