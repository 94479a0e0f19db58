"""Compare pruning modes on the same weights: prune a copy of the masks, evaluate, restore."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from psykedelic_cli.pruning.vocabulary import BASELINE


@dataclass
class Evaluator:
    """Test-set accuracy and macro precision/recall of a model on fixed data."""

    x: np.ndarray
    y: np.ndarray
    batch_size: int = 256

    def __call__(self, model) -> dict:
        from sklearn.metrics import precision_recall_fscore_support

        # predict_on_batch reuses one compiled function; model.predict rebuilds its data
        # iterator on every call, which costs more than the forward pass on small test sets.
        predicted = np.concatenate([
            np.argmax(model.predict_on_batch(self.x[start:start + self.batch_size]), axis=-1)
            for start in range(0, len(self.x), self.batch_size)
        ])
        precision, recall, _, _ = precision_recall_fscore_support(
            self.y, predicted, average="macro", zero_division=0
        )
        return {
            "accuracy": float(np.mean(predicted == self.y)),
            "precision": float(precision),
            "recall": float(recall),
        }


def performance_row(metrics: dict, report: dict, baseline_accuracy: float | None) -> dict:
    """Merge evaluation metrics and a parameter report into a schema performance row.

    score = (acc / acc_None) · compression_ratio; the baseline row scores 0.
    """
    ratio = float(report["compression_ratio"])
    if baseline_accuracy:
        score = (metrics["accuracy"] / baseline_accuracy) * ratio
    else:
        score = 0.0
    return {
        **metrics,
        "active_params": int(report["active_params"]),
        "total_params": int(report["total_params"]),
        "compression_ratio": ratio,
        "score": float(score),
        "alive_kernels": int(report["alive_kernels"]),
        "total_kernels": int(report["total_kernels"]),
    }


def compare_modes(
    model,
    modes: Iterable[str],
    evaluate: Callable[[object], dict],
    *,
    threshold: float,
    contribution_threshold: float,
    rate: float,
    seed: int | None,
    on_mode: Callable[[str], None] | None = None,
    statistics: dict | None = None,
) -> dict:
    """``{"performance": {mode: row}, "pruning_per_layer": {mode: layers}}`` with the "None" baseline.

    ``statistics`` (``layer_statistics`` of the current kernels) spares computing them again.

    Every mode prunes a copy of the current masks; the model's kernels and masks are
    restored exactly after each one. Per-layer rows name each Conv2D by its path in the
    model (``tower_a/conv``), and the statistics are shared by path; a layer a mode
    cannot prune (non-square kernels for eigenvalue modes) keeps its masks.
    """
    from psykedelic_cli.models.surgery import compute_masks, layer_statistics, parameter_report, set_masks, trial_masks

    if statistics is None:  # the kernels stay unchanged between modes: compute once
        statistics = layer_statistics(model)
    baseline_metrics = evaluate(model)
    baseline_report = parameter_report(model)
    performance = {BASELINE: performance_row(baseline_metrics, baseline_report, None)}
    per_layer = {BASELINE: baseline_report["layers"]}
    for mode in modes:
        if on_mode is not None:
            on_mode(mode)
        with trial_masks(model):
            masks = compute_masks(
                model,
                mode,
                threshold=threshold,
                contribution_threshold=contribution_threshold,
                rate=rate,
                seed=seed,
                statistics=statistics,
            )
            set_masks(model, masks)
            report = parameter_report(model)
            performance[mode] = performance_row(evaluate(model), report, baseline_metrics["accuracy"])
            per_layer[mode] = report["layers"]
    return {"performance": performance, "pruning_per_layer": per_layer}
