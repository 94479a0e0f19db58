"""Benchmark: every ``psyk report`` over a store of 1,000 ResNet-32-sized runs.

The store is shaped like bench_store's: 33 conv layers, the None baseline and the eight
base criteria compared, per-layer lists, a 10-epoch history (per-layer lists in their own kind), a
200-epoch learning curve, three datasets (so three groups, and charts, per report).
Each report's time is split into read (the store query), aggregate (building the
tables and chart data) and render (tables as text plus every chart as PNG), and the
whole ``psyk report … -o DIR`` process is timed too (start-up and imports included);
all against the bare ``json.load`` of the same file measured in the same run.
Goal: each whole command under 3 s. Rendering grows with the number of charts (groups),
not with the number of runs.
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench._util import console, figures_table, fmt_seconds, median_seconds
from psykedelic_cli.store.schema import BASE_CRITERIA, BASELINE, EIG_CRITERIA, PER_THRESHOLD_THRESHOLDS, SCHEMA_VERSION

RUNS = 1000
GOAL_SECONDS = 3.0
DATASETS = ("cifar10", "cifar100", "tiny-imagenet")
COMPARED = (BASELINE, *BASE_CRITERIA)


def resnet32_layers() -> list[tuple[str, int, int, int]]:
    """(name, kernel size, C_in, C_out) of the 33 Conv2D layers of a CIFAR ResNet-32."""
    layers = [("conv_stem", 3, 3, 16)]
    for stage, width in enumerate((16, 32, 64), start=1):
        for block in range(1, 6):
            c_in = width // 2 if stage > 1 and block == 1 else width
            layers.append((f"stage{stage}_block{block}_conv1", 3, c_in, width))
            layers.append((f"stage{stage}_block{block}_conv2", 3, width, width))
            if stage > 1 and block == 1:
                layers.append((f"stage{stage}_block{block}_shortcut", 1, c_in, width))
    return layers


LAYERS = resnet32_layers()


def _per_layer(alive: np.ndarray) -> list[dict]:
    return [
        {
            "layer": name, "active_params": int(k * k * a), "total_params": k * k * c_in * c_out,
            "alive_kernels": int(a), "total_kernels": c_in * c_out,
        }
        for (name, k, c_in, c_out), a in zip(LAYERS, alive)
    ]


def _comparison(rng: np.random.Generator, kill_scale: float) -> tuple[dict, dict]:
    """Performance rows and per-layer lists of every compared mode, the None baseline first."""
    total_kernels = np.array([c_in * c_out for _, _, c_in, c_out in LAYERS])
    total_params = 470_218
    kernel_params = sum(k * k * c_in * c_out for _, k, c_in, c_out in LAYERS)
    accuracy_none = float(rng.uniform(0.88, 0.93))
    performance, per_layer = {}, {}
    for i, mode in enumerate(COMPARED):
        kill = 0.0 if mode == BASELINE else min(0.95, kill_scale * (0.2 + 0.08 * i) * rng.uniform(0.8, 1.2))
        alive = np.floor(total_kernels * (1 - kill * rng.uniform(0.5, 1.0, len(LAYERS)))).astype(int)
        lists = _per_layer(alive)
        active = total_params - kernel_params + sum(item["active_params"] for item in lists)
        accuracy = accuracy_none if mode == BASELINE else accuracy_none - kill * rng.uniform(0.0, 0.1)
        ratio = 1 - active / total_params
        performance[mode] = {
            "accuracy": accuracy, "precision": accuracy - 0.01, "recall": accuracy - 0.005,
            "active_params": active, "total_params": total_params, "compression_ratio": ratio,
            "score": accuracy / accuracy_none * ratio, "alive_kernels": int(alive.sum()),
            "total_kernels": int(total_kernels.sum()),
        }
        per_layer[mode] = lists
    return performance, per_layer


def synthetic_run(rng: np.random.Generator, index: int) -> dict:
    """A completed ResNet-32 run document with every result kind (10-epoch history included)."""
    performance, per_layer = _comparison(rng, 1.0)
    total_kernels = performance[BASELINE]["total_kernels"]
    combos = ["", *("+".join(c) for r in (1, 2, 3) for c in itertools.combinations(BASE_CRITERIA, r))][:40]
    shares = rng.dirichlet(np.ones(len(combos)))
    return {
        "id": f"20260101T000000-{index:06x}",
        "schema_version": SCHEMA_VERSION,
        "status": "completed",
        "error": None,
        "source": "train",
        "created_at": "2026-01-01T00:00:00+00:00",
        "updated_at": "2026-01-01T01:00:00+00:00",
        "finished_at": "2026-01-01T01:00:00+00:00",
        "host": {"hostname": "bench", "platform": "linux", "python": "3.11", "cpu_count": 2},
        "versions": {"psykedelic": "0.1.0"},
        "config": {
            "model": "MicroResNet32", "depth": 32, "dataset": DATASETS[index % len(DATASETS)], "optimizer": "adam",
            "loss": "categorical_crossentropy", "lr": 1e-3, "epochs": 200, "batch_size": 128, "steps": 2,
            "momentum": None, "decay": None, "init_mode": "default", "l1_penalty": 1e-4, "mode": "det",
            "compare": list(COMPARED[1:]), "threshold": 1e-4, "contribution_threshold": 1e-3, "rate": 0.2,
            "history_interval": 10, "residual": True, "seed": index,
        },
        "results": {
            "learning_curve": {
                k: rng.uniform(0, 1, 200).tolist() for k in ("loss", "accuracy", "val_loss", "val_accuracy", "lr")
            }
            | {"epoch": list(range(1, 201)), "stage": [1] * 100 + [2] * 100},
            "performance": performance,
            "pruning_per_layer": per_layer,
            "final": performance["det"] | {"mode": "det"},
            "eig_stats": {
                "total_kernels": total_kernels, "total_eigenvalues": 3 * total_kernels,
                "complex_eigenvalues": int(rng.integers(total_kernels, 2 * total_kernels)),
                "complex_ratio": float(rng.uniform(0.3, 0.5)),
                "criteria": {
                    c: {"pruned": 1000, "target_complex": 500, "pruned_complex": 300,
                        "target_complex_ratio": float(rng.uniform(0.2, 0.7)),
                        "pruned_complex_ratio": float(rng.uniform(0.2, 0.7))}
                    for c in EIG_CRITERIA
                },
            },
            "set_analysis": {
                "criteria": list(BASE_CRITERIA), "total_kernels": total_kernels,
                "shares": dict(zip(combos, shares.tolist())),
            },
            "pruning_per_threshold": {
                "thresholds": list(PER_THRESHOLD_THRESHOLDS),
                "pruned_ratio": {
                    c: (1 / (1 + np.exp(-(np.log10(PER_THRESHOLD_THRESHOLDS) + 6 - i + rng.normal(0, 0.3))))).tolist()
                    for i, c in enumerate(BASE_CRITERIA)
                },
                "rule": "own",
            },
            **history_kinds([(epoch, *_comparison(rng, epoch / 100)) for epoch in range(10, 110, 10)]),
        },
    }


def history_kinds(points) -> dict:
    """``history`` and ``per_layer_history`` from ``(epoch, performance, per-layer)`` triples."""
    return {
        "history": [{"epoch": epoch, "performance": perf} for epoch, perf, _ in points],
        "per_layer_history": [{"epoch": epoch, "pruning_per_layer": layers} for epoch, _, layers in points],
    }


def write_store(path: Path, runs: int, seed: int = 0) -> None:
    """A store of ``runs`` synthetic runs, added in one transaction."""
    from psykedelic_cli.store import Store

    rng = np.random.default_rng(seed)
    Store(path).add_runs(synthetic_run(rng, i) for i in range(runs))


REPORTS = (  # CLI name, result kind read, report function name in psykedelic_cli.reports
    ("eig-stats", "eig_stats", "eig_stats_report"),
    ("performance", "performance", "performance_report"),
    ("set-analysis", "set_analysis", "set_analysis_report"),
    ("per-threshold", "pruning_per_threshold", "per_threshold_report"),
    ("per-layer", "pruning_per_layer", "per_layer_report"),
    ("history", "history", "history_report"),
)


def _cli_seconds(store: Path, command: str, out_dir: Path) -> float:
    """Wall time of the whole ``psyk report`` process (start-up, imports, read, aggregate, render)."""
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable, "-m", "psykedelic_cli", "--store", str(store), "report", command, "-f", "csv",
            "-o", str(out_dir),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def run() -> None:
    from psykedelic_cli import reports
    from psykedelic_cli.store import Store

    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "psyk-store.json"
        console.print(
            f"[bold]bench_reports[/]: building a store of {RUNS} ResNet-32-sized runs ({len(DATASETS)} datasets) …"
        )
        write_store(store, RUNS)
        size_mb = store.stat().st_size / 1e6

        def bare_parse() -> None:
            with open(store, "rb") as file:
                json.load(file)

        baseline = median_seconds(bare_parse, repeat=3, warmup=0)
        import matplotlib.figure  # noqa: F401  (its import is paid once per process; the CLI figure includes it)
        rows = []
        for command, kind, function in REPORTS:
            build = getattr(reports, function)
            runs = Store(store).runs(status="completed", kinds=(kind,))
            read = median_seconds(lambda: Store(store).runs(status="completed", kinds=(kind,)), repeat=3, warmup=0)
            aggregate = median_seconds(lambda: build(runs), repeat=3, warmup=0)
            report = build(runs)
            charts = len(report.charts)
            out_dir = Path(folder) / command

            def render() -> None:
                report.rich_tables()
                report.write(out_dir, "png")

            rendering = median_seconds(render, repeat=2, warmup=0)
            cli = statistics.median(_cli_seconds(store, command, out_dir) for _ in range(2))
            runs = report = None  # free this report's runs before the next kind is read
            for figure, seconds, goal in (
                (f"{command}: read (store query)", read, ""),
                (f"{command}: aggregate", aggregate, ""),
                (
                    f"{command}: render (tables + {charts} PNG charts"
                    f"{f', {fmt_seconds(rendering / charts)} each' if charts else ''})",
                    rendering,
                    "",
                ),
                (f"{command}: whole CLI command", cli, f"< {GOAL_SECONDS:.0f} s"),
            ):
                verdict = ("ok" if seconds < GOAL_SECONDS else "MISSED") if goal else ""
                rows.append({
                    "figure": figure, "ours": fmt_seconds(seconds), "baseline": fmt_seconds(baseline),
                    "ratio": f"{seconds / baseline:.2f}×", "goal": goal, "verdict": verdict,
                })
    load = os.getloadavg()[0]
    console.print(figures_table(
        f"psyk report over {RUNS} runs ({size_mb:.0f} MB store, {len(DATASETS)} datasets × 1 model); "
        f"baseline: bare json.load of the store file; load average {load:.1f} on {os.cpu_count()} CPUs",
        rows,
    ))
