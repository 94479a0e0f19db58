"""The run tables of ``psyk show`` and ``psyk train`` at terminal widths: nothing cut short."""

from __future__ import annotations

import pytest
from rich.console import Console

from psykedelic_cli.cli.run_tables import performance_table, runs_table
from psykedelic_cli.pruning import MODES

TRAINED = "spectral_radius_real_contrib"


def _row(i: int) -> dict:
    return {"accuracy": 0.9 - 0.01 * i, "compression_ratio": 0.0123 * i, "score": 0.0111 * i,
            "alive_kernels": 100000 - 999 * i, "total_kernels": 234567, "active_params": 1742762 - 9999 * i,
            "total_params": 1742762}


def _run(run_id: str, mode: str, status: str = "completed") -> dict:
    performance = {"None": _row(0), **{m: _row(i) for i, m in enumerate(MODES, 1)}}
    return {
        "id": run_id, "status": status,
        "config": {"model": "MicroResNet110", "dataset": "cifar100", "mode": mode, "l1_penalty": 1e-4, "seed": 12},
        "results": {"performance": performance, "final": _row(3), "timings": {"first_stage": 1234.5}},
    }


def rendered(table, width: int) -> str:
    console = Console(record=True, width=width, file=open("/dev/null", "w"))
    console.print(table)
    text = console.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= width
    return text


@pytest.mark.parametrize("width", [80, 120])
def test_the_performance_table_shows_every_mode_and_number_in_full(width):
    run = _run("20261126T000000-abcdef", TRAINED)
    text = rendered(performance_table(run), width)
    assert "(trained)" in text and "time: first stage 1234.5 s" in text
    for i, mode in enumerate(MODES, 1):
        line = next(line for line in text.splitlines() if line.split()[:1] == [mode])
        assert line.split()[-5:] == [f"{100 * (0.9 - 0.01 * i):.2f}%", f"{100 * 0.0123 * i:.2f}%",
                                     f"{0.0111 * i:.4f}", f"{234567 - 100000 + 999 * i:,}", f"{1742762 - 9999 * i:,}"]


@pytest.mark.parametrize("width", [60, 80, 120])
def test_the_runs_table_keeps_every_run_id_and_number_whole(width):
    runs = [_run(f"20261126T00000{i}-abcdef", mode, status) for i, (mode, status) in
            enumerate([("spectral_radius_sorted_neurons", "interrupted"), ("det", "completed")])]
    text = rendered(runs_table(runs), width)
    joined = "".join(text.split())  # a mode name may wrap in a narrow terminal
    for run in runs:
        assert run["config"]["mode"] in joined
        if width >= 80:
            line = next(line for line in text.splitlines() if line.split()[:1] == [run["id"]])
            assert line.split()[-6:] == ["0.0001", "12", run["status"], "87.00%", "3.69%", "0.0333"]
    if width >= 120:  # room for a mode column
        assert text.splitlines()[1].split()[:2] == ["run", "mode"]
