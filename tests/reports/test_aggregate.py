import math

import pytest

from psykedelic_cli.errors import NothingFound
from psykedelic_cli.reports.aggregate import (
    Stat,
    canonical,
    format_value,
    group_by_config,
    natural_key,
    runs_with,
    summarize,
    summarize_columns,
    varying_settings,
)


def test_summarize_is_the_population_std_of_the_finite_values():
    assert summarize([1, 2, None, 3, 4, math.nan]) == Stat(2.5, pytest.approx(math.sqrt(1.25)), 4)
    assert summarize([None, math.inf]) is None


def test_summarize_columns_treats_a_short_row_as_missing():
    stats = summarize_columns([[1.0, 10.0], [3.0], [5.0, None]])
    assert stats[0] == Stat(3.0, pytest.approx(math.sqrt(8 / 3)), 3)
    assert stats[1] == Stat(10.0, 0.0, 1)


def test_floats_that_are_close_group_together(make_run):
    runs = [
        make_run("a", {}, threshold=1e-4), make_run("b", {}, threshold=0.1 * 1e-3), make_run("c", {}, threshold=1e-3)
    ]
    assert canonical(1e-4) == canonical(0.1 * 1e-3)
    groups = group_by_config(runs, ["threshold"])
    assert [[r["id"] for r in members] for members in groups.values()] == [["a", "b"], ["c"]]


def test_varying_settings_split_only_what_differs(make_run):
    runs = [
        make_run("a", {}, l1_penalty=1e-4, seed=1, history_interval=1),
        make_run("b", {}, l1_penalty=1e-3, seed=2, history_interval=5),
    ]
    assert varying_settings(runs) == ("l1_penalty",)  # seeds repeat an experiment; they never split
    assert varying_settings(runs, exclude=["l1_penalty"]) == ()
    assert varying_settings(runs, first_stage=False) == ("l1_penalty", "history_interval")



def test_runs_from_different_initial_weights_are_never_averaged(make_run):
    runs = [make_run("a", {}, init_mode="default"), make_run("b", {}, init_mode="imagenet")]
    assert varying_settings(runs) == ("init_mode",)

def test_natural_order_puts_numbers_in_names_in_numeric_order():
    names = ["MicroResNet110", None, "MicroResNet20", "MicroResNet56"]
    assert sorted(names, key=natural_key) == ["MicroResNet20", "MicroResNet56", "MicroResNet110", None]


@pytest.mark.parametrize(
    ("value", "text"),
    [(1e-4, "1e-04"), (5e-12, "5e-12"), (0.5, "0.5"), (0.001, "0.001"), (None, "-"), ("cifar10", "cifar10")],
)
def test_format_value(value, text):
    assert format_value(value) == text


def test_runs_with_keeps_runs_holding_the_result_kind(make_run):
    runs = [make_run("a", {"eig_stats": {"complex_ratio": 0.5}}), make_run("b", {})]
    assert [r["id"] for r in runs_with(runs, "eig_stats")] == ["a"]
    with pytest.raises(NothingFound, match="no matching run has set analysis results"):
        runs_with(runs, "set_analysis")


def test_nothing_compared_names_the_modes_only_when_there_are_some():
    from psykedelic_cli.reports.aggregate import nothing_compared

    assert str(nothing_compared(["det", "weight"], "a history")) == (
        "no matching run has a history for the mode(s) det, weight")
    assert str(nothing_compared(None, "per-layer results")) == "no matching run has per-layer results"
    assert nothing_compared([], "x").exit_code == 1


def test_runs_sharing_a_first_stage_count_once_in_first_stage_results(make_run):
    from psykedelic_cli.reports.aggregate import runs_with

    results = {"performance": {"None": {"accuracy": 0.9}}, "final": {"accuracy": 0.8}}
    trunk = make_run("t", {**results, "first_stage": {"trained_by": "t", "shared_with": ["b"]}}, mode="det")
    branch = make_run("b", {**results, "first_stage": {"trained_by": "t", "shared_with": ["t"]}}, mode="weight")
    alone = make_run("a", dict(results), mode="det", seed=5)
    assert [run["id"] for run in runs_with([trunk, branch, alone], "performance")] == ["t", "a"]
    assert [run["id"] for run in runs_with([branch, alone], "performance")] == ["b", "a"]  # its trunk filtered out
    assert [run["id"] for run in runs_with([trunk, branch, alone], "final")] == ["t", "b", "a"]  # each its own
