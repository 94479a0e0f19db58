import csv
import io

import numpy as np
import pytest

from psykedelic_cli.reports.history import aggregate_history, history_report, winners


def point(epoch: int, none_accuracy: float, **modes: tuple[float, float, float]) -> dict:
    rows = {"None": {"accuracy": none_accuracy, "compression_ratio": 0.0, "score": 0.0}}
    rows.update({m: {"accuracy": a, "compression_ratio": c, "score": s} for m, (a, c, s) in modes.items()})
    return {"epoch": epoch, "performance": rows}


@pytest.fixture
def runs(make_run):
    return [
        make_run("h1", {"history": [
            point(1, 0.90, det=(0.80, 0.2, 0.18), weight=(0.85, 0.1, 0.09)),
            point(2, 0.92, det=(0.70, 0.4, 0.30), weight=(0.80, 0.5, 0.44)),
        ]}),
        make_run("h2", {"history": [
            point(1, 0.94, det=(0.90, 0.4, 0.38), weight=(0.85, 0.1, 0.09)),
            point(2, 0.92, det=(0.70, 0.2, 0.16), weight=(0.80, 0.5, 0.44)),
            point(3, 0.93, det=(0.60, 0.6, 0.39), weight=(0.70, 0.7, 0.53)),
        ]}),
        make_run("h3", {"history": [point(2, 0.5, det=(0.5, 0.5, 0.5))]}, history_interval=2),
    ]


def test_means_per_epoch_over_the_runs_that_reached_it(runs):
    report = history_report(runs[:2])
    assert report.text("csv").splitlines()[0] == "dataset,model,category,epoch,mode,mean,std,n,best"
    got = {
        (r["category"], int(r["epoch"]), r["mode"]): (float(r["mean"]), float(r["std"]), int(r["n"]))
        for r in csv.DictReader(io.StringIO(report.text("csv")))
    }
    assert got[("accuracy", 1, "det")] == pytest.approx((0.85, 0.05, 2))
    assert got[("compression_ratio", 2, "det")] == pytest.approx((0.3, 0.1, 2))
    assert got[("score", 1, "det")] == pytest.approx((0.28, 0.10, 2))
    assert got[("accuracy", 1, "None")] == pytest.approx((0.92, 0.02, 2))
    assert got[("score", 3, "weight")] == pytest.approx((0.53, 0.0, 1))
    assert ("score", 1, "None") not in got


def test_the_winner_of_each_epoch(runs):
    stats = aggregate_history(runs[:2])
    assert winners(stats) == {1: "det", 2: "weight", 3: "weight"}
    assert winners(stats, "accuracy") == {1: "None", 2: "None", 3: "None"}
    records = history_report(runs[:2]).tables
    score = next(t for t in records if t.keys["category"] == "score")
    assert [r["mode"] for r in score.records() if r["best"]] == ["det", "weight", "weight"]


def test_history_intervals_are_not_averaged_together(runs):
    report = history_report(runs)
    rows = list(csv.DictReader(io.StringIO(report.text("csv"))))
    assert "history_interval" in report.record_fields
    epoch_two = {
        (r["history_interval"], r["mode"]): float(r["mean"])
        for r in rows
        if r["category"] == "accuracy" and r["epoch"] == "2"
    }
    assert epoch_two[("2", "det")] == pytest.approx(0.5)
    assert epoch_two[("1", "det")] == pytest.approx(0.7)


def test_modes_narrow_the_series_and_the_chart_rings_the_winners(runs, tmp_path):
    report = history_report(runs[:2], modes=["det", "weight"])
    assert {r["mode"] for t in report.tables for r in t.records()} == {"det", "weight"}
    figure = report.charts[0].draw()
    accuracy, _, score = figure.axes
    assert [line.get_label() for line in accuracy.get_lines()] == ["det", "weight"]
    rings = score.collections[-1].get_offsets()
    np.testing.assert_allclose(rings, [[1, 28.0], [2, 44.0], [3, 53.0]])
    for path in report.write(tmp_path, "svg")[3:]:
        assert b"<svg" in path.read_bytes()[:400]


def test_the_baseline_alone_gives_only_the_accuracy_table(runs):
    report = history_report(runs[:2], modes=["None"])
    assert [t.keys["category"] for t in report.tables] == ["accuracy"]
    assert report.charts[0].draw().axes[0].get_lines()[0].get_label() == "None"
