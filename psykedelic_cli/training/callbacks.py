"""Keras callbacks of the staged flow: learning-rate schedule, learning curve, history, progress."""

from __future__ import annotations

import time
from typing import Callable

import keras

from psykedelic_cli.training.config import lr_factor


class StepLearningRate(keras.callbacks.Callback):
    """Sets lr = base · step factor(epoch) / (1 + decay · iterations).

    The step factor is SPEC.md's schedule; ``decay`` is the classic per-iteration
    inverse-time decay of the original's Keras 2 optimizers (0 = off).
    """

    def __init__(self, base_lr: float, decay: float = 0.0):
        super().__init__()
        self.base_lr = base_lr
        self.decay = decay
        self._epoch_lr = base_lr

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_lr = self.base_lr * lr_factor(epoch)
        self._assign()

    def on_train_batch_begin(self, batch, logs=None):
        if self.decay:
            self._assign()

    def _assign(self):
        optimizer = self.model.optimizer
        lr = self._epoch_lr
        if self.decay:
            lr = lr / (1.0 + self.decay * float(optimizer.iterations.numpy()))
        optimizer.learning_rate.assign(lr)


class LearningCurve(keras.callbacks.Callback):
    """Collects the per-epoch logs (and the stage) into the schema's ``learning_curve`` lists."""

    KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")

    def __init__(self, curve: dict, on_update: Callable[[dict], None] | None = None):
        super().__init__()
        self.curve = curve
        self.stage = 1
        self.on_update = on_update

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.curve.setdefault("epoch", []).append(epoch + 1)
        self.curve.setdefault("stage", []).append(self.stage)
        for key in self.KEYS:
            value = logs.get(key)
            self.curve.setdefault(key, []).append(None if value is None else float(value))
        self.curve.setdefault("lr", []).append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))
        if self.on_update is not None:
            self.on_update(self.curve)


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
