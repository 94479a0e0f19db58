"""CPU inference of a thinned MicroResNet-32 against the pruned original it came from.

MicroResNet-32 on 32×32×3 inputs (10 classes), pruned by ``weight_sorted_neurons`` at
r = 0.25 and 0.5, then ``thin_model``. The baseline is the same pruned model as plain
Keras (dead kernels zero inside full convolutions), measured in the same run: latency at
batch 1 and throughput at batch 128, ``predict_on_batch``, the two models in turn (order
alternating each round) after a warm-up; the ratio is the median of the per-round ratios.
Goal: the throughput gain is within 20 % of the FLOP reduction (gain ≥ 0.8 × FLOPs
before / after).
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from bench._util import console, figures_table, fmt_seconds

RATES = (0.25, 0.5)
ROUNDS = {1: 60, 128: 16}
WARMUP = 3
GOAL = 0.8


def _models(rate: float):
    from psykedelic_cli.models.resnet import build_micro_resnet
    from psykedelic_cli.models.surgery import prune_model, strip_masks
    from psykedelic_cli.models.thinning import thin_model

    model = build_micro_resnet((32, 32, 3), 10, 32, seed=0)
    prune_model(model, "weight_sorted_neurons", rate=rate, seed=0)
    original = strip_masks(model)
    thinned, report = thin_model(original)
    return original, thinned, report


CLOCKS = {"wall": time.perf_counter, "CPU": time.process_time}
"""Wall time, and the process's CPU time (all its threads): other processes on a shared machine stretch
the first, not the second."""


def _paired_times(models: dict, batch: int) -> dict[str, dict[str, list[float]]]:
    """``{clock: {model: [seconds per batch]}}``."""
    images = np.random.default_rng(0).normal(size=(batch, 32, 32, 3)).astype("float32")
    for model in models.values():
        for _ in range(WARMUP):
            model.predict_on_batch(images)
    times = {clock: {name: [] for name in models} for clock in CLOCKS}
    order = list(models)
    for round_index in range(ROUNDS[batch]):
        for name in order if round_index % 2 == 0 else reversed(order):
            start = {clock: read() for clock, read in CLOCKS.items()}
            models[name].predict_on_batch(images)
            for clock, read in CLOCKS.items():
                times[clock][name].append(read() - start[clock])
    return times


def _speedup(times: dict[str, list[float]]) -> float:
    return statistics.median(o / t for o, t in zip(times["original"], times["thinned"]))


def _speed_row(figure: str, times: dict, batch: int, goal: float | None = None) -> dict:
    wall = times["wall"]
    gain = _speedup(wall)
    if batch == 1:
        ours, baseline = (fmt_seconds(statistics.median(wall[name])) for name in ("thinned", "original"))
    else:
        ours = f"{batch / statistics.median(wall['thinned']):,.0f} img/s"
        baseline = f"{batch / statistics.median(wall['original']):,.0f} img/s"
    row = {
        "figure": figure,
        "ours": ours,
        "baseline": baseline,
        "ratio": f"{gain:.2f}× faster (CPU time {_speedup(times['CPU']):.2f}×)",
    }
    if goal is not None:
        row["goal"] = f"≥ {GOAL * goal:.2f}× ({GOAL:.0%} of {goal:.2f}×)"
        row["verdict"] = "ok" if gain >= GOAL * goal else "under goal"
    return row


def run() -> None:
    rows = []
    for rate in RATES:
        original, thinned, report = _models(rate)
        x = np.random.default_rng(1).normal(size=(16, 32, 32, 3)).astype("float32")
        error = float(np.abs(original.predict_on_batch(x) - thinned.predict_on_batch(x)).max())
        flop_ratio = report["flops_before"] / report["flops_after"]
        label = f"r = {rate:g}"
        rows.append({
            "figure": f"{label}: parameters",
            "ours": f"{report['params_after']:,}",
            "baseline": f"{report['params_before']:,}",
            "ratio": f"{report['params_after'] / report['params_before']:.3f}×",
        })
        rows.append({
            "figure": f"{label}: FLOPs per image (Conv2D + Dense)",
            "ours": f"{report['flops_after'] / 1e6:.1f} M",
            "baseline": f"{report['flops_before'] / 1e6:.1f} M",
            "ratio": f"{1 / flop_ratio:.3f}× ({flop_ratio:.2f}× fewer)",
            "verdict": f"max |Δ prediction| {error:.1e}",
        })
        models = {"original": original, "thinned": thinned}
        rows.append(_speed_row(f"{label}: latency, batch 1", _paired_times(models, 1), 1))
        rows.append(_speed_row(f"{label}: throughput, batch 128", _paired_times(models, 128), 128, flop_ratio))
    title = (
        "psyk thin: MicroResNet-32 pruned by weight_sorted_neurons, thinned vs the pruned plain model, CPU "
        f"(medians of {ROUNDS[1]} / {ROUNDS[128]} alternating rounds, ratio = median of per-round ratios)"
    )
    console.print(figures_table(title, rows))
