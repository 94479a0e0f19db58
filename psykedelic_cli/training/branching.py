"""One first stage for runs that differ only in their mode.

The mode acts first at the pruning that ends stage 1, so runs alike in everything else
(seed, data, model, L1 penalty, optimizer, compared modes …) train bit-identical first
stages. ``flow.train_group`` trains that stage once, keeps a ``FirstStage`` (weights,
optimizer state, the results recorded so far) and continues once per mode from it: each
continuation starts from exactly the state the run would have reached alone, so its
learning curve and final row are those of the run trained alone (on a deterministic
backend: TensorFlow with a seed).

Everything here goes through Keras (``model.get_weights``, ``optimizer.variables``,
``keras.ops``), so it is the same on every backend.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

from psykedelic_cli.training.config import TrainConfig


@dataclass
class FirstStage:
    """What a run holds at the end of its first stage, before its mode prunes."""

    weights: list
    """``model.get_weights()``: every weight, masks and batch-norm statistics included."""
    optimizer: list
    """The values of ``model.optimizer.variables`` (iterations, moments …)."""
    epoch: int
    """Epochs trained."""
    train_data: object
    """A copy of the training pipeline: where it is in its sequence of epochs (its order, its
    augmentation) is its own affair, and how often ``fit`` moves it on is Keras's."""
    results: dict
    """A deep copy of the run's results so far (learning curve, analysis, comparison, history)."""
    timings: dict


def first_stage_key(config: TrainConfig) -> TrainConfig:
    """What decides a run's first stage: everything but the mode."""
    return dataclasses.replace(config, mode=None)


def first_stage_groups(configs: list[TrainConfig]) -> list[list[TrainConfig]]:
    """``configs`` in groups that share a first stage (alike but for the mode, each with
    ``share_first_stage``), each group in the order of its first member; a config without
    ``share_first_stage`` is a group of its own."""
    groups: list[list[TrainConfig]] = []
    for config in configs:
        key = first_stage_key(config) if config.share_first_stage else None
        group = next((g for g in groups if key is not None and first_stage_key(g[0]) == key), None)
        if group is None:
            groups.append([config])
        else:
            group.append(config)
    return groups


def shared_first_stage(run_ids: list[str], run_id: str) -> dict:
    """The ``first_stage`` result of ``run_id`` in a group ``run_ids`` (the first trained the stage)."""
    return {"trained_by": run_ids[0], "shared_with": [other for other in run_ids if other != run_id]}


def snapshot(staged) -> FirstStage:
    """The state of ``staged`` (a ``flow.StagedRun`` after ``first_stage``)."""
    import keras  # here: grouping runs (``first_stage_groups``) needs no backend

    model = staged.model
    return FirstStage(
        weights=model.get_weights(),
        optimizer=[keras.ops.convert_to_numpy(variable) for variable in model.optimizer.variables],
        epoch=staged.epoch,
        train_data=copy.copy(staged.train_data),
        results=copy.deepcopy(staged.recorder.results),
        timings=dict(staged.timer.seconds),
    )


def restore(model, state: FirstStage) -> None:
    """Put the weights and the optimizer state of ``state`` back into ``model``."""
    model.set_weights(state.weights)
    variables = model.optimizer.variables
    if len(variables) != len(state.optimizer):
        raise RuntimeError(f"the optimizer has {len(variables)} variables, the snapshot {len(state.optimizer)}")
    for variable, value in zip(variables, state.optimizer):
        variable.assign(value)


def branch(trunk, state: FirstStage, config: TrainConfig, recorder, first_stage: dict):
    """A ``flow.StagedRun`` of ``config`` on the trunk's model, restored to ``state``, ready for its
    ``continuation``; its run records the shared first stage's results and ``first_stage``."""
    staged = type(trunk)(config, trunk.model, trunk.dataset, recorder, progress=trunk.progress, say=trunk.say)
    restore(trunk.model, state)
    staged.start(state.epoch)
    staged.train_data = copy.copy(state.train_data)  # a copy each: a branch's epochs must not move the next one's
    results = copy.deepcopy(state.results)
    staged.learning_curve.curve = results.get("learning_curve", {})
    staged.history = results.get("history", [])
    staged.per_layer_history = results.get("per_layer_history", [])
    staged.timer.seconds = dict(state.timings)
    recorder.put(**{**results, "first_stage": first_stage})
    return staged
