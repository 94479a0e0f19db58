import csv
import io

import pytest

from psykedelic_cli.reports.eig_stats import eig_stats_report
from psykedelic_cli.store.schema import EIG_CRITERIA


def eig_stats(complex_ratio: float, targets: dict, pruned: dict) -> dict:
    """eig_stats with per-criterion target / pruned complex ratios (0.5 where not given)."""
    return {
        "total_kernels": 100,
        "total_eigenvalues": 900,
        "complex_eigenvalues": int(900 * complex_ratio),
        "complex_ratio": complex_ratio,
        "criteria": {
            c: {
                "pruned": 10,
                "target_complex": 50,
                "pruned_complex": 5,
                "target_complex_ratio": targets.get(c, 0.5),
                "pruned_complex_ratio": pruned.get(c, 0.5),
            }
            for c in EIG_CRITERIA
        },
    }


@pytest.fixture
def runs(make_run):
    return [
        make_run("e1", {"eig_stats": eig_stats(0.4, {"min_eig": 0.5}, {"min_eig": 0.6, "spectral_radius": None})}),
        make_run("e2", {"eig_stats": eig_stats(0.6, {"min_eig": 0.7}, {"min_eig": 0.2, "spectral_radius": 0.3})}),
        make_run("e3", {"eig_stats": eig_stats(0.3, {}, {})}, dataset="cifar100"),
    ]


def rows(report):
    return {
        (r["dataset"], r["criterion"], r["measure"]): (float(r["mean"]), float(r["std"]), int(r["n"]))
        for r in csv.DictReader(io.StringIO(report.text("csv")))
    }


def test_ratios_are_averaged_per_dataset_and_model(runs):
    report = eig_stats_report(runs)
    assert report.text("csv").splitlines()[0] == "dataset,model,criterion,measure,mean,std,n"
    got = rows(report)
    assert got[("cifar10", "all", "complex_ratio")] == pytest.approx((0.5, 0.1, 2))
    assert got[("cifar10", "min_eig", "target_complex_ratio")] == pytest.approx((0.6, 0.1, 2))
    assert got[("cifar10", "min_eig", "pruned_complex_ratio")] == pytest.approx((0.4, 0.2, 2))
    assert got[("cifar100", "all", "complex_ratio")] == pytest.approx((0.3, 0.0, 1))
    assert len(got) == 2 * 9  # two rows × (1 + 4 criteria × 2 measures)


def test_a_run_that_pruned_nothing_has_no_pruned_ratio(runs):
    assert rows(eig_stats_report(runs))[("cifar10", "spectral_radius", "pruned_complex_ratio")] == pytest.approx(
        (0.3, 0.0, 1)
    )


def test_latex_groups_target_and_pruned_under_each_criterion(runs):
    latex = eig_stats_report(runs).text("latex")
    assert r"\multicolumn{2}{c}{min\_eig}" in latex
    assert r"\cmidrule(lr){4-5}" in latex
    assert "Dataset & Model & complex & target & pruned" in latex
    assert (
        r"cifar10 & MicroResNet32 & $50.00 \pm 10.00\,{\scriptstyle[2]}$ & $60.00 \pm 10.00\,{\scriptstyle[2]}$ & "
        r"$40.00 \pm 20.00\,{\scriptstyle[2]}$"
    ) in latex
    assert r"cifar100 & MicroResNet32 & $30.00 \pm 0.00\,{\scriptstyle[1]}$" in latex
    assert latex.count(r"\midrule") == 2  # below the header and between the datasets


def test_eig_stats_has_no_charts(runs, tmp_path):
    paths = eig_stats_report(runs).write(tmp_path, "svg")
    assert sorted(p.name for p in paths) == ["eig_stats.csv", "eig_stats.md", "eig_stats.tex"]
