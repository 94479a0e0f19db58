import csv
import io
import json
import math

import pytest

from psykedelic_cli.errors import NothingFound
from psykedelic_cli.reports.performance import performance_report


def csv_rows(report) -> list[dict]:
    return list(csv.DictReader(io.StringIO(report.text("csv"))))


def find(rows, **wanted) -> dict:
    matches = [r for r in rows if all(str(r[k]) == str(v) for k, v in wanted.items())]
    assert len(matches) == 1, (wanted, matches)
    return matches[0]


def test_csv_has_exactly_the_long_format_columns(performance_runs):
    report = performance_report(performance_runs[:4])
    header = report.text("csv").splitlines()[0]
    assert header == "dataset,model,init_mode,threshold,category,mode,mean,std,n,best"


def test_csv_numbers_are_hand_computed_means_and_population_stds(performance_runs):
    rows = csv_rows(performance_report(performance_runs[:4]))
    det_accuracy = find(rows, dataset="cifar10", category="accuracy", mode="det")
    assert float(det_accuracy["mean"]) == pytest.approx(0.85)
    assert float(det_accuracy["std"]) == pytest.approx(0.0408248290463863)  # sqrt(0.005 / 3), ddof=0
    assert det_accuracy["n"] == "3"
    assert det_accuracy["model"] == "MicroResNet32" and det_accuracy["init_mode"] == "default"
    assert float(det_accuracy["threshold"]) == pytest.approx(1e-4)
    det_ratio = find(rows, dataset="cifar10", category="compression_ratio", mode="det")
    assert (float(det_ratio["mean"]), float(det_ratio["std"])) == pytest.approx((0.3, 0.0816496580927726))
    none_accuracy = find(rows, dataset="cifar10", category="accuracy", mode="None")
    assert (float(none_accuracy["mean"]), float(none_accuracy["std"])) == pytest.approx((0.92, 0.0163299316185545))
    weight_score = find(rows, dataset="cifar10", category="score", mode="weight")
    assert (float(weight_score["mean"]), float(weight_score["std"])) == pytest.approx((0.05, 0.0))
    single = find(rows, dataset="cifar100", category="score", mode="det")
    assert (float(single["mean"]), float(single["std"]), single["n"]) == (pytest.approx(0.4), 0.0, "1")


def test_the_unpruned_baseline_is_a_row_of_accuracy_only(performance_runs):
    rows = csv_rows(performance_report(performance_runs[:4]))
    assert {r["mode"] for r in rows if r["category"] == "accuracy"} == {"None", "det", "weight"}
    assert {r["mode"] for r in rows if r["category"] != "accuracy"} == {"det", "weight"}


def test_json_marks_the_best_of_each_column(performance_runs):
    records = json.loads(performance_report(performance_runs[:4]).text("json"))["records"]
    best = {(r["dataset"], r["category"]): r["mode"] for r in records if r["best"]}
    assert best == {
        ("cifar10", "compression_ratio"): "det",  # 0.3 vs 0.1
        ("cifar10", "score"): "det",
        ("cifar10", "accuracy"): "None",  # 0.92 beats every pruned mode
        ("cifar100", "compression_ratio"): "weight",  # 0.6 vs 0.5
        ("cifar100", "score"): "weight",
        ("cifar100", "accuracy"): "None",
    }


def test_latex_has_the_rows_and_bolds_the_winners(performance_runs):
    latex = performance_report(performance_runs[:4]).text("latex")
    assert latex.count(r"\begin{table}") == 3  # one per category at the one threshold
    assert r"\toprule" in latex and r"\bottomrule" in latex
    compression = latex.split(r"\begin{table}")[1]
    assert "Compression ratio" in compression
    # the cells do not all share one run count, so each shows its n in brackets
    assert r"det & $\mathbf{30.00 \pm 8.16}\,{\scriptstyle[3]}$ & $50.00 \pm 0.00\,{\scriptstyle[1]}$ \\" in compression
    assert (
        r"weight & $10.00 \pm 0.00\,{\scriptstyle[3]}$ & $\mathbf{60.00 \pm 0.00}\,{\scriptstyle[1]}$ \\"
    ) in compression
    assert "None &" not in compression
    accuracy = latex.split(r"\begin{table}")[3]
    assert (
        r"None & $\mathbf{92.00 \pm 1.63}\,{\scriptstyle[3]}$ & $\mathbf{70.00 \pm 0.00}\,{\scriptstyle[1]}$ \\"
    ) in accuracy
    assert "population std" in accuracy


def test_latex_states_a_shared_run_count_once(performance_runs):
    latex = performance_report(performance_runs[:3]).text("latex")
    assert r"det & $\mathbf{30.00 \pm 8.16}$ \\" in latex
    assert "n = 3 runs per cell" in latex


def test_runs_differing_in_another_setting_are_never_averaged(performance_runs):
    report = performance_report([performance_runs[0], performance_runs[4]])
    rows = csv_rows(report)
    assert report.text("csv").splitlines()[0].endswith("mode,l1_penalty,mean,std,n,best")
    accuracies = sorted(
        (float(r["l1_penalty"]), float(r["mean"])) for r in rows if r["category"] == "accuracy" and r["mode"] == "det"
    )
    assert accuracies == [pytest.approx((1e-4, 0.80)), pytest.approx((1e-3, 0.40))]
    assert all(r["n"] == "1" for r in rows)
    assert len(report.tables) == 6 and any("l1_penalty=0.001" in t.title for t in report.tables)


def test_modes_narrow_the_rows(performance_runs):
    rows = csv_rows(performance_report(performance_runs[:3], modes=["weight"]))
    assert {r["mode"] for r in rows} == {"weight"}
    with pytest.raises(NothingFound, match="spectral_norm"):
        performance_report(performance_runs, modes=["spectral_norm"])


def test_runs_without_performance_results_are_nothing_found(performance_runs):
    with pytest.raises(NothingFound, match="performance"):
        performance_report([{**run, "results": {}} for run in performance_runs])


def test_a_missing_value_is_left_out_not_counted_as_zero(performance_runs):
    runs = [dict(run) for run in performance_runs[:3]]
    runs[0] = {**runs[0], "results": {"performance": {**runs[0]["results"]["performance"]}}}
    runs[0]["results"]["performance"]["det"] = {**runs[0]["results"]["performance"]["det"], "accuracy": None}
    det = find(csv_rows(performance_report(runs)), dataset="cifar10", category="accuracy", mode="det")
    assert (float(det["mean"]), det["n"]) == (pytest.approx(0.875), "2")
    assert math.isclose(float(det["std"]), 0.025)


def test_one_bar_chart_per_group(performance_runs, tmp_path):
    report = performance_report(performance_runs[:4])
    assert [c.stem for c in report.charts] == [
        "performance_cifar10_MicroResNet32_default_1e-04",
        "performance_cifar100_MicroResNet32_default_1e-04",
    ]
    paths = report.write(tmp_path, "png")
    assert [p.name for p in paths[:3]] == ["performance.tex", "performance.csv", "performance.md"]
    for path in paths[3:]:
        assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_the_baseline_alone_gives_only_the_accuracy_table(performance_runs):
    report = performance_report(performance_runs[:3], modes=["None"])
    assert [t.keys["category"] for t in report.tables] == ["accuracy"]
    assert report.tables[0].rows == [("None",)]



def performance_row(accuracy: float, compression_ratio: float, score: float) -> dict:
    return {"accuracy": accuracy, "compression_ratio": compression_ratio, "score": score}


def test_nothing_pruned_draws_zero_bars_on_an_axis_from_zero(make_run):
    rows = {mode: performance_row(0.9, 0.0, 0.0) for mode in ("None", "det", "weight")}
    figure = performance_report([make_run("z1", {"performance": rows})]).charts[0].draw()
    compression, score, accuracy = figure.axes[:3]
    assert compression.get_ylim() == (0, 1) and score.get_ylim() == (0, 1)
    assert accuracy.get_ylim()[1] > 90
    assert [t.get_text() for t in compression.get_xticklabels()] == ["det", "weight"]


def test_modes_missing_every_value_are_no_chart_and_no_error(make_run, tmp_path):
    unmeasured = {key: None for key in performance_row(0.0, 0.0, 0.0)}
    nan = {key: math.nan for key in performance_row(0.0, 0.0, 0.0)}
    report = performance_report([make_run("m1", {"performance": {"None": unmeasured, "det": nan}})])
    assert report.charts == [] and report.tables == []
    assert report.write(tmp_path, "png")  # the (empty) tables are still written
    partly = {"None": performance_row(0.9, 0.0, 0.0), "det": {**unmeasured, "compression_ratio": 0.25}}
    figure = performance_report([make_run("m2", {"performance": partly})]).charts[0].draw()
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["det"]  # drawn from compression alone
