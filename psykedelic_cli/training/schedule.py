"""The learning-rate schedule of SPEC.md as a Keras ``LearningRateSchedule``, computed in the train step.

The optimizer asks the schedule for the rate of every update from its own step count, on
the device, on every backend; nothing is read back to the host between batches.
"""

from __future__ import annotations

import keras
from keras import ops

from psykedelic_cli.models.layers import PACKAGE

LR_STEPS = ((80, 1e-1), (120, 1e-2), (160, 1e-3), (180, 5e-4))
"""``(epoch, factor)``: from that epoch on (0-based) the base rate is multiplied by the factor (SPEC.md)."""


def lr_factor(epoch: int, steps=LR_STEPS) -> float:
    """The step factor of a (0-based) epoch: 1, then ×0.1 from epoch 80, ×0.01 from 120, ×1e-3 from 160,
    ×5e-4 from 180."""
    factor = 1.0
    for bound, value in steps:
        if epoch >= bound:
            factor = value
    return factor


@keras.saving.register_keras_serializable(package=PACKAGE)
class StepSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """``lr(step) = base_lr · lr_factor(⌊step / steps_per_epoch⌋) / (1 + decay · step)``.

    ``step`` is the optimizer's update count before the update (0 for the first batch), so
    with ``steps_per_epoch`` batches per epoch, epoch e's updates use e's factor. ``decay``
    is the classic per-update inverse-time decay of Keras 2 optimizers (0 = off), the
    original's ``decay`` argument. Validated at construction (ValueError naming the value).
    """

    def __init__(self, base_lr: float, steps_per_epoch: int, decay: float = 0.0, steps=LR_STEPS):
        if not base_lr > 0:
            raise ValueError(f"base_lr must be > 0, got {base_lr!r}")
        if isinstance(steps_per_epoch, bool) or int(steps_per_epoch) != steps_per_epoch or steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be a whole number ≥ 1, got {steps_per_epoch!r}")
        if not decay >= 0:
            raise ValueError(f"decay must be ≥ 0, got {decay!r}")
        bounds = [int(bound) for bound, _ in steps]
        if bounds != sorted(bounds):
            raise ValueError(f"steps must be in increasing epoch order, got {steps!r}")
        self.base_lr = float(base_lr)
        self.steps_per_epoch = int(steps_per_epoch)
        self.decay = float(decay)
        self.steps = tuple((int(bound), float(factor)) for bound, factor in steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        epoch = ops.floor(step / float(self.steps_per_epoch))
        factor = ops.ones_like(step)
        for bound, value in self.steps:
            factor = ops.where(epoch >= float(bound), value, factor)
        return self.base_lr * factor / (1.0 + self.decay * step)

    def epoch_rate(self, epoch: int) -> float:
        """The rate at the first update of ``epoch``, in float64 (for messages and tests)."""
        step = epoch * self.steps_per_epoch
        return self.base_lr * lr_factor(epoch, self.steps) / (1.0 + self.decay * step)

    def get_config(self) -> dict:
        return {"base_lr": self.base_lr, "steps_per_epoch": self.steps_per_epoch, "decay": self.decay,
                "steps": [list(pair) for pair in self.steps]}
