import csv
import io

import numpy as np
import pytest

from psykedelic_cli.reports.per_layer import per_layer_report


def layers(names, active, total=(18, 36)) -> list[dict]:
    return [
        {"layer": n, "active_params": a, "total_params": t, "alive_kernels": a // 9, "total_kernels": t // 9}
        for n, a, t in zip(names, active, total)
    ]


@pytest.fixture
def runs(make_run):
    return [
        make_run("l1", {"pruning_per_layer": {
            "None": layers(["conv1", "conv2"], [18, 36]), "det": layers(["conv1", "conv2"], [9, 36])
        }}),
        # Keras names layers differently in another session: layers align by position
        make_run("l2", {"pruning_per_layer": {
            "None": layers(["conv2d_7", "conv2d_8"], [18, 36]), "det": layers(["conv2d_7", "conv2d_8"], [18, 18])
        }}),
    ]


def records(report) -> dict:
    return {
        (r["layer_index"], r["layer"], r["measure"], r["mode"]): (float(r["mean"]), float(r["std"]), int(r["n"]))
        for r in csv.DictReader(io.StringIO(report.text("csv")))
    }


def test_active_and_total_parameters_and_ratio_per_layer(runs):
    report = per_layer_report(runs)
    assert report.text("csv").splitlines()[0] == "dataset,model,layer_index,layer,measure,mode,mean,std,n"
    got = records(report)
    assert got[("1", "conv1", "total_params", "")] == pytest.approx((18, 0, 2))
    assert got[("1", "conv1", "active_params", "det")] == pytest.approx((13.5, 4.5, 2))
    assert got[("2", "conv2", "active_params", "det")] == pytest.approx((27, 9, 2))
    # the ratio is taken per run, then averaged: (0.5 + 1.0) / 2
    assert got[("1", "conv1", "active_ratio", "det")] == pytest.approx((0.75, 0.25, 2))
    assert got[("2", "conv2", "active_ratio", "None")] == pytest.approx((1.0, 0.0, 2))


def test_parameters_table_shows_counts_and_the_ratio_table_percent(runs):
    report = per_layer_report(runs)
    parameters, ratio = report.tables
    markdown = report.text("markdown")
    assert parameters.scale == 1 and ratio.scale == 100
    assert "| 1 | conv1 | 18 ± 0 | 18 ± 0 | 14 ± 4 |" in markdown  # 13.5 rounds half to even
    assert "| 1 | conv1 | 100.00 ± 0.00 | 75.00 ± 25.00 |" in markdown
    assert ratio.keys["measure"] == "active_ratio"


def test_modes_narrow_the_columns(runs):
    assert {key[3] for key in records(per_layer_report(runs, modes=["det"]))} == {"", "det"}


def test_charts_show_the_aggregated_numbers(runs, tmp_path):
    report = per_layer_report(runs)
    assert [c.stem for c in report.charts] == [
        "per_layer_cifar10_MicroResNet32_params",
        "per_layer_cifar10_MicroResNet32_ratio",
        "per_layer_cifar10_MicroResNet32_overview",
    ]
    params = report.charts[0].draw()
    assert [ax.get_title() for ax in params.axes] == ["det"]  # the unpruned baseline gets no panel
    overview = report.charts[2].draw()
    image = overview.axes[0].get_images()[0]
    np.testing.assert_allclose(image.get_array(), [[100, 100], [75, 75]])
    assert [t.get_text() for t in overview.axes[0].get_yticklabels()] == ["None", "det"]
    for path in report.write(tmp_path, "png")[3:]:
        assert path.read_bytes().startswith(b"\x89PNG")


def test_small_multiples_share_their_scales_and_label_the_outer_panels(make_run):
    modes = ["det", "det_corr", "min_eig", "weight"]  # four panels: a 3 × 2 grid, two empty cells
    run = make_run("l1", {"pruning_per_layer": {
        "None": layers(["conv1", "conv2"], [18, 36]),
        **{mode: layers(["conv1", "conv2"], [9, 9 * (i + 1)]) for i, mode in enumerate(modes)},
    }})
    figure = per_layer_report([run]).charts[0].draw()
    panels = {ax.get_title(): ax for ax in figure.axes}
    assert list(panels) == modes
    assert {ax.get_ylim() for ax in figure.axes} == {panels["det"].get_ylim()}
    assert panels["det"].get_ylim()[1] >= 0.036  # the largest total, 36 parameters, in thousands
    assert {ax.get_xlim() for ax in figure.axes} == {panels["det"].get_xlim()}

    def labelled(ax, axis):
        return [t.get_text() for t in getattr(ax, f"get_{axis}ticklabels")() if t.get_text()]

    # y tick labels in the first column; x tick labels on the lowest panel of every column
    assert [mode for mode, ax in panels.items() if labelled(ax, "y")] == ["det", "weight"]
    assert [mode for mode, ax in panels.items() if labelled(ax, "x")] == ["det_corr", "min_eig", "weight"]
    assert labelled(panels["weight"], "x") == ["1", "2"]


def test_chart_workers_started_before_the_report_draw_the_same_charts(runs, tmp_path):
    from psykedelic_cli.reports.report import ChartWorkers

    with ChartWorkers(modules=("matplotlib_venn",)) as workers:
        report = per_layer_report(runs)  # built after the workers started, as psyk report does
        early = report.write(tmp_path / "early", "svg", workers=workers)
    report.write(tmp_path / "late", "svg")
    for path in early[3:]:
        assert path.read_bytes() == (tmp_path / "late" / path.name).read_bytes()


def test_chart_workers_stop_when_the_work_before_the_charts_fails():
    import multiprocessing

    from psykedelic_cli.reports.report import ChartWorkers

    with pytest.raises(KeyError):
        with ChartWorkers():
            started = multiprocessing.active_children()
            raise KeyError("the store read failed")
    assert not any(process.is_alive() for process in started)


def test_charts_drawn_in_parallel_workers_equal_those_drawn_one_by_one(runs, tmp_path, monkeypatch):
    report = per_layer_report(runs)
    assert len(report.charts) > 1
    drawn = []
    parallel = report.write(tmp_path / "parallel", "svg", on_chart=lambda: drawn.append("parallel"))
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    serial = report.write(tmp_path / "serial", "svg", on_chart=lambda: drawn.append("serial"))
    assert drawn == ["parallel"] * len(report.charts) + ["serial"] * len(report.charts)
    charts = [path for path in parallel if path.suffix == ".svg"]
    assert len(charts) == len(report.charts)
    for path in charts:
        assert path.read_bytes() == (tmp_path / "serial" / path.name).read_bytes()
    assert [p.name for p in parallel] == [p.name for p in serial]


def test_a_chart_that_fails_in_a_worker_fails_the_write(runs, tmp_path):
    from psykedelic_cli.reports.report import Chart

    report = per_layer_report(runs)
    report.charts.append(Chart("broken", _no_figure))
    with pytest.raises(AttributeError):
        report.write(tmp_path, "png")


def _no_figure():
    return None  # savefig on None: the worker's error must reach the caller
