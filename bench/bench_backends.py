"""One training step of our masked ResNet-20 against its plain Keras twin, on every installed backend.

Each backend runs in a process of its own (Keras picks its backend once per process),
with ``bench_train_step``'s method (16 rounds): Adam, batch 128 of 32×32×3, alternating rounds,
the ratio the median of per-round ratios, by wall and by CPU time. On PyTorch the
step is also timed compiled (``jit_compile=True``: ``torch.compile``) against eager.
Goal ≤ 1.03× on each backend.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

from bench._util import console, figures_table

BACKENDS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
ROUNDS = 16  # eager PyTorch takes seconds a step on 2 cores


def _worker(backend: str, jit_compile: str) -> None:
    from bench.bench_train_step import _models, _step_times

    compile_option = {"auto": "auto", "on": True, "off": False}[jit_compile]
    print(json.dumps(_step_times(_models(compile_option), rounds=ROUNDS)))


def _measure(backend: str, jit_compile: str = "auto") -> dict | None:
    env = {**os.environ, "KERAS_BACKEND": backend, "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", "")}
    done = subprocess.run([sys.executable, "-m", "bench.bench_backends", backend, jit_compile], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        console.print(f"[red]{backend} ({jit_compile}) failed:[/red] {done.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def run() -> None:
    from bench.bench_train_step import GOAL, LIMIT, _row

    rows = []
    goal = f"≤ {GOAL:.2f}× (> {LIMIT:.2f}× not done)"
    for backend, package in BACKENDS.items():
        if importlib.util.find_spec(package) is None:
            rows.append({"figure": f"{backend}: not installed", "verdict": "skipped"})
            continue
        times = _measure(backend)
        if times is None:
            continue
        for clock, seconds in times.items():
            rows.append(_row(f"{backend} {clock}: masked vs plain", seconds["masked"], seconds["plain"], goal, True))
        if backend == "torch":
            compiled = _measure(backend, "on")
            if compiled is not None:
                for clock in ("wall", "CPU"):
                    rows.append(_row(f"torch {clock}: masked, torch.compile vs eager", compiled[clock]["masked"],
                                     times[clock]["masked"]))
                    rows.append(_row(f"torch {clock}: compiled masked vs compiled plain", compiled[clock]["masked"],
                                     compiled[clock]["plain"], goal, True))
    console.print(figures_table("ResNet-20 train step per Keras backend (Adam, batch 128, CPU)", rows))


if __name__ == "__main__":
    _worker(sys.argv[1], sys.argv[2])
