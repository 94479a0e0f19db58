"""The query API: new documents, add / update / get / filter / delete."""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from psykedelic_cli.errors import PsykError
from psykedelic_cli.store import Store, new_run_document
from psykedelic_cli.store.schema import CONFIG_FIELDS, RECORD_CONFIG_FIELDS, SCHEMA_VERSION


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "psyk-store.json")


def test_new_run_document_shape():
    doc = new_run_document({"model": "MicroResNet32", "threshold": 1e-4, "extra": "kept"}, source="record")
    assert re.fullmatch(r"\d{8}T\d{6}-[0-9a-f]{6}", doc["id"])
    assert (doc["status"], doc["source"], doc["schema_version"], doc["error"], doc["finished_at"]) == (
        "running", "record", SCHEMA_VERSION, None, None)
    assert doc["created_at"] == doc["updated_at"] and doc["created_at"].endswith("+00:00")
    pinned = new_run_document({}, now=datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=timezone(timedelta(hours=2))))
    assert pinned["id"].startswith("20260304T030607-")
    assert pinned["created_at"] == pinned["updated_at"] == "2026-03-04T03:06:07.890+00:00"
    with pytest.raises(PsykError, match="needs a time zone"):
        new_run_document({}, now=datetime(2026, 3, 4))
    assert set(doc["host"]) == {
        "hostname", "platform", "python", "cpu_count", "pid", "process_start", "boot_id", "pid_namespace"
    }
    assert doc["host"]["pid"] == os.getpid()
    assert {"psykedelic", "tensorflow", "keras", "numpy", "scipy", "scikit-learn", "matplotlib", "tinydb", "typer",
            "rich"} <= set(doc["versions"])
    assert doc["versions"]["tinydb"] and doc["versions"]["numpy"]
    assert set(doc["config"]) == {*RECORD_CONFIG_FIELDS, "extra"}  # a record run has no training setting
    assert (doc["config"]["model"], doc["config"]["eval_batch_size"], doc["config"]["extra"]) == (
        "MicroResNet32", None, "kept")
    assert set(new_run_document({}, source="train")["config"]) == set(CONFIG_FIELDS)
    assert doc["results"] == {}
    with pytest.raises(PsykError, match="run source 'notebook' is not one of train, record, sensitivity, legacy"):
        new_run_document({}, source="notebook")


def test_the_store_package_never_imports_tensorflow():
    code = (
        "import sys; from psykedelic_cli.store import Store, new_run_document; "
        "import psykedelic_cli.store.legacy, psykedelic_cli.store.merge, psykedelic_cli.cli.store_cmds; "
        "new_run_document({}); print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_add_assigns_ids_and_refuses_duplicates(store, make_run):
    run_id = store.add_run({"config": {"model": "m"}, "results": {}})
    doc = store.get_run(run_id)
    assert (doc["schema_version"], doc["config"]) == (SCHEMA_VERSION, {"model": "m"})
    existing = make_run()
    store.add_run(existing)
    before = store.path.read_bytes()
    with pytest.raises(PsykError, match=f"run {existing['id']} is already in"):
        store.add_runs([make_run(), dict(existing)])
    assert store.path.read_bytes() == before
    with pytest.raises(PsykError, match="run status 'done' is not one of"):
        store.add_run({"status": "done"})
    with pytest.raises(PsykError, match="field 'config' must be a dict"):
        store.add_run({"config": [1]})


def test_update_merges_results_and_stamps_times(store, make_run, clock):
    run_id = store.add_run(make_run(status="running"))
    created = store.get_run(run_id)
    running = store.update_run(run_id, results={"final": {"accuracy": 0.5}}, note="epoch 3", now=clock())
    assert running["finished_at"] is None and running["note"] == "epoch 3"
    assert running["updated_at"] == clock.now.isoformat(timespec="milliseconds") > created["updated_at"]
    done = store.update_run(run_id[:18], status="completed", results={"eig_stats": {"complex_ratio": 0.2}},
                            now=clock())
    stored = store.get_run(run_id)
    assert stored == done
    assert stored["finished_at"] == stored["updated_at"] == clock.now.isoformat(timespec="milliseconds")
    assert set(stored["results"]) == {"performance", "pruning_per_layer", "final", "eig_stats"}
    assert stored["results"]["final"] == {"accuracy": 0.5}
    failed = store.update_run(run_id, status="failed", error="out of memory")
    assert (failed["status"], failed["error"]) == ("failed", "out of memory")
    with pytest.raises(PsykError, match="run status 'paused' is not one of running, completed, failed, interrupted"):
        store.update_run(run_id, status="paused")
    with pytest.raises(PsykError, match="id cannot be replaced"):
        store.update_run(run_id, id="other")


def test_get_by_prefix(store, make_run):
    first, second = make_run(), make_run()
    first["id"], second["id"] = "20261126T011234-3f9c2a", "20261126T011234-3fa000"
    store.add_runs([first, second])
    assert store.get_run("20261126T011234-3f9")["id"] == first["id"]
    assert store.get_run("20261126T011234-3fa000")["id"] == second["id"]
    with pytest.raises(PsykError, match="prefix '20261126T011234-3f' is ambiguous: "
                       "it matches 20261126T011234-3f9c2a, 20261126T011234-3fa000"):
        store.get_run("20261126T011234-3f")
    with pytest.raises(PsykError, match=r"no run '2025' in .*psyk-store.json \(2 runs"):
        store.get_run("2025")


def test_filters(store, make_run):
    store.add_runs([
        make_run(dataset="cifar10", threshold=1e-4, lr=0.1, seed=1),
        make_run(dataset="cifar10", threshold=1e-3, seed=2, status="failed"),
        make_run(dataset="digits", threshold=1e-4 * (1 + 1e-12), seed=3, init_mode="he"),
        make_run(dataset="digits", threshold=1e-4 * (1 + 1e-6), seed=4),
    ])

    def seeds(**filters):
        return [run["config"]["seed"] for run in sorted(store.runs(**filters), key=lambda r: r["config"]["seed"])]

    assert seeds(threshold=1e-4) == [1, 3]  # floats within rel. 1e-9
    assert seeds(dataset=["digits", "cifar100"], threshold=(1e-4, 1e-3)) == [3]
    assert seeds(dataset=None, model="MicroResNet32") == [1, 2, 3, 4]
    assert seeds(status="failed") == [2]
    assert seeds(seed=2, status="completed") == []
    assert seeds(init_mode="he") == [3]
    assert seeds(lr=0.1) == [1]
    with pytest.raises(PsykError, match="unknown config field.* datset"):
        store.runs(datset="digits")
    with pytest.raises(PsykError, match="run status 'done'"):
        store.summaries(status="done")
    ids = [run["id"] for run in store.runs()]
    assert ids == sorted(ids)


def test_delete(store, make_run):
    runs = [make_run(), make_run(), make_run()]
    for run, suffix in zip(runs, ("aaaaaa", "bbbbbb", "cccccc")):
        run["id"] = f"20261126T011234-{suffix}"
    store.add_runs(runs)
    with pytest.raises(PsykError, match="no run 'nope'"):
        store.delete_runs(["20261126T011234-aaaaaa", "nope"])
    assert len(store.runs()) == 3
    assert store.delete_runs(["20261126T011234-aaaaaa", "20261126T011234-b"]) == 2
    assert [run["id"] for run in store.runs()] == ["20261126T011234-cccccc"]


def test_reading_runs_restores_the_garbage_collector(store, make_run):
    store.add_run(make_run())
    assert gc.isenabled()
    store.runs()
    assert gc.isenabled()
    gc.disable()
    try:
        store.runs()
        assert not gc.isenabled()
    finally:
        gc.enable()
