import csv
import io

import pytest

from psykedelic_cli.reports.per_threshold import per_threshold_report


def per_threshold(thresholds, ratios: dict, rule: str = "own") -> dict:
    return {"pruning_per_threshold": {"thresholds": thresholds, "pruned_ratio": ratios, "rule": rule}}


@pytest.fixture
def runs(make_run):
    return [
        make_run("p1", per_threshold([1e-4, 1e-3], {"det": [0.1, 0.3], "weight": [0.0, 0.2]})),
        # listed in the other order, and trained with another threshold: it still averages with p1
        make_run("p2", per_threshold([1e-3, 1e-4], {"det": [0.5, 0.3], "weight": [0.4, 0.0]}), threshold=1e-3),
        make_run("p3", per_threshold([1e-4, 1e-3], {"det": [0.9, 0.95]}, rule="raw")),
        make_run("p4", per_threshold([1e-4, 1e-3], {"det": [0.2, 0.6]}), dataset="cifar100"),
    ]


def records(report) -> dict:
    return {
        (r["dataset"], r["rule"], float(r["threshold"]), r["criterion"]): (
            float(r["mean"]), float(r["std"]), int(r["n"])
        )
        for r in csv.DictReader(io.StringIO(report.text("csv")))
    }


def test_runs_are_aligned_by_threshold_value(runs):
    report = per_threshold_report(runs)
    assert report.text("csv").splitlines()[0] == "dataset,model,rule,threshold,criterion,mean,std,n"
    got = records(report)
    assert got[("cifar10", "own", 1e-4, "det")] == pytest.approx((0.2, 0.1, 2))
    assert got[("cifar10", "own", 1e-3, "det")] == pytest.approx((0.4, 0.1, 2))
    assert got[("cifar10", "own", 1e-4, "weight")] == pytest.approx((0.0, 0.0, 2))
    assert got[("cifar10", "own", 1e-3, "weight")] == pytest.approx((0.3, 0.1, 2))


def test_the_raw_legacy_rule_is_never_averaged_with_the_own_rule(runs):
    report = per_threshold_report(runs)
    assert records(report)[("cifar10", "raw", 1e-4, "det")] == pytest.approx((0.9, 0.0, 1))
    captions = {t.keys["rule"]: t.caption() for t in report.tables if t.keys["dataset"] == "cifar10"}
    assert "|det K| ≥ tⁿ" in captions["own"] and "t²ⁿ" in captions["own"]
    assert "raw |det K| ≥ t" in captions["raw"]
    latex = report.text("latex")
    assert r"|det K| $\geq$ t$^{n}$" in latex and r"t$^{2n}$" in latex


def test_line_chart_per_group_and_one_grid_per_rule(runs, tmp_path):
    report = per_threshold_report(runs)
    stems = [c.stem for c in report.charts]
    assert stems == [
        "per_threshold_cifar10_MicroResNet32_own",
        "per_threshold_cifar100_MicroResNet32_own",
        "per_threshold_cifar10_MicroResNet32_raw",
        "per_threshold_grid_own",  # the raw rule has one dataset × model: no grid
    ]
    figure = report.charts[2].draw()
    assert "Rule: the original's chart rule: raw |det K| ≥ t" in figure.get_suptitle()
    axes = figure.axes[0]
    assert axes.get_xscale() == "log" and axes.get_ylabel() == "kernels pruned (%)"
    line = axes.get_lines()[0]
    assert list(line.get_xdata()) == [1e-4, 1e-3] and list(line.get_ydata()) == pytest.approx([90.0, 95.0])
    grid = report.charts[3].draw()
    assert [ax.get_title() for ax in grid.axes] == ["cifar10\nMicroResNet32 (n = 2)", "cifar100\nMicroResNet32 (n = 1)"]
    for path in report.write(tmp_path, "pdf")[3:]:
        assert path.read_bytes().startswith(b"%PDF-")
