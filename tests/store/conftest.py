"""Fixtures for the store tests: run documents."""

from __future__ import annotations

import pytest

from psykedelic_cli.store import new_run_document


def performance_row(accuracy: float, active: int, total: int = 470218) -> dict:
    return {
        "accuracy": accuracy, "precision": accuracy - 0.01, "recall": accuracy - 0.02,
        "active_params": active, "total_params": total, "compression_ratio": 1 - active / total,
        "score": accuracy * (1 - active / total), "alive_kernels": None, "total_kernels": None,
    }


@pytest.fixture
def make_run(clock):
    """A run document with a config and a small performance result, created one pinned second after the last."""

    def make(status: str = "completed", layers: int = 3, **config) -> dict:
        doc = new_run_document(
            {"model": "MicroResNet32", "dataset": "digits", "threshold": 1e-4, "mode": "det", **config}, now=clock()
        )
        doc["status"] = status
        doc["results"]["performance"] = {"None": performance_row(0.95, 470218), "det": performance_row(0.9, 235109)}
        doc["results"]["pruning_per_layer"] = {
            "det": [
                {"layer": f"conv{i}", "active_params": 100 + i, "total_params": 144, "alive_kernels": 10,
                 "total_kernels": 16}
                for i in range(layers)
            ]
        }
        return doc

    return make
