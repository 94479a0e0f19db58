"""``psyk thin`` end to end on real .keras files: JSON and tables, the written model, errors in one line."""

import json

import keras
import numpy as np
import pytest
from typer.testing import CliRunner

from psykedelic_cli.cli.app import app
from psykedelic_cli.models.resnet import build_micro_resnet
from psykedelic_cli.models.surgery import parameter_report, prune_model, save_model


@pytest.fixture(scope="module")
def pruned(tmp_path_factory):
    """A MicroResNet-8 pruned by weight_sorted_neurons at r = 0.5, saved with its masks and as plain Keras."""
    folder = tmp_path_factory.mktemp("thin")
    model = build_micro_resnet((8, 8, 1), 10, 8, seed=0)
    prune_model(model, "weight_sorted_neurons", rate=0.5, seed=0)
    masked, plain = folder / "masked.keras", folder / "plain.keras"
    save_model(model, masked, keep_masks=True)
    save_model(model, plain)
    return model, masked, plain


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("which", ["masked", "plain"])
def test_json_report_and_a_smaller_model_with_the_same_predictions(pruned, tmp_path, which):
    model, masked, plain = pruned
    source = masked if which == "masked" else plain
    out = tmp_path / "out" / "thin.keras"
    result = _invoke("thin", source, "-o", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["source"] == str(source) and report["output"] == str(out) and report["model"] == "MicroResNet8"
    assert report["params_after"] < report["params_before"] == parameter_report(model)["total_params"]
    assert report["flops_after"] < report["flops_before"]
    first = next(row for row in report["layers"] if row["layer"] == "stack1_block1_1_conv")
    assert (first["filters_before"], first["filters_after"]) == (16, 8)
    assert {"layer", "filters", "reason"} == set(report["kept"][0])
    assert report["untouched"] == []

    thinned = keras.models.load_model(out)
    assert thinned.count_params() == report["params_after"]
    x = np.random.default_rng(0).normal(size=(8, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(thinned.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5, rtol=0)


def test_tables_show_changes_and_the_kept_filters(pruned, tmp_path):
    _, masked, _ = pruned
    out = tmp_path / "thin.keras"
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["thin", str(masked), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "MicroResNet8: thinned" in result.output
    assert "16 → 8" in result.output
    assert "fewer" in result.output and str(out) in result.output
    assert "dead filters kept" in result.output and "alive in" in result.output


def test_convolutions_left_as_they_are_are_listed(tmp_path):
    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 3))
    shared = keras.layers.Conv2D(3, 3, padding="same", name="shared")
    x = keras.layers.GlobalAveragePooling2D()(shared(shared(inputs)))
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x), name="shared_net")
    kernel = keras.ops.convert_to_numpy(shared.kernel).copy()
    kernel[..., 0] = 0
    shared.kernel.assign(kernel)
    model.save(tmp_path / "shared.keras")
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["thin", str(tmp_path / "shared.keras"), "-o",
                                                            str(tmp_path / "thin.keras")])
    assert result.exit_code == 0, result.output
    assert "Conv2D layers with dead filters left as they are" in result.output
    assert "a layer used more than once" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.keras", "-o", "out.keras"], "model file not found: missing.keras"),
        (["{model}", "-o", "{model}"], "is the input model"),
        (["{model}", "-o", "out.h5"], "--output must be a .keras file"),
        (["{model}", "-o", "{model}/out.keras"], "lies under the file"),
    ],
)
def test_bad_requests_are_one_line_exit_2(pruned, tmp_path, monkeypatch, args, message):
    _, _, plain = pruned
    monkeypatch.chdir(tmp_path)
    result = _invoke("thin", *(a.format(model=plain) for a in args))
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert not (tmp_path / "out.keras").exists()


def test_an_unreadable_model_is_one_line(tmp_path):
    broken = tmp_path / "broken.keras"
    broken.write_text("not a zip")
    result = _invoke("thin", broken, "-o", tmp_path / "out.keras")
    assert result.exit_code == 2
    assert result.stderr.startswith("psyk: error: cannot read Keras model")
    assert len(result.stderr.strip().splitlines()) == 1
