"""``significance``: blocks built from real run documents, every format, the CD diagram, the CLI."""

import csv
import io
import json
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from psykedelic_cli.cli.app import app
from psykedelic_cli.errors import NothingFound
from psykedelic_cli.reports import significance_report
from psykedelic_cli.reports.charts import save_chart
from psykedelic_cli.reports.significance import cliques
from psykedelic_cli.store import Store

ACCURACY = {  # seed → accuracy of det, weight, min_eig on the same weights
    1: (0.80, 0.85, 0.90),
    2: (0.70, 0.78, 0.79),
    3: (0.60, 0.66, 0.65),
    4: (0.75, 0.74, 0.80),
}


def row(accuracy: float) -> dict:
    return {"accuracy": accuracy, "compression_ratio": accuracy / 2, "score": accuracy / 3}


def compared(det: float, weight: float, min_eig: float) -> dict:
    return {"None": row(0.95), "det": row(det), "weight": row(weight), "min_eig": row(min_eig)}


@pytest.fixture
def runs(make_run) -> list[dict]:
    """Per seed, two runs trained with det and weight that share their first stage (same comparison)."""
    documents = []
    for seed, values in ACCURACY.items():
        for mode, final in (("det", 0.5 + seed / 100), ("weight", 0.6 + seed / 50)):
            documents.append(make_run(
                f"r{seed}{mode}", {"performance": compared(*values), "final": {"mode": mode, **row(final)}},
                seed=seed, mode=mode,
            ))
    return documents


def records(report, **match) -> list[dict]:
    return [r for r in json.loads(report.text("json"))["records"] if all(r[k] == v for k, v in match.items())]


def test_runs_of_one_seed_are_one_block_and_none_is_no_criterion(runs):
    report = significance_report(runs)
    [friedman] = records(report, pairing="compared", category="accuracy", record="friedman")
    assert friedman["blocks"] == 4 and friedman["criteria"] == 3
    values = np.array(list(ACCURACY.values()))
    expected = stats.friedmanchisquare(*values.T)
    assert (friedman["friedman_chi2"], friedman["friedman_p"]) == pytest.approx((expected.statistic, expected.pvalue))
    criteria = {r["criterion"]: r for r in records(report, pairing="compared", category="accuracy", record="criterion")}
    assert set(criteria) == {"det", "weight", "min_eig"}
    assert criteria["det"]["mean_rank"] == 2.75  # last in three blocks, second in one
    assert criteria["det"]["mean"] == pytest.approx(values[:, 0].mean())
    [pair] = records(report, pairing="compared", category="accuracy", record="pair", criterion="det", versus="weight")
    assert pair["difference"] == pytest.approx((values[:, 0] - values[:, 1]).mean())
    assert pair["ci_low"] <= pair["difference"] <= pair["ci_high"]
    w = stats.wilcoxon(values[:, 0], values[:, 1], zero_method="zsplit")
    assert (pair["wilcoxon"], pair["wilcoxon_p"]) == pytest.approx((w.statistic, w.pvalue))


def test_trained_modes_pair_by_seed_and_incomplete_seeds_are_left_out(runs, make_run):
    extra = make_run("r9det", {"final": {"mode": "det", **row(0.9)}}, seed=9, mode="det")  # no weight run of seed 9
    report = significance_report([*runs, extra])
    [friedman] = records(report, pairing="trained", category="accuracy", record="friedman")
    assert friedman["blocks"] == 4 and friedman["criteria"] == 2
    assert friedman["no_test"] == "Friedman needs at least 3 criteria"
    [pair] = records(report, pairing="trained", category="accuracy", record="pair")
    assert (pair["criterion"], pair["versus"]) == ("det", "weight")
    det = np.array([0.5 + s / 100 for s in ACCURACY])
    weight = np.array([0.6 + s / 50 for s in ACCURACY])
    assert pair["difference"] == pytest.approx((det - weight).mean())
    text = report.text("markdown")
    assert "trained, N = 4 blocks, k = 2" in text
    assert "1 incomplete block(s) left out" in text and "Blocks: seed 1, seed 2, seed 3, seed 4." in text


def test_runs_without_a_seed_are_a_block_each(make_run):
    runs = [make_run(f"legacy{i}", {"performance": compared(*v)}, seed=None) for i, v in enumerate(ACCURACY.values())]
    report = significance_report(runs)
    [friedman] = records(report, pairing="compared", category="accuracy", record="friedman")
    assert friedman["blocks"] == 4
    assert "Blocks: run legacy0, run legacy1" in report.text("markdown")
    assert not records(report, pairing="trained")  # no seeds: nothing to pair trained modes by


def test_too_few_blocks_say_so_per_cell(make_run):
    report = significance_report([make_run("only", {"performance": compared(0.8, 0.7, 0.9)}, seed=1)])
    text = report.text("markdown")
    assert "1 block: no test (needs at least 2)" in text
    [friedman] = records(report, pairing="compared", category="score", record="friedman")
    assert friedman["friedman_p"] is None and friedman["no_test"].startswith("1 block")
    assert all(r["wilcoxon_p"] is None for r in records(report, record="pair"))


def test_settings_that_differ_split_the_comparisons(runs, make_run):
    other = [
        make_run(f"l1-{seed}", {"performance": compared(*values)}, seed=seed, l1_penalty=1e-3)
        for seed, values in ACCURACY.items()
    ]
    report = significance_report([*runs, *other])
    friedmans = records(report, pairing="compared", category="accuracy", record="friedman")
    assert sorted(r["l1_penalty"] for r in friedmans) == [1e-4, 1e-3]
    assert "l1_penalty=0.001" in report.text("markdown")


def test_mode_filter_and_nothing_to_compare(runs):
    report = significance_report(runs, modes=["det", "weight"])
    assert {r["criterion"] for r in records(report, pairing="compared", record="criterion")} == {"det", "weight"}
    with pytest.raises(NothingFound, match="among the mode.s. det"):
        significance_report(runs, modes=["det"])


def test_every_format(runs):
    report = significance_report(runs)
    rows = list(csv.DictReader(io.StringIO(report.text("csv"))))
    assert rows and set(rows[0]) == set(report.record_fields)
    assert {r["record"] for r in rows} == {"friedman", "criterion", "pair"}
    assert "\\begin{tabular}" in report.text("latex") and "\\toprule" in report.text("latex")
    assert report.text("markdown").startswith("### Significance of")
    assert json.loads(report.text("json"))["report"] == "significance"
    tables = report.rich_tables(60)
    assert all(table.columns for table in tables)


def test_cliques_join_ranks_closer_than_the_cd():
    assert cliques([1.0, 1.5, 2.2, 4.0], 1.0) == [(0, 1), (1, 2)]
    assert cliques([1.0, 1.5, 2.2, 4.0], 1.25) == [(0, 2)]
    assert cliques([1.0, 3.0, 5.0], 1.0) == []
    assert cliques([1.0, 1.1, 1.2], 5.0) == [(0, 2)]


@pytest.mark.parametrize("image_format", ["png", "svg"])
def test_cd_diagram_is_drawn(runs, tmp_path, image_format):
    report = significance_report(runs)
    assert [c.stem for c in report.charts] == [
        "significance_compared_cifar10_MicroResNet32_default_1e-04",
        "significance_trained_cifar10_MicroResNet32_default_1e-04",
    ]
    path = tmp_path / f"cd.{image_format}"
    save_chart(report.charts[0], path, image_format)
    if image_format == "svg":
        text = " ".join(t.text or "" for t in ElementTree.parse(path).iter() if t.tag.endswith("text"))
        assert "CD = " in text and "min_eig (1.25)" in text and "Accuracy (N = 4 blocks)" in text
    else:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cd_diagram_of_a_single_block_says_why(make_run, tmp_path):
    report = significance_report([make_run("only", {"performance": compared(0.8, 0.7, 0.9)}, seed=1)])
    save_chart(report.charts[0], tmp_path / "cd.svg", "svg")
    assert "1 block: no test" in (tmp_path / "cd.svg").read_text()


def test_cli_writes_every_file_and_reads_no_backend(runs, tmp_path):
    store = tmp_path / "psyk-store.json"
    Store(store).add_runs(runs)
    command = ["--store", str(store), "report", "significance", "-f", "json", "-o", str(tmp_path / "out")]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["records"]
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == [
        "significance.csv", "significance.md", "significance.tex",
        "significance_compared_cifar10_MicroResNet32_default_1e-04.png",
        "significance_trained_cifar10_MicroResNet32_default_1e-04.png",
    ]
    probe = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import psykedelic_cli.cli.app, psykedelic_cli.reports.html"],
        capture_output=True, text=True, check=True,
    )
    assert not [line for line in probe.stderr.splitlines() if "tensorflow" in line or "keras" in line]


def test_cli_bad_input_is_one_line(runs, tmp_path):
    store = tmp_path / "psyk-store.json"
    Store(store).add_runs(runs)
    afile = tmp_path / "afile"
    afile.write_text("")
    result = CliRunner().invoke(app, ["--store", str(store), "report", "significance", "-o", str(afile)])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "is a file" in result.stderr
    result = CliRunner().invoke(app, ["--store", str(store), "report", "significance", "--mode", "det"])
    assert result.exit_code == 1 and "two or more criteria" in result.stderr and "Traceback" not in result.stderr


LEGACY_KEY = "MicroResNet32:adam:categorical_crossentropy:1e-03:200:128:random_init:CIFAR-10:1e-04"


def test_imported_legacy_runs_are_a_block_each(tmp_path):
    def entry(det: float, weight: float) -> dict:
        return {
            "None": {"param_count": 1000, "score": 0.0, "accuracy": 0.9, "precision": 0.9, "recall": 0.9},
            "det": {"param_count": 250, "score": det, "accuracy": 0.85, "precision": 0.8, "recall": 0.8},
            "weight": {"param_count": 500, "score": weight, "accuracy": 0.88, "precision": 0.8, "recall": 0.8},
        }

    legacy = tmp_path / "experiments.json"
    legacy.write_text(json.dumps({"performance": {LEGACY_KEY: {"1e-04": [entry(0.7, 0.4), entry(0.6, 0.45)]}}}))
    store = tmp_path / "psyk-store.json"
    assert CliRunner().invoke(app, ["--store", str(store), "import-legacy", str(legacy)]).exit_code == 0
    result = CliRunner().invoke(app, ["--store", str(store), "report", "significance", "-f", "json"])
    assert result.exit_code == 0, result.stderr
    [friedman] = [
        r for r in json.loads(result.stdout)["records"] if r["record"] == "friedman" and r["category"] == "score"
    ]
    assert (friedman["dataset"], friedman["blocks"], friedman["pairing"]) == ("cifar10", 2, "compared")
