"""The staged training flow of SPEC.md, recorded in the store as it happens.

Stages 1..S-1 train with the L1 penalty on conv kernels and end by killing the
kernels the chosen mode finds insignificant; after stage 1, on the same weights,
the kernel analysis and the comparison of modes are recorded. The last stage trains
without L1 and without new pruning, with early stopping on validation accuracy that
restores the best weights.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from psykedelic_cli.backends.determinism import seed_everything
from psykedelic_cli.backends.distribution import distribution_scope
from psykedelic_cli.data.pipeline import EpochOrder
from psykedelic_cli.errors import PsykError, run_outcome
from psykedelic_cli.models.identity import model_identity
from psykedelic_cli.models.resnet import build_micro_resnet
from psykedelic_cli.models.surgery import (
    conv_layer_paths,
    effective_kernel,
    get_masks,
    load_model,
    parameter_report,
    prune_model,
    save_model,
    set_l1_penalty,
    transfer_weights,
)
from psykedelic_cli.pruning.analysis import kernel_analysis
from psykedelic_cli.store import Store, new_run_document
from psykedelic_cli.store.runs import utc_now
from psykedelic_cli.store.schema import BASELINE
from psykedelic_cli.training.callbacks import LearningCurve, PeriodicComparison, RichProgress
from psykedelic_cli.training.comparison import Evaluator, compare_modes, performance_row
from psykedelic_cli.training.config import LOSS, TrainConfig
from psykedelic_cli.training.recorder import PhaseTimer, RunRecorder
from psykedelic_cli.training.schedule import StepSchedule
from psykedelic_cli.training.sensitivity import stage_sensitivity


def step_schedule(config: TrainConfig, dataset) -> StepSchedule:
    """SPEC.md's step schedule of ``config`` (with ``--decay``) over ``dataset``'s training batches."""
    return StepSchedule(config.lr, steps_per_epoch(config, dataset), config.decay)


def make_optimizer(config: TrainConfig, rate: StepSchedule):
    """The configured optimizer on the learning-rate schedule ``rate``."""
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=rate, momentum=config.momentum)
    optimizers = {
        "adam": keras.optimizers.Adam,
        "rmsprop": keras.optimizers.RMSprop,
        "adagrad": keras.optimizers.Adagrad,
    }
    return optimizers[config.optimizer](learning_rate=rate)


def steps_per_epoch(config: TrainConfig, dataset) -> int:
    return int(np.ceil(len(dataset.y_train) / config.batch_size))


def load_initial_weights(model, path: Path) -> None:
    """Initial weights from a ``.keras`` model or a ``.weights.h5`` file of the same architecture.

    A ``.keras`` file is matched layer by layer (``transfer_weights``), so a plain
    pruned model (``psyk prune`` output, no masks) fits our masked ResNet: its all-zero
    kernels become dead masks. PsykError naming what differs otherwise.
    """
    prefix = f"--init {path}: cannot use these weights for {model.name}"
    if str(path).endswith(".keras"):
        source = load_model(path)
        try:
            transfer_weights(source, model, source_label="the file", target_label="the model")
        except PsykError as exc:
            raise PsykError(f"{prefix}: {exc}") from exc
        return
    try:
        model.load_weights(path)
    except (ValueError, OSError) as exc:
        raise PsykError(f"{prefix}: {exc}".splitlines()[0]) from exc


def conv_kernels(model) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(layer path, effective kernel, mask)`` of every Conv2D, the input of the kernel analysis."""
    masks = get_masks(model)
    return [(path, effective_kernel(layer), masks[path]) for path, layer in conv_layer_paths(model).items()]


def compare_configured_modes(model, evaluate, config, on_mode=None, statistics=None) -> dict:
    """``compare_modes`` with the modes and pruning parameters of ``config``."""
    return compare_modes(
        model,
        config.compare,
        evaluate,
        threshold=config.threshold,
        contribution_threshold=config.contribution_threshold,
        rate=config.rate,
        seed=config.seed,
        on_mode=on_mode,
        statistics=statistics,
    )


def analyse_and_compare(model, evaluate, config, timer: PhaseTimer, on_mode=None) -> dict:
    """The kernel analysis and the comparison of ``config.compare`` on the current weights."""
    with timer("kernel_analysis"):
        results = kernel_analysis(conv_kernels(model), config.threshold)
    with timer("comparison"):
        results.update(compare_configured_modes(model, evaluate, config, on_mode))
    return results


class StagedRun:
    """One run of the staged flow on a built, compiled model."""

    def __init__(self, config: TrainConfig, model, dataset, recorder: RunRecorder, *, progress=None, say=None):
        self.config = config
        self.model = model
        self.dataset = dataset
        self.recorder = recorder
        self.progress = progress
        self.say = say or (lambda message: None)
        self.timer = PhaseTimer()
        self.evaluate = Evaluator(dataset.features("test"), dataset.y_test, batch_size=max(256, config.batch_size))
        self.history: list = []
        self.per_layer_history: list = []
        self.pruning_stages: list = []

    def compare(self) -> dict:
        return compare_configured_modes(self.model, self.evaluate, self.config)

    def record_history(self, epoch: int, result: dict, seconds: float) -> None:
        self.timer.add("history", seconds)
        self.history.append({"epoch": epoch, "performance": result["performance"]})
        self.per_layer_history.append({"epoch": epoch, "pruning_per_layer": result["pruning_per_layer"]})
        self.recorder.put(history=self.history, per_layer_history=self.per_layer_history)

    def stage_callbacks(self, stage: int, n_epochs: int, learning_curve) -> list:
        config = self.config
        last = stage == config.steps
        callbacks = [EpochOrder(self.train_data), learning_curve]  # the pipeline serves the epoch fit runs
        if self.progress is not None:
            label = f"stage {stage}/{config.steps}" + (" fine-tune" if last else f" L1 {config.l1_penalty:g}")
            callbacks.append(RichProgress(self.progress, label, steps_per_epoch(config, self.dataset), n_epochs))
        if stage == 1 and config.history_interval:
            callbacks.append(PeriodicComparison(config.history_interval, self.compare, self.record_history))
        if last:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor="val_accuracy", mode="max", patience=config.patience, restore_best_weights=True))
        return callbacks

    def prune(self, stage: int, epoch: int) -> None:
        config = self.config
        report = prune_model(self.model, config.mode, threshold=config.threshold,
                             contribution_threshold=config.contribution_threshold, rate=config.rate,
                             seed=None if config.seed is None else config.seed + stage)
        self.pruning_stages.append({"stage": stage, "epoch": epoch, **_totals(report)})
        self.recorder.put(pruning_stages=self.pruning_stages)
        self.say(f"stage {stage}: {config.mode} leaves {report['alive_kernels']:,} of "
                 f"{report['total_kernels']:,} kernels alive")

    def run(self) -> None:
        self.first_stage()
        self.continuation()

    def start(self, epochs_done: int = 0) -> None:
        """The pipelines, the schedule and the learning curve, ``epochs_done`` epochs into the run
        (a branch then takes the training pipeline of its shared first stage: ``branching.branch``)."""
        config = self.config
        self.train_data = self.dataset.train_pipeline(config.batch_size, seed=config.seed or 0)
        self.val_data = self.dataset.eval_pipeline("val", config.batch_size)
        self.learning_curve = LearningCurve(
            {}, on_update=lambda curve: self.recorder.put(learning_curve=curve, lazy=True),
            schedule=step_schedule(config, self.dataset))
        self.epoch = epochs_done

    def fit_stage(self, stage: int) -> None:
        config = self.config
        n_epochs = config.stage_epochs[stage - 1]
        set_l1_penalty(self.model, 0.0 if stage == config.steps else config.l1_penalty)
        self.learning_curve.stage = stage
        with self.timer("training"):
            self.model.fit(self.train_data, validation_data=self.val_data, initial_epoch=self.epoch,
                           epochs=self.epoch + n_epochs,
                           callbacks=self.stage_callbacks(stage, n_epochs, self.learning_curve),
                           shuffle=False, verbose=0)  # the pipeline shuffles, seeded
        self.epoch += n_epochs

    def first_stage(self) -> None:
        """Stage 1 and, on its weights, the kernel analysis and the comparison: everything before the
        mode acts, so runs that differ only in their mode share it (``branching``)."""
        self.start()
        self.fit_stage(1)
        self.say("kernel analysis and comparison of modes")
        self.recorder.put(**analyse_and_compare(self.model, self.evaluate, self.config, self.timer))
        if self.config.sensitivity is not None:
            stage_sensitivity(self)

    def continuation(self) -> None:
        """What follows the first stage: the mode's pruning at the end of every stage but the last,
        the last stage (unless ``stop_after_pruning``), then the final row."""
        config = self.config
        for stage in range(1, config.steps):
            if stage > 1:
                self.fit_stage(stage)
            if config.mode is not None:
                self.prune(stage, self.epoch)
        if not config.stop_after_pruning:
            self.fit_stage(config.steps)
        baseline = self.recorder.results.get("performance", {}).get(BASELINE, {}).get("accuracy")
        report = parameter_report(self.model)
        final = performance_row(self.evaluate(self.model), report, baseline)
        self.recorder.put(final={"mode": config.mode, **final}, pruning_per_layer_final=report["layers"])


def build_model(config: TrainConfig, dataset):
    """The MicroResNet of ``config`` (``--init`` weights loaded), compiled, in the ``--distribute`` scope."""
    with distribution_scope(config.distribute):
        model = build_micro_resnet(
            dataset.input_shape,
            dataset.n_classes,
            config.depth,
            residual=config.residual,
            l1_penalty=config.l1_penalty,
            seed=config.seed,
        )
        if config.init is not None:
            load_initial_weights(model, config.init)
        model.compile(optimizer=make_optimizer(config, step_schedule(config, dataset)), loss=LOSS,
                      metrics=["accuracy"], **({"jit_compile": True} if config.torch_compile else {}))
    return model


def train_run(
    config: TrainConfig,
    store: Store,
    dataset,
    *,
    progress=None,
    on_status: Callable[[str], None] | None = None,
) -> dict:
    """Train, prune, analyse and record one run; return its finished run document (``train_group``
    of one run)."""
    return train_group([config], store, dataset, progress=progress, on_status=on_status)[0]


def train_group(
    configs: list[TrainConfig],
    store: Store,
    dataset,
    *,
    progress=None,
    on_status: Callable[[str], None] | None = None,
    on_finished: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Train, prune, analyse and record runs that differ only in their mode, with one first stage
    (``branching.first_stage_groups`` makes such groups); return their finished run documents.

    The first stage is trained once (on the first config), kept (weights and optimizer state) and
    continued once per config from that state, so each run equals the run trained alone. Every run
    is added to the store as ``running`` before training starts, with a ``first_stage`` result naming
    the runs it shares the stage with (when it shares it), and ends ``completed``, ``failed`` (with
    the error) or ``interrupted`` (Ctrl-C), partial results kept; ``on_finished(run)`` is called as
    each one ends completed. A failed first stage fails every run; a failed continuation fails its
    run only, the others go on, and the first error is raised at the end; Ctrl-C interrupts the run
    in progress and the ones not started. Should the store refuse a run's last write (a full disk, a
    lost mount), the finished run is kept in a one-run store file of its own (``keep_elsewhere``) and
    the PsykError names it.
    """
    from psykedelic_cli.training.branching import branch, shared_first_stage, snapshot

    first = configs[0]
    seed_everything(first.seed)
    model = build_model(first, dataset)
    identity = model_identity(model)
    documents = [new_run_document(config.store_config(model.name, identity), source="train") for config in configs]
    run_ids = store.add_runs(documents)
    trunk = StagedRun(first, model, dataset, RunRecorder(store, run_ids[0]), progress=progress, say=on_status)
    sharing = len(configs) > 1
    trunk.say(f"run {run_ids[0]}: {model.name} on {dataset.name}, mode {first.mode}, "
              f"L1 {first.l1_penalty:g}, seed {first.seed}")
    if sharing:
        trunk.say(f"its first stage is shared with {len(configs) - 1} run(s) of mode(s) "
                  + ", ".join(str(config.mode) for config in configs[1:]))
        trunk.recorder.put(first_stage=shared_first_stage(run_ids, run_ids[0]))
    try:
        trunk.first_stage()
    except BaseException as exc:
        _end_all(trunk, documents, configs, exc)
        raise
    state = snapshot(trunk) if sharing else None
    finished, failure = [], None
    for index, (config, document) in enumerate(zip(configs, documents)):
        staged = trunk
        try:
            if index:
                staged = branch(trunk, state, config, RunRecorder(store, document["id"]),
                                shared_first_stage(run_ids, document["id"]))
                staged.say(f"run {document['id']}: mode {config.mode}, from the shared first stage")
            staged.continuation()
            staged.recorder.results["timings"] = staged.timer.seconds
            # Files come after training: one that cannot be written is a warning on a completed run.
            warnings = write_artifacts(config, model, {**document, "results": staged.recorder.results})
        except BaseException as exc:
            staged.recorder.results["timings"] = staged.timer.seconds
            status, error = run_outcome(exc)
            _finish(staged.recorder, document, config, status, error=error)
            if status == "interrupted":
                staged.say(f"run {document['id']} interrupted; its partial results are kept in the store")
                _end_all(trunk, documents[index + 1:], configs[index + 1:], exc, state)
                raise
            if not isinstance(exc, Exception):
                raise
            failure = failure or exc
            continue
        _finish(staged.recorder, document, config, "completed", warnings=warnings)
        for warning in warnings:
            staged.say(f"warning: {warning}")
        run = store.get_run(document["id"])
        if on_finished is not None:
            on_finished(run)
        finished.append(run)
    if failure is not None:
        raise failure
    return finished


def _end_all(trunk: StagedRun, documents: list[dict], configs: list[TrainConfig], exc: BaseException,
             state=None) -> None:
    """End the runs of ``documents`` (not continued: the first stage failed or was interrupted, or a
    run before them was) as ``exc`` ends a run, each with the first stage's results."""
    from psykedelic_cli.training.branching import shared_first_stage

    status, error = run_outcome(exc)
    results = trunk.recorder.results if state is None else state.results
    shared = results.get("first_stage")  # the trunk's: it trained the stage, the others share it
    for document, config in zip(documents, configs):
        recorder = trunk.recorder if document["id"] == trunk.recorder.run_id else RunRecorder(trunk.recorder.store,
                                                                                                document["id"])
        recorder.results = {**results, "timings": dict(trunk.timer.seconds if state is None else state.timings)}
        if shared:
            recorder.results["first_stage"] = shared_first_stage([shared["trained_by"], *shared["shared_with"]],
                                                                 document["id"])
        _finish(recorder, document, config, status, error=error)


def _finish(recorder: RunRecorder, document: dict, config: TrainConfig, status: str, **fields) -> None:
    finish_or_keep(lambda: recorder.finish(status, **fields),
                   {**document, **fields, "status": status, "results": recorder.results}, Path(config.out_dir or "."))


def finish_or_keep(write: Callable[[], object], finished: dict, folder: Path) -> None:
    """``write()``, a run's last store write; when the store refuses it (PsykError: a full disk,
    a lost mount), the ``finished`` run document is kept in a one-run store in ``folder`` (or the
    temporary folder) and a PsykError (exit 1) names that file: a finished run is never lost."""
    try:
        write()
    except PsykError as exc:
        stamp = utc_now()  # newer than the store's copy, so `psyk merge` replaces it
        kept = keep_elsewhere({**finished, "updated_at": stamp, "finished_at": stamp},
                              [folder, Path(tempfile.gettempdir())])
        status = finished["status"]
        raise PsykError(f"{exc}; the {status} run is kept in {kept} (`psyk merge {kept}` adds it to a store)",
                        exit_code=1) from exc


def keep_elsewhere(doc: dict, folders: list[Path]) -> Path:
    """Write ``doc`` as a one-run store ``psyk-run-<id>.json`` in the first folder that takes it;
    returns its path (PsykError when none does)."""
    for folder in folders:
        path = folder / f"psyk-run-{doc['id']}.json"
        try:
            Store(path).add_run(dict(doc))
            return path
        except (PsykError, OSError):
            continue
    raise PsykError(f"run {doc['id']} could not be written anywhere ({', '.join(map(str, folders))})")


def _totals(report: dict) -> dict:
    return {
        key: report[key]
        for key in ("active_params", "total_params", "compression_ratio", "alive_kernels", "total_kernels")
    }


def write_artifacts(config: TrainConfig, model, run: dict) -> list[str]:
    """Learning-curve and per-layer charts (and the model with --save-model) in out_dir/<run id>/.

    Each file is written whole or not at all. Returns one warning per file that could not
    be written (the run is trained and stored whatever happens to its files).
    """
    if config.out_dir is None:
        return []
    from psykedelic_cli.outputs import os_error_text
    from psykedelic_cli.training.charts import learning_curve_chart, per_layer_chart

    folder = Path(config.out_dir) / run["id"]
    files = {
        "learning_curve.png": lambda path: learning_curve_chart(run, path),
        "per_layer.png": lambda path: per_layer_chart(run, path),
    }
    if config.save_model:
        files["model.keras"] = lambda path: save_model(model, path, keep_masks=True)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return [f"{folder} could not be created ({os_error_text(exc)}): no chart or model file written"]
    warnings = []
    for name, write in files.items():
        try:
            write(folder / name)  # each writer writes its file whole or not at all
        except Exception as exc:  # a file must never cost the trained run
            reason = os_error_text(exc) if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}"
            warnings.append(f"{folder / name} was not written ({reason.splitlines()[0]})")
    return warnings
