"""The store at scale: 1,000 ResNet-32-sized runs, each with its per-layer lists for nine
modes, a 10-step per-layer history and a 200-epoch learning curve (~440 MB of JSON).

Baseline: a bare ``json.load`` of the same file, measured in the same run. Goals:
``psyk list-experiments`` (the whole command, start-up included) within 2x of the bare
parse and under 2 s; ``show`` and adding a run well under the bare parse. For scale, also
TinyDB's default ``JSONStorage`` inserting one run (what a plain TinyDB store would cost).
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._util import console, figures_table, fmt_seconds, median_seconds

RUNS = 1000
MODES = (
    "None", "det", "det_corr", "min_eig", "min_eig_real", "spectral_radius", "spectral_radius_real", "spectral_norm",
    "weight",
)
HISTORY_STEPS = 10
EPOCHS = 200


def _resnet32_layers() -> list[tuple[str, int, int]]:
    """(name, parameters, kernels) of MicroResNet32's 33 convolutions (bias included)."""
    layers = [("conv2d", 3 * 3 * 3 * 16 + 16, 3 * 16)]
    channels = 16
    for stage, filters in enumerate((16, 32, 64), 1):
        for block in range(1, 6):
            for conv in (1, 2):
                inputs = channels if conv == 1 else filters
                layers.append(
                    (f"stage{stage}_block{block}_conv{conv}", 9 * inputs * filters + filters, inputs * filters)
                )
            if block == 1 and filters != channels:
                layers.append((f"stage{stage}_block1_shortcut", channels * filters + filters, channels * filters))
            channels = filters
    return layers


LAYERS = _resnet32_layers()


def _row(rng: random.Random, total: int = 470218) -> dict:
    active = rng.randint(total // 4, total)
    accuracy = rng.random()
    return {
        "accuracy": accuracy, "precision": rng.random(), "recall": rng.random(),
        "active_params": active, "total_params": total, "compression_ratio": 1 - active / total,
        "score": accuracy * (1 - active / total), "alive_kernels": rng.randint(0, 46000), "total_kernels": 46000,
    }


def _per_layer(rng: random.Random) -> list[dict]:
    rows = []
    for name, params, kernels in LAYERS:
        alive = rng.randint(0, kernels)
        rows.append({"layer": name, "active_params": params - 9 * (kernels - alive), "total_params": params,
                     "alive_kernels": alive, "total_kernels": kernels})
    return rows


def resnet32_run(rng: random.Random, index: int) -> dict:
    from psykedelic_cli.store import new_run_document

    mode = MODES[1 + index % (len(MODES) - 1)]
    doc = new_run_document({
        "model": "MicroResNet32", "depth": 32, "dataset": ("cifar10", "cifar100", "tiny-imagenet")[index % 3],
        "optimizer": "adam", "loss": "categorical_crossentropy", "lr": 1e-3, "epochs": EPOCHS, "batch_size": 128,
        "steps": 2, "init_mode": "default", "l1_penalty": 1e-4, "mode": mode, "compare": list(MODES[1:]),
        "threshold": 1e-4, "history_interval": EPOCHS // 2 // HISTORY_STEPS, "residual": True, "seed": index,
    })
    doc["status"] = "completed"
    doc["results"] = {
        "learning_curve": {
            "epoch": list(range(1, EPOCHS + 1)),
            **{
                key: [rng.random() for _ in range(EPOCHS)]
                for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr")
            },
            "stage": [1] * (EPOCHS // 2) + [2] * (EPOCHS // 2),
        },
        "performance": {m: _row(rng) for m in MODES},
        "pruning_per_layer": {m: _per_layer(rng) for m in MODES},
        "final": {**_row(rng), "mode": mode},
        "history": [
            {"epoch": step * doc["config"]["history_interval"], "performance": {m: _row(rng) for m in MODES}}
            for step in range(HISTORY_STEPS)
        ],
        "per_layer_history": [
            {
                "epoch": step * doc["config"]["history_interval"],
                "pruning_per_layer": {m: _per_layer(rng) for m in MODES},
            }
            for step in range(HISTORY_STEPS)
        ],
    }
    return doc


def _psyk(*args: str, store: Path) -> None:
    psyk = Path(sys.executable).with_name("psyk")
    subprocess.run([str(psyk), "--store", str(store), *args], check=True, stdout=subprocess.DEVNULL)


def _tinydb_default_insert(path: Path, doc: dict) -> None:
    from tinydb import TinyDB

    db = TinyDB(path)  # JSONStorage: parse the whole file, then serialise it whole again
    db.table("runs").insert(doc)
    db.close()


def run() -> None:
    from psykedelic_cli.store import Store

    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "psyk-store.json"
        store = Store(path)
        console.print(f"building a store of {RUNS} ResNet-32-sized runs …")
        start = time.perf_counter()
        run_ids = store.add_runs(resnet32_run(rng, i) for i in range(RUNS))
        build = time.perf_counter() - start
        size = path.stat().st_size
        console.print(f"{size / 1e6:.0f} MB written in {fmt_seconds(build)}")

        bare = median_seconds(lambda: json.loads(path.read_bytes()), repeat=3, warmup=0)
        probe = run_ids[RUNS // 2]
        figures = [
            (
                "psyk list-experiments (whole command)", lambda: _psyk("list-experiments", store=path), 5,
                "≤ 2× and < 2 s",
            ),
            ("psyk show RUN (whole command)", lambda: _psyk("show", probe, store=path), 5, "≪ 1×"),
            ("Store.summaries() (list's read)", store.summaries, 5, "≪ 1×"),
            ("Store.add_run (one more run, fsynced)", lambda: store.add_run(resnet32_run(rng, RUNS)), 3, "≪ 1×"),
            (
                "Store.update_run (a training epoch)", lambda: store.update_run(probe, results={"final": _row(rng)}), 3,
                "≪ 1×",
            ),
            ("Store.runs(kinds=['performance'])", lambda: store.runs(kinds=["performance"]), 3, "≪ 1×"),
            ("Store.runs() (every run, whole)", store.runs, 1, "≈ 1×"),
        ]
        rows = [{
            "figure": f"json.load of the store ({size / 1e6:.0f} MB)", "ours": fmt_seconds(bare), "baseline": "—",
            "ratio": "1.00×",
        }]
        for name, action, repeat, goal in figures:
            seconds = median_seconds(action, repeat=repeat, warmup=1 if repeat > 1 else 0)
            verdict = ""
            if name.startswith("psyk list-experiments"):
                verdict = "met" if seconds <= 2 * bare and seconds < 2 else "MISSED"
            rows.append({"figure": name, "ours": fmt_seconds(seconds), "baseline": fmt_seconds(bare),
                         "ratio": f"{seconds / bare:.3f}×", "goal": goal, "verdict": verdict})

        plain = Path(folder) / "plain-tinydb.json"
        shutil.copyfile(path, plain)
        seconds = median_seconds(lambda: _tinydb_default_insert(plain, resnet32_run(rng, RUNS + 1)), repeat=1, warmup=0)
        rows.append({"figure": "for scale: TinyDB JSONStorage insert", "ours": fmt_seconds(seconds),
                     "baseline": fmt_seconds(bare), "ratio": f"{seconds / bare:.2f}×", "goal": "—"})
    console.print(figures_table(f"store with {RUNS} ResNet-32-sized runs (medians)", rows))
