"""``psyk report …`` end to end: a real store file on disk, the real CLI."""

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from psykedelic_cli.cli.app import app
from psykedelic_cli.store import Store
from psykedelic_cli.store.schema import BASE_CRITERIA, EIG_CRITERIA

COMMANDS = ("eig-stats", "performance", "set-analysis", "per-threshold", "per-layer", "history")


def results(accuracy: float) -> dict:
    """Every result kind; numbers derived from ``accuracy`` so runs differ predictably."""
    rows = {
        "None": {"accuracy": accuracy, "compression_ratio": 0.0, "score": 0.0},
        "det": {"accuracy": accuracy - 0.1, "compression_ratio": 0.5, "score": 0.4},
    }
    layers = [{"layer": "conv", "active_params": 9, "total_params": 18, "alive_kernels": 1, "total_kernels": 2}]
    return {
        "performance": rows,
        "pruning_per_layer": {"None": layers, "det": layers},
        "eig_stats": {
            "complex_ratio": accuracy / 2,
            "criteria": {c: {"target_complex_ratio": 0.5, "pruned_complex_ratio": 0.25} for c in EIG_CRITERIA},
        },
        "set_analysis": {
            "criteria": ["det", "weight"], "total_kernels": 2, "shares": {"": 1 - accuracy, "det": accuracy}
        },
        "pruning_per_threshold": {"thresholds": [1e-4, 1e-3], "pruned_ratio": {"det": [0.1, accuracy]}, "rule": "own"},
        "history": [{"epoch": 1, "performance": rows}],
    }


def document(run_id: str, accuracy: float, *, status: str = "completed", **config) -> dict:
    return {
        "id": run_id,
        "status": status,
        "source": "train",
        "created_at": "2026-01-01T00:00:00+00:00",
        "updated_at": "2026-01-01T00:00:00+00:00",
        "config": {
            "model": "MicroResNet20", "dataset": "digits", "optimizer": "adam", "lr": 1e-3, "epochs": 2,
            "batch_size": 32, "init_mode": "default", "l1_penalty": 1e-4, "threshold": 1e-4, "history_interval": 1,
            "seed": 0, **config,
        },
        "results": results(accuracy),
    }


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "psyk-store.json"
    Store(path).add_runs([
        document("20260101T000001-aaaaaa", 0.8, seed=1),
        document("20260101T000002-bbbbbb", 0.9, seed=2),
        document("20260101T000003-cccccc", 0.6, dataset="cifar10"),
        document("20260101T000004-dddddd", 0.5, l1_penalty=1e-3),
        document("20260101T000005-eeeeee", 0.1, status="running"),  # unfinished: never reported
    ])
    return path


def psyk(store, *args):
    return CliRunner().invoke(app, ["--store", str(store), "report", *args])


def records(result) -> list[dict]:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["records"]


def test_performance_json_has_the_hand_computed_numbers(store):
    got = records(psyk(store, "performance", "--l1-penalty", "1e-4", "--format", "json"))
    det = next(r for r in got if r["dataset"] == "digits" and r["category"] == "accuracy" and r["mode"] == "det")
    assert (det["mean"], det["std"], det["n"]) == (pytest.approx(0.75), pytest.approx(0.05), 2)
    assert {r["dataset"] for r in got} == {"digits", "cifar10"}


def test_filters_narrow_the_runs(store):
    only_cifar = records(psyk(store, "eig-stats", "--dataset", "cifar10", "-f", "json"))
    assert {r["dataset"] for r in only_cifar} == {"cifar10"}
    other_l1 = records(psyk(store, "eig-stats", "--l1-penalty", "0.001", "-f", "json"))
    complex_ratio = next(r for r in other_l1 if r["criterion"] == "all")
    assert (complex_ratio["mean"], complex_ratio["n"]) == (pytest.approx(0.25), 1)
    either = records(
        psyk(store, "eig-stats", "--dataset", "cifar10", "--dataset", "digits", "--l1-penalty", "1e-4", "-f", "json")
    )
    assert {(r["dataset"], r["n"]) for r in either} == {("cifar10", 1), ("digits", 2)}


def test_without_filters_other_settings_split_instead_of_averaging(store):
    result = psyk(store, "per-threshold", "-f", "csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert result.stdout.splitlines()[0] == "dataset,model,rule,threshold,criterion,l1_penalty,mean,std,n"
    digits = {(r["l1_penalty"], r["threshold"]): (float(r["mean"]), r["n"]) for r in rows if r["dataset"] == "digits"}
    assert digits[("0.0001", "0.001")] == (pytest.approx(0.85), "2")
    assert digits[("0.001", "0.001")] == (pytest.approx(0.5), "1")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_report_prints_every_format(store, command):
    for table_format, check in (
        ("csv", lambda out: re.search(r",mean,std,n(,best)?$", out.splitlines()[0])),
        ("json", lambda out: json.loads(out)["records"]),
        ("latex", lambda out: r"\begin{tabular}" in out and r"\bottomrule" in out),
        ("markdown", lambda out: out.startswith("### ") and "|---" in out),
        ("table", lambda out: "population std" in out),
    ):
        result = psyk(store, command, "--dataset", "digits", "--l1-penalty", "1e-4", "-f", table_format)
        assert result.exit_code == 0, result.stderr
        assert check(result.stdout), (table_format, result.stdout)


def test_out_dir_writes_tables_and_charts_and_lists_them(store, tmp_path):
    out = tmp_path / "figures"
    result = psyk(store, "performance", "--dataset", "digits", "-f", "csv", "-o", str(out), "--image-format", "pdf")
    assert result.exit_code == 0, result.stderr
    written = [line.removeprefix("wrote ") for line in result.stderr.splitlines()]
    names = sorted(p.rsplit("/", 1)[-1] for p in written)
    assert names == [
        "performance.csv",
        "performance.md",
        "performance.tex",
        "performance_digits_MicroResNet20_default_1e-04_l1_penalty-0.001.pdf",  # one chart per L1 penalty
        "performance_digits_MicroResNet20_default_1e-04_l1_penalty-1e-04.pdf",
    ]
    for path in written:
        data = open(path, "rb").read()
        assert data.startswith(b"%PDF-") if path.endswith(".pdf") else data
    assert (out / "performance.csv").read_text() == result.stdout


def test_mode_selects_the_compared_modes(store):
    got = records(psyk(store, "history", "--mode", "det", "--dataset", "digits", "--l1-penalty", "1e-4", "-f", "json"))
    assert {r["mode"] for r in got} == {"det"}
    result = psyk(store, "per-layer", "--mode", "spectral_norm")
    assert result.exit_code == 1
    assert result.stderr == "psyk: error: no matching run has per-layer results for the mode(s) spectral_norm\n"


def test_no_matching_run_is_one_line_and_exit_1(store):
    result = psyk(store, "performance", "--lr", "0.5", "--dataset", "digits")
    assert result.exit_code == 1
    assert result.stderr == f"psyk: error: no completed run in {store} matches dataset=digits, lr=0.5\n"
    assert result.stdout == ""


def test_runs_without_the_result_kind_are_nothing_found(tmp_path):
    path = tmp_path / "store.json"
    doc = document("20260101T000001-aaaaaa", 0.8)
    doc["results"] = {"performance": doc["results"]["performance"]}
    Store(path).add_run(doc)
    result = psyk(path, "set-analysis")
    assert (result.exit_code, result.stderr) == (1, "psyk: error: no matching run has set analysis results\n")


def test_bad_format_is_a_usage_error(store):
    result = psyk(store, "performance", "--format", "xml")
    assert result.exit_code == 2
    assert "xml" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("command", COMMANDS)
def test_help_carries_an_example(command):
    result = CliRunner().invoke(app, ["report", command, "--help"])
    assert result.exit_code == 0
    assert f"Example: psyk report {command}" in " ".join(result.stdout.split())
    assert "--threshold" in result.stdout and "--out-dir" in result.stdout
    assert ("--history-interval" in result.stdout) == (command == "history")
    assert bool(re.search(r"--mode\b(?!l)", result.stdout)) == (command in ("performance", "per-layer", "history"))


def test_an_empty_or_missing_store_is_nothing_found(tmp_path):
    result = psyk(tmp_path / "none.json", "eig-stats")
    assert (result.exit_code, result.stderr) == (1, f"psyk: error: no completed run in {tmp_path / 'none.json'}\n")


# --- realistic widths: every base criterion, long mode names, three models -------------------------

WIDE_MODES = ("det", "spectral_radius_real_contrib", "spectral_radius_sorted_neurons", "weight_sorted_kernels")
WIDE_MODELS = ("MicroResNet32", "MicroResNet56", "MicroResNet110")


def wide_results(model: int, seed: int) -> dict:
    """Every result kind with the label and number widths of a real store."""
    performance = {"None": {"accuracy": 0.9123 + 0.001 * seed, "compression_ratio": 0.0, "score": 0.0}}
    for i, mode in enumerate(WIDE_MODES, 1):
        ratio = 0.1 * i + 0.0123 * seed + 0.01 * model
        performance[mode] = {"accuracy": 0.9 - 0.02 * i, "compression_ratio": ratio, "score": 0.9 * ratio}
    layers = [
        {"layer": f"micro_conv2d_{i}", "active_params": 2304 - 9 * i * (seed + 1), "total_params": 2304}
        for i in range(1, 20)
    ]
    criteria = list(BASE_CRITERIA)
    shares = {"+".join(criteria): 0.0041, "+".join(criteria[1:7]): 0.0103 + 0.001 * seed, "det_corr+weight": 0.0201}
    shares[""] = 1 - sum(shares.values())
    thresholds = [10.0**e for e in range(-12, 1)]
    return {
        "performance": performance,
        "pruning_per_layer": {mode: layers for mode in performance},
        "eig_stats": {
            "complex_ratio": 0.4567 + 0.01 * seed,
            "criteria": {c: {"target_complex_ratio": 0.5123, "pruned_complex_ratio": 0.2512} for c in EIG_CRITERIA},
        },
        "set_analysis": {"criteria": criteria, "total_kernels": 50000, "shares": shares},
        "pruning_per_threshold": {
            "thresholds": thresholds,
            "pruned_ratio": {c: [min(1.0, 0.083 * j + 0.001 * seed) for j in range(len(thresholds))] for c in criteria},
            "rule": "own",
        },
        "history": [{"epoch": e, "performance": performance} for e in (2, 4, 6)],
    }


@pytest.fixture
def wide_store(tmp_path):
    path = tmp_path / "wide.json"
    docs = []
    for model_index, model in enumerate(WIDE_MODELS):
        for seed in (1, 2, 3):
            doc = document(f"20260101T00000{model_index}-{seed:06d}", 0.9, model=model, seed=seed, compare=WIDE_MODES)
            doc["results"] = wide_results(model_index, seed)
            docs.append(doc)
    Store(path).add_runs(docs)
    return path


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("command", COMMANDS)
def test_terminal_tables_show_every_number_in_full_at_any_width(wide_store, command, columns):
    from psykedelic_cli import reports

    result = CliRunner().invoke(app, ["--store", str(wide_store), "report", command], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.stderr
    assert "…" not in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= columns
    spec = next(spec for spec in report_commands() if spec.name == command)
    report = getattr(reports, spec.build)(Store(wide_store).runs(status="completed"))
    for table in report.tables:
        for text in table.cell_texts().values():
            assert text in result.stdout, text
    for model in WIDE_MODELS:
        assert model in result.stdout or command in ("per-layer", "history")  # those tables name the model in titles


def report_commands():
    from psykedelic_cli.cli.report import COMMANDS as SPECS

    return SPECS


def test_piped_and_dumb_terminal_tables_keep_the_best_mark(store):
    env = {**os.environ, "TERM": "dumb", "COLUMNS": "80"}
    for command, mark in (("performance", "* marks the best of each column"),
                          ("history", "* marks the winner of each epoch")):
        result = subprocess.run(
            [str(Path(sys.executable).with_name("psyk")), "--store", str(store), "report", command,
             "--dataset", "digits", "--l1-penalty", "1e-4"],
            capture_output=True, text=True, env=env, check=True,
        )
        text = " ".join(result.stdout.split())
        assert mark in text and "Bold" not in text
        assert "\x1b[" not in result.stdout  # no styles at all: the mark is the text
        best = [r for r in records(psyk(store, command, "--dataset", "digits", "--l1-penalty", "1e-4", "-f", "json"))
                if r["best"]]
        assert best and len(re.findall(r"\*\d", text)) == len(best)  # the mark of each best cell
    accuracy = re.search(r"│ None\s+│\s+(\S+)", subprocess.run(
        [str(Path(sys.executable).with_name("psyk")), "--store", str(store), "report", "performance",
         "--dataset", "digits", "--l1-penalty", "1e-4"], capture_output=True, text=True, env=env, check=True).stdout)
    assert accuracy.group(1) == "*85.00"  # the unpruned baseline is the most accurate


def test_csv_carries_the_best_mark_where_the_tables_show_one(store):
    for command, marks in (("performance", True), ("history", True), ("eig-stats", False), ("per-layer", False)):
        result = psyk(store, command, "--dataset", "digits", "--l1-penalty", "1e-4", "-f", "csv")
        assert result.exit_code == 0, result.stderr
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        assert ("best" in rows[0]) == marks, command
        if marks:
            assert {row["best"] for row in rows} == {"True", "False"}
        markdown = psyk(store, command, "--dataset", "digits", "--l1-penalty", "1e-4", "-f", "markdown").stdout
        assert ("Bold marks" in markdown) == marks and ("**" in markdown) == marks


# --- degenerate data: nothing pruned, a single run, missing values -------------------------------------


def nothing_pruned(accuracy: float) -> dict:
    """A run at --threshold 1e-12: no criterion prunes any kernel."""
    results_ = results(accuracy)
    rows = {mode: {"accuracy": accuracy, "compression_ratio": 0.0, "score": 0.0} for mode in ("None", "det")}
    layers = [{"layer": "conv", "active_params": 18, "total_params": 18, "alive_kernels": 2, "total_kernels": 2}]
    results_.update(
        performance=rows,
        pruning_per_layer={"None": layers, "det": layers},
        set_analysis={"criteria": list(BASE_CRITERIA), "total_kernels": 2, "shares": {"": 1.0}},
        pruning_per_threshold={"thresholds": [1e-12, 1e-4], "pruned_ratio": {"det": [0.0, 0.0]}, "rule": "own"},
        history=[{"epoch": 1, "performance": rows}],
    )
    results_["eig_stats"]["criteria"] = {
        c: {"target_complex_ratio": 0.5, "pruned_complex_ratio": None} for c in EIG_CRITERIA
    }
    return results_


def missing_values(accuracy: float) -> dict:
    """Results whose numbers were never measured (None): a chart has nothing to draw."""
    results_ = results(accuracy)
    results_["performance"]["det"] = {"accuracy": None, "compression_ratio": None, "score": None}
    results_["pruning_per_threshold"]["pruned_ratio"] = {"det": [None, None]}
    return results_


@pytest.fixture
def degenerate_store(tmp_path):
    path = tmp_path / "degenerate.json"
    nothing = document("20260101T000001-aaaaaa", 0.9, threshold=1e-12)
    nothing["results"] = nothing_pruned(0.9)
    missing = document("20260101T000002-bbbbbb", 0.8, dataset="cifar10", threshold=1e-12)
    missing["results"] = missing_values(0.8)
    Store(path).add_runs([nothing, missing])
    return path


def test_set_analysis_of_runs_that_pruned_nothing_says_so_and_draws(degenerate_store, tmp_path):
    out = tmp_path / "charts"
    result = psyk(degenerate_store, "set-analysis", "--dataset", "digits", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert "No criterion pruned any kernel." in " ".join(result.stdout.split())
    charts = sorted(out.glob("*.png"))
    assert [p.name for p in charts] == [
        "set_analysis_digits_MicroResNet20.png", "set_analysis_venn_digits_MicroResNet20.png"
    ]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in charts)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_report_draws_degenerate_data(degenerate_store, tmp_path, command):
    out = tmp_path / command
    result = psyk(degenerate_store, command, "-o", str(out), "--image-format", "svg")
    assert result.exit_code == 0, result.stderr
    written = [Path(line.removeprefix("wrote ")) for line in result.stderr.splitlines()]
    assert written and all(path.stat().st_size > 0 for path in written)
    assert all(b"<svg" in path.read_bytes()[:500] for path in written if path.suffix == ".svg")
