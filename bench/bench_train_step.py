"""One training step of our masked ResNet-20 against the plain Keras ResNet-20 of the same architecture.

Adam, batch of 128 random 32×32×3 images, ``train_on_batch``; the models are stepped
in turn (order alternating each round) after a warm-up, timed by wall clock and by
the process's CPU time. The ratio is the median of the per-round ratios: both steps of
a round see the same machine load, which matters on a shared 2-core machine.
Dead weights stay exactly zero under momentum with no work in the step (``set_masks``
zeroes their optimizer slots), so the whole overhead is the masked convolution.
Goal ≤ 1.03×; above 1.10× is not done. ``bench backends`` runs this on every backend.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from bench._util import console, figures_table, fmt_seconds

BATCH = 128
WARMUP = 3
ROUNDS = 40
GOAL = 1.03
LIMIT = 1.10


def _models(jit_compile="auto") -> dict:
    import keras

    from psykedelic_cli.models.resnet import build_micro_resnet
    from psykedelic_cli.models.surgery import prune_model

    models = {
        "plain": build_micro_resnet((32, 32, 3), 10, 20, masked=False, seed=0),
        "masked": build_micro_resnet((32, 32, 3), 10, 20, seed=0),
    }
    for model in models.values():
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", jit_compile=jit_compile)
    prune_model(models["masked"], "random_kernels", rate=0.3)  # some dead kernels, as in a real run
    return models


CLOCKS = {"wall": time.perf_counter, "CPU": time.process_time}
"""Wall time, and the process's CPU time: on a shared machine other processes stretch the
wall time of a step, while the CPU time counts only the work our step does."""


def _step_times(models: dict, rounds: int = ROUNDS) -> dict[str, dict[str, list[float]]]:
    """``{clock: {model: [seconds per step]}}``."""
    rng = np.random.default_rng(0)
    images = rng.normal(size=(BATCH, 32, 32, 3)).astype("float32")
    labels = np.eye(10, dtype="float32")[rng.integers(10, size=BATCH)]
    for model in models.values():
        for _ in range(WARMUP):
            model.train_on_batch(images, labels)
    times = {clock: {name: [] for name in models} for clock in CLOCKS}
    order = list(models)
    for round_index in range(rounds):
        for name in order if round_index % 2 == 0 else reversed(order):
            start = {clock: read() for clock, read in CLOCKS.items()}
            models[name].train_on_batch(images, labels)
            for clock, read in CLOCKS.items():
                times[clock][name].append(read() - start[clock])
    return times


def _verdict(ratio: float) -> str:
    if ratio <= GOAL:
        return "ok"
    return "over goal" if ratio <= LIMIT else "NOT DONE"


def _paired_ratios(ours: list[float], baseline: list[float]) -> tuple[float, float, float]:
    """Median and quartiles of the per-round ratios ``ours / baseline``."""
    q1, median, q3 = statistics.quantiles((a / b for a, b in zip(ours, baseline)), n=4)
    return median, q1, q3


def _row(figure: str, ours: list[float], baseline: list[float], goal: str = "—", judged: bool = False) -> dict:
    median, q1, q3 = _paired_ratios(ours, baseline)
    return {
        "figure": figure,
        "ours": fmt_seconds(statistics.median(ours)),
        "baseline": fmt_seconds(statistics.median(baseline)),
        "ratio": f"{median:.3f}× (IQR {q1:.2f}–{q3:.2f})",
        "goal": goal,
        "verdict": _verdict(median) if judged else "",
    }


def run() -> None:
    times = _step_times(_models())
    goal = f"≤ {GOAL:.2f}× (> {LIMIT:.2f}× not done)"
    rows = []
    for clock, seconds in times.items():
        rows.append(
            _row(f"{clock}: masked vs plain Keras twin", seconds["masked"], seconds["plain"], goal, judged=True)
        )
    title = (
        f"ResNet-20 train step (Adam, batch {BATCH}): medians of {ROUNDS} alternating rounds, "
        "ratio = median of per-round ratios"
    )
    console.print(figures_table(title, rows))
