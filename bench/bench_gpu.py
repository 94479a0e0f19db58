"""psyk at the paper's scale on an accelerator: masked ResNet-32 on CIFAR-10-sized data, per backend.

Run by hand on a GPU machine (``python -m bench gpu``; ``make bench`` skips it without one,
``--cpu`` forces a small run here). It writes a CIFAR-10 archive in the official format from
random pixels to a temporary folder (speed only: nothing here measures accuracy), then per
backend (``PSYK_BENCH_BACKENDS``, default jax and torch), in a process of its own:

- images/s of each epoch of ``fit`` for the masked MicroResNet-32 (some kernels dead) and for
  its plain Keras twin, trained in turn in the same process: the mask overhead;
- the kernel analysis and the comparison of the eight base criteria on the trained weights,
  and their share of a 10-epoch stage;
- ``psyk train`` end to end (2 stages) on the archive, wall time;
- the projected paper run: ResNet-32, CIFAR-10, 400 epochs, comparison every 5 epochs of
  stage 1 (200 epochs: 40 comparisons), one kernel analysis.

Goals on one H200: masked ResNet-32 ≥ 25k img/s under JAX with ≤ 1.03× overhead; analysis +
comparison ≤ 5 % of a 10-epoch stage; the projected paper run ≤ 30 minutes.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

from bench._util import console, figures_table

EPOCHS = int(os.environ.get("PSYK_BENCH_EPOCHS", 3))
BATCH = 128


def write_random_cifar10(folder: Path, n_train: int = 50_000, n_test: int = 10_000, seed: int = 0) -> Path:
    """``folder/cifar-10-python.tar.gz`` as the official release lays it out, of random pixels."""
    rng = np.random.default_rng(seed)
    path = folder / "cifar-10-python.tar.gz"
    per_batch = n_train // 5
    files = {f"data_batch_{i}": per_batch for i in range(1, 6)} | {"test_batch": n_test}
    with tarfile.open(path, "w:gz", compresslevel=1) as archive:
        for name, size in files.items():
            rows = rng.integers(0, 256, size=(size, 3072), dtype=np.uint8)
            payload = pickle.dumps({b"data": rows, b"labels": rng.integers(0, 10, size).tolist()}, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return path


def _worker(data_dir: str, epochs: int) -> None:
    """In a process on one backend: epoch throughputs, analysis and comparison times, as JSON."""
    import keras

    from psykedelic_cli.data import load_dataset
    from psykedelic_cli.models.resnet import build_micro_resnet
    from psykedelic_cli.models.surgery import prune_model
    from psykedelic_cli.training.comparison import Evaluator
    from psykedelic_cli.training.config import TrainConfig
    from psykedelic_cli.training.flow import analyse_and_compare, make_optimizer, step_schedule
    from psykedelic_cli.training.recorder import PhaseTimer

    dataset = load_dataset("cifar10", data_dir=data_dir)
    config = TrainConfig(dataset="cifar10", depth=32, batch_size=BATCH, epochs=400, optimizer="adam").validate()

    class EpochClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    results = {"backend": keras.backend.backend(), "n_train": len(dataset.y_train), "epochs": {}}
    models = {}
    for name, masked in (("masked", True), ("plain", False)):
        model = build_micro_resnet(dataset.input_shape, dataset.n_classes, 32, masked=masked, seed=0)
        model.compile(optimizer=make_optimizer(config, step_schedule(config, dataset)),
                      loss="categorical_crossentropy", metrics=["accuracy"])
        if masked:
            prune_model(model, "weight_sorted_kernels", rate=0.3, seed=0)
        models[name] = model
    from psykedelic_cli.data.pipeline import EpochOrder

    for round_index in range(epochs):  # alternate the models epoch by epoch: both see the same machine state
        for name in ("masked", "plain") if round_index % 2 == 0 else ("plain", "masked"):
            data = dataset.train_pipeline(BATCH, seed=0)
            clock = EpochClock()
            models[name].fit(data, initial_epoch=round_index, epochs=round_index + 1, verbose=0, shuffle=False,
                             callbacks=[EpochOrder(data), clock])
            results["epochs"].setdefault(name, []).extend(clock.seconds)
    timer = PhaseTimer()
    evaluate = Evaluator(dataset.features("test"), dataset.y_test, batch_size=512)
    analyse_and_compare(models["masked"], evaluate, config, timer)
    results["timings"] = timer.seconds
    print(json.dumps(results))


def _psyk_train(backend: str, data_dir: Path, store: Path, epochs: int) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "psykedelic_cli", "--store", str(store), "train", "--backend", backend, "--dataset",
         "cifar10", "--data-dir", str(data_dir), "--depth", "32", "--epochs", str(max(epochs, 2)), "--batch-size",
         str(BATCH), "--out-dir", str(store.parent / "out")],
        capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "psyk train failed")
    return time.perf_counter() - start


def run(cpu: bool = False) -> None:
    import importlib.util

    if not cpu and not os.environ.get("PSYK_BENCH_GPU") and not _has_gpu():
        console.print("[dim]bench gpu: no GPU here; run `python -m bench gpu` on a GPU machine "
                      "(or `python -m bench.bench_gpu --cpu` for a small run)[/dim]")
        return
    backends = os.environ.get("PSYK_BENCH_BACKENDS", "jax,torch").split(",")
    n_train, n_test, epochs = (2_000, 500, 2) if cpu else (50_000, 10_000, EPOCHS)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder)
        write_random_cifar10(data_dir, n_train, n_test)
        for backend in backends:
            if importlib.util.find_spec(backend) is None:
                rows.append({"figure": f"{backend}: not installed", "verdict": "skipped"})
                continue
            env = {**os.environ, "KERAS_BACKEND": backend}
            done = subprocess.run([sys.executable, "-m", "bench.bench_gpu", "--worker", str(data_dir), str(epochs)],
                                  env=env, capture_output=True, text=True)
            if done.returncode != 0:
                rows.append({"figure": f"{backend}: failed", "ours": done.stderr.strip().splitlines()[-1:]})
                continue
            rows += _rows(json.loads(done.stdout.strip().splitlines()[-1]))
            seconds = _psyk_train(backend, data_dir, data_dir / f"store-{backend}.json", epochs)
            rows.append({"figure": f"{backend}: psyk train end to end, {max(epochs, 2)} epochs",
                         "ours": f"{seconds:.0f} s"})
    console.print(figures_table(f"masked MicroResNet-32 on CIFAR-10-sized random data, batch {BATCH}", rows))


def _rows(result: dict) -> list[dict]:
    backend, n = result["backend"], result["n_train"]
    steady = {name: statistics.median(seconds[1:] or seconds) for name, seconds in result["epochs"].items()}
    masked_rate, plain_rate = n / steady["masked"], n / steady["plain"]
    analysis = result["timings"].get("kernel_analysis", 0.0) + result["timings"].get("comparison", 0.0)
    stage = 10 * steady["masked"]
    paper = 400 * steady["masked"] + 40 * result["timings"].get("comparison", 0.0) + analysis
    per_epoch = ", ".join(f"{n / s / 1e3:.1f}k" for s in result["epochs"]["masked"])
    return [
        {"figure": f"{backend}: masked img/s per epoch", "ours": per_epoch, "goal": "≥ 25k (JAX, H200)"},
        {"figure": f"{backend}: masked vs plain epoch", "ours": f"{masked_rate / 1e3:.1f}k img/s",
         "baseline": f"{plain_rate / 1e3:.1f}k img/s", "ratio": f"{steady['masked'] / steady['plain']:.3f}×",
         "goal": "≤ 1.03×"},
        {"figure": f"{backend}: analysis + comparison vs a 10-epoch stage", "ours": f"{analysis:.1f} s",
         "baseline": f"{stage:.0f} s", "ratio": f"{analysis / stage:.1%}", "goal": "≤ 5 %"},
        {"figure": f"{backend}: projected paper run (400 epochs, 40 comparisons)", "ours": f"{paper / 60:.1f} min",
         "goal": "≤ 30 min"},
    ]


def _has_gpu() -> bool:
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0
    except OSError:
        return False


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        _worker(sys.argv[2], int(sys.argv[3]))
    else:
        run(cpu="--cpu" in sys.argv)
