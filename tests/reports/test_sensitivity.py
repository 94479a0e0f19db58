"""The sensitivity report on hand-made run documents: drops, ranks, groups, every format and chart."""

from __future__ import annotations

import csv
import io
import json

import pytest

from psykedelic_cli.errors import NothingFound
from psykedelic_cli.reports import sensitivity_report
from psykedelic_cli.reports.report import Chart
from psykedelic_cli.reports.sensitivity import aggregate_sensitivity
from psykedelic_cli.store.schema import SCHEMA_VERSION

GRID = [0.01, 0.1]


def _point(accuracy: float, layer_alive: int, compression: float = 0.1) -> dict:
    return {"accuracy": accuracy, "precision": accuracy, "recall": accuracy, "active_params": 900,
            "total_params": 1000, "compression_ratio": compression, "score": 0.0, "alive_kernels": 10,
            "total_kernels": 20, "layer_alive_kernels": layer_alive}


def _layer(name: str, points: list[dict], skipped: str | None = None) -> dict:
    return {"layer": name, "kernel_shape": [3, 3], "total_kernels": 10, "alive_kernels": 10, "skipped": skipped,
            "points": points}


def sensitivity_run(run_id: str, baseline: float, stem: tuple, conv: tuple, *, mode="weight", grid=GRID,
                    source="sensitivity", seed=0, **config) -> dict:
    """A run whose layer ``stem`` and ``conv`` reach the accuracies ``stem``/``conv`` at the grid values;
    a third layer, ``wide``, is skipped."""
    return {
        "id": run_id, "schema_version": SCHEMA_VERSION, "status": "completed", "error": None, "source": source,
        "created_at": "2026-01-01T00:00:00+00:00", "updated_at": "2026-01-01T00:00:00+00:00",
        "finished_at": "2026-01-01T00:00:00+00:00", "host": {}, "versions": {},
        "config": {"model": "MicroResNet8", "architecture": "abc", "params": 1000, "model_file": f"{run_id}.keras",
                   "dataset": "digits", "mode": mode, "grid_parameter": "threshold", "grid": grid, "seed": seed,
                   "eval_batch_size": 256, **config},
        "results": {"sensitivity": {
            "mode": mode, "parameter": "threshold", "grid": grid,
            "baseline": {**_point(baseline, 10, 0.0)},
            "layers": [
                _layer("stem", [_point(a, 10 - 3 * i, 0.05 * (i + 1)) for i, a in enumerate(stem)]),
                _layer("conv", [_point(a, 10 - 5 * i, 0.1 * (i + 1)) for i, a in enumerate(conv)]),
                _layer("wide", [], skipped="1×3 kernels: weight needs square ones"),
            ],
            "evaluations": 5,
        }},
    }


@pytest.fixture
def three_seeds() -> list[dict]:
    """Baselines 0.90/0.92/0.94; stem drops 0/0.02/0.04 at t=0.01 and 0.10/0.12/0.14 at t=0.1 → mean 0.02 and
    0.12 (std 0.0163299), sensitivity 0.07; conv drops nothing at t=0.01, 0.5 at t=0.1 → sensitivity 0.25."""
    return [
        sensitivity_run("s1", 0.90, (0.90, 0.80), (0.90, 0.40), seed=1),
        sensitivity_run("s2", 0.92, (0.90, 0.80), (0.92, 0.42), seed=2),
        sensitivity_run("s3", 0.94, (0.90, 0.80), (0.94, 0.44), seed=3),
    ]


def test_drops_ranks_and_dead_shares_over_three_seeds(three_seeds):
    stats = aggregate_sensitivity(three_seeds)
    assert stats.layers == ["stem", "conv", "wide"] and stats.runs == 3
    assert [s.mean for s in stats.drop[0]] == pytest.approx([0.02, 0.12])
    assert [s.std for s in stats.drop[0]] == pytest.approx([0.0163299, 0.0163299], abs=1e-6)
    assert [s.mean for s in stats.drop[1]] == pytest.approx([0.0, 0.5]) and stats.drop[1][1].std == pytest.approx(0)
    assert stats.drop[2] == [None, None] and stats.sensitivity[2] is None
    assert stats.sensitivity[0].mean == pytest.approx(0.07) and stats.sensitivity[1].mean == pytest.approx(0.25)
    assert stats.max_drop[0].mean == pytest.approx(0.12) and stats.max_drop[0].n == 3
    assert [s.mean for s in stats.dead[1]] == pytest.approx([0.0, 0.5])  # 10 → 5 of 10 kernels alive
    assert stats.ranked() == [1, 0, 2]  # conv, stem, then the skipped layer


def test_every_format_holds_the_numbers(three_seeds):
    report = sensitivity_report(three_seeds)
    ranking, drop, dead = report.tables
    assert [row[2] for row in ranking.rows] == ["conv", "stem", "wide"] and ranking.rows[0][:2] == (1, 2)
    assert "Left intact by weight: wide: 1×3 kernels" in drop.caption()
    rows = list(csv.DictReader(io.StringIO(report.text("csv"))))
    assert list(rows[0]) == ["dataset", "model", "mode", "parameter", "measure", "rank", "layer_index", "layer",
                             "value", "mean", "std", "n"]
    cell = next(r for r in rows if r["measure"] == "accuracy_drop" and r["layer"] == "stem" and r["value"] == "0.1")
    assert float(cell["mean"]) == pytest.approx(0.12) and cell["n"] == "3"
    top = next(r for r in rows if r["measure"] == "sensitivity" and r["rank"] == "1")
    assert top["layer"] == "conv" and float(top["mean"]) == pytest.approx(0.25)
    records = json.loads(report.text("json"))["records"]
    assert len(records) == len(rows) and {r["measure"] for r in records} == {
        "sensitivity", "max_drop", "layer_dead_at_last", "compression_at_last", "accuracy_drop", "layer_dead"}
    markdown = report.text("markdown")
    assert "| Rank | # | Layer | sensitivity | max drop | layer dead at last | compression at last |" in markdown
    assert "12.00 ± 1.63" in markdown and "t=0.01" in markdown and "n = 3 runs per cell" in markdown
    latex = report.text("latex")
    assert r"\begin{tabular}" in latex and r"$12.00 \pm 1.63$" in latex
    assert report.rich_tables(80)


def test_only_like_runs_are_averaged(three_seeds):
    others = [
        sensitivity_run("g", 0.9, (0.9,) * 3, (0.9,) * 3, grid=[0.01, 0.1, 0.3]),  # another grid
        sensitivity_run("m", 0.9, (0.9, 0.9), (0.9, 0.9), mode="det"),  # another mode
        sensitivity_run("c", 0.9, (0.9, 0.9), (0.9, 0.9), dataset="cifar10"),  # another dataset
    ]
    report = sensitivity_report(three_seeds + others)
    assert len(report.tables) == 4 * 3
    assert len({chart.stem for chart in report.charts}) == len(report.charts) == 4 * 3
    # A first stage of psyk train --sensitivity is no saved model's sensitivity: source and settings split it.
    trained = sensitivity_run("t", 0.9, (0.9, 0.9), (0.9, 0.9), source="train", l1_penalty=1e-4)
    split = sensitivity_report(three_seeds + [trained])
    assert len(split.tables) == 2 * 3
    assert {table.keys.get("source") for table in split.tables} == {"sensitivity", "train"}
    assert all("=-" not in table.title and "l1_penalty" not in table.title for table in split.tables)
    # Settings that vary among the train runs split them, and only them.
    other_l1 = sensitivity_run("u", 0.9, (0.9, 0.9), (0.9, 0.9), source="train", l1_penalty=1e-3)
    titles = [table.title for table in sensitivity_report(three_seeds + [trained, other_l1]).tables[::3]]
    assert len(titles) == 3 and sum("l1_penalty=" in title for title in titles) == 2, titles
    assert all(table.run_counts() == {3} for table in split.tables if table.keys["source"] == "sensitivity")


def test_mode_filter_and_runs_without_sensitivity(three_seeds):
    assert len(sensitivity_report(three_seeds, modes=["weight"]).tables) == 3
    with pytest.raises(NothingFound, match="no matching run has sensitivity results for the mode"):
        sensitivity_report(three_seeds, modes=["det"])
    bare = {**three_seeds[0], "results": {"performance": {}}}
    with pytest.raises(NothingFound, match="no matching run has sensitivity results"):
        sensitivity_report([bare])


@pytest.mark.parametrize("image_format", ["png", "svg", "pdf"])
def test_charts_are_drawn_for_one_run_and_for_nothing_pruned(three_seeds, tmp_path, image_format):
    from psykedelic_cli.reports.charts import save_chart

    flat = sensitivity_run("f", 0.9, (0.9, 0.9), (0.9, 0.9))  # no layer costs anything
    charts: list[Chart] = sensitivity_report([three_seeds[0]]).charts + sensitivity_report([flat]).charts
    for number, chart in enumerate(charts):
        path = tmp_path / f"{number}.{image_format}"
        save_chart(chart, path, image_format)
        assert path.stat().st_size > 1000
