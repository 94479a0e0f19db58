import csv
import io
import itertools

import pytest

from psykedelic_cli.reports.set_analysis import (
    MAX_BARS,
    combination_code,
    set_analysis_report,
    share_matrix,
    venn_regions,
)
from psykedelic_cli.store.schema import BASE_CRITERIA

CRITERIA = ["min_eig", "min_eig_real", "spectral_radius", "weight"]


def set_analysis(shares: dict, criteria=CRITERIA) -> dict:
    return {"set_analysis": {"criteria": list(criteria), "total_kernels": 100, "shares": shares}}


@pytest.fixture
def runs(make_run):
    return [
        make_run("s1", set_analysis({"": 0.5, "min_eig": 0.2, "min_eig+min_eig_real": 0.1, "weight": 0.2})),
        make_run("s2", set_analysis({"": 0.7, "min_eig": 0.1, "min_eig_real": 0.2})),
    ]


def test_codes_use_the_fixed_letter_of_each_criterion():
    assert combination_code("min_eig+min_eig_real") == "cd"
    assert combination_code("det+weight") == "ah"
    assert combination_code("") == "∅"


def test_a_combination_absent_from_a_run_counts_as_zero_there(runs):
    got = {
        r["combination"]: (r["code"], float(r["mean"]), float(r["std"]), int(r["n"]))
        for r in csv.DictReader(io.StringIO(set_analysis_report(runs).text("csv")))
    }
    assert got == {
        "": ("∅", pytest.approx(0.6), pytest.approx(0.1), 2),
        "min_eig": ("c", pytest.approx(0.15), pytest.approx(0.05), 2),
        "min_eig+min_eig_real": ("cd", pytest.approx(0.05), pytest.approx(0.05), 2),
        "weight": ("h", pytest.approx(0.1), pytest.approx(0.1), 2),
        "min_eig_real": ("d", pytest.approx(0.1), pytest.approx(0.1), 2),
    }


def test_rows_are_ordered_by_share(runs):
    table = set_analysis_report(runs).tables[0]
    assert [row[1] for row in table.rows][:2] == ["", "min_eig"]
    assert "c = min_eig" in table.caption() and "h = weight" in table.caption()


def test_venn_regions_sum_the_shares_per_run(runs):
    combinations, matrix = share_matrix(runs)
    regions = venn_regions(combinations, matrix, ("min_eig", "min_eig_real"))
    summary = {region: (stat.mean, stat.std) for region, stat in regions.items()}
    assert summary == {
        (True, False): pytest.approx((0.15, 0.05)),
        (False, True): pytest.approx((0.1, 0.1)),
        (True, True): pytest.approx((0.05, 0.05)),
        (False, False): pytest.approx((0.7, 0.0)),  # pruned by neither: "" plus "weight"
    }
    three = venn_regions(combinations, matrix, ("min_eig", "weight", "spectral_radius"))
    assert three[(False, True, False)].mean == pytest.approx(0.1)
    assert sum(stat.mean for stat in three.values()) == pytest.approx(1.0)


def test_runs_comparing_other_criteria_are_not_averaged_with_them(runs, make_run):
    legacy = make_run("s3", set_analysis({"": 1.0}, criteria=["det", "weight"]))
    report = set_analysis_report([*runs, legacy])
    assert report.text("csv").splitlines()[0] == "dataset,model,code,combination,criteria,mean,std,n"
    rows = list(csv.DictReader(io.StringIO(report.text("csv"))))
    none_rows = {r["criteria"]: (float(r["mean"]), r["n"]) for r in rows if r["combination"] == ""}
    assert none_rows == {
        "det+weight": (1.0, "1"), "min_eig+min_eig_real+spectral_radius+weight": (pytest.approx(0.6), "2")
    }
    assert len(report.tables) == 2


def test_charts_bar_chart_and_the_venns_whose_criteria_were_compared(runs, tmp_path):
    report = set_analysis_report(runs)
    assert [c.stem for c in report.charts] == [
        "set_analysis_cifar10_MicroResNet32", "set_analysis_venn_cifar10_MicroResNet32"
    ]
    bars = report.charts[0].draw()
    # ∅ is no bar (d, h tie: name order) …
    assert [t.get_text() for t in bars.axes[0].get_xticklabels()] == ["c", "d", "h", "cd"]
    assert "pruned by none of them (not drawn): 60.00% ± 10.00" in bars.get_suptitle()  # … but said
    venn = report.charts[1].draw()
    titles = [ax.get_title() for ax in venn.axes]
    assert len(titles) == 2  # spectral_radius_real was not compared: no second diagram
    assert titles[0] == "pruned by none of them:\n70.0% ± 0.0"
    texts = {t.get_text() for ax in venn.axes for t in ax.texts}
    assert {"15.0%\n± 5.0", "10.0%\n± 10.0", "5.0%\n± 5.0"} <= texts
    for path in report.write(tmp_path, "svg")[3:]:
        assert b"<svg" in path.read_bytes()[:400]


def test_many_combinations_end_in_one_other_bar(make_run):
    combinations = ["+".join(c) for r in (1, 2) for c in itertools.combinations(BASE_CRITERIA, r)][: MAX_BARS + 5]
    shares = {c: 1 / len(combinations) for c in combinations}
    figure = set_analysis_report([make_run("m", set_analysis(shares, BASE_CRITERIA))]).charts[0].draw()
    labels = [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert len(labels) == MAX_BARS and labels[-1] == "other (6)"
