"""psyk on JAX and PyTorch with TensorFlow made unimportable: the default digits run, recorded, reported,
and its model file loaded under another backend; --backend's checks; determinism per backend."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from psykedelic_cli.cli.app import app
from psykedelic_cli.store import Store

REPORTS = ("performance", "eig-stats", "set-analysis", "per-threshold", "per-layer", "history")


def _without_tensorflow(tmp_path: Path) -> dict:
    """An environment in which ``import tensorflow`` fails, as on a machine without it."""
    blocker = tmp_path / "no-tensorflow" / "tensorflow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text('raise ImportError("No module named tensorflow (blocked by the test)")\n')
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    return {**env, "PYTHONPATH": os.pathsep.join([str(blocker.parent), env.get("PYTHONPATH", "")])}


def _psyk(*args: str, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "psykedelic_cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


needs = {name: pytest.mark.skipif(importlib.util.find_spec(name) is None, reason=f"{name} is not installed")
         for name in ("jax", "torch")}


@pytest.mark.parametrize(
    "backend", [pytest.param("jax", marks=needs["jax"]), pytest.param("torch", marks=needs["torch"])]
)
def test_the_default_digits_run_trains_without_tensorflow_and_every_report_reads_it(tmp_path, backend):
    env = _without_tensorflow(tmp_path)
    probe = subprocess.run([sys.executable, "-c", "import tensorflow"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "blocked by the test" in probe.stderr
    store = tmp_path / "store.json"
    result = _psyk("--store", str(store), "train", "--backend", backend, "--depth", "8", "--epochs", "2",
                   "--history-interval", "1", "--save-model", "--out-dir", str(tmp_path / "out"), "--seed", "4",
                   env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = Store(store).runs()
    assert run["status"] == "completed" and run["config"]["backend"] == backend
    assert run["versions"][backend] and run["versions"]["keras"]
    assert run["results"]["final"]["accuracy"] > 0.5
    curve = run["results"]["learning_curve"]
    assert curve["epoch"] == [1, 2] and curve["lr"] == pytest.approx([1e-3, 1e-3])
    listed = CliRunner().invoke(app, ["--store", str(store), "list-experiments", "--backend", backend])
    assert run["id"] in listed.stdout
    assert run["id"] not in CliRunner().invoke(
        app, ["--store", str(store), "list-experiments", "--backend", "tensorflow"]).stdout
    for report in REPORTS:
        shown = CliRunner().invoke(app, ["--store", str(store), "report", report, "--backend", backend, "-f", "json"])
        assert shown.exit_code == 0, (report, shown.output)
        assert json.loads(shown.stdout), report
    # The saved model (masks kept) loads under the other backend and predicts what this one measured.
    other = "torch" if backend == "jax" else "jax"
    if importlib.util.find_spec(other) is None:
        return
    model_file = tmp_path / "out" / run["id"] / "model.keras"
    check = (
        "import numpy as np, keras; from psykedelic_cli.data import load_dataset;"
        "from psykedelic_cli.models.surgery import load_model, get_masks;"
        f"m = load_model({str(model_file)!r}); d = load_dataset('digits');"
        "p = np.argmax(m.predict(d.features('test'), verbose=0), -1);"
        "dead = sum(int((v == 0).sum()) for v in get_masks(m).values());"
        "print(keras.backend.backend(), float(np.mean(p == d.y_test)), dead)"
    )
    loaded = subprocess.run([sys.executable, "-c", check], env={**env, "KERAS_BACKEND": other}, capture_output=True,
                            text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    name, accuracy, dead = loaded.stdout.split()
    total_dead = run["results"]["final"]["total_kernels"] - run["results"]["final"]["alive_kernels"]
    assert name == other and int(dead) == total_dead
    # the same weights: at most a prediction or two may flip on float rounding between backends
    assert float(accuracy) == pytest.approx(run["results"]["final"]["accuracy"], abs=2 / 359)


def test_an_unknown_or_missing_backend_is_one_line_before_any_work(tmp_path):
    store = tmp_path / "store.json"
    result = CliRunner().invoke(app, ["--store", str(store), "train", "--backend", "mxnet"])
    assert result.exit_code == 2 and "mxnet" in result.output and "tensorflow, jax, torch" in result.output
    env = _without_tensorflow(tmp_path)
    missing = _psyk("--store", str(store), "train", "--backend", "tensorflow", env=env)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "tensorflow is not installed" in missing.stderr or "blocked" in missing.stderr
    bad_env = {**env, "KERAS_BACKEND": "theano"}
    result = _psyk("--store", str(store), "train", env=bad_env)
    assert result.returncode == 2 and "theano" in result.stderr and "Traceback" not in result.stderr
    assert not store.exists()


def test_mirrored_on_torch_is_refused_with_what_works(tmp_path):
    result = CliRunner().invoke(app, ["--store", str(tmp_path / "s.json"), "train", "--backend", "torch",
                                      "--distribute", "mirrored"])
    assert result.exit_code == 2 and "not supported on the torch backend" in result.output
    result = CliRunner().invoke(app, ["--store", str(tmp_path / "s.json"), "train", "--backend", "jax",
                                      "--torch-compile"])
    assert result.exit_code == 2 and "--torch-compile needs --backend torch" in result.output


@pytest.mark.backends
def test_the_same_seed_repeats_a_training_bit_for_bit_on_this_backend():
    import keras

    from psykedelic_cli.backends.determinism import seed_everything
    from psykedelic_cli.data.dataset import Dataset
    from psykedelic_cli.data.pipeline import EpochOrder
    from psykedelic_cli.models.resnet import build_micro_resnet

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(48, 16, 16, 3), dtype=np.uint8)
    labels = np.arange(48) % 4
    photos = Dataset(name="cifar10", x_train=images, y_train=labels, x_val=images[:8], y_val=labels[:8],
                     x_test=images[:8], y_test=labels[:8], n_classes=4, augment=True,
                     mean=np.zeros((16, 16, 3), np.float32), source="test", pixel_max=255.0)

    def train() -> tuple[list, list]:
        seed_everything(11)
        model = build_micro_resnet((16, 16, 3), 4, 8, l1_penalty=1e-4, seed=11)
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy")
        data = photos.train_pipeline(16, seed=11)
        history = model.fit(data, epochs=2, verbose=0, shuffle=False, callbacks=[EpochOrder(data)])
        return history.history["loss"], model.get_weights()

    first_loss, first_weights = train()
    second_loss, second_weights = train()
    assert first_loss == second_loss
    for a, b in zip(first_weights, second_weights):
        np.testing.assert_array_equal(a, b)
