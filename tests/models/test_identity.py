"""A model's identity in the store: its architecture fingerprint survives everything but a change of structure."""

from __future__ import annotations

import keras

from psykedelic_cli.models.identity import model_identity
from psykedelic_cli.models.resnet import build_micro_resnet
from psykedelic_cli.models.surgery import merge_lora, parameter_report, prune_model, strip_masks


def _layers(width: int, lora_rank=None) -> list:
    return [keras.layers.Conv2D(width, 3, lora_rank=lora_rank), keras.layers.Flatten(), keras.layers.Dense(10)]


def test_the_fingerprint_ignores_names_values_masks_lora_and_the_kind_of_model(tmp_path):
    resnet = build_micro_resnet((8, 8, 1), 10, 8, seed=0)
    before = model_identity(resnet)
    assert before["params"] == parameter_report(resnet)["total_params"] and len(before["architecture"]) == 12
    prune_model(resnet, "weight_sorted_neurons", rate=0.5, seed=0)
    stripped = strip_masks(resnet)
    stripped.name = "renamed"
    assert model_identity(resnet) == model_identity(stripped) == before
    path = tmp_path / "plain.keras"
    stripped.save(path)
    assert model_identity(keras.models.load_model(path)) == before
    sequential = keras.Sequential([keras.Input((8, 8, 1)), *_layers(4)])
    functional = keras.Model(sequential.inputs, sequential.outputs)
    assert model_identity(sequential) == model_identity(functional)
    adapted = keras.Sequential([keras.Input((8, 8, 1)), *_layers(4, lora_rank=2)])
    assert model_identity(adapted)["architecture"] == model_identity(merge_lora(adapted))["architecture"] == (
        model_identity(sequential)["architecture"])
    assert model_identity(adapted)["params"] == adapted.count_params()  # the factors are parameters


def test_a_change_of_structure_changes_the_fingerprint():
    narrow = keras.Sequential([keras.Input((8, 8, 1)), *_layers(4)])
    wide = keras.Sequential([keras.Input((8, 8, 1)), *_layers(8)])
    other_input = keras.Sequential([keras.Input((8, 8, 3)), *_layers(4)])
    fingerprints = {model_identity(m)["architecture"] for m in (narrow, wide, other_input)}
    assert len(fingerprints) == 3
    assert model_identity(build_micro_resnet((8, 8, 1), 10, 8))["architecture"] != model_identity(
        build_micro_resnet((8, 8, 1), 10, 14))["architecture"]
