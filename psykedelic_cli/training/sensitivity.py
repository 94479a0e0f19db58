"""Layer sensitivity: each Conv2D pruned alone over a grid, the rest of the model intact.

For one mode and a grid of its parameter (t for threshold modes, c for contribution
modes, r for the sorted ones), every Conv2D layer is pruned by itself at every grid
point, the test accuracy is measured with every other layer as it was, and the layer
is restored bit for bit. The result (``results.sensitivity`` of a run,
``psykedelic_cli.store.schema``) is what ``psyk report sensitivity`` ranks layers by.

Cost: at most one evaluation per (layer, grid point), and fewer: a grid point that
kills no kernel of the layer, or exactly the kernels an earlier point of that layer
killed, reuses the accuracy already measured (the weights are the same). The kernel
statistics of a layer are computed once and serve every grid point.

This module imports no Keras backend at import time (the config validates grids with it);
the model work imports ``psykedelic_cli.models.surgery`` when it runs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from psykedelic_cli.errors import PsykError
from psykedelic_cli.pruning.modes import (
    DEFAULT_CONTRIBUTION_THRESHOLD,
    DEFAULT_RATE,
    DEFAULT_THRESHOLD,
    get_mode,
)
from psykedelic_cli.training.comparison import performance_row

GRID_PARAMETERS = {
    "kernel": "threshold",
    "contribution": "contribution_threshold",
    "sorted_kernels": "rate",
    "sorted_neurons": "rate",
}
"""The pruning parameter a mode's scope varies over its grid."""

DEFAULT_GRIDS = {
    "threshold": (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.2, 0.3, 0.5),
    "contribution_threshold": (1e-3, 3e-3, 1e-2, 2e-2, 3e-2, 5e-2, 7e-2, 0.1),
    "rate": (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8),
}
"""Eight points per parameter: from hardly any kernel to most of a layer's (He-normal 3×3 kernels
of 16 to 64 channels have mean |w| ≈ 0.05–0.1 and a neuron share of 1/C_in)."""

_FLAGS = {"threshold": "--threshold", "contribution_threshold": "--threshold", "rate": "--rate"}
_FAMILIES = {
    "threshold": "a threshold mode: give its grid with --threshold (values of t)",
    "contribution_threshold": "a contribution mode: give its grid with --threshold (values of c)",
    "rate": "a sorted mode: give its grid with --rate (values of r)",
}
_FLAG_USES = {
    "--threshold": "the threshold modes (t: det, …, weight) and the contribution modes (c: …_contrib)",
    "--rate": "the sorted modes (…_sorted_kernels, …_sorted_neurons, random_kernels, random_neurons)",
}


def grid_parameter(mode: str) -> str:
    """``threshold``, ``contribution_threshold`` or ``rate``: what ``mode``'s grid varies."""
    return GRID_PARAMETERS[get_mode(mode).scope]


def sensitivity_grid(mode: str, thresholds: Sequence[float] = (), rates: Sequence[float] = ()) -> tuple[str, tuple]:
    """``(parameter, grid)`` of ``mode``: the values given for its kind of grid, sorted and without
    repeats, or the default grid of its scope (``DEFAULT_GRIDS``) when none is given.

    ``--threshold`` values are t for threshold modes and c for contribution modes, ``--rate``
    values r for the sorted modes. PsykError (one line naming what is allowed) for values of
    the other kind, or values out of range (t, c: finite and > 0; r in [0, 1]).
    """
    parameter = grid_parameter(mode)
    wanted = _FLAGS[parameter]
    given = {"--threshold": tuple(thresholds), "--rate": tuple(rates)}
    for flag, values in given.items():
        if values and flag != wanted:
            raise PsykError(
                f"{flag} does not apply to {mode}, {_FAMILIES[parameter]}; {flag} is for {_FLAG_USES[flag]}"
            )
    values = given[wanted]
    for value in values:
        ok = math.isfinite(value) and (0 <= value <= 1 if parameter == "rate" else value > 0)
        if not ok:
            allowed = "a number in [0, 1]" if parameter == "rate" else "a finite number > 0"
            raise PsykError(f"{wanted} {value!r} is not allowed for {mode}: each value must be {allowed}")
    return parameter, tuple(sorted(set(map(float, values)))) if values else DEFAULT_GRIDS[parameter]


def _parameters(parameter: str, value: float) -> dict:
    """The three pruning parameters with ``parameter`` set to ``value`` (the others at their defaults,
    which the mode does not read)."""
    defaults = {"threshold": DEFAULT_THRESHOLD, "contribution_threshold": DEFAULT_CONTRIBUTION_THRESHOLD,
                "rate": DEFAULT_RATE}
    return {**defaults, parameter: float(value)}


def check_sensitivity_applies(model, mode: str, parameter: str, grid: Sequence[float], seed: int | None = None):
    """PsykError when ``mode`` cannot prune ``model`` (NaN or infinite weights in any Conv2D, no
    layer it applies to); returns the kernel statistics (``layer_statistics``) for the run to reuse."""
    from psykedelic_cli.models.surgery import compute_masks, layer_statistics

    statistics = layer_statistics(model)
    compute_masks(model, mode, seed=seed, statistics=statistics, **_parameters(parameter, grid[0]))
    return statistics


def layer_sensitivity(
    model,
    mode: str,
    parameter: str,
    grid: Sequence[float],
    evaluate: Callable[[object], dict],
    *,
    seed: int | None = None,
    statistics: dict | None = None,
    on_point: Callable[[str], None] | None = None,
) -> dict:
    """Every Conv2D pruned alone by ``mode`` at each ``parameter`` value of ``grid``; the model is
    left exactly as it was.

    Returns ``results.sensitivity`` (``psykedelic_cli.store.schema``): the mode, the parameter,
    the grid, the ``baseline`` performance row of the model as given, one entry per Conv2D
    (``layer``, ``kernel_shape``, ``total_kernels``, ``alive_kernels`` before pruning,
    ``skipped``: why the mode leaves it intact, else None, and ``points``: one performance row
    per grid value, of the whole model with only this layer pruned, plus ``layer_alive_kernels``),
    and ``evaluations``, how many were made. Pruning goes on top of the current masks (a dead
    kernel stays dead); random modes draw from ``numpy.random.default_rng(seed)`` anew for each
    layer and grid value, so a layer's random order is the same at every point.
    ``on_point(layer)`` is called after each (layer, grid value). ``statistics``:
    ``layer_statistics`` of the current kernels, computed here when not given.
    """
    from psykedelic_cli.models.surgery import (
        conv_layer_paths,
        effective_kernel,
        get_masks,
        layer_statistics,
        parameter_report,
        set_masks,
        skipped_layers,
        trial_masks,
    )
    from psykedelic_cli.pruning.modes import prune_mask

    spec = get_mode(mode)
    if statistics is None:
        statistics = layer_statistics(model)
    masks = get_masks(model)
    skipped = skipped_layers(model, mode)
    base_report = parameter_report(model)
    base_metrics = evaluate(model)
    evaluations = 1
    base_accuracy = base_metrics["accuracy"]
    layers = []
    for path, layer in conv_layer_paths(model).items():
        kernel = effective_kernel(layer)
        mask = masks[path]
        alive = int(np.count_nonzero(mask))
        entry = {"layer": path, "kernel_shape": list(kernel.shape[:2]), "total_kernels": int(mask.size),
                 "alive_kernels": alive, "skipped": skipped.get(path), "points": []}
        measured = {mask.astype(bool).tobytes(): base_metrics}  # the same kernels dead: the same predictions
        for value in grid:
            if path in skipped:
                if on_point is not None:
                    on_point(path)
                continue
            pruned = prune_mask(spec, kernel, mask, rng=np.random.default_rng(0 if seed is None else seed),
                                stats=statistics[path], layer=path, **_parameters(parameter, value))
            key = pruned.astype(bool).tobytes()
            if key not in measured:
                with trial_masks(model, [path]):
                    set_masks(model, {path: pruned})
                    measured[key] = evaluate(model)
                evaluations += 1
            entry["points"].append(_point(measured[key], base_report, kernel.shape, alive, pruned, base_accuracy))
            if on_point is not None:
                on_point(path)
        layers.append(entry)
    return {
        "mode": mode,
        "parameter": parameter,
        "grid": [float(value) for value in grid],
        "baseline": performance_row(base_metrics, base_report, None),
        "layers": layers,
        "evaluations": evaluations,
    }


def _point(metrics: dict, base: dict, kernel_shape: tuple, alive: int, pruned: np.ndarray,
           base_accuracy: float) -> dict:
    """The performance row of the model with one layer's ``pruned`` mask: its newly dead kernels cost
    kh·kw parameters each (as ``parameter_report`` counts them)."""
    layer_alive = int(np.count_nonzero(pruned))
    died = alive - layer_alive
    active = base["active_params"] - kernel_shape[0] * kernel_shape[1] * died
    total = base["total_params"]
    report = {"active_params": active, "total_params": total,
              "compression_ratio": 1.0 - active / total if total else 0.0,
              "alive_kernels": base["alive_kernels"] - died, "total_kernels": base["total_kernels"]}
    return {**performance_row(metrics, report, base_accuracy), "layer_alive_kernels": layer_alive}


def stage_sensitivity(staged) -> None:
    """``psyk train --sensitivity MODE``: at the end of stage 1, on its weights, every conv layer pruned
    alone by MODE over the default grid of its kind, recorded in the same run (``results.sensitivity``).
    ``staged``: the ``flow.StagedRun``; a progress bar while it runs when the run shows progress."""
    from psykedelic_cli.models.surgery import conv_layer_paths

    mode = staged.config.sensitivity
    parameter, grid = sensitivity_grid(mode)
    staged.say(f"sensitivity of every conv layer to {mode} over {len(grid)} values of {parameter}")
    progress, task = staged.progress, None
    if progress is not None:
        total = len(conv_layer_paths(staged.model)) * len(grid)
        task = progress.add_task(f"sensitivity to {mode}", total=total, metrics="")
    try:
        with staged.timer("sensitivity"):
            result = layer_sensitivity(
                staged.model, mode, parameter, grid, staged.evaluate, seed=staged.config.seed,
                on_point=None if task is None else (lambda layer: progress.update(task, advance=1, metrics=layer)),
            )
    finally:
        if task is not None:
            progress.remove_task(task)
    staged.recorder.put(sensitivity=result)


def record_sensitivity(model_file: Path, config, store_file: Path, *, err_console) -> dict:
    """``psyk sensitivity``: the sensitivity of a trained ``.keras`` model, recorded as a run of source
    ``sensitivity`` (``config``: a ``SensitivityConfig``, validated).

    Everything that can be refused from the model and the dataset alone (an unbuilt model, inputs or
    outputs that do not fit the dataset, NaN weights, a mode that applies to no layer) is refused
    before the store is touched. The run is added as ``running`` and ends ``completed``, ``failed``
    or ``interrupted`` (partial results are not kept: a half-measured grid is no result).
    """
    from psykedelic_cli.errors import run_outcome
    from psykedelic_cli.models.identity import model_identity
    from psykedelic_cli.models.surgery import conv_layer_paths, load_model
    from psykedelic_cli.store import Store, new_run_document
    from psykedelic_cli.training.comparison import Evaluator
    from psykedelic_cli.training.flow import finish_or_keep
    from psykedelic_cli.training.recorder import PhaseTimer
    from psykedelic_cli.training.session import _load, _progress, check_model_for_dataset

    model = load_model(model_file)
    dataset = _load(config)
    check_model_for_dataset(model, dataset, model_file)
    parameter, grid = config.grid
    statistics = check_sensitivity_applies(model, config.mode, parameter, grid, config.seed)
    store = Store(store_file)
    document = new_run_document(config.store_config(model.name, model_file, model_identity(model)),
                                source="sensitivity")
    run_id = store.add_run(document)
    evaluate = Evaluator(dataset.features("test"), dataset.y_test, batch_size=config.eval_batch_size)
    timer = PhaseTimer()
    results: dict = {}
    try:
        with _progress(err_console) as progress, timer("sensitivity"):
            total = len(conv_layer_paths(model)) * len(grid)
            task = progress.add_task(f"sensitivity to {config.mode}", total=total, metrics="")
            results["sensitivity"] = layer_sensitivity(
                model, config.mode, parameter, grid, evaluate, seed=config.seed, statistics=statistics,
                on_point=lambda layer: progress.update(task, advance=1, metrics=layer),
            )
        results["timings"] = timer.seconds
    except BaseException as exc:
        status, error = run_outcome(exc)
        finish_or_keep(lambda: store.update_run(run_id, status=status, error=error),
                       {**document, "status": status, "error": error}, Path.cwd())
        raise
    finish_or_keep(lambda: store.update_run(run_id, status="completed", results=results),
                   {**document, "status": "completed", "results": results}, Path.cwd())
    return store.get_run(run_id)

