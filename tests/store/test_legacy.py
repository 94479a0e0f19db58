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


def _eig_stats_entry(offset: int, pruned: int = 0) -> dict:
    """Two layers of 144 and 256 kernels; min_eig prunes 30 + ``pruned`` of the 400, spectral_radius none."""
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
        "pruned_real_list": [{"min_eig": 7, "spectral_radius": 0}, {"min_eig": 15 + pruned, "spectral_radius": 0}],
    }


def _eig_analysis_entry(stats: dict, mode: str) -> dict:
    """The eig_analysis entry the original's EigenvalueCallback writes from the kernels ``stats`` counts:
    per layer, the percentage of kernels whose deciding eigenvalue is real / complex, active and pruned."""
    entry = {"layer_names": stats["layer_names"]}
    for part in ("real", "complex"):
        target = [row[mode] for row in stats[f"target_{part}_list"]]
        pruned = [row[mode] for row in stats[f"pruned_{part}_list"]]
        totals = [r[mode] + c[mode] for r, c in zip(stats["target_real_list"], stats["target_complex_list"])]
        entry[f"pruned_{part}"] = [(p / t) * 100 for p, t in zip(pruned, totals)]
        entry[f"active_{part}"] = [((k - p) / t) * 100 for k, p, t in zip(target, pruned, totals)]
    return entry


def _per_layer_entry(active: list) -> dict:
    return {"layer_names": ["conv2d_1", "conv2d_2", "dense"], "active_params": active, "total_params": [432, 2304, 650]}


CODES = {"a": "min_eig", "b": "weight", "c": "det", "d": "spectral_radius", "e": "spectral_norm", "f": "det_corr"}


@pytest.fixture
def legacy_experiments() -> dict:
    """An experiments.json as the original's ExperimentRecorder wrote it.

    KEY_32 at 1e-04: two runs, trained with min_eig (their eig_analysis entries match their
    eig_stats), history intervals 5 then 10 (the second stored as a bare object, the writer's
    quirk); KEY_32 at 1e-03: one run (performance only), recorded first, so its
    pruning_per_threshold entry comes first, then the second 1e-04 run's, then the first's
    (each shows its run's min_eig share at 1e-04: 10 % and 7.5 %); KEY_56 at 1e-04: three runs
    but only two learning curves, from two training modes (they do not line up), and an
    unknown chart. The history's None rows hold precision under recall and recall under
    precision, as the original's HistoryCallback wrote them.
    """
    stats = [_eig_stats_entry(0), _eig_stats_entry(10, pruned=10)]
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
        "eig_stats": {KEY_32: {"1e-04": stats}},
        "eig_analysis": {KEY_32: {"1e-04": {"min_eig": [_eig_analysis_entry(entry, "min_eig") for entry in stats]}}},
        "set_analysis": {
            KEY_32: {"1e-04": [
                {"group_sizes": [10.0, 30.0, 60.0], "groups": ["{a,b}", "{a}", "{}"], "codes": CODES},
                {"group_sizes": [25.0, 5.0, 70.0], "groups": ["{d, a, c}", "{f}", "{}"], "codes": CODES},
            ]},
        },
        "pruning_per_threshold": {
            KEY_32: [
                {"final_vals": {"det": [10.0, 20.0, 30.0]}, "thresholds": [1e-4, 1e-3, 1e-2]},
                {"final_vals": {"det": [0.0, 40.0, 90.0], "min_eig": [10.0, 20.0, 30.0]},
                 "thresholds": [1e-4, 1e-3, 1e-2]},
                {"final_vals": {"det": [0.0, 50.0, 100.0], "min_eig": [7.5, 8.0, 9.0]},
                 "thresholds": [1e-4, 1e-3, 1e-2]},
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
        "lr": 1e-3, "epochs": 400, "batch_size": 128, "init_mode": "random_init", "dataset": "cifar10",
        "l1_penalty": 1e-4, "threshold": 1e-4,
    }
    # The key holds the original's epochs per stage (200 of its 400-epoch runs): psyk's epochs are the total.
    assert (config["steps"], imported[(KEY_32, "1e-04", 0)]["legacy"]["stage_epochs"]) == (2, 200)
    assert config["compare"] == ["min_eig", "det"]
    other = imported[(KEY_56, "1e-04", 2)]["config"]
    assert (other["model"], other["depth"], other["dataset"], other["lr"], other["epochs"], other["l1_penalty"]) == (
        "MicroResNet56", 56, "tiny-imagenet", 0.1, 200, 0.0)
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
    assert curve["lr"] == [None] * 3 and curve["stage"] == [1, 1, 1]  # 3 of the first stage's 200 epochs
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
    assert second["legacy"]["eig_analysis"] == _eig_analysis_entry(_eig_stats_entry(10, pruned=10), "min_eig")


def test_set_analysis_shares(imported):
    first = imported[(KEY_32, "1e-04", 0)]["results"]["set_analysis"]
    assert first["criteria"] == ["det", "det_corr", "min_eig", "spectral_radius", "spectral_norm", "weight"]
    assert first["shares"] == {"min_eig+weight": 0.1, "min_eig": 0.3, "": 0.6}
    assert first["total_kernels"] is None
    second = imported[(KEY_32, "1e-04", 1)]["results"]["set_analysis"]["shares"]
    assert second == {"det+min_eig+spectral_radius": 0.25, "det_corr": 0.05, "": 0.7}


def test_pruning_per_threshold_goes_to_the_run_whose_pruned_share_it_shows(imported):
    # The file lists the 1e-03 run's entry first: ascending threshold order would give it to a 1e-04 run.
    first = imported[(KEY_32, "1e-04", 0)]
    assert first["results"]["pruning_per_threshold"] == {
        "thresholds": [1e-4, 1e-3, 1e-2], "pruned_ratio": {"det": [0.0, 0.5, 1.0], "min_eig": [0.075, 0.08, 0.09]},
        "rule": "raw",
    }
    second = imported[(KEY_32, "1e-04", 1)]
    assert second["results"]["pruning_per_threshold"]["pruned_ratio"]["min_eig"] == [0.1, 0.2, 0.3]
    other = imported[(KEY_32, "1e-03", 0)]
    assert other["results"]["pruning_per_threshold"]["pruned_ratio"] == {"det": [0.1, 0.2, 0.3]}
    # The 1e-03 run has no eig_stats to compare with: its entry is the one left, by position.
    assert [doc["legacy"]["placed_by"]["pruning_per_threshold"] for doc in (first, second, other)] == [
        "evidence", "evidence", "position"]
    assert "pruning_per_threshold" not in imported[(KEY_56, "1e-04", 0)]["results"]


def test_history_from_both_history_charts(imported):
    results = imported[(KEY_32, "1e-04", 0)]["results"]
    history, per_layer = results["history"], results["per_layer_history"]
    # The original compared after Keras epochs 0, 5 and 10 (counted from 0): 1, 6 and 11 completed epochs.
    assert [step["epoch"] for step in history] == [1, 6, 11]
    assert [step["epoch"] for step in per_layer] == [1, 6, 11]
    middle = history[1]
    assert middle["performance"]["min_eig"]["accuracy"] == 0.69
    assert middle["performance"]["min_eig"]["active_params"] == 300000
    assert middle["performance"]["min_eig"]["compression_ratio"] == pytest.approx(1 - 300000 / 470218)
    none = middle["performance"]["None"]
    assert (none["precision"], none["recall"]) == (0.5, 0.6)  # stored swapped: recall 0.5, precision 0.6
    assert middle["performance"]["min_eig"]["precision"] == 0.6  # the compared modes were stored right
    assert imported[(KEY_32, "1e-04", 0)]["legacy"]["corrected"] == ["history_none_precision_recall"]
    assert imported[(KEY_32, "1e-03", 0)]["legacy"]["corrected"] == []  # no history
    assert [row["active_params"] for row in per_layer[1]["pruning_per_layer"]["min_eig"]] == [300, 2000]
    # The second run's interval-10 entries were stored as bare objects.
    results = imported[(KEY_32, "1e-04", 1)]["results"]
    assert [step["epoch"] for step in results["history"]] == [1, 11]
    assert results["history"][1]["performance"]["min_eig"]["score"] == 0.1
    assert [
        row["active_params"] for row in results["per_layer_history"][1]["pruning_per_layer"]["min_eig"]
    ] == [400, 2200]


KEY_20 = "MicroResNet20:adam:categorical_crossentropy:1e-03:3:128:random_init:CIFAR-10:1e-04"


def test_learning_curves_of_two_training_modes_go_to_their_runs(tmp_path):
    """Two sweeps over min_eig and weight: runs A (min_eig), B (weight), C (min_eig), D (weight).

    The original keeps learning curves per training mode ({min_eig: [A, C], weight: [B, D]}), so
    file order is A, C, B, D. The eig_analysis entries of A and C match their eig_stats, which
    proves those runs' mode; the weight curves take the two runs left, in order.
    """
    stats = [_eig_stats_entry(5 * i, pruned=i) for i in range(4)]
    curves = [_history("acc", 6, start) for start in (0.1, 0.2, 0.3, 0.4)]  # two stages of 3 epochs
    data = {
        "performance": {KEY_20: {"1e-04": [_performance_entry(1.0 - i / 10) for i in range(4)]}},
        "eig_stats": {KEY_20: {"1e-04": stats}},
        "eig_analysis": {KEY_20: {"1e-04": {"min_eig": [_eig_analysis_entry(stats[i], "min_eig") for i in (0, 2)]}}},
        "learning_curve": {KEY_20: {"1e-04": {"min_eig": [curves[0], curves[2]], "weight": [curves[1], curves[3]]}}},
    }
    runs = [doc for _, doc in sorted(_by_group(read_legacy(_write(tmp_path, data))).items())]
    assert [run["results"]["learning_curve"]["accuracy"][0] for run in runs] == [0.1, 0.2, 0.3, 0.4]
    assert [run["results"]["legacy"]["eig_analysis"] for run in runs[::2]] == [
        _eig_analysis_entry(stats[i], "min_eig") for i in (0, 2)]
    assert "eig_analysis" not in runs[1]["results"]["legacy"]
    assert [run["config"]["mode"] for run in runs] == ["min_eig", "weight", "min_eig", "weight"]
    assert [run["legacy"]["placed_by"]["learning_curve"] for run in runs] == [
        "evidence", "position", "evidence", "position"]
    assert runs[0]["legacy"]["placed_by"]["eig_analysis"] == "evidence"
    assert runs[0]["results"]["learning_curve"]["stage"] == [1, 1, 1, 2, 2, 2]


def test_epochs_are_psyk_totals_and_history_counts_completed_epochs(tmp_path, legacy_experiments):
    three_stages = {**_history("acc", 9, 0.2)}  # 3 stages of 3 epochs: the curve shows the stage count
    legacy_experiments["learning_curve"][KEY_20] = {"1e-04": {"weight": [three_stages]}}
    store = Store(tmp_path / "store.json")
    import_legacy(store, [_write(tmp_path, legacy_experiments)])
    (run_20,) = store.runs(model="MicroResNet20")
    assert (run_20["config"]["epochs"], run_20["config"]["steps"], run_20["legacy"]["stage_epochs"]) == (9, 3, 3)
    assert run_20["results"]["learning_curve"]["stage"] == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    # A 400-epoch run of the original (200 per stage) is found as psyk's own would be: --epochs 400.
    assert {run["legacy"]["index"] for run in store.runs(model="MicroResNet32", epochs=400, threshold=1e-4)} == {0, 1}
    assert store.runs(model="MicroResNet32", epochs=200) == []
    history = store.get_run(store.runs(model="MicroResNet32", history_interval=5)[0]["id"])["results"]["history"]
    assert [point["epoch"] for point in history] == [1, 6, 11]  # as psyk's own: completed epochs


def test_null_precision_or_recall_imports_as_missing(tmp_path, legacy_experiments):
    from psykedelic_cli.reports import history_report, performance_report
    from psykedelic_cli.reports.aggregate import summarize

    # The original writes null when some class is never predicted (scikit-learn's undefined metric).
    legacy_experiments["performance"][KEY_32]["1e-04"][0]["det"].update(precision=None, recall=None)
    legacy_experiments["performance"][KEY_32]["1e-04"][0]["None"]["recall"] = None
    legacy_experiments["performance_history"][KEY_32]["1e-04"]["5"][0]["precision"]["min_eig"][1] = None
    legacy_experiments["performance_history"][KEY_32]["1e-04"]["5"][0]["recall"]["None"][2] = None
    store = Store(tmp_path / "store.json")
    outcome = import_legacy(store, [_write(tmp_path, legacy_experiments)])
    assert len(outcome.imported) == 6
    runs = _by_group(store.runs())
    first = runs[(KEY_32, "1e-04", 0)]["results"]
    assert first["performance"]["det"] == {
        "accuracy": 0.8, "precision": None, "recall": None, "active_params": 352663.5, "total_params": 470218,
        "compression_ratio": pytest.approx(0.25), "score": 0.2, "alive_kernels": None, "total_kernels": None,
    }
    assert (first["performance"]["None"]["precision"], first["performance"]["None"]["recall"]) == (0.9, None)
    assert first["history"][1]["performance"]["min_eig"]["precision"] is None
    assert first["history"][1]["performance"]["min_eig"]["recall"] == 0.5
    assert first["history"][2]["performance"]["None"]["precision"] is None  # the stored recall, un-swapped
    precision = [runs[(KEY_32, "1e-04", i)]["results"]["performance"]["det"]["precision"] for i in (0, 1)]
    assert summarize(precision).n == 1 and summarize(precision).mean == 0.79  # left out of the mean
    assert "det" in performance_report(list(runs.values())).text("markdown")
    assert "min_eig" in history_report(list(runs.values())).text("markdown")


def test_runs_imported_by_an_earlier_psyk_are_corrected_in_place(tmp_path, legacy_experiments):
    store = Store(tmp_path / "store.json")
    source = _write(tmp_path, legacy_experiments)
    earlier = read_legacy(source)
    for doc in earlier:  # as the earlier rules stored them: no importer version, another digest and history axis
        del doc["legacy"]["importer"]
        doc["legacy"]["digest"] = "0" * 64
        for point in doc["results"].get("history", []):
            point["epoch"] -= 1
    changed = next(doc for doc in earlier if _identity(doc) == (KEY_56, "1e-04", 2))
    changed["results"]["performance"]["det"]["accuracy"] = 0.123  # not the same run any more: imported anew
    store.add_runs(earlier)
    ids = {(doc["legacy"]["key"], doc["legacy"]["threshold"], doc["legacy"]["index"]): doc["id"] for doc in earlier}
    outcome = import_legacy(store, [source])
    assert (len(outcome.corrected), len(outcome.imported), outcome.skipped) == (5, 1, 0)
    runs = store.runs()
    assert len(runs) == 7
    corrected = [run for run in runs if run["id"] in {doc["id"] for doc in outcome.corrected}]
    assert all(ids[_identity(run)] == run["id"] and run["legacy"]["importer"] for run in corrected)
    history = next(run for run in corrected if run["config"]["history_interval"] == 5)["results"]["history"]
    assert [point["epoch"] for point in history] == [1, 6, 11]
    again = import_legacy(store, [source])
    assert (len(again.corrected), len(again.imported), again.skipped) == (0, 0, 6)


def _identity(doc):
    return doc["legacy"]["key"], doc["legacy"]["threshold"], doc["legacy"]["index"]


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


def test_now_stamps_the_ids_of_imported_runs_too(tmp_path, legacy_experiments, clock):
    now = clock()
    source = _write(tmp_path, legacy_experiments)
    assert {doc["id"][:15] for doc in read_legacy(source, now=now)} == {f"{now:%Y%m%dT%H%M%S}"}
    store = Store(tmp_path / "store.json")
    outcome = import_legacy(store, [source], now=now)
    stamped = {(run["id"][:15], run["created_at"], run["updated_at"]) for run in store.runs()}
    assert len(outcome.imported) == 6
    assert stamped == {(f"{now:%Y%m%dT%H%M%S}", "2026-01-15T12:00:00.000+00:00", "2026-01-15T12:00:00.000+00:00")}


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
