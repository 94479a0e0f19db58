"""Importing the original's experiments.json: every number lands where the schema says."""

from __future__ import annotations

import copy
import json

import pytest

from psykedelic_cli.errors import PsykError
from psykedelic_cli.store import Store
from psykedelic_cli.store.legacy import dataset_name, import_legacy, read_legacy

KEY_32 = "MicroResNet32:adam:categorical_crossentropy:1e-03:200:128:random_init:CIFAR-10:1e-04"
KEY_56 = "MicroResNet56:sgd:categorical_crossentropy:1e-01:100:64:he_normal:TinyImageNet:0e+00"


def _history(accuracy_key: str, epochs: int, start: float) -> dict:
    history = {
        "loss": [2.0 - 0.1 * e for e in range(epochs)],
        accuracy_key: [start + 0.01 * e for e in range(epochs)],
        "val_loss": [2.1 - 0.1 * e for e in range(epochs)],
        ("val_acc" if accuracy_key == "acc" else "val_accuracy"): [start - 0.05 + 0.01 * e for e in range(epochs)],
    }
    return history


def _performance_entry(scale: float) -> dict:
    return {
        "None": {"param_count": 470218, "score": 0.0, "accuracy": 0.91 * scale, "precision": 0.9, "recall": 0.89},
        "min_eig": {"param_count": 235109, "score": 0.45, "accuracy": 0.9 * scale, "precision": 0.88, "recall": 0.87},
        "det": {"param_count": 352663.5, "score": 0.2, "accuracy": 0.8 * scale, "precision": 0.79, "recall": 0.78},
    }


def _eig_stats_entry(offset: int) -> dict:
    layers = ["conv2d_1", "conv2d_2"]
    return {
        "layer_names": layers,
        "total_complex_list": [100 + offset, 200],
        "total_real_list": [332, 568 + offset],
        "target_complex_list": [
            {"min_eig": 30, "spectral_radius": 40}, {"min_eig": 50 + offset, "spectral_radius": 60}
        ],
        "target_real_list": [
            {"min_eig": 114, "spectral_radius": 104}, {"min_eig": 206 - offset, "spectral_radius": 196}
        ],
        "pruned_complex_list": [{"min_eig": 3, "spectral_radius": 0}, {"min_eig": 5, "spectral_radius": 0}],
        "pruned_real_list": [{"min_eig": 7, "spectral_radius": 0}, {"min_eig": 15, "spectral_radius": 0}],
    }


def _per_layer_entry(active: list) -> dict:
    return {"layer_names": ["conv2d_1", "conv2d_2", "dense"], "active_params": active, "total_params": [432, 2304, 650]}


CODES = {"a": "min_eig", "b": "weight", "c": "det", "d": "spectral_radius", "e": "spectral_norm", "f": "det_corr"}


@pytest.fixture
def legacy_experiments() -> dict:
    """An experiments.json as the original's ExperimentRecorder wrote it.

    KEY_32 at 1e-04: two runs, trained with min_eig (learning curve counts line up),
    history intervals 5 then 10 (the second stored as a bare object, the writer's quirk);
    KEY_32 at 1e-03: one run (performance only); KEY_56 at 1e-04: three runs but only two
    learning curves, from two training modes (they do not line up), and an unknown chart.
    """
    data = {
        "learning_curve": {
            KEY_32: {"1e-04": {"min_eig": [
                _history("acc", 3, 0.5), {**_history("accuracy", 2, 0.6), "lr": [1e-3, 1e-3]}
            ]}},
            KEY_56: {"1e-04": {"det": [_history("acc", 2, 0.3)], "weight": [_history("acc", 2, 0.32)]}},
        },
        "performance": {
            KEY_32: {"1e-04": [_performance_entry(1.0), _performance_entry(0.99)], "1e-03": [_performance_entry(0.5)]},
            KEY_56: {"1e-04": [_performance_entry(0.3), _performance_entry(0.31), _performance_entry(0.32)]},
        },
        "pruning_per_layer": {
            KEY_32: {"1e-04": {
                "None": [_per_layer_entry([432, 2304, 650]), _per_layer_entry([432, 2304, 650])],
                "min_eig": [_per_layer_entry([216, 1152, 650]), _per_layer_entry([207, 999, 650])],
            }},
        },
        "eig_stats": {KEY_32: {"1e-04": [_eig_stats_entry(0), _eig_stats_entry(10)]}},
        "eig_analysis": {
            KEY_32: {"1e-04": {"min_eig": [
                {"layer_names": ["conv2d_1"], "active_real": [70.0], "pruned_real": [5.0],
                 "active_complex": [20.0], "pruned_complex": [5.0]},
                {"layer_names": ["conv2d_1"], "active_real": [71.0], "pruned_real": [4.0],
                 "active_complex": [21.0], "pruned_complex": [4.0]},
            ]}},
        },
        "set_analysis": {
            KEY_32: {"1e-04": [
                {"group_sizes": [10.0, 30.0, 60.0], "groups": ["{a,b}", "{a}", "{}"], "codes": CODES},
                {"group_sizes": [25.0, 5.0, 70.0], "groups": ["{d, a, c}", "{f}", "{}"], "codes": CODES},
            ]},
        },
        "pruning_per_threshold": {
            KEY_32: [
                {"final_vals": {"det": [0.0, 50.0, 100.0], "min_eig": [1.0, 2.0, 3.0]},
                 "thresholds": [1e-4, 1e-3, 1e-2]},
                {"final_vals": {"det": [0.0, 40.0, 90.0], "min_eig": [2.0, 4.0, 6.0]},
                 "thresholds": [1e-4, 1e-3, 1e-2]},
                {"final_vals": {"det": [10.0, 20.0, 30.0]}, "thresholds": [1e-4, 1e-3, 1e-2]},
            ],
        },
        "performance_history": {
            KEY_32: {"1e-04": {
                "5": [{
                    "param_count": {"None": [470218, 470218, 470218], "min_eig": [470218, 300000, 235109]},
                    "score": {"None": [0.0, 0.0, 0.0], "min_eig": [0.0, 0.3, 0.45]},
                    "accuracy": {"None": [0.5, 0.7, 0.9], "min_eig": [0.5, 0.69, 0.88]},
                    "precision": {"None": [0.4, 0.6, 0.8], "min_eig": [0.4, 0.6, 0.8]},
                    "recall": {"None": [0.3, 0.5, 0.7], "min_eig": [0.3, 0.5, 0.7]},
                }],
                "10": {
                    "param_count": {"None": [470218, 470218], "min_eig": [470218, 400000]},
                    "score": {"None": [0.0, 0.0], "min_eig": [0.0, 0.1]},
                    "accuracy": {"None": [0.6, 0.8], "min_eig": [0.6, 0.79]},
                    "precision": {"None": [0.5, 0.7], "min_eig": [0.5, 0.7]},
                    "recall": {"None": [0.4, 0.6], "min_eig": [0.4, 0.6]},
                },
            }},
        },
        "pruning_per_layer_history": {
            KEY_32: {"1e-04": {
                "5": [{"layer_names": ["conv2d_1", "conv2d_2"], "total_params": [432, 2304],
                       "active_params": {"min_eig": [[432, 2304], [300, 2000], [216, 1152]]}}],
                "10": {"layer_names": ["conv2d_1", "conv2d_2"], "total_params": [432, 2304],
                       "active_params": {"min_eig": [[432, 2304], [400, 2200]]}},
            }},
        },
        "weird_chart": {KEY_56: {"anything": [1, 2, 3]}},
    }
    return copy.deepcopy(data)


def _write(tmp_path, data, name="experiments.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def _by_group(docs):
    groups = {}
    for doc in docs:
        legacy = doc["legacy"]
        groups[(legacy["key"], legacy["threshold"], legacy["index"])] = doc
    return groups


@pytest.fixture
def imported(tmp_path, legacy_experiments):
    return _by_group(read_legacy(_write(tmp_path, legacy_experiments)))


def test_one_run_per_appended_entry(imported):
    assert sorted(imported) == sorted([
        (KEY_32, "1e-04", 0), (KEY_32, "1e-04", 1), (KEY_32, "1e-03", 0),
        (KEY_56, "1e-04", 0), (KEY_56, "1e-04", 1), (KEY_56, "1e-04", 2),
    ])
    for doc in imported.values():
        assert doc["status"] == "completed" and doc["source"] == "legacy"
        assert doc["legacy"]["file"] == "experiments.json"


def test_config_is_parsed_from_the_key(imported):
    config = imported[(KEY_32, "1e-04", 0)]["config"]
    assert {
        k: config[k]
        for k in (
            "model", "depth", "optimizer", "loss", "lr", "epochs", "batch_size", "init_mode", "dataset", "l1_penalty",
            "threshold",
        )
    } == {
        "model": "MicroResNet32", "depth": 32, "optimizer": "adam", "loss": "categorical_crossentropy",
        "lr": 1e-3, "epochs": 200, "batch_size": 128, "init_mode": "random_init", "dataset": "cifar10",
        "l1_penalty": 1e-4, "threshold": 1e-4,
    }
    assert config["compare"] == ["min_eig", "det"]
    other = imported[(KEY_56, "1e-04", 2)]["config"]
    assert (other["model"], other["depth"], other["dataset"], other["lr"], other["epochs"], other["l1_penalty"]) == (
        "MicroResNet56", 56, "tiny-imagenet", 0.1, 100, 0.0)
    assert imported[(KEY_32, "1e-03", 0)]["config"]["threshold"] == 1e-3


def test_training_mode_and_interval_only_when_the_counts_line_up(imported):
    first, second = imported[(KEY_32, "1e-04", 0)], imported[(KEY_32, "1e-04", 1)]
    assert (first["config"]["mode"], second["config"]["mode"]) == ("min_eig", "min_eig")
    assert (first["config"]["history_interval"], second["config"]["history_interval"]) == (5, 10)
    # KEY_56 has three runs but two learning curves (det, weight): no mode is claimed.
    runs_56 = [imported[(KEY_56, "1e-04", i)] for i in range(3)]
    assert [doc["config"]["mode"] for doc in runs_56] == [None, None, None]
    assert [doc["legacy"]["sub_keys"].get("learning_curve") for doc in runs_56] == ["det", "weight", None]
    assert runs_56[0]["results"]["learning_curve"]["accuracy"] == pytest.approx([0.3, 0.31])


def test_performance_rows_and_compression(imported):
    performance = imported[(KEY_32, "1e-04", 0)]["results"]["performance"]
    assert set(performance) == {"None", "min_eig", "det"}
    assert performance["min_eig"] == {
        "accuracy": 0.9, "precision": 0.88, "recall": 0.87, "active_params": 235109, "total_params": 470218,
        "compression_ratio": 0.5, "score": 0.45, "alive_kernels": None, "total_kernels": None,
    }
    assert performance["det"]["compression_ratio"] == pytest.approx(0.25)
    assert performance["None"]["compression_ratio"] == 0.0
    assert imported[(KEY_32, "1e-04", 1)]["results"]["performance"]["None"]["accuracy"] == pytest.approx(0.91 * 0.99)
    assert imported[(KEY_32, "1e-03", 0)]["results"]["performance"]["None"]["accuracy"] == pytest.approx(0.455)


def test_learning_curves(imported):
    curve = imported[(KEY_32, "1e-04", 0)]["results"]["learning_curve"]
    assert curve["epoch"] == [1, 2, 3]
    assert curve["accuracy"] == pytest.approx([0.5, 0.51, 0.52])  # renamed from "acc"
    assert curve["val_accuracy"] == pytest.approx([0.45, 0.46, 0.47])
    assert curve["loss"] == pytest.approx([2.0, 1.9, 1.8])
    assert curve["lr"] == [None] * 3 and curve["stage"] == [None] * 3
    assert imported[(KEY_32, "1e-04", 1)]["results"]["learning_curve"]["lr"] == [1e-3, 1e-3]


def test_pruning_per_layer(imported):
    per_layer = imported[(KEY_32, "1e-04", 1)]["results"]["pruning_per_layer"]
    assert [row["active_params"] for row in per_layer["min_eig"]] == [207, 999, 650]
    assert per_layer["None"][1] == {
        "layer": "conv2d_2", "active_params": 2304, "total_params": 2304, "alive_kernels": None, "total_kernels": None
    }


def test_eig_stats_totals_and_ratios(imported):
    stats = imported[(KEY_32, "1e-04", 0)]["results"]["eig_stats"]
    assert (stats["total_eigenvalues"], stats["complex_eigenvalues"], stats["total_kernels"]) == (1200, 300, 400)
    assert stats["complex_ratio"] == 0.25
    assert stats["criteria"]["min_eig"] == {
        "pruned": 30, "target_complex": 80, "pruned_complex": 8,
        "target_complex_ratio": 0.2, "pruned_complex_ratio": pytest.approx(8 / 30),
    }
    assert stats["criteria"]["spectral_radius"]["target_complex_ratio"] == 0.25
    assert stats["criteria"]["spectral_radius"]["pruned_complex_ratio"] is None  # nothing pruned
    second = imported[(KEY_32, "1e-04", 1)]["results"]
    assert second["eig_stats"]["complex_ratio"] == pytest.approx(310 / 1220)
    assert second["eig_stats"]["criteria"]["min_eig"]["target_complex_ratio"] == pytest.approx(90 / 400)
    # The per-layer counts the totals lose are kept verbatim.
    assert second["legacy"]["eig_stats"]["total_complex_list"] == [110, 200]
    assert second["legacy"]["eig_analysis"]["active_real"] == [71.0]


def test_set_analysis_shares(imported):
    first = imported[(KEY_32, "1e-04", 0)]["results"]["set_analysis"]
    assert first["criteria"] == ["det", "det_corr", "min_eig", "spectral_radius", "spectral_norm", "weight"]
    assert first["shares"] == {"min_eig+weight": 0.1, "min_eig": 0.3, "": 0.6}
    assert first["total_kernels"] is None
    second = imported[(KEY_32, "1e-04", 1)]["results"]["set_analysis"]["shares"]
    assert second == {"det+min_eig+spectral_radius": 0.25, "det_corr": 0.05, "": 0.7}


def test_pruning_per_threshold_goes_to_runs_in_threshold_order(imported):
    first = imported[(KEY_32, "1e-04", 0)]["results"]["pruning_per_threshold"]
    assert first == {
        "thresholds": [1e-4, 1e-3, 1e-2], "pruned_ratio": {"det": [0.0, 0.5, 1.0], "min_eig": [0.01, 0.02, 0.03]},
        "rule": "raw",
    }
    assert imported[(KEY_32, "1e-04", 1)]["results"]["pruning_per_threshold"]["pruned_ratio"]["det"] == [0.0, 0.4, 0.9]
    assert imported[(KEY_32, "1e-03", 0)]["results"]["pruning_per_threshold"]["pruned_ratio"] == {
        "det": [0.1, 0.2, 0.3]
    }
    assert "pruning_per_threshold" not in imported[(KEY_56, "1e-04", 0)]["results"]


def test_history_from_both_history_charts(imported):
    results = imported[(KEY_32, "1e-04", 0)]["results"]
    history, per_layer = results["history"], results["per_layer_history"]
    assert [step["epoch"] for step in history] == [0, 5, 10]
    assert [step["epoch"] for step in per_layer] == [0, 5, 10]
    middle = history[1]
    assert middle["performance"]["min_eig"]["accuracy"] == 0.69
    assert middle["performance"]["min_eig"]["active_params"] == 300000
    assert middle["performance"]["min_eig"]["compression_ratio"] == pytest.approx(1 - 300000 / 470218)
    assert middle["performance"]["None"]["recall"] == 0.5
    assert [row["active_params"] for row in per_layer[1]["pruning_per_layer"]["min_eig"]] == [300, 2000]
    # The second run's interval-10 entries were stored as bare objects.
    results = imported[(KEY_32, "1e-04", 1)]["results"]
    assert [step["epoch"] for step in results["history"]] == [0, 10]
    assert results["history"][1]["performance"]["min_eig"]["score"] == 0.1
    assert [
        row["active_params"] for row in results["per_layer_history"][1]["pruning_per_layer"]["min_eig"]
    ] == [400, 2200]


def test_unknown_charts_are_kept(imported):
    assert imported[(KEY_56, "1e-04", 0)]["results"]["legacy"]["weird_chart"] == {"anything": [1, 2, 3]}
    assert "legacy" not in imported[(KEY_56, "1e-04", 1)]["results"]


def test_dataset_names():
    assert [
        dataset_name(n) for n in ("CIFAR-10", "CIFAR-100", "tiny-imagenet", "TinyImageNet", "tiny_imagenet", "MNIST")
    ] == ["cifar10", "cifar100", "tiny-imagenet", "tiny-imagenet", "tiny-imagenet", "mnist"]


def test_import_is_idempotent(tmp_path, legacy_experiments):
    store = Store(tmp_path / "store.json")
    source = _write(tmp_path, legacy_experiments)
    first = import_legacy(store, [source])
    assert (len(first.imported), first.skipped) == (6, 0)
    again = import_legacy(store, [source, _write(tmp_path, legacy_experiments, "copy-of-experiments.json")])
    assert (len(again.imported), again.skipped) == (0, 12)
    assert len(store.runs()) == 6
    # More runs appended to the original file later: only the new one is imported.
    legacy_experiments["performance"][KEY_56]["1e-04"].append(legacy_experiments["performance"][KEY_56]["1e-04"][0])
    grown = import_legacy(store, [_write(tmp_path, legacy_experiments)])
    assert (len(grown.imported), grown.skipped) == (1, 6)
    assert grown.imported[0]["legacy"]["index"] == 3


def test_imported_runs_read_back_with_all_numbers(tmp_path, legacy_experiments):
    store = Store(tmp_path / "store.json")
    import_legacy(store, [_write(tmp_path, legacy_experiments)])
    stored = _by_group(store.runs(dataset="cifar10", threshold=1e-4))
    expected = _by_group(read_legacy(_write(tmp_path, legacy_experiments)))
    assert set(stored) == {(KEY_32, "1e-04", 0), (KEY_32, "1e-04", 1)}
    for group, doc in stored.items():
        assert doc["results"] == expected[group]["results"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["performance"][KEY_32]["1e-04"][0]["det"].update(accuracy="high"),
         f'$["performance"]["{KEY_32}"]["1e-04"][0]["det"]["accuracy"]: expected a number, got str "high"'),
        (lambda d: d["performance"].update({"MicroResNet32:adam:1e-03:200:128:CIFAR-10:1e-04": {}}),
         "has 7 fields; expected 9"),
        (lambda d: d["eig_stats"][KEY_32].update({"1e-04": {"min_eig": [[1]]}}),
         f'$["eig_stats"]["{KEY_32}"]["1e-04"]["layer_names"]: expected a list'),
        (lambda d: d["performance"].update({KEY_56: [_ for _ in d["performance"][KEY_56]["1e-04"]]}),
         f'$["performance"]["{KEY_56}"]: expected an object, got list'),
        (lambda d: d["set_analysis"][KEY_32]["1e-04"][0].update(groups=["{a,z}", "{a}", "{}"]),
         "letter(s) z not in codes"),
        (lambda d: d["pruning_per_layer"][KEY_32]["1e-04"]["min_eig"][0].update(active_params=[1, 2]),
         "expected 3 numbers (one per item), got 2"),
        (lambda d: d["performance_history"][KEY_32]["1e-04"].update({"often": {}}),
         "history interval 'often' is not a number"),
        (lambda d: d["learning_curve"][KEY_32].update({"low": {}}),
         "threshold 'low' is not a number"),
        (lambda d: d.update(performance=[1, 2]), '$["performance"]: expected an object, got list'),
    ],
)
def test_malformed_files_name_the_problem_and_write_nothing(tmp_path, legacy_experiments, mutate, message):
    store_path = tmp_path / "store.json"
    Store(store_path).add_run({"config": {"model": "kept"}})
    before = store_path.read_bytes()
    good = _write(tmp_path, legacy_experiments, "good.json")
    mutate(legacy_experiments)
    bad = _write(tmp_path, legacy_experiments, "bad.json")
    with pytest.raises(PsykError) as caught:
        import_legacy(Store(store_path), [good, bad])
    assert str(caught.value).startswith(f"{bad}: ")
    assert message in str(caught.value)
    assert "nothing was imported" in str(caught.value)
    assert store_path.read_bytes() == before


def test_not_json_is_refused(tmp_path):
    bad = tmp_path / "experiments.json"
    bad.write_text('{"performance": {')
    with pytest.raises(PsykError, match=r"experiments.json is not valid JSON .*line 1"):
        import_legacy(Store(tmp_path / "store.json"), [bad])
    assert not (tmp_path / "store.json").exists()
