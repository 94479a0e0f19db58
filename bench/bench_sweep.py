"""The shared first stage and the sweep executors, measured.

1. ``psyk train --mode all`` (27 modes, one first stage, 27 branches) on the default digits
   setting, against 27 separate runs: three separate runs timed (a threshold, a sorted-kernel
   and a sorted-neuron mode) and their mean multiplied by 27. Goal: ≤ 0.55×.
2. A 4-run sweep of tiny trainings (ResNet-8, 4 epochs, four seeds: four tasks) on a local Ray
   instance with 2 workers, against the same 4 runs in turn with ``--executor local`` (this process,
   TensorFlow already loaded). Ray's start-up (``ray.init``) is reported apart; the workers' own
   start (each imports TensorFlow) counts in the Ray sweep.

``PSYK_BENCH_QUICK=1`` runs part 1 on ResNet-8 for 4 epochs instead (minutes instead of an hour on 2 cores);
``PSYK_BENCH_BRANCHES=N`` times N branches only and extrapolates 27 from their cost beyond one run.
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench._util import console, figures_table, fmt_seconds

SAMPLE_MODES = ("min_eig", "weight_sorted_kernels", "random_neurons")


def _mode_all(folder: Path) -> list[dict]:
    from psykedelic_cli.data import load_dataset
    from psykedelic_cli.pruning.modes import resolve_modes
    from psykedelic_cli.store import Store
    from psykedelic_cli.training.config import TrainConfig
    from psykedelic_cli.training.flow import train_group, train_run

    quick = os.environ.get("PSYK_BENCH_QUICK", "") not in ("", "0")
    base = TrainConfig(out_dir=None, **({"depth": 8, "epochs": 4, "batch_size": 64} if quick else {}))
    dataset = load_dataset(base.dataset)
    modes = resolve_modes(["all"])
    separate = []
    for mode in SAMPLE_MODES:
        start = time.perf_counter()
        train_run(base.replace(mode=mode).validate(), Store(folder / f"alone-{mode}.json"), dataset)
        separate.append(time.perf_counter() - start)
    # PSYK_BENCH_BRANCHES=N < 27: N branches timed, and 27 extrapolated by their cost beyond one run.
    branches = min(int(os.environ.get("PSYK_BENCH_BRANCHES", "27")), len(modes))
    shared_modes = modes if branches == len(modes) else [*SAMPLE_MODES, *[m for m in modes if m not in SAMPLE_MODES]]
    start = time.perf_counter()
    runs = train_group([base.replace(mode=mode).validate() for mode in shared_modes[:branches]],
                       Store(folder / "all.json"), dataset)
    shared = time.perf_counter() - start
    one = sum(separate) / len(separate)
    alone = one * len(modes)
    measured = f"{len(runs)} runs"
    if branches < len(modes):
        shared += (len(modes) - branches) * (shared - one) / max(branches - 1, 1)
        measured = f"{branches} branches timed, 27 extrapolated"
    ratio = shared / alone
    setting = "ResNet-8, 4 epochs" if quick else "ResNet-20, 20 epochs"
    return [
        {"figure": f"--mode all, one first stage ({setting}; {measured})", "ours": fmt_seconds(shared),
         "baseline": f"{fmt_seconds(alone)} (27 × {fmt_seconds(one)})", "ratio": f"{ratio:.2f}×",
         "goal": "≤ 0.55×", "verdict": "ok" if ratio <= 0.55 else "SLOW"},
    ]


def _ray_sweep(folder: Path) -> list[dict]:
    try:
        import ray
    except ImportError:
        return [{"figure": "Ray sweep", "ours": "—", "baseline": "—", "ratio": "—", "goal": "—",
                 "verdict": "ray not installed (pip install 'psykedelic[ray]')"}]
    from psykedelic_cli.store import Store
    from psykedelic_cli.training.config import TrainConfig
    from psykedelic_cli.training.executors import RayOptions, SweepDriver, execute, tasks_of
    from psykedelic_cli.training.sweep import plan_sweep

    configs = [TrainConfig(depth=8, epochs=4, batch_size=64, patience=1, compare=("weight",), seed=seed,
                           out_dir=None).validate() for seed in range(4)]

    def sweep(executor: str, name: str) -> float:
        store = Store(folder / f"{name}.json")
        plan = plan_sweep(configs, store, now=datetime.now(timezone.utc))
        start = time.perf_counter()
        execute(tasks_of(plan.to_run), SweepDriver(store), executor, RayOptions())
        seconds = time.perf_counter() - start
        assert all(run["status"] == "completed" for run in store.runs(kinds=())), f"{executor} sweep failed"
        return seconds

    from psykedelic_cli.cli.common import start_backend

    start_backend()  # the local sweep runs in this process, its backend loaded as psyk sweep loads it
    local = sweep("local", "local")
    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    started = time.perf_counter() - start
    try:
        on_ray = sweep("ray", "ray")
    finally:
        ray.shutdown()
    ratio = on_ray / local
    return [
        {"figure": "4-run sweep, Ray, 2 workers (workers' start included)", "ours": fmt_seconds(on_ray),
         "baseline": f"{fmt_seconds(local)} local, in turn", "ratio": f"{ratio:.2f}×", "goal": "—", "verdict": ""},
        {"figure": "Ray start-up (ray.init, local instance)", "ours": fmt_seconds(started), "baseline": "—",
         "ratio": f"{started / local:.2f}× of the local sweep", "goal": "—", "verdict": ""},
    ]


def run() -> None:
    with tempfile.TemporaryDirectory() as folder:
        rows = _ray_sweep(Path(folder)) + _mode_all(Path(folder))
    console.print(figures_table("shared first stage and sweep executors (digits)", rows))
