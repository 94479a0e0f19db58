"""Bringing run documents written under older schema versions up to ``SCHEMA_VERSION``.

A document's ``schema_version`` (absent = 0) says which shape it has; each entry of
``MIGRATIONS`` turns version v into v + 1, so a store of any age is read forward one
step at a time. Stores are rewritten in the current version on their next write.
"""

from __future__ import annotations

from typing import Callable

from psykedelic_cli.errors import PsykError
from psykedelic_cli.store.schema import SCHEMA_VERSION


def _v0_to_v1(doc: dict) -> dict:
    """Version 0 (the first draft of the schema, before documents carried a version).

    It stored set analysis as kernel counts, ``{"total_kernels": N, "combinations":
    {"det+min_eig": count, ...}}`` with kernels pruned by no criterion implied, and
    pruning per threshold without a ``rule`` (always each criterion's own rule).
    """
    results = doc.setdefault("results", {})
    set_analysis = results.get("set_analysis")
    if isinstance(set_analysis, dict) and "combinations" in set_analysis and "shares" not in set_analysis:
        counts = set_analysis.pop("combinations")
        total = set_analysis.get("total_kernels") or sum(counts.values())
        shares = {combination: count / total for combination, count in counts.items()} if total else {}
        unpruned = total - sum(counts.values())
        if total and unpruned > 0:
            shares[""] = unpruned / total
        set_analysis["shares"] = shares
    per_threshold = results.get("pruning_per_threshold")
    if isinstance(per_threshold, dict):
        per_threshold.setdefault("rule", "own")
    return doc


def _v1_to_v2(doc: dict) -> dict:
    """Version 1 kept each history point's per-layer lists inside ``history``; version 2
    moves them to ``per_layer_history`` so reading the history does not read them."""
    results = doc.setdefault("results", {})
    history = results.get("history")
    if isinstance(history, list) and any(isinstance(p, dict) and "pruning_per_layer" in p for p in history):
        results["per_layer_history"] = [
            {"epoch": point.get("epoch"), "pruning_per_layer": point.pop("pruning_per_layer")}
            for point in history
            if isinstance(point, dict) and "pruning_per_layer" in point
        ]
    return doc


# Frozen as version 3 defined them: later schema changes must not change what this step does.
_V2_RECORD_TRAINING_FIELDS = (
    "depth", "optimizer", "loss", "lr", "epochs", "steps", "momentum", "decay", "init_mode", "l1_penalty", "mode",
    "history_interval", "residual", "patience", "stop_after_pruning", "distribute", "init",
)
_V3_RECORD_FIELDS = (
    "model", "architecture", "params", "model_file", "dataset", "compare", "threshold", "contribution_threshold",
    "rate", "seed", "eval_batch_size",
)


def _v2_to_v3(doc: dict) -> dict:
    """Version 2 gave a ``psyk record`` run a trained run's config: training settings it never
    used (null or defaults: steps, momentum, decay, residual, history interval, …) and its
    evaluation batch size under ``batch_size``, which report filters took for a training one.
    Version 3 keeps what record used (its ``RECORD_CONFIG_FIELDS``), the batch size as
    ``eval_batch_size``, and any key psyk does not know."""
    config = doc.get("config")
    if doc.get("source") != "record" or not isinstance(config, dict):
        return doc
    if "batch_size" in config and "eval_batch_size" not in config:
        config["eval_batch_size"] = config.pop("batch_size")
    for name in _V2_RECORD_TRAINING_FIELDS:
        config.pop(name, None)
    for name in _V3_RECORD_FIELDS:
        config.setdefault(name, None)
    return doc


def _v3_to_v4(doc: dict) -> dict:
    """Version 4 records the Keras backend a run ran on (``config.backend``). Every run written
    before it ran on TensorFlow: psyk's runs, and the original's (Keras 2 on TensorFlow)."""
    config = doc.get("config")
    if isinstance(config, dict) and config.get("backend") is None:
        config["backend"] = "tensorflow"
    return doc


MIGRATIONS: dict[int, Callable[[dict], dict]] = {0: _v0_to_v1, 1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4}


def migrate_run(doc: dict) -> dict:
    """``doc`` brought to ``SCHEMA_VERSION`` in place (PsykError for unknown or newer versions)."""
    version = doc.get("schema_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or not 0 <= version <= SCHEMA_VERSION:
        raise PsykError(
            f"run {doc.get('id')!r} has schema version {version!r}; this psyk reads versions "
            f"0 to {SCHEMA_VERSION}: upgrade psykedelic to use it"
        )
    while version < SCHEMA_VERSION:
        doc = MIGRATIONS[version](doc)
        version += 1
        doc["schema_version"] = version
    return doc
