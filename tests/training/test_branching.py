"""One first stage for runs that differ only in --mode: each branch equals the run trained alone, exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from psykedelic_cli.cli.app import app
from psykedelic_cli.store import Store
from psykedelic_cli.training.branching import first_stage_groups
from psykedelic_cli.training.config import TrainConfig

# Three stages: the branch prunes twice and fine-tunes, so all of the continuation is compared.
COMMON = ["--depth", "8", "--epochs", "6", "--steps", "3", "--batch-size", "64", "--patience", "1",
          "--threshold", "0.05", "--compare", "weight", "--history-interval", "1", "--seed", "3"]


def train(store: Path, tmp_path: Path, *args: str) -> dict:
    result = CliRunner().invoke(app, ["--store", str(store), "train", *COMMON, "--out-dir", str(tmp_path), *args])
    assert result.exit_code == 0, result.output
    return {run["config"]["mode"]: run for run in Store(store).runs()}


@pytest.fixture(scope="module")
def branched(tmp_path_factory):
    folder = tmp_path_factory.mktemp("branched")
    return train(folder / "store.json", folder, "--mode", "weight", "--mode", "det", "--mode", "random_kernels")


def test_a_branch_equals_the_run_trained_alone(branched, tmp_path):
    # det is the second branch: the first stage, then the weight run's whole continuation, came before it.
    (alone,) = train(tmp_path / "store.json", tmp_path, "--mode", "det").values()
    branch = branched["det"]
    assert branch["status"] == alone["status"] == "completed"
    for kind in ("learning_curve", "final", "pruning_stages", "pruning_per_layer_final", "performance",
                 "pruning_per_layer", "eig_stats", "set_analysis", "pruning_per_threshold", "history"):
        assert branch["results"][kind] == alone["results"][kind], kind
    assert len(branch["results"]["learning_curve"]["epoch"]) > 3  # it trained on after the shared stage
    assert "first_stage" not in alone["results"]


def test_each_branch_records_the_runs_it_shares_its_first_stage_with(branched):
    ids = {mode: run["id"] for mode, run in branched.items()}
    for mode, run in branched.items():
        assert run["config"]["share_first_stage"] is True
        assert run["results"]["first_stage"] == {
            "trained_by": ids["weight"], "shared_with": [ids[m] for m in ("weight", "det", "random_kernels")
                                                         if m != mode]}
    # The modes prune differently from the same first stage.
    finals = {mode: run["results"]["final"]["alive_kernels"] for mode, run in branched.items()}
    assert len(set(finals.values())) == 3


def test_runs_share_a_first_stage_only_when_alike_but_for_the_mode():
    base = TrainConfig(depth=8, seed=0)
    configs = [base.replace(mode="det"), base.replace(mode="weight", seed=1), base.replace(mode="weight"),
               base.replace(mode="det", l1_penalty=0.0), base.replace(mode=None, l1_penalty=0.0),
               base.replace(mode="det", share_first_stage=False), base.replace(mode="weight", share_first_stage=False)]
    groups = [[(c.mode, c.seed, c.l1_penalty, c.share_first_stage) for c in group]
              for group in first_stage_groups(configs)]
    assert groups == [
        [("det", 0, 5e-5, True), ("weight", 0, 5e-5, True)],
        [("weight", 1, 5e-5, True)],
        [("det", 0, 0.0, True), (None, 0, 0.0, True)],  # the uncompressed baseline branches too
        [("det", 0, 5e-5, False)],
        [("weight", 0, 5e-5, False)],
    ]
