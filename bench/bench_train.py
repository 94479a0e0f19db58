"""Wall time of the default ``psyk train``, split into training, kernel analysis, comparison, history.

Baseline: one training epoch of the same run. Goal: the kernel analysis and the
comparison each cost less than one epoch.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench._util import console, figures_table, fmt_seconds


def run() -> None:
    from psykedelic_cli.data import load_dataset
    from psykedelic_cli.store import Store
    from psykedelic_cli.training.config import TrainConfig
    from psykedelic_cli.training.flow import train_run

    with tempfile.TemporaryDirectory() as folder:
        config = TrainConfig(out_dir=Path(folder), history_interval=5).validate()
        dataset = load_dataset(config.dataset)
        start = time.perf_counter()
        run_document = train_run(config, Store(Path(folder) / "store.json"), dataset)
        wall = time.perf_counter() - start
    timings = run_document["results"]["timings"]
    epochs_run = len(run_document["results"]["learning_curve"]["epoch"])
    epoch = timings["training"] / epochs_run
    history_points = len(run_document["results"].get("history", []))
    rows = [
        {"figure": f"whole run ({epochs_run} epochs)", "ours": fmt_seconds(wall), "baseline": "—", "ratio": "—",
         "goal": "< 3 min", "verdict": "ok" if wall < 180 else "SLOW"},
        {"figure": "training, per epoch", "ours": fmt_seconds(epoch), "baseline": fmt_seconds(epoch), "ratio": "1.00×",
         "goal": "—", "verdict": ""},
    ]
    for phase, count in (("kernel_analysis", 1), ("comparison", 1), ("history", history_points)):
        seconds = timings.get(phase, 0.0) / max(count, 1)
        ratio = seconds / epoch
        goal = "< 1 epoch" if phase != "history" else "—"
        verdict = ("ok" if ratio < 1 else "SLOW") if phase != "history" else ""
        rows.append({"figure": f"{phase.replace('_', ' ')} (each)", "ours": fmt_seconds(seconds),
                     "baseline": fmt_seconds(epoch), "ratio": f"{ratio:.2f}×", "goal": goal, "verdict": verdict})
    accuracy = run_document["results"]["performance"]["None"]["accuracy"]
    console.print(figures_table("default psyk train (digits, ResNet-20) — baseline: one training epoch", rows))
    console.print(f"unpruned test accuracy after stage 1: {accuracy:.4f}; final: "
                  f"{run_document['results']['final']['accuracy']:.4f}")
