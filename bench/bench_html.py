"""Benchmark: ``psyk report html`` over the 1,000-run store against the six paper reports with ``-o``.

The store is bench_reports' (1,000 ResNet-32-sized runs, three datasets, every result kind).
The figure is the whole ``psyk report html -o DIR`` process (start-up, reading every report's
kind and the learning curves, aggregation, every chart as SVG, the page) as a ratio of the six
paper reports' ``psyk report <name> -o DIR`` processes run one after another (tables and PNG
charts), and of those six plus ``significance``, which the page holds too (the sensitivity
report has no runs in this store). Goal: the page in no more time than the seven reports it
holds, written one by one. ``significance`` alone is shown against the bare ``json.load`` of
the store, as in bench_reports.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._util import console, figures_table, fmt_seconds, median_seconds
from bench.bench_reports import DATASETS, REPORTS, RUNS, write_store

REPEATS = 2


def _psyk_seconds(store: Path, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "psykedelic_cli", "--store", str(store), *args],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def run() -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "psyk-store.json"
        console.print(f"[bold]bench_html[/]: a store of {RUNS} ResNet-32-sized runs ({len(DATASETS)} datasets) …")
        write_store(store, RUNS)
        size_mb = store.stat().st_size / 1e6

        def bare_parse() -> None:
            with open(store, "rb") as file:
                json.load(file)

        baseline = median_seconds(bare_parse, repeat=3, warmup=0)
        out = Path(folder) / "out"
        six = statistics.median(
            sum(_psyk_seconds(store, "report", name, "-f", "csv", "-o", str(out / name)) for name, _, _ in REPORTS)
            for _ in range(REPEATS)
        )
        page = statistics.median(
            _psyk_seconds(store, "report", "html", "-o", str(out / f"site{i}")) for i in range(REPEATS)
        )
        significance = statistics.median(
            _psyk_seconds(store, "report", "significance", "-f", "csv", "-o", str(out / "significance"))
            for _ in range(REPEATS)
        )
        page_mb = (out / "site0" / "index.html").stat().st_size / 1e6
        charts = sum(1 for p in (out / "site0").rglob("*.svg"))
    seven = six + significance
    shown = f"`psyk report html -o DIR` ({charts} SVG charts, a {page_mb:.1f} MB page)"
    rows = [
        {"figure": "the six paper reports, each `psyk report NAME -o DIR`", "ours": fmt_seconds(six)},
        {"figure": f"{shown} vs the six", "ours": fmt_seconds(page), "baseline": fmt_seconds(six),
         "ratio": f"{page / six:.2f}×"},
        {
            "figure": f"{shown} vs the six and significance", "ours": fmt_seconds(page),
            "baseline": fmt_seconds(seven), "ratio": f"{page / seven:.2f}×", "goal": "≤ 1×",
            "verdict": "ok" if page <= seven else "MISSED",
        },
        {
            "figure": "`psyk report significance -o DIR`", "ours": fmt_seconds(significance),
            "baseline": fmt_seconds(baseline), "ratio": f"{significance / baseline:.2f}×",
        },
    ]
    load = os.getloadavg()[0]
    console.print(figures_table(
        f"psyk report html over {RUNS} runs ({size_mb:.0f} MB store); baselines: the six reports with -o, "
        f"and json.load of the store; medians of {REPEATS}; load average {load:.1f} on {os.cpu_count()} CPUs",
        rows,
    ))
