"""The one typed definition of a run's options: stored keys, TOML files, validation (no TensorFlow)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from psykedelic_cli.cli.app import app
from psykedelic_cli.errors import PsykError
from psykedelic_cli.store.schema import CONFIG_FIELDS, RECORD_CONFIG_FIELDS
from psykedelic_cli.training.config import RecordConfig, TrainConfig, option_fields, read_config_file


def test_stored_keys_are_the_schemas():
    identity = {"architecture": "0123456789ab", "params": 1000}
    assert set(TrainConfig().validate().store_config("MicroResNet20", identity)) == set(CONFIG_FIELDS)
    recorded = RecordConfig().validate().store_config("functional", Path("m.keras"), identity)
    assert set(recorded) == set(RECORD_CONFIG_FIELDS)
    # record stores no training setting, and its batch size apart from the training one
    assert "batch_size" not in RECORD_CONFIG_FIELDS and "eval_batch_size" in RECORD_CONFIG_FIELDS


def test_every_option_of_train_and_record_comes_from_the_definition():
    from typer.main import get_command

    commands = get_command(app).commands
    for command, config_class, own in (("train", TrainConfig, {"config"}), ("record", RecordConfig, {"model"})):
        names = {param.name for param in commands[command].params} - {"store", "help"}
        assert names == {item.name for item in option_fields(config_class)} | own, command


def _toml(tmp_path, text: str) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(text)
    return path


def test_baseline_is_an_option_of_the_file_too(tmp_path):
    assert read_config_file(_toml(tmp_path, "baseline = true\n")) == {"baseline": True}


def test_top_level_keys_and_a_train_table_are_both_honoured(tmp_path):
    values = read_config_file(_toml(tmp_path, 'depth = 14\nlr = 0.01\nseed = 3\n[train]\ndepth = 8\nmode = "det"\n'))
    assert values == {"depth": 8, "lr": 0.01, "seed": [3], "mode": ["det"]}
    assert read_config_file(_toml(tmp_path, "lr = 1\ncompare = 'det'\n")) == {"lr": 1.0, "compare": ("det",)}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[train]]\nlr = 1e-3\n", "train = an array of tables: expected a [train] table of options"),
        ("train = 5\n", "train = 5: expected a [train] table of options"),
        ("lr = true\n", "lr = true: expected a number"),
        ("[train]\nbatch-size = 1.5\n", "batch-size = 1.5: expected an integer"),
        ("steps = 1\n", "steps = 1: expected an integer ≥ 2"),
        ("seed = [1, \"two\"]\n", 'seed = [1, "two"]: expected an integer or a list of them'),
        ("optimizer = \"lion\"\n", 'optimizer = "lion": expected one of adam, sgd, rmsprop, adagrad'),
        ("mode = [\"min_eig\", \"nope\"]\n", 'mode = ["min_eig", "nope"]: expected a pruning mode'),
        ("residual = \"no\"\n", 'residual = "no": expected true or false'),
        ("lr = [0.1]\n", "lr = [0.1]: expected a number"),
        ("learning-rate = 0.1\n", "unknown option 'learning-rate'; allowed: backend, baseline, batch-size, compare,"),
        ("decay = inf\n", "decay = inf: expected a number ≥ 0"),
        ("l1-penalty = [0, inf]\n", "l1-penalty = [0, inf]: expected a number ≥ 0"),
        ("threshold = -1\n", "threshold = -1: expected a positive number"),
        ("rate = 1.5\n", "rate = 1.5: expected a number in [0, 1]"),
        ("init = \"nowhere.keras\"\n", 'init = "nowhere.keras": expected an existing file'),
        ("mode = []\n", "mode = []: expected at least one value"),
        ("depth = \n", "is not a readable TOML file"),
    ],
)
def test_a_bad_config_file_is_one_line_naming_file_key_value_and_what_is_allowed(tmp_path, text, message):
    path = _toml(tmp_path, text)
    with pytest.raises(PsykError, match=None) as raised:
        read_config_file(path)
    assert str(raised.value).startswith(f"--config {path}") and message in str(raised.value)
    store = tmp_path / "store.json"
    result = CliRunner().invoke(app, ["--store", str(store), "train", "--config", str(path)])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert message in result.stderr and str(path) in result.stderr and "Traceback" not in result.output
    assert not store.exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lr": True}, "--lr must be a number (got true)"),
        ({"lr": 0.0}, "--lr must be a positive number (got 0.0)"),
        ({"steps": 1}, "--steps must be an integer ≥ 2 (got 1)"),
        ({"epochs": 3, "steps": 4}, "--epochs must be at least --steps (4); got 3"),
        ({"mode": "nope"}, '--mode must be a pruning mode'),
        ({"compare": ("det", "nope")}, '--compare must be a pruning mode'),
        ({"dataset": "mnist"}, '--dataset must be one of digits, cifar10, cifar100, tiny-imagenet (got "mnist")'),
        ({"momentum": 1.0}, "--momentum must be a number in [0, 1) (got 1.0)"),
        ({"depth": None}, "--depth must be an integer (got nothing)"),
        ({"decay": float("inf")}, "--decay must be a number ≥ 0 (got inf)"),
        ({"rate": 2.0}, "--rate must be a number in [0, 1]"),
        ({"init": Path("nowhere.keras")}, '--init must be an existing file (got "nowhere.keras")'),
    ],
)
def test_validation_names_the_option_the_value_and_what_is_allowed(changes, message):
    with pytest.raises(PsykError) as raised:
        TrainConfig(**changes).validate()
    assert message in str(raised.value)


def test_runs_from_different_initial_weights_of_one_file_name_are_told_apart(tmp_path):
    from psykedelic_cli.reports.aggregate import varying_settings

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "model.keras").write_bytes(b"weights one")
    (tmp_path / "b" / "model.keras").write_bytes(b"weights two")
    identity = {"architecture": "0123456789ab", "params": 10}
    configs = [TrainConfig(init=tmp_path / name / "model.keras").validate().store_config("M", identity)
               for name in ("a", "b")]
    assert configs[0]["init_mode"] == configs[1]["init_mode"] == "model"
    assert configs[0]["init_digest"] != configs[1]["init_digest"] and len(configs[0]["init_digest"]) == 12
    assert TrainConfig().store_config("M", identity)["init_digest"] is None
    runs = [{"config": config} for config in configs]
    assert "init_digest" in varying_settings(runs)  # the reports split them instead of averaging


def test_record_eval_batch_size_is_checked_and_keeps_its_old_spelling():
    with pytest.raises(PsykError, match="--eval-batch-size must be an integer ≥ 1"):
        RecordConfig(eval_batch_size=0).validate()
    result = CliRunner().invoke(app, ["record", "missing.keras", "--dataset", "digits", "--batch-size", "0"])
    assert result.exit_code == 2 and "model file not found" in result.stderr


def test_the_split_never_follows_the_seed_and_every_text_says_so():
    import numpy as np

    import psykedelic_cli.data.dataset as dataset
    from psykedelic_cli.training.session import _load

    assert "whatever ``--seed``" in dataset.__doc__
    seed_help = next(item for item in dataclasses.fields(RecordConfig) if item.name == "seed").metadata["spec"].help
    assert "never depend on it" in seed_help
    first, second = _load(TrainConfig(seed=1)), _load(TrainConfig(seed=2))
    assert np.array_equal(first.x_val, second.x_val) and np.array_equal(first.x_test, second.x_test)
    assert np.array_equal(_load(RecordConfig(seed=5)).y_val, first.y_val)


def test_the_config_definition_imports_no_backend():
    code = ("import sys; import psykedelic_cli.training.config; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'jax', 'torch')))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
