"""``psyk prune`` end to end on real .keras files: table, JSON, written model, errors."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from typer.testing import CliRunner

from psykedelic_cli.cli.app import app
from psykedelic_cli.models.layers import MicroConv2D
from psykedelic_cli.models.resnet import build_micro_resnet
from psykedelic_cli.models.surgery import get_masks
from psykedelic_cli.pruning.modes import MODES

PSYK = str(Path(sys.executable).parent / "psyk")


@pytest.fixture
def plain_model(tmp_path):
    """A plain Keras CNN saved to ``plain.keras``, and the ``weight`` statistic of its kernels."""
    keras.utils.set_random_seed(11)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a"),
            keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv_b"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(5, activation="softmax", name="head"),
        ],
        name="plain_cnn",
    )
    path = tmp_path / "plain.keras"
    model.save(path)
    statistic = {
        name: np.abs(keras.ops.convert_to_numpy(model.get_layer(name).kernel)).mean(axis=(0, 1))
        for name in ("conv_a", "conv_b")
    }
    return path, statistic


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _median_threshold(statistic) -> float:
    return float(np.median(np.concatenate([s.ravel() for s in statistic.values()])))


def test_json_report_and_the_written_plain_model(plain_model, tmp_path):
    path, statistic = plain_model
    threshold = _median_threshold(statistic)
    out = tmp_path / "out" / "pruned.keras"
    result = _invoke("prune", path, "--mode", "weight", "--threshold", threshold, "--output", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    expected = {name: (s >= threshold).astype(np.float32) for name, s in statistic.items()}
    alive = {name: int(mask.sum()) for name, mask in expected.items()}
    assert report["mode"] == "weight" and report["model"] == "plain_cnn" and report["output"] == str(out)
    assert [(row["layer"], row["alive_kernels"], row["total_kernels"]) for row in report["layers"]] == [
        ("conv_a", alive["conv_a"], 12),
        ("conv_b", alive["conv_b"], 24),
    ]
    assert [row["total_params"] for row in report["layers"]] == [112, 222]
    dead = 36 - sum(alive.values())
    assert report["total_params"] == 369 and report["active_params"] == 369 - 9 * dead
    assert report["compression_ratio"] == pytest.approx(9 * dead / 369)

    written = keras.models.load_model(out)
    assert all(type(layer) is keras.layers.Conv2D for layer in written.layers if "conv" in layer.name)
    for name, mask in expected.items():
        np.testing.assert_array_equal(get_masks(written)[name], mask)
        kernel = keras.ops.convert_to_numpy(written.get_layer(name).kernel)
        np.testing.assert_array_equal(kernel[:, :, mask == 0], 0.0)
    original = keras.models.load_model(path)
    np.testing.assert_array_equal(
        written.get_layer("head").get_weights()[0], original.get_layer("head").get_weights()[0]
    )


def test_table_shows_layers_totals_and_compression_ratio(plain_model, tmp_path):
    path, statistic = plain_model
    threshold = _median_threshold(statistic)
    result = _invoke("prune", path, "-m", "weight", "--threshold", threshold, "-o", tmp_path / "pruned.keras")
    assert result.exit_code == 0, result.output
    alive = {name: int((s >= threshold).sum()) for name, s in statistic.items()}
    rows = {line.split()[1]: line for line in result.stdout.splitlines() if re.search(r"conv_[ab]|model", line)}
    assert re.findall(r"\d[\d,]*", rows["conv_a"]) == [
        str(alive["conv_a"]), "12", str(112 - 9 * (12 - alive["conv_a"])), "112"
    ]
    assert re.findall(r"\d[\d,]*", rows["conv_b"]) == [
        str(alive["conv_b"]), "24", str(222 - 9 * (24 - alive["conv_b"])), "222"
    ]
    dead = 36 - sum(alive.values())
    assert re.findall(r"\d[\d,]*", rows["model"]) == [str(36 - dead), "36", str(369 - 9 * dead), "369"]
    assert f"compression ratio {9 * dead / 369:.2%}" in " ".join(result.stdout.split())
    assert "weight" in result.stdout


def test_keep_masks_writes_our_masked_layers(tmp_path):
    model = build_micro_resnet((8, 8, 1), 3, 8, seed=0)
    model.save(tmp_path / "resnet.keras")
    out = tmp_path / "kept.keras"
    result = _invoke("prune", tmp_path / "resnet.keras", "--mode", "random_kernels", "--rate", 0.5, "--seed", 2,
                     "--output", out, "--keep-masks", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    written = keras.models.load_model(out)
    masked = [layer for layer in written.layers if isinstance(layer, MicroConv2D)]
    assert len(masked) == len(report["layers"]) == 9  # stem, 3 × 2 block convs, 2 shortcuts
    for row in report["layers"]:
        mask = keras.ops.convert_to_numpy(written.get_layer(row["layer"]).kernel_mask)
        assert int(mask.sum()) == row["alive_kernels"]
    assert report["alive_kernels"] < report["total_kernels"]


def test_help_lists_every_mode_with_its_description():
    result = CliRunner().invoke(app, ["prune", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    rows = [line.split(maxsplit=1) for line in result.stdout.splitlines()]
    listed = {row[0]: row[1].strip() for row in rows if len(row) == 2 and row[0] in MODES}
    assert listed == {name: mode.description for name, mode in MODES.items()}
    assert len(MODES) == 27


def _assert_one_line_error(result, message):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.stderr
    assert lines[0].startswith("psyk: error:") and re.search(message, lines[0]), lines[0]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--mode", "no_such_mode"], "unknown pruning mode 'no_such_mode'"),
        (["--mode", "all"], "unknown pruning mode 'all'"),
        (["--mode", "weight", "--threshold", "0"], "0"),
        (["--mode", "weight", "--threshold", "-1e-3"], "-0.001"),
        (["--mode", "weight", "--rate", "1.5"], "1.5"),
        (["--mode", "weight", "--rate", "-0.1"], "-0.1"),
    ],
)
def test_invalid_requests_fail_in_one_line(plain_model, tmp_path, arguments, message):
    result = _invoke("prune", plain_model[0], *arguments, "--output", tmp_path / "out.keras")
    _assert_one_line_error(result, message)
    assert not (tmp_path / "out.keras").exists()


def test_missing_unreadable_and_wrong_output_files(plain_model, tmp_path):
    missing = _invoke("prune", tmp_path / "missing.keras", "--mode", "weight", "--output", tmp_path / "o.keras")
    _assert_one_line_error(missing, "model file not found: .*missing.keras")
    (tmp_path / "garbage.keras").write_text("not a model")
    garbage = _invoke("prune", tmp_path / "garbage.keras", "--mode", "weight", "--output", tmp_path / "o.keras")
    _assert_one_line_error(garbage, "cannot read Keras model .*garbage.keras")
    wrong_output = _invoke("prune", plain_model[0], "--mode", "weight", "--output", tmp_path / "o.h5")
    _assert_one_line_error(wrong_output, r"--output must be a \.keras file")


def test_bad_requests_fail_before_tensorflow_is_imported(tmp_path):
    result = subprocess.run(
        [sys.executable, "-X", "importtime", PSYK, "prune", str(tmp_path / "missing.keras"),
         "--mode", "weight", "--output", str(tmp_path / "o.keras")],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert "psyk: error: model file not found" in result.stderr
    assert not re.search(r"\|\s+(tensorflow|keras)$", result.stderr, re.MULTILINE)


def _save(model, path) -> Path:
    model.save(path)
    return path


def _kernels(model) -> dict:
    from psykedelic_cli.models.surgery import conv_layer_paths

    return {path: keras.ops.convert_to_numpy(layer.kernel) for path, layer in conv_layer_paths(model).items()}


def test_nested_and_equally_named_conv_layers_are_pruned_by_path(tmp_path):
    keras.utils.set_random_seed(12)

    def tower(name):
        return keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, padding="same", name="conv")],
                                name=name)

    left, right = keras.Input((8, 8, 3)), keras.Input((8, 8, 3))
    x = keras.layers.Concatenate()([tower("tower_a")(left), tower("tower_b")(right)])
    x = keras.layers.Reshape((1, 8, 8, 8))(x)
    x = keras.layers.TimeDistributed(keras.layers.Conv2D(6, 3, name="conv"), name="frames")(x)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Reshape((6, 6, 6))(x))
    model = keras.Model([left, right], keras.layers.Dense(2, name="head")(x), name="siamese")
    statistic = {path: np.abs(kernel).mean(axis=(0, 1)) for path, kernel in _kernels(model).items()}
    threshold = _median_threshold(statistic)
    out = tmp_path / "pruned.keras"
    result = _invoke("prune", _save(model, tmp_path / "siamese.keras"), "-m", "weight", "--threshold", threshold,
                     "-o", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [row["layer"] for row in report["layers"]] == ["tower_a/conv", "tower_b/conv", "frames/conv"]
    written = keras.models.load_model(out)
    for row in report["layers"]:
        expected = (statistic[row["layer"]] >= threshold).astype(np.float32)
        assert row["alive_kernels"] == int(expected.sum()) < expected.size
        np.testing.assert_array_equal(get_masks(written)[row["layer"]], expected)


@pytest.fixture
def mixed_model(tmp_path):
    """InceptionV3's mix in small: Conv2D ``square`` 3×3, ``wide`` 1×7, ``tall`` 7×1, saved."""
    keras.utils.set_random_seed(13)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3, padding="same", name="square"),
            keras.layers.Conv2D(4, (1, 7), padding="same", name="wide"),
            keras.layers.Conv2D(4, (7, 1), padding="same", name="tall"),
        ],
        name="mixed",
    )
    return model, _save(model, tmp_path / "mixed.keras")


def test_eigenvalue_modes_skip_non_square_layers_and_list_them(mixed_model, tmp_path):
    model, path = mixed_model
    out = tmp_path / "pruned.keras"
    result = _invoke("prune", path, "-m", "min_eig_sorted_kernels", "--rate", 0.5, "-o", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["skipped"] == [
        {"layer": "wide", "kernel_shape": [1, 7], "reason": "1×7 kernels: min_eig_sorted_kernels needs square ones"},
        {"layer": "tall", "kernel_shape": [7, 1], "reason": "7×1 kernels: min_eig_sorted_kernels needs square ones"},
    ]
    assert [row["alive_kernels"] for row in report["layers"]] == [8, 16, 16]
    written, original = _kernels(keras.models.load_model(out)), _kernels(model)
    for name in ("wide", "tall"):
        np.testing.assert_array_equal(written[name].view(np.uint32), original[name].view(np.uint32))

    table = _invoke("prune", path, "-m", "min_eig", "-o", tmp_path / "table.keras")
    assert table.exit_code == 0, table.output
    rows = {line.split()[1]: line for line in table.stdout.splitlines() if re.search(r"\b(square|wide|tall)\b", line)}
    assert rows["wide"].split()[-2:] == ["1×7", "│"] and rows["tall"].split()[-2:] == ["7×1", "│"]
    assert rows["square"].split()[-2:] == ["│", "│"]
    assert "2 of 3 layers skipped (min_eig needs square kernels)" in " ".join(table.stdout.split())


def test_a_model_without_square_kernels_is_refused_by_eigenvalue_modes(tmp_path):
    flat = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, (1, 7), name="wide")], name="flat")
    result = _invoke("prune", _save(flat, tmp_path / "flat.keras"), "-m", "det", "-o", tmp_path / "out.keras")
    _assert_one_line_error(result, r"det needs square kernels, but no Conv2D of model 'flat' has them \(1×7\)")
    assert not (tmp_path / "out.keras").exists()


@pytest.mark.parametrize("mode", ["random_kernels", "random_neurons", "weight"])
def test_non_finite_weights_are_refused_by_every_mode(plain_model, tmp_path, mode):
    model = keras.models.load_model(plain_model[0])
    kernel = keras.ops.convert_to_numpy(model.get_layer("conv_b").kernel)
    kernel[0, 1, 2, 3] = np.nan
    model.get_layer("conv_b").kernel.assign(kernel)
    result = _invoke("prune", _save(model, tmp_path / "nan.keras"), "-m", mode, "-o", tmp_path / "out.keras")
    _assert_one_line_error(result, "layer 'conv_b' has NaN or infinite weights$")
    assert not (tmp_path / "out.keras").exists()


def test_kernels_that_survive_are_written_bit_for_bit(plain_model, tmp_path):
    model = keras.models.load_model(plain_model[0])
    kernel = keras.ops.convert_to_numpy(model.get_layer("conv_b").kernel)
    kernel[:, :, 1, 1] = np.float32(5e-40)  # subnormal weights only: alive all the same
    kernel[2, 2] = np.float32(-3e-41)
    model.get_layer("conv_b").kernel.assign(kernel)
    path, out = _save(model, tmp_path / "subnormal.keras"), tmp_path / "out.keras"
    result = _invoke("prune", path, "-m", "random_kernels", "--rate", 0, "-o", out, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["alive_kernels"] == 36
    written, original = _kernels(keras.models.load_model(out)), _kernels(keras.models.load_model(path))
    for name, kernel in original.items():
        np.testing.assert_array_equal(written[name].view(np.uint32), kernel.view(np.uint32))


class Scale(keras.layers.Layer):
    """A custom layer that psyk cannot import (never registered)."""

    def call(self, x):
        return x * 2.0


def test_a_custom_class_psyk_cannot_import_is_one_short_line(tmp_path):
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, Scale(name="scale")(keras.layers.Conv2D(2, 3)(inputs)))
    result = _invoke("prune", _save(model, tmp_path / "custom.keras"), "-m", "weight", "-o", tmp_path / "out.keras")
    _assert_one_line_error(result, "custom.keras: it uses the custom class 'Scale' from module .*built-in Keras layers")
    assert len(result.stderr.strip()) < 300 + len(str(tmp_path)) and "config" not in result.stderr


def _lora_model(conv=keras.layers.Conv2D) -> keras.Model:
    """8×8×1 → ``conv`` 1→4 (3×3, LoRA rank 2, alpha 4) → Flatten → Dense 3; the kernel variable is 1e-6
    everywhere and B is set by hand, so the effective kernel is large on filters 0 and 2 only."""
    keras.utils.set_random_seed(14)
    inputs = keras.Input((8, 8, 1))
    layer = conv(4, 3, lora_rank=2, lora_alpha=4, name="conv")
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(keras.layers.Flatten()(layer(inputs))), name="lora")
    next(weight for weight in layer.weights if weight.name == "kernel").assign(np.full((3, 3, 1, 4), 1e-6, "float32"))
    layer.lora_kernel_b.assign(np.array([[1.5, 0, -2, 0], [0.5, 0, 1, 0]], dtype="float32"))
    return model


def test_a_lora_model_is_pruned_by_its_effective_kernel_and_written_merged(tmp_path):
    from psykedelic_cli.models.surgery import prune_model

    model = _lora_model()
    path, out = _save(model, tmp_path / "lora.keras"), tmp_path / "pruned.keras"
    result = _invoke("prune", path, "-m", "weight", "--threshold", 1e-3, "-o", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # weight ≥ 1e-3 on the effective kernel: filters 0 and 2 live (their 1e-6 kernel variable alone would not)
    assert [(row["alive_kernels"], row["total_params"]) for row in report["layers"]] == [(2, 40)]
    assert report["total_params"] == 40 + 435  # LoRA merged: its 26 factor weights are not in the file

    written = keras.models.load_model(out)
    conv = written.get_layer("conv")
    assert type(conv) is keras.layers.Conv2D and not conv.lora_enabled and "lora_rank" not in conv.get_config()
    np.testing.assert_array_equal(get_masks(written)["conv"], [[1, 0, 1, 0]])
    prune_model(model, "weight", threshold=1e-3)  # the same pruning in memory, LoRA on
    np.testing.assert_array_equal(_kernels(written)["conv"], _kernels(model)["conv"])
    images = np.random.default_rng(0).normal(size=(5, 8, 8, 1)).astype("float32")
    np.testing.assert_array_equal(written.predict(images, verbose=0), model.predict(images, verbose=0))


def test_keep_masks_on_a_lora_model_writes_masked_layers_with_lora_merged(tmp_path):
    path, out = _save(_lora_model(MicroConv2D), tmp_path / "lora.keras"), tmp_path / "kept.keras"
    result = _invoke("prune", path, "-m", "weight", "--threshold", 1e-3, "-o", out, "--keep-masks", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["layers"][0]["alive_kernels"] == 2
    conv = keras.models.load_model(out).get_layer("conv")
    assert type(conv) is MicroConv2D and not conv.lora_enabled
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(conv.kernel_mask), [[1, 0, 1, 0]])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(conv.kernel)[..., [1, 3]], 0.0)


def test_a_narrow_terminal_cuts_no_number_or_name(plain_model, tmp_path):
    path, _ = plain_model
    result = subprocess.run([PSYK, "prune", str(path), "-m", "weight", "-o", str(tmp_path / "p.keras")],
                            capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "40"})
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout and all(len(line) <= 40 for line in result.stdout.splitlines())
    assert [int(n) for n in re.findall(r"│ +(\d+) ", result.stdout)][-4:] == [36, 36, 369, 369]  # model totals
