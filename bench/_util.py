"""Timing helpers shared by the benchmarks: medians of repeats, ratios against a baseline."""

from __future__ import annotations

import statistics
import time
from typing import Callable

from rich.console import Console
from rich.table import Table

console = Console()


def median_seconds(fn: Callable[[], object], *, repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeat`` calls after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def figures_table(title: str, rows: list[dict]) -> Table:
    """Rows of ``{"figure", "ours", "baseline", "ratio", "goal", "verdict"}`` as a rich table."""
    table = Table(title=title)
    for col in ("figure", "ours", "baseline", "ratio", "goal", "verdict"):
        table.add_column(col, justify="left" if col == "figure" else "right", overflow="fold")
    for row in rows:
        table.add_row(*(str(row.get(col, "")) for col in ("figure", "ours", "baseline", "ratio", "goal", "verdict")))
    return table


def fmt_seconds(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"
