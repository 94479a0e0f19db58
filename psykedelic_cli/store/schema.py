"""The run document: what one run of ``psyk train`` / ``psyk record`` / a legacy import stores.

This module is the contract between training (which writes runs), the store (which
keeps them) and the reports (which read them). It has no TensorFlow import.

A run document (``SCHEMA_VERSION`` 4) is a JSON object::

    {
      "id": "20261126T011234-3f9c2a",      # unique run id; commands accept any unique prefix
      "schema_version": 4,
      "status": "running" | "completed" | "failed" | "interrupted",
      "error": null | "one-line message",  # set when failed / interrupted
      "warnings": ["one line", ...],      # optional: e.g. an output file that could not be written
      "source": "train" | "record" | "sensitivity" | "legacy",
      "created_at": "2026-11-26T01:12:34+00:00",  # ISO 8601, UTC
      "updated_at": "...", "finished_at": null | "...",
      "heartbeat_at": "...",               # optional: stamped by each write of the running process
      "host": {"hostname", "boot_id", "pid_namespace", "pid", "process_start",
               "platform", "python", "cpu_count"},  # the machine and the process (store/liveness.py)
      "versions": {"psykedelic", "tensorflow", "keras", "numpy", ...},
      "config": {...},                     # CONFIG_FIELDS below; unknown extra keys are kept
      "results": {...}                     # RESULT_KINDS below; each key present once computed
    }

``config`` fields (the filters of every report and of ``list-experiments``) of a trained
run (``psyk train``, and legacy imports, which leave what the original did not record null);
``psykedelic_cli.training.config.TrainConfig`` declares them, and a test holds the two equal:

    model            "MicroResNet32" (thin, depth 6m+2) / "MicroResNet50" (bottleneck)
    architecture     a fingerprint of the model's layer structure (12 hex digits,
                     ``psykedelic_cli.models.identity``): runs with different ones are never
                     averaged; null where unknown (legacy imports, runs of older psyk)
    params           the model's parameter count (masks excluded), or null
    depth            int or null
    dataset          "digits" | "cifar10" | "cifar100" | "tiny-imagenet" | other
    optimizer        "adam" | "sgd" | "rmsprop" | "adagrad"
    loss             "categorical_crossentropy"
    lr, epochs (total over all stages), batch_size, steps, momentum, decay
    init_mode        "default" or the stem of the ``--init`` file
    init             the ``--init`` file as given, or null
    init_digest      12 hex digits of the SHA-256 of that file, or null: runs from different
                     initial weights are never averaged, even when their files share a name
    l1_penalty       float (0.0 when off)
    mode             the pruning mode trained with, or null for an uncompressed baseline
    compare          list of the modes compared after the first stage
    threshold, contribution_threshold, rate
    history_interval int (0 = off)
    residual, stop_after_pruning  bool
    patience         int: early-stopping patience of the last stage
    seed             int or null
    distribute       "none" | "mirrored"
    backend          the Keras backend it ran on: "tensorflow" | "jax" | "torch" (runs from before
                     schema 4, and legacy imports, ran on TensorFlow)
    share_first_stage  bool: runs alike but for the mode train one first stage and branch from it
                     (the results are those of a run trained alone; null for legacy imports)

A ``psyk record`` run trains nothing and stores only what it used (``RECORD_CONFIG_FIELDS``,
declared by ``RecordConfig``): model (the Keras model's name), architecture, params, model_file,
dataset, backend, compare, threshold, contribution_threshold, rate, seed (of the random modes) and
eval_batch_size.

A ``psyk sensitivity`` run (``SENSITIVITY_CONFIG_FIELDS``, declared by ``SensitivityConfig``) stores
model, architecture, params, model_file, dataset, backend, mode (the mode each layer is pruned by),
grid_parameter ("threshold" | "contribution_threshold" | "rate"), grid (its values, ascending),
seed (of the random modes) and eval_batch_size; its only result kinds are ``sensitivity`` and
``timings``.

``results`` kinds. "Performance" of one mode is a *performance row*::

    {"accuracy", "precision", "recall",          # test set; macro precision/recall
     "active_params", "total_params",            # whole model, masks excluded
     "compression_ratio",                        # 1 - active/total
     "score",                                    # (acc / acc_None) * compression_ratio
     "alive_kernels", "total_kernels"}           # may be null for legacy imports

and the *per-layer list* of one mode is ``[{"layer", "active_params", "total_params",
"alive_kernels", "total_kernels"}, ...]`` in model order (Conv2D layers only).

    learning_curve       {"epoch": [...], "loss", "accuracy", "val_loss", "val_accuracy",
                          "lr", "stage": [...]}   (parallel lists, one item per epoch)
    performance          {mode: performance row}, always with the "None" baseline
    pruning_per_layer    {mode: per-layer list}, with "None"
    final                performance row of the trained model at the end, plus "mode"
    eig_stats            {"total_kernels", "total_eigenvalues", "complex_eigenvalues",
                          "complex_ratio",
                          "criteria": {crit: {"pruned", "target_complex", "pruned_complex",
                                              "target_complex_ratio", "pruned_complex_ratio"}}}
                         crit in min_eig, min_eig_real, spectral_radius, spectral_radius_real
    set_analysis         {"criteria": [criteria compared, normally the 8 base criteria],
                          "total_kernels": N or null,
                          "shares": {"det+min_eig": fraction of all kernels, ..., "": fraction}}
                         one key per set of criteria that prune exactly those kernels (names
                         in ``criteria`` order joined with "+"; "" = pruned by none); the
                         shares sum to 1. Only combinations that occur are present.
    pruning_per_threshold {"thresholds": [...], "pruned_ratio": {crit: [fraction per threshold]},
                          "rule": "own" | "raw"}
                         "own": each criterion's own rule (det vs t^n, det_corr vs t^2n);
                         "raw": the original's chart rule (raw |det| vs t), legacy imports only.
    history              [{"epoch": e, "performance": {mode: row}}]   (every history_interval epochs of stage 1)
    per_layer_history    [{"epoch": e, "pruning_per_layer": {mode: list}}]
                         (kept apart from ``history`` because it is most of a run's bytes and
                         the history report does not need it; version 1 had both in ``history``)
    pruning_stages       [{"stage", "epoch", "active_params", "total_params", "compression_ratio",
                           "alive_kernels", "total_kernels"}]: the model after each pruning stage
    pruning_per_layer_final  per-layer list of the trained model at the end
    first_stage          {"trained_by": run id, "shared_with": [run ids]}: present when the run's first
                         stage was trained once for several runs alike but for the mode
                         (``share_first_stage``): the run that trained it and the others that share it
    sensitivity          {"mode", "parameter": "threshold" | "contribution_threshold" | "rate",
                          "grid": [values], "baseline": performance row of the model as it was,
                          "layers": [{"layer", "kernel_shape": [kh, kw], "total_kernels",
                                      "alive_kernels" (before), "skipped": null | why the mode
                                      leaves the layer intact,
                                      "points": [performance row of the whole model with only this
                                                 layer pruned at that grid value, plus
                                                 "layer_alive_kernels"]}],   (model order)
                          "evaluations": how many evaluations were made}
                         (``psyk sensitivity``, or ``psyk train --sensitivity MODE`` at the end of stage 1)
    timings              {"training", "kernel_analysis", "comparison", "history", "sensitivity": seconds}
    legacy               legacy-only extras kept verbatim (e.g. the original's "eig_analysis")

Fractions are stored in [0, 1] everywhere (reports show percentages).
"""

from __future__ import annotations

from psykedelic_cli.pruning.vocabulary import (  # the engine owns its vocabulary
    BASE_CRITERIA,
    BASELINE,
    EIG_CRITERIA,
    PER_THRESHOLD_THRESHOLDS,
)

SCHEMA_VERSION = 4

STATUSES = ("running", "completed", "failed", "interrupted")

CONFIG_FIELDS = (
    "model",
    "architecture",
    "params",
    "depth",
    "dataset",
    "optimizer",
    "loss",
    "lr",
    "epochs",
    "batch_size",
    "steps",
    "momentum",
    "decay",
    "init_mode",
    "l1_penalty",
    "mode",
    "compare",
    "threshold",
    "contribution_threshold",
    "rate",
    "history_interval",
    "residual",
    "seed",
    "init",
    "init_digest",
    "stop_after_pruning",
    "patience",
    "distribute",
    "backend",
    "share_first_stage",
)
"""The config of a trained run (``psyk train``; legacy imports fill what they know)."""

RECORD_CONFIG_FIELDS = (
    "model",
    "architecture",
    "params",
    "model_file",
    "dataset",
    "backend",
    "compare",
    "threshold",
    "contribution_threshold",
    "rate",
    "seed",
    "eval_batch_size",
)
"""The config of a ``psyk record`` run: what it used, no training setting."""

SENSITIVITY_CONFIG_FIELDS = (
    "model",
    "architecture",
    "params",
    "model_file",
    "dataset",
    "backend",
    "mode",
    "grid_parameter",
    "grid",
    "seed",
    "eval_batch_size",
)
"""The config of a ``psyk sensitivity`` run: the model, the mode and its grid."""

RESULT_KINDS = (
    "learning_curve",
    "performance",
    "pruning_per_layer",
    "final",
    "eig_stats",
    "set_analysis",
    "pruning_per_threshold",
    "history",
    "per_layer_history",
    "pruning_stages",
    "pruning_per_layer_final",
    "first_stage",
    "sensitivity",
    "timings",
)

PERFORMANCE_FIELDS = (
    "accuracy",
    "precision",
    "recall",
    "active_params",
    "total_params",
    "compression_ratio",
    "score",
    "alive_kernels",
    "total_kernels",
)

LAYER_FIELDS = ("layer", "active_params", "total_params", "alive_kernels", "total_kernels")


__all__ = [
    "BASELINE",
    "BASE_CRITERIA",
    "CONFIG_FIELDS",
    "EIG_CRITERIA",
    "LAYER_FIELDS",
    "PERFORMANCE_FIELDS",
    "PER_THRESHOLD_THRESHOLDS",
    "RECORD_CONFIG_FIELDS",
    "RESULT_KINDS",
    "SCHEMA_VERSION",
    "SENSITIVITY_CONFIG_FIELDS",
    "STATUSES",
]
