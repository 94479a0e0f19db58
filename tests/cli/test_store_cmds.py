"""``psyk list-experiments | show | delete | merge | import-legacy`` through the real CLI."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from psykedelic_cli.cli.app import app
from psykedelic_cli.store import Store, new_run_document

LEGACY_KEY = "MicroResNet32:adam:categorical_crossentropy:1e-03:200:128:random_init:CIFAR-10:1e-04"


def _row(accuracy: float, active: int, total: int = 1000) -> dict:
    return {"accuracy": accuracy, "precision": accuracy, "recall": accuracy, "active_params": active,
            "total_params": total, "compression_ratio": 1 - active / total, "score": accuracy * (1 - active / total),
            "alive_kernels": None, "total_kernels": None}


def _run(run_id: str, status: str = "completed", **config) -> dict:
    """A run created at the time its id says (ids are UTC time stamps)."""
    created = datetime.strptime(run_id.split("-")[0], "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
    doc = new_run_document({"model": "MicroResNet20", "dataset": "digits", "mode": "det", "threshold": 1e-4,
                            "l1_penalty": 1e-4, "seed": 0, "compare": ["det", "weight"], "backend": "tensorflow",
                            **config}, now=created)
    doc.update(id=run_id, status=status)
    doc["results"]["performance"] = {"None": _row(0.96, 1000), "det": _row(0.9, 600), "weight": _row(0.93, 700)}
    return doc


@pytest.fixture
def store_file(tmp_path) -> Path:
    path = tmp_path / "psyk-store.json"
    Store(path).add_runs([
        _run("20261126T010000-aaaaaa"),
        _run("20261126T020000-bbbbbb", dataset="cifar10", mode="weight", seed=1),
        _run("20261126T030000-cccccc", status="failed", mode=None),
    ])
    return path


def psyk(store: Path, *args: str, input: str | None = None):
    return CliRunner().invoke(app, ["--store", str(store), *args], input=input)


def test_list_table(store_file):
    result = psyk(store_file, "list-experiments")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    first = next(line for line in lines if "20261126T010000-aaaaaa" in line)
    assert first.split() == ["20261126T010000-aaaaaa", "2026-11-26", first.split()[2], "completed", "MicroResNet20",
                             "digits", "tensorflow", "det", "+2", "1e-04", "1e-04", "0", "90.00%", "40.00%"]
    failed = next(line for line in lines if "cccccc" in line)
    assert "96.00%" in failed and "— +2" in failed  # no trained mode: the unpruned baseline
    assert "3 runs in" in result.stdout


def test_list_filters_and_formats(store_file):
    result = psyk(store_file, "list-experiments", "--dataset", "cifar10", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["id"] for row in rows] == ["20261126T020000-bbbbbb"]
    assert (rows[0]["mode"], rows[0]["accuracy"], rows[0]["compression_ratio"], rows[0]["compared"]) == (
        "weight", "0.93", "0.30000000000000004", "2")
    assert list(rows[0]) == ["id", "created_at", "status", "model", "dataset", "backend", "mode", "compared",
                             "threshold", "l1_penalty", "seed", "accuracy", "compression_ratio", "stale"]
    assert rows[0]["stale"] == ""
    docs = json.loads(psyk(store_file, "list-experiments", "--status", "completed", "-f", "json").stdout)
    assert [doc["id"] for doc in docs] == ["20261126T010000-aaaaaa", "20261126T020000-bbbbbb"]
    assert docs[0]["results"]["performance"]["det"]["accuracy"] == 0.9
    assert json.loads(psyk(store_file, "list-experiments", "--model", "ResNet50", "-f", "json").stdout) == []
    assert psyk(store_file, "list-experiments", "--mode", "det", "-f", "csv").stdout.count("\n") == 2
    empty = psyk(store_file, "list-experiments", "--dataset", "cifar100")
    assert empty.exit_code == 0 and "no runs in" in empty.stdout


def test_list_on_a_missing_store(tmp_path):
    missing = tmp_path / "none.json"
    assert json.loads(psyk(missing, "list-experiments", "-f", "json").stdout) == []
    assert psyk(missing, "list-experiments", "-f", "csv").stdout.startswith("id,created_at,")
    assert not missing.exists()


def test_list_bad_status_is_one_line(store_file):
    result = psyk(store_file, "list-experiments", "--status", "done")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "psyk: error: run status 'done' is not one of running, completed, failed, interrupted")


def test_store_from_the_environment(store_file):
    result = CliRunner().invoke(app, ["list-experiments", "-f", "csv"], env={"PSYK_STORE": str(store_file)})
    assert result.stdout.count("\n") == 4


def test_psyk_store_naming_a_link_writes_the_shared_store(store_file, tmp_path):
    link = tmp_path / "work" / "psyk-store.json"
    link.parent.mkdir()
    link.symlink_to(store_file)
    env = {"PSYK_STORE": str(link)}
    imported = CliRunner().invoke(app, ["import-legacy", str(_legacy_file(tmp_path))], env=env)
    deleted = CliRunner().invoke(app, ["delete", "20261126T01", "--yes"], env=env)
    assert (imported.exit_code, deleted.exit_code) == (0, 0), imported.output + deleted.output
    assert link.is_symlink() and link.resolve() == store_file
    assert len(Store(store_file).summaries()) == 3 - 1 + 3
    assert list(link.parent.iterdir()) == [link]  # the lock is beside the shared store, not the link
    assert (store_file.parent / "psyk-store.json.lock").is_file()


def test_show(store_file):
    result = psyk(store_file, "show", "20261126T02")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "run 20261126T020000-bbbbbb" in text and "completed" in text
    assert "cifar10" in text and "det, weight" in text
    assert "performance" in text and "3 modes" in text
    weight = next(line for line in text.splitlines() if line.strip().startswith("weight (trained)"))
    assert weight.split()[2:5] == ["93.00%", "30.00%", "0.2790"]
    doc = json.loads(psyk(store_file, "show", "20261126T020000-bbbbbb", "--format", "json").stdout)
    assert doc == {**Store(store_file).get_run("20261126T020000-bbbbbb"), "stale": None}


def _field_rows(text: str, title: str) -> dict[str, str]:
    """A ``show`` table of names and values as printed: each value joined from its folded lines."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == title) + 2
    rows: dict[str, str] = {}
    for line in lines[start:]:
        if not line.strip():
            break
        if line.startswith("  "):
            rows[list(rows)[-1]] += line.strip()
        else:
            name, value = line.strip().split(maxsplit=1)
            rows[name] = value.strip()
    return rows


@pytest.mark.parametrize("columns", [40, 80])
def test_show_cuts_no_value_short_at_any_width(tmp_path, columns):
    path = tmp_path / "psyk-store.json"
    doc = _run("20261126T020000-bbbbbb", loss="categorical_crossentropy", contribution_threshold=0.001,
               init=str(tmp_path / "initial-weights" / "microresnet20-seed0.weights.h5"))
    doc["warnings"] = [f"{tmp_path}/outputs/model.keras was not written (No space left on device)"]
    Store(path).add_run(doc)
    result = CliRunner().invoke(app, ["--store", str(path), "show", "20261126T02"], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout
    shown = _field_rows(result.stdout, "config")
    assert shown["loss"] == "categorical_crossentropy" and shown["contribution_threshold"] == "0.001"
    assert shown["init"] == doc["config"]["init"] and shown["compare"] == "det, weight"
    assert list(shown) == list(doc["config"])
    assert _field_rows(result.stdout, "results") == {"performance": "3 modes"}
    warning = result.stdout[result.stdout.index("warning: "):result.stdout.index("config")]
    assert "".join(warning.split()) == "warning:" + "".join(doc["warnings"][0].split())
    table = result.stdout[result.stdout.index("performance per mode"):]
    for cell in ("None", "(unpruned)", "det", "weight", "(trained)", "93.00%", "30.00%", "0.2790", "1,000", "700"):
        assert cell in table.split(), cell


def test_show_prints_errors_and_warnings_verbatim(store_file):
    Store(store_file).update_run("20261126T03", error="OSError: [Errno 28] No space left on device [bold]x[/bold]",
                                 warnings=["out/[run]/model.keras was not written (disk full)", "second"])
    result = psyk(store_file, "show", "20261126T03")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "error: OSError: [Errno 28] No space left on device [bold]x[/bold]" in lines
    assert [line for line in lines if line.startswith("warning: ")] == [
        "warning: out/[run]/model.keras was not written (disk full)", "warning: second"]
    assert "warning" not in psyk(store_file, "show", "20261126T02").stdout


@pytest.mark.parametrize("columns", [40, 80])
def test_list_table_cuts_nothing_at_any_width(store_file, columns):
    result = CliRunner().invoke(app, ["--store", str(store_file), "list-experiments"], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout
    line = next(line for line in result.stdout.splitlines() if "20261126T020000-bbbbbb" in line)
    assert line.split() == ["20261126T020000-bbbbbb", "2026-11-26", "02:00", "completed", "MicroResNet20", "cifar10",
                            "tensorflow", "weight", "+2", "1e-04", "1e-04", "1", "93.00%", "30.00%"]


def test_show_unknown_and_ambiguous(store_file):
    unknown = psyk(store_file, "show", "1999")
    assert unknown.exit_code == 2 and unknown.stderr.count("\n") == 1
    assert "no run '1999'" in unknown.stderr
    ambiguous = psyk(store_file, "show", "2026")
    assert ambiguous.exit_code == 2
    assert "ambiguous" in ambiguous.stderr and "20261126T030000-cccccc" in ambiguous.stderr


def test_delete(store_file):
    assert psyk(store_file, "delete", "20261126T01", input="n\n").exit_code == 1
    assert len(Store(store_file).runs()) == 3
    confirmed = psyk(store_file, "delete", "20261126T01", input="y\n")
    assert confirmed.exit_code == 0 and "deleted 1 run(s)" in confirmed.stdout
    assert psyk(store_file, "delete", "20261126T02", "20261126T03", "--yes").exit_code == 0
    assert Store(store_file).runs() == []
    unknown = psyk(store_file, "delete", "nope", "--yes")
    assert unknown.exit_code == 2 and unknown.stderr.startswith("psyk: error: no run 'nope'")


def test_delete_without_stdin_or_yes_refuses(store_file):
    before = store_file.read_bytes()
    result = subprocess.run(
        [str(Path(sys.executable).with_name("psyk")), "--store", str(store_file), "delete", "20261126T01"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "psyk: error: no confirmation could be read: pass --yes to delete without asking")
    assert "Traceback" not in result.stderr
    assert store_file.read_bytes() == before


def test_mark_stale_asks_first_and_leaves_live_runs(tmp_path):
    store = tmp_path / "psyk-store.json"
    gone = _run("20261126T010000-aaaaaa", status="running")
    gone["host"]["pid"] = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1  # no process has it
    live = _run("20261126T020000-bbbbbb", status="running")  # this test's own process
    Store(store).add_runs([gone, live])
    listed = psyk(store, "list-experiments")
    gone_line = next(line for line in listed.stdout.splitlines() if "aaaaaa" in line)
    live_line = next(line for line in listed.stdout.splitlines() if "bbbbbb" in line)
    assert "running (stale: process gone)" in gone_line and "stale" not in live_line
    rows = list(csv.DictReader(io.StringIO(psyk(store, "list-experiments", "-f", "csv").stdout)))
    assert [(row["status"], row["stale"]) for row in rows] == [("running", "process gone"), ("running", "")]
    docs = json.loads(psyk(store, "list-experiments", "-f", "json").stdout)
    assert [(doc["id"], doc["stale"]) for doc in docs] == [(gone["id"], "process gone"), (live["id"], None)]
    assert json.loads(psyk(store, "show", "20261126T01", "-f", "json").stdout)["stale"] == "process gone"
    assert json.loads(psyk(store, "show", "20261126T02", "-f", "json").stdout)["stale"] is None
    declined = psyk(store, "mark-stale", input="n\n")
    assert declined.exit_code == 1 and "aaaaaa" in declined.stdout and "bbbbbb" not in declined.stdout
    assert Store(store).get_run("20261126T01")["status"] == "running"
    confirmed = psyk(store, "mark-stale", input="y\n")
    assert confirmed.exit_code == 0 and "marked 1 run(s)" in confirmed.stdout
    assert [run["status"] for run in Store(store).runs()] == ["interrupted", "running"]
    assert psyk(store, "mark-stale").stdout.startswith("no stale runs in")
    bad = psyk(store, "mark-stale", "--silent-hours", "-1")
    assert bad.exit_code == 2 and bad.stderr.count("\n") == 1


def test_merge(store_file, tmp_path):
    other = Store(tmp_path / "other.json")
    newer = _run("20261126T010000-aaaaaa")
    newer["updated_at"] = "2026-11-27T00:00:00.000+00:00"  # updated after the copy in store_file
    other.add_runs([_run("20261127T000000-dddddd"), newer])
    result = psyk(store_file, "merge", str(other.path))
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "other.json" in line)
    assert row.split()[-3:] == ["1", "1", "0"]  # its copy of aaaaaa is newer
    again = psyk(store_file, "merge", str(other.path))
    assert next(line for line in again.stdout.splitlines() if "other.json" in line).split()[-3:] == ["0", "0", "2"]
    assert len(Store(store_file).runs()) == 4
    bad = tmp_path / "bad.json"
    bad.write_text("nonsense")
    failed = psyk(store_file, "merge", str(bad))
    assert failed.exit_code == 2 and f"store {bad} is not valid JSON" in failed.stderr


def _legacy_file(tmp_path: Path) -> Path:
    entry = {"None": {"param_count": 1000, "score": 0.0, "accuracy": 0.9, "precision": 0.9, "recall": 0.9},
             "det": {"param_count": 250, "score": 0.7, "accuracy": 0.93, "precision": 0.9, "recall": 0.9}}
    path = tmp_path / "experiments.json"
    path.write_text(json.dumps({
        "performance": {LEGACY_KEY: {"1e-04": [entry, entry], "1e-03": [entry]}},
        "learning_curve": {
            LEGACY_KEY: {"1e-04": {"det": [{"loss": [1.0], "acc": [0.5]}, {"loss": [0.9], "acc": [0.6]}]}}
        },
    }))
    return path


def test_import_legacy(tmp_path):
    store = tmp_path / "psyk-store.json"
    legacy = _legacy_file(tmp_path)
    result = psyk(store, "import-legacy", str(legacy))
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "MicroResNet32" in line)
    assert row.split() == ["cifar10", "MicroResNet32", "3"]
    assert "skipped (already imported)" in result.stdout
    assert next(line for line in result.stdout.splitlines() if "corrected" in line).split()[-1] == "0"
    runs = Store(store).runs(threshold=1e-4)
    assert [run["config"]["mode"] for run in runs] == ["det", "det"]
    assert runs[0]["results"]["performance"]["det"]["compression_ratio"] == 0.75
    again = psyk(store, "import-legacy", str(legacy))
    skipped = next(line for line in again.stdout.splitlines() if "skipped" in line)
    assert skipped.split()[-1] == "3"
    assert len(Store(store).runs()) == 3


def test_import_legacy_of_a_file_with_undefined_precision(tmp_path):
    """The original writes null precision/recall when a class is never predicted: the file imports whole."""
    legacy = _legacy_file(tmp_path)
    data = json.loads(legacy.read_text())
    data["performance"][LEGACY_KEY]["1e-04"][0]["det"]["precision"] = None
    legacy.write_text(json.dumps(data))
    store = tmp_path / "psyk-store.json"
    result = psyk(store, "import-legacy", str(legacy))
    assert result.exit_code == 0, result.output
    assert len(Store(store).runs()) == 3
    precisions = sorted(str(run["results"]["performance"]["det"]["precision"]) for run in Store(store).runs())
    assert precisions == ["0.9", "0.9", "None"]
    shown = psyk(store, "show", Store(store).runs(threshold=1e-4)[0]["id"])
    assert shown.exit_code == 0 and "det" in shown.stdout


def test_import_legacy_malformed_is_one_line_and_writes_nothing(tmp_path):
    store = tmp_path / "psyk-store.json"
    bad = tmp_path / "experiments.json"
    bad.write_text(json.dumps({"performance": {LEGACY_KEY: {"1e-04": [{"None": {"param_count": "many"}}]}}}))
    result = psyk(store, "import-legacy", str(bad))
    assert result.exit_code == 2
    assert result.stderr == (
        f'psyk: error: {bad}: $["performance"]["{LEGACY_KEY}"]["1e-04"][0]["None"]["param_count"]: '
        'expected a number, got str "many"; nothing was imported\n'
    )
    assert not store.exists()
    missing = psyk(store, "import-legacy", str(tmp_path / "nowhere.json"))
    assert missing.exit_code == 2 and "no legacy file" in missing.stderr


def test_a_store_under_a_file_is_one_line_naming_the_file(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("not a folder\n")
    store = afile / "x.json"
    other = tmp_path / "other.json"
    Store(other).add_run(_run("20261127T000000-dddddd"))
    for command in (["import-legacy", str(_legacy_file(tmp_path))], ["merge", str(other)], ["list-experiments"]):
        result = subprocess.run([str(Path(sys.executable).with_name("psyk")), "--store", str(store), *command],
                                capture_output=True, text=True)
        verb = "read" if command == ["list-experiments"] else "write"
        assert (result.returncode, result.stderr) == (
            2, f"psyk: error: cannot {verb} store {store}: it lies under the file {afile}\n"), command
    assert afile.read_text() == "not a folder\n"


def test_store_commands_import_no_tensorflow():
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import psykedelic_cli.cli.store_cmds"],
        capture_output=True, text=True, check=True,
    )
    assert not [line for line in result.stderr.splitlines() if "tensorflow" in line or "keras" in line]
