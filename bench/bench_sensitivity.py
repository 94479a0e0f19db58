"""Layer sensitivity of a trained ResNet-20 on digits over the 8 default thresholds, as a multiple of one evaluation.

The model: ``psyk train``'s ResNet-20 on digits, 4 epochs (2 stages, no fine-tuning), saved.
``layer_sensitivity`` prunes each of its Conv2D layers alone by ``min_eig`` at t = 1e-3 … 0.5 (8
values), evaluates the test set and restores the layer. The baseline is one evaluation of the same
model on the same test set (``Evaluator``, the median of repeats), measured in the same run. Goal:
the whole sensitivity costs no more than its evaluations (at most 1 + layers × 8; fewer, as points
that kill nothing or the same kernels again reuse a measured accuracy) plus 10 %: the kernel
statistics (once per layer), the masks and the restores are small beside the evaluations.
Wall and CPU time (all threads) are both shown: other processes on a shared machine stretch the
first, not the second.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench._util import console, figures_table, fmt_seconds

REPEATS = 3
MODE = "min_eig"
CLOCKS = {"wall": time.perf_counter, "CPU": time.process_time}


def _trained_model(folder: Path):
    from psykedelic_cli.data import load_dataset
    from psykedelic_cli.models.surgery import load_model
    from psykedelic_cli.store import Store
    from psykedelic_cli.training.config import TrainConfig
    from psykedelic_cli.training.flow import train_run

    config = TrainConfig(epochs=4, stop_after_pruning=True, save_model=True, out_dir=folder,
                         compare=(MODE,)).validate()
    dataset = load_dataset(config.dataset)
    run = train_run(config, Store(folder / "store.json"), dataset)
    return load_model(folder / run["id"] / "model.keras"), dataset


def _timed(function) -> dict[str, float]:
    """``{clock: seconds}`` of the median call of ``function`` by wall time, over ``REPEATS`` calls."""
    calls = []
    for _ in range(REPEATS):
        start = {clock: read() for clock, read in CLOCKS.items()}
        result = function()
        calls.append(({clock: read() - start[clock] for clock, read in CLOCKS.items()}, result))
    calls.sort(key=lambda call: call[0]["wall"])
    return calls[len(calls) // 2]


def run() -> None:
    from psykedelic_cli.models.surgery import conv_layer_paths
    from psykedelic_cli.training.comparison import Evaluator
    from psykedelic_cli.training.sensitivity import DEFAULT_GRIDS, layer_sensitivity

    with tempfile.TemporaryDirectory() as folder:
        model, dataset = _trained_model(Path(folder))
    evaluate = Evaluator(dataset.features("test"), dataset.y_test)
    evaluate(model)  # warm-up: the predict function is compiled once
    grid = DEFAULT_GRIDS["threshold"]
    one, _ = _timed(lambda: evaluate(model))
    whole, result = _timed(lambda: layer_sensitivity(model, MODE, "threshold", grid, evaluate))
    layers = len(conv_layer_paths(model))
    bound = 1 + layers * len(grid)
    evaluations = result["evaluations"]
    rows = [
        {"figure": "one evaluation (test set, 360 images)", "ours": fmt_seconds(one["wall"]),
         "baseline": fmt_seconds(one["wall"]), "ratio": "1.00×", "goal": "—", "verdict": ""},
        {"figure": f"evaluations made ({layers} layers × {len(grid)} thresholds + 1)", "ours": str(evaluations),
         "baseline": str(bound), "ratio": f"{evaluations / bound:.2f}×", "goal": "≤ 1×",
         "verdict": "ok" if evaluations <= bound else "TOO MANY"},
    ]
    for clock in CLOCKS:
        ratio = whole[clock] / one[clock]
        goal = 1.1 * evaluations
        rows.append({"figure": f"whole sensitivity, {clock} time", "ours": fmt_seconds(whole[clock]),
                     "baseline": fmt_seconds(one[clock]), "ratio": f"{ratio:.1f}×",
                     "goal": f"≤ {goal:.0f}× (its evaluations + 10 %)",
                     "verdict": "ok" if ratio <= goal else "SLOW"})
    console.print(figures_table(
        f"psyk sensitivity: ResNet-20 on digits, {MODE} over {len(grid)} thresholds — baseline: one evaluation",
        rows))
    pruned = [layer for layer in result["layers"] if layer["points"]]
    most = min(pruned, key=lambda layer: layer["points"][-1]["accuracy"])
    console.print(f"unpruned accuracy {result['baseline']['accuracy']:.4f}; the layer most hurt at t = "
                  f"{grid[-1]:g}: {most['layer']} ({most['points'][-1]['accuracy']:.4f})")
