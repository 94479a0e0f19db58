"""Run documents with hand-picked numbers, shaped as psykedelic_cli/store/schema.py documents them."""

from __future__ import annotations

import pytest

from psykedelic_cli.store.schema import SCHEMA_VERSION

CONFIG = {
    "model": "MicroResNet32",
    "depth": 32,
    "dataset": "cifar10",
    "optimizer": "adam",
    "loss": "categorical_crossentropy",
    "lr": 1e-3,
    "epochs": 4,
    "batch_size": 64,
    "steps": 2,
    "momentum": None,
    "decay": None,
    "init_mode": "default",
    "l1_penalty": 1e-4,
    "mode": "det",
    "compare": ["det", "weight"],
    "threshold": 1e-4,
    "contribution_threshold": 1e-3,
    "rate": 0.2,
    "history_interval": 1,
    "residual": True,
    "seed": 0,
}


def run_document(run_id: str, results: dict, *, status: str = "completed", **config) -> dict:
    """A run document with ``config`` overriding CONFIG."""
    unknown = set(config) - set(CONFIG)
    assert not unknown, f"not config fields: {unknown}"
    return {
        "id": run_id,
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "error": None,
        "source": "train",
        "created_at": "2026-01-01T00:00:00+00:00",
        "updated_at": "2026-01-01T00:00:00+00:00",
        "finished_at": "2026-01-01T00:00:00+00:00",
        "host": {},
        "versions": {},
        "config": {**CONFIG, **config},
        "results": results,
    }


def performance_row(accuracy: float, compression_ratio: float, score: float) -> dict:
    return {
        "accuracy": accuracy,
        "precision": accuracy,
        "recall": accuracy,
        "active_params": 1000,
        "total_params": 2000,
        "compression_ratio": compression_ratio,
        "score": score,
        "alive_kernels": None,
        "total_kernels": None,
    }


def performance(none_accuracy: float, det: tuple[float, float, float], weight: tuple[float, float, float]) -> dict:
    """``{"None", "det", "weight"}`` rows; det and weight given as (accuracy, compression ratio, score)."""
    return {
        "None": performance_row(none_accuracy, 0.0, 0.0),
        "det": performance_row(*det),
        "weight": performance_row(*weight),
    }


@pytest.fixture
def make_run():
    """``make_run(run_id, results, **config)``: a completed run document (test modules cannot import conftest)."""
    return run_document


@pytest.fixture
def performance_runs() -> list[dict]:
    """Three like runs on cifar10, one on cifar100, one cifar10 run with another L1 penalty.

    cifar10 (runs 1-3): None accuracy 0.90/0.92/0.94 → 0.92 ± 0.0163299;
    det accuracy 0.80/0.85/0.90 → 0.85 ± 0.0408248, compression 0.2/0.3/0.4 → 0.3 ± 0.0816497,
    score 0.1/0.2/0.3 → 0.2 ± 0.0816497; weight 0.88 / 0.1 / 0.05 in all three (std 0).
    """
    return [
        run_document("r1", {"performance": performance(0.90, (0.80, 0.2, 0.1), (0.88, 0.1, 0.05))}, seed=1),
        run_document("r2", {"performance": performance(0.92, (0.85, 0.3, 0.2), (0.88, 0.1, 0.05))}, seed=2),
        run_document("r3", {"performance": performance(0.94, (0.90, 0.4, 0.3), (0.88, 0.1, 0.05))}, seed=3),
        run_document("r4", {"performance": performance(0.70, (0.60, 0.5, 0.4), (0.65, 0.6, 0.55))}, dataset="cifar100"),
        run_document("r5", {"performance": performance(0.50, (0.40, 0.9, 0.8), (0.45, 0.8, 0.7))}, l1_penalty=1e-3),
    ]
