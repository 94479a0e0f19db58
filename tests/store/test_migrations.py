"""Older run documents are read forward to the current schema version."""

from __future__ import annotations

import json

import pytest

from psykedelic_cli.errors import PsykError
from psykedelic_cli.store import Store
from psykedelic_cli.store.migrations import migrate_run
from psykedelic_cli.store.schema import SCHEMA_VERSION


def _version_0_run(run_id: str) -> dict:
    """A run as the first draft of the schema stored it: no version, set analysis as counts."""
    return {
        "id": run_id,
        "status": "completed",
        "config": {"model": "MicroResNet20", "dataset": "digits"},
        "results": {
            "set_analysis": {
                "criteria": ["det", "weight"], "total_kernels": 200, "combinations": {"det": 30, "det+weight": 50}
            },
            "pruning_per_threshold": {"thresholds": [1e-4], "pruned_ratio": {"det": [0.1]}},
        },
    }


def test_version_0_set_analysis_counts_become_shares():
    doc = migrate_run(_version_0_run("r0"))
    assert doc["schema_version"] == SCHEMA_VERSION == 4
    assert doc["results"]["set_analysis"] == {
        "criteria": ["det", "weight"], "total_kernels": 200, "shares": {"det": 0.15, "det+weight": 0.25, "": 0.6},
    }
    assert doc["results"]["pruning_per_threshold"]["rule"] == "own"


def test_version_1_history_per_layer_lists_move_to_their_own_kind():
    layers = [{"layer": "conv", "active_params": 5, "total_params": 9, "alive_kernels": 1, "total_kernels": 1}]
    doc = migrate_run({"id": "r1", "schema_version": 1, "results": {"history": [
        {"epoch": 2, "performance": {"None": {"accuracy": 0.9}}, "pruning_per_layer": {"det": layers}},
        {"epoch": 4, "performance": {"None": {"accuracy": 0.95}}, "pruning_per_layer": {"det": []}},
    ]}})
    assert doc["schema_version"] == SCHEMA_VERSION
    assert doc["results"]["history"] == [
        {"epoch": 2, "performance": {"None": {"accuracy": 0.9}}},
        {"epoch": 4, "performance": {"None": {"accuracy": 0.95}}},
    ]
    assert doc["results"]["per_layer_history"] == [
        {"epoch": 2, "pruning_per_layer": {"det": layers}}, {"epoch": 4, "pruning_per_layer": {"det": []}}]


def test_version_2_record_runs_keep_what_record_used():
    # what psyk 0.1's record stored besides the fields it used (the v2 config of a trained run)
    training_only = {name: None for name in ("depth", "optimizer", "loss", "lr", "epochs", "steps", "momentum",
                                             "decay", "init_mode", "l1_penalty", "mode", "history_interval",
                                             "residual", "patience", "stop_after_pruning", "distribute", "init")}
    config = {**training_only, "model": "functional", "dataset": "digits", "compare": ["det"], "threshold": 1e-4,
              "contribution_threshold": 1e-3, "rate": 0.2, "seed": 0, "batch_size": 256, "model_file": "m.keras",
              "steps": 2, "momentum": 0.9, "residual": True, "history_interval": 0, "note": "mine"}
    record = migrate_run({"id": "r", "schema_version": 2, "source": "record", "config": dict(config)})
    assert record["config"] == {"model": "functional", "architecture": None, "params": None, "dataset": "digits",
                                "compare": ["det"], "threshold": 1e-4,
                                "contribution_threshold": 1e-3, "rate": 0.2, "seed": 0, "eval_batch_size": 256,
                                "model_file": "m.keras", "note": "mine", "backend": "tensorflow"}
    trained = migrate_run({"id": "t", "schema_version": 2, "source": "train", "config": dict(config)})
    assert trained["config"] == {**config, "backend": "tensorflow"} and trained["schema_version"] == SCHEMA_VERSION


def test_version_3_runs_ran_on_tensorflow():
    for source in ("train", "record", "legacy"):
        doc = migrate_run({"id": source, "schema_version": 3, "source": source, "config": {"dataset": "digits"}})
        assert doc["config"] == {"dataset": "digits", "backend": "tensorflow"} and doc["schema_version"] == 4
    kept = migrate_run({"id": "j", "schema_version": 3, "source": "train", "config": {"backend": "jax"}})
    assert kept["config"]["backend"] == "jax"


def test_current_documents_are_left_alone():
    doc = {"id": "r1", "schema_version": SCHEMA_VERSION, "results": {"set_analysis": {"shares": {"": 1.0}},
                                                        "history": [{"epoch": 1, "performance": {}}]}}
    assert migrate_run(json.loads(json.dumps(doc))) == doc


def test_a_version_0_store_is_read_migrated_and_rewritten(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"runs": {
        "1": _version_0_run("20250101T000000-aaaaaa"), "2": _version_0_run("20250101T000000-bbbbbb")
    }}))
    store = Store(path)
    assert [run["results"]["set_analysis"]["shares"][""] for run in store.runs()] == [0.6, 0.6]
    assert store.summaries()[0]["config"]["model"] == "MicroResNet20"
    store.update_run("20250101T000000-a", status="failed")
    on_disk = json.loads(path.read_text())
    assert on_disk["meta"]["1"]["schema_version"] == SCHEMA_VERSION
    assert all(
        doc["schema_version"] == SCHEMA_VERSION and "shares" in doc["results"]["set_analysis"]
        for doc in on_disk["runs"].values()
    )


def test_a_store_in_our_layout_with_an_older_stamp_is_migrated(tmp_path):
    path = tmp_path / "store.json"
    Store(path).add_run({"id": "20250101T000000-cccccc", "config": {}})
    # Same-length edits: the file keeps its layout and size, but says version 0 throughout.
    path.write_bytes(path.read_bytes().replace(f'"schema_version":{SCHEMA_VERSION}'.encode(), b'"schema_version":0'))
    assert json.loads(path.read_bytes())["runs"]["1"]["schema_version"] == 0
    run = Store(path).get_run("20250101T000000-cccccc")
    assert run["schema_version"] == SCHEMA_VERSION
    assert run["results"] == {}


def test_documents_from_a_newer_schema_are_refused(tmp_path):
    newer = SCHEMA_VERSION + 1
    with pytest.raises(PsykError, match=f"schema version {newer}; this psyk reads versions 0 to {SCHEMA_VERSION}"):
        migrate_run({"id": "r", "schema_version": newer})
    path = tmp_path / "new.json"
    path.write_text(json.dumps({"runs": {"1": {"id": "r", "schema_version": 50}}}))
    with pytest.raises(PsykError, match=f"store {path}: run document '1': run 'r' has schema version 50"):
        Store(path).runs()
