"""Layer sensitivity on real Keras models and digits: one layer pruned at a time, the model restored bit for bit."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from typer.testing import CliRunner

from psykedelic_cli.cli.app import app
from psykedelic_cli.errors import PsykError
from psykedelic_cli.models import surgery
from psykedelic_cli.models.resnet import build_micro_resnet
from psykedelic_cli.models.surgery import conv_layer_paths, get_masks, parameter_report, prune_model, save_model
from psykedelic_cli.store import Store
from psykedelic_cli.store.schema import SENSITIVITY_CONFIG_FIELDS
from psykedelic_cli.training.sensitivity import DEFAULT_GRIDS, layer_sensitivity, sensitivity_grid

PNG = b"\x89PNG\r\n\x1a\n"


def _bits(model) -> list[np.ndarray]:
    """Every weight as raw bits: equal means equal bit for bit (signed zeros and subnormals too)."""
    return [np.array(w).view(np.uint32).copy() for w in model.get_weights()]


@pytest.fixture(scope="module")
def resnet():
    """A MicroResNet-8 for 8×8 digits with some kernels already dead (random_kernels at r = 0.3)."""
    model = build_micro_resnet((8, 8, 1), 10, 8, seed=0)
    prune_model(model, "random_kernels", rate=0.3, seed=1)
    return model


class Watching:
    """An evaluator that records, at every call, what differs from the model as it was at the start."""

    def __init__(self, model):
        self.masks = get_masks(model)
        self.kernels = {path: np.array(layer.kernel) for path, layer in conv_layer_paths(model).items()}
        self.calls = []

    def __call__(self, model) -> dict:
        masks = get_masks(model)
        changed = [path for path in masks if not np.array_equal(masks[path], self.masks[path])]
        kernels = {path: np.array(layer.kernel) for path, layer in conv_layer_paths(model).items()}
        changed_kernels = [path for path in kernels if not np.array_equal(kernels[path], self.kernels[path])]
        self.calls.append({"masks": changed, "kernels": changed_kernels, "report": parameter_report(model),
                           "alive": {path: int(masks[path].sum()) for path in changed}})
        return {"accuracy": 0.9 - 0.01 * len(changed), "precision": 0.5, "recall": 0.5}


def test_masks_and_weights_are_restored_bit_exactly(resnet):
    before = _bits(resnet)
    masks = get_masks(resnet)
    for mode, parameter, grid in (("weight", "threshold", (0.05, 0.1, 0.3)),
                                  ("random_neurons", "rate", (0.25, 0.5)),
                                  ("min_eig_contrib", "contribution_threshold", (0.05, 0.2))):
        layer_sensitivity(resnet, mode, parameter, grid, Watching(resnet), seed=0)
        assert all(np.array_equal(a, b) for a, b in zip(before, _bits(resnet))), mode
        assert all(np.array_equal(masks[p], m) for p, m in get_masks(resnet).items())


def test_pruning_one_layer_changes_only_that_layer_and_counts_its_parameters(resnet):
    watching = Watching(resnet)
    result = layer_sensitivity(resnet, "weight", "threshold", (0.05, 0.1, 0.3), watching)
    baseline, *trials = watching.calls
    assert baseline["masks"] == baseline["kernels"] == []  # the first evaluation is of the model as it was
    assert trials and all(len(call["masks"]) == 1 and call["kernels"] == call["masks"] for call in trials)
    paths = list(conv_layer_paths(resnet))
    assert [layer["layer"] for layer in result["layers"]] == paths
    assert result["evaluations"] == len(watching.calls)
    # Each point's row is the parameter report of the model as it was evaluated.
    evaluated = {(call["masks"][0], call["alive"][call["masks"][0]]): call["report"] for call in trials}
    for layer in result["layers"]:
        assert len(layer["points"]) == 3 and layer["skipped"] is None
        assert layer["alive_kernels"] == int(get_masks(resnet)[layer["layer"]].sum())
        alive = [point["layer_alive_kernels"] for point in layer["points"]]
        assert alive == sorted(alive, reverse=True) and alive[-1] < layer["alive_kernels"]  # t = 0.3 prunes
        for point in layer["points"]:
            report = evaluated.get((layer["layer"], point["layer_alive_kernels"]))
            if report is None:  # nothing died at this value: the baseline's numbers
                assert point["layer_alive_kernels"] == layer["alive_kernels"]
                assert point["active_params"] == result["baseline"]["active_params"]
                continue
            for key in ("active_params", "total_params", "compression_ratio", "alive_kernels", "total_kernels"):
                assert point[key] == pytest.approx(report[key]), key


def test_kernel_statistics_once_per_layer_and_no_evaluation_twice(resnet, monkeypatch):
    calls = []
    original = surgery.kernel_statistics
    monkeypatch.setattr(surgery, "kernel_statistics", lambda *a, **k: calls.append(k["layer"]) or original(*a, **k))
    # 1e-12 kills no kernel: every point of every layer reuses the unpruned evaluation.
    result = layer_sensitivity(resnet, "min_eig", "threshold", (1e-12, 2e-12), Watching(resnet))
    assert calls == list(conv_layer_paths(resnet))
    assert result["evaluations"] == 1
    assert all(point["accuracy"] == result["baseline"]["accuracy"] for layer in result["layers"]
               for point in layer["points"])
    # A rate that kills the same kernels as the one before is not evaluated again (2 neurons of 16 die at both).
    watching = Watching(resnet)
    result = layer_sensitivity(resnet, "weight_sorted_neurons", "rate", (0.13, 0.14), watching)
    assert result["evaluations"] == len(watching.calls) == 1 + len(result["layers"])


def test_random_modes_repeat_with_the_seed_and_draw_one_order_per_layer(resnet):
    first, again = (layer_sensitivity(resnet, "random_kernels", "rate", (0.2, 0.4), Watching(resnet), seed=5)
                    for _ in range(2))
    assert first == again


def test_layers_the_mode_cannot_prune_are_listed_as_skipped():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, (1, 3), padding="same", name="wide")(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", name="square")(x)
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(x)))
    seen = []
    result = layer_sensitivity(model, "min_eig", "threshold", (0.1, 0.5), Watching(model),
                               on_point=seen.append)
    wide, square = result["layers"]
    assert wide["skipped"] == "1×3 kernels: min_eig needs square ones" and wide["points"] == []
    assert square["skipped"] is None and len(square["points"]) == 2
    assert seen == ["wide", "wide", "square", "square"]  # progress counts every (layer, value)
    assert all(layer["skipped"] is None for layer in layer_sensitivity(
        model, "weight", "threshold", (0.1,), Watching(model))["layers"])


def test_grids_per_kind_and_one_line_refusals():
    assert sensitivity_grid("min_eig") == ("threshold", DEFAULT_GRIDS["threshold"])
    assert sensitivity_grid("weight_contrib") == ("contribution_threshold", DEFAULT_GRIDS["contribution_threshold"])
    assert sensitivity_grid("random_neurons") == ("rate", DEFAULT_GRIDS["rate"])
    assert all(len(grid) == 8 for grid in DEFAULT_GRIDS.values())
    assert sensitivity_grid("det", thresholds=(0.1, 0.01, 0.1)) == ("threshold", (0.01, 0.1))
    assert sensitivity_grid("det_contrib", thresholds=(0.2,)) == ("contribution_threshold", (0.2,))
    assert sensitivity_grid("det_sorted_kernels", rates=(1.0, 0.0)) == ("rate", (0.0, 1.0))
    with pytest.raises(PsykError, match=r"^--rate does not apply to min_eig, a threshold mode: give its grid "
                                        r"with --threshold .*--rate is for the sorted modes"):
        sensitivity_grid("min_eig", rates=(0.5,))
    with pytest.raises(PsykError, match=r"^--threshold does not apply to random_kernels, a sorted mode: .*--rate"):
        sensitivity_grid("random_kernels", thresholds=(0.1,), rates=(0.5,))
    with pytest.raises(PsykError, match=r"--rate 1.5 is not allowed .* in \[0, 1\]"):
        sensitivity_grid("weight_sorted_neurons", rates=(0.5, 1.5))
    with pytest.raises(PsykError, match=r"--threshold nan is not allowed .*finite number > 0"):
        sensitivity_grid("weight", thresholds=(float("nan"),))
    with pytest.raises(PsykError, match="unknown pruning mode 'eig'"):
        sensitivity_grid("eig")


# --- psyk sensitivity, end to end ------------------------------------------------------------------------


def invoke(store: Path, *args):
    return CliRunner().invoke(app, ["--store", str(store), *map(str, args)])


TRAIN = ("train", "--depth", 8, "--epochs", 2, "--steps", 2, "--batch-size", 64, "--mode", "weight",
         "--threshold", 0.02, "--stop-after-pruning", "--compare", "weight", "--seed", 4)


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory):
    """Two MicroResNet-8 runs of two epochs on digits, alike but for ``--sensitivity weight_sorted_neurons``;
    the first saved with its masks."""
    folder = tmp_path_factory.mktemp("sensitivity")
    store = folder / "train.json"
    with_sensitivity = invoke(store, *TRAIN, "--sensitivity", "weight_sorted_neurons", "--save-model",
                              "--out-dir", folder / "out")
    assert with_sensitivity.exit_code == 0, with_sensitivity.output
    without = invoke(store, *TRAIN, "--out-dir", folder / "out")
    assert without.exit_code == 0, without.output
    first, second = Store(store).runs()
    return store, first, second, folder / "out" / first["id"] / "model.keras"


@pytest.fixture(scope="module")
def trained(trained_runs):
    return trained_runs[3]


def test_train_records_the_sensitivity_of_its_first_stage_and_prunes_as_without_it(trained_runs):
    store, run, plain, _ = trained_runs
    sensitivity = run["results"]["sensitivity"]
    assert "sensitivity" not in plain["results"] and "sensitivity" in run["results"]["timings"]
    assert sensitivity["mode"] == "weight_sorted_neurons" and sensitivity["parameter"] == "rate"
    assert sensitivity["grid"] == list(DEFAULT_GRIDS["rate"])
    # Measured on the weights of the comparison, and every mask restored: the run goes on exactly as without it.
    assert sensitivity["baseline"] == run["results"]["performance"]["None"]
    for kind in ("performance", "pruning_stages", "final"):
        assert run["results"][kind] == plain["results"][kind], kind
    report = invoke(store, "report", "sensitivity", "-f", "csv")
    assert report.exit_code == 0 and "weight_sorted_neurons,rate,sensitivity,1," in report.stdout, report.output


def test_psyk_sensitivity_records_a_run_that_lists_shows_and_reports(trained, tmp_path):
    store = tmp_path / "store.json"
    result = invoke(store, "sensitivity", trained, "--dataset", "digits", "--mode", "weight",
                    "--threshold", 0.1, "--threshold", 0.01, "--batch-size", 100)
    assert result.exit_code == 0, result.output
    assert "Layers ranked by sensitivity" in result.stdout and "Accuracy drop per layer" in result.stdout
    (run,) = Store(store).runs()
    assert run["status"] == "completed" and run["source"] == "sensitivity"
    assert set(SENSITIVITY_CONFIG_FIELDS) <= set(run["config"])
    assert run["config"]["grid_parameter"] == "threshold" and run["config"]["grid"] == [0.01, 0.1]
    assert run["config"]["mode"] == "weight" and run["config"]["eval_batch_size"] == 100
    assert run["config"]["backend"] == keras.backend.backend()
    sensitivity = run["results"]["sensitivity"]
    model = surgery.load_model(trained)
    assert [layer["layer"] for layer in sensitivity["layers"]] == list(conv_layer_paths(model))
    # The baseline is the saved model's own test accuracy, dead kernels included: psyk record's "None".
    recorded = invoke(tmp_path / "record.json", "record", trained, "--dataset", "digits", "--compare", "weight")
    assert recorded.exit_code == 0, recorded.output
    (record,) = Store(tmp_path / "record.json").runs()
    assert sensitivity["baseline"] == record["results"]["performance"]["None"]
    assert sensitivity["baseline"]["accuracy"] > 0.5  # trained, not chance
    assert "sensitivity" in run["results"]["timings"]

    listed = invoke(store, "list-experiments")
    assert "sensitivity: weight" in listed.stdout, listed.stdout
    shown = invoke(store, "show", run["id"])
    assert f"weight: {len(sensitivity['layers'])} layers × 2 values of threshold (0.01, 0.1)" in shown.stdout
    assert "Layers ranked by sensitivity" in shown.stdout

    report = invoke(store, "report", "sensitivity", "-f", "json", "-o", tmp_path / "charts")
    assert report.exit_code == 0, report.output
    records = json.loads(report.stdout)["records"]
    drops = [r for r in records if r["measure"] == "accuracy_drop"]
    assert len(drops) == 2 * len(sensitivity["layers"])
    first = sensitivity["layers"][0]["points"][0]
    assert drops[0]["mean"] == pytest.approx(sensitivity["baseline"]["accuracy"] - first["accuracy"])
    charts = sorted(p.name for p in (tmp_path / "charts").glob("*.png"))
    assert [name.rsplit("_", 1)[1] for name in charts] == ["heatmap.png", "lines.png", "ranking.png"]
    assert all((tmp_path / "charts" / name).read_bytes().startswith(PNG) for name in charts)


def _refused(result, store: Path, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    assert not store.exists() or Store(store).runs() == []


def test_bad_requests_are_one_line_and_touch_no_store(trained, tmp_path):
    store = tmp_path / "store.json"
    _refused(invoke(store, "sensitivity", trained, "--dataset", "digits", "--mode", "min_eig", "--rate", 0.5),
             store, "--rate does not apply to min_eig", "--threshold")
    _refused(invoke(store, "sensitivity", trained, "--dataset", "digits", "--mode", "weight_sorted_neurons",
                    "--threshold", 0.1), store, "--threshold does not apply to weight_sorted_neurons")
    _refused(invoke(store, "sensitivity", trained, "--dataset", "digits", "--rate", 0.5, "--mode", "random_kernels",
                    "--rate", 2), store, "--rate must be a number in [0, 1] (got 2.0)")
    _refused(invoke(store, "sensitivity", trained, "--dataset", "digits", "--mode", "all"), store,
             '--mode must be a pruning mode', '(got "all")')
    _refused(invoke(store, "sensitivity", tmp_path / "missing.keras", "--dataset", "digits"), store,
             "model file not found")
    broken = build_micro_resnet((8, 8, 1), 10, 8, seed=0)
    layer = broken.get_layer("stem_conv")
    kernel = np.array(layer.kernel)
    kernel[0, 0, 0, 0] = np.nan
    layer._kernel.assign(kernel)
    save_model(broken, tmp_path / "nan.keras", keep_masks=True)
    _refused(invoke(store, "sensitivity", tmp_path / "nan.keras", "--dataset", "digits"), store, "NaN", "stem_conv")


def test_an_interrupted_sensitivity_run_is_marked_interrupted(trained, tmp_path, monkeypatch):
    from psykedelic_cli.training import comparison

    evaluate = comparison.Evaluator.__call__
    calls = []

    def interrupted_after_one(self, model):
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return evaluate(self, model)

    monkeypatch.setattr(comparison.Evaluator, "__call__", interrupted_after_one)
    store = tmp_path / "store.json"
    result = invoke(store, "sensitivity", trained, "--dataset", "digits", "--mode", "weight")
    assert result.exit_code != 0
    (run,) = Store(store).runs()
    assert run["status"] == "interrupted" and run["finished_at"] and "sensitivity" not in run["results"]
