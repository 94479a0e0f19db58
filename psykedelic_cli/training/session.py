"""What ``psyk train`` and ``psyk record`` do around the flow: data, store, progress, summary tables."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from psykedelic_cli.errors import PsykError
from psykedelic_cli.store import Store, new_run_document
from psykedelic_cli.training.config import RecordConfig, TrainConfig


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[metrics]}"),
        console=console,
        transient=True,  # the finished run prints its table; an error stays one line
        disable=not console.is_terminal,  # no bars in logs and pipes (rich would still end with a blank line)
    )


def _load(config: TrainConfig | RecordConfig):
    from psykedelic_cli.data import load_dataset

    return load_dataset(config.dataset, data_dir=config.data_dir)  # one fixed split for every seed


def train_all(configs: list[TrainConfig], store_file: Path, *, err_console: Console,
              on_finished: Callable[[dict], None] | None = None) -> list[dict]:
    """Run every config (one store run each), with progress on ``err_console``: runs that differ
    only in their mode share one first stage (``branching.first_stage_groups``), the groups one
    after another.

    ``on_finished(run)`` is called with each finished run document.
    """
    from psykedelic_cli.training.branching import first_stage_groups
    from psykedelic_cli.training.flow import train_group

    store = Store(store_file)
    datasets: dict = {}
    finished = []
    for group in first_stage_groups(configs):
        key = (group[0].dataset, str(group[0].data_dir))
        if key not in datasets:
            datasets[key] = _load(group[0])
        if len(configs) > 1:
            first = len(finished) + 1
            numbers = f"run {first}" if len(group) == 1 else f"runs {first}-{first + len(group) - 1}"
            shared = ", one shared first stage" if len(group) > 1 else ""
            err_console.rule(f"{numbers} of {len(configs)}{shared}")
        with _progress(err_console) as progress:
            finished += train_group(group, store, datasets[key], progress=progress, on_finished=on_finished,
                                    on_status=lambda message: progress.console.log(message))
    return finished


def _shapes(model, side: str) -> list[tuple]:
    """The shapes of the model's ``inputs`` or ``outputs`` (batch dimension included)."""
    import keras

    try:
        tensors = getattr(model, side)
        return [tuple(tensor.shape) for tensor in keras.tree.flatten(tensors)]
    except (AttributeError, ValueError):
        try:
            shape = getattr(model, f"{side[:-1]}_shape")
        except (AttributeError, ValueError):
            raise PsykError(
                f"model {model.name!r} has no known {side[:-1]} shape; psyk record needs a built image classifier"
            ) from None
        return [tuple(shape)]


def check_model_for_dataset(model, dataset, model_file: Path) -> None:
    """PsykError unless ``model`` is a built, single-input image classifier of ``dataset``'s images and classes.

    An input dimension of ``None`` matches any size; the output must be one score per class,
    shape ``(batch, n_classes)``.
    """
    from psykedelic_cli.models.surgery import conv_layer_paths

    conv_layer_paths(model)  # an unbuilt model: the one-line error psyk prune gives
    inputs = _shapes(model, "inputs")
    if len(inputs) != 1:
        raise PsykError(f"psyk record needs a single-input image classifier; model {model_file} has {len(inputs)} "
                        f"inputs ({', '.join(str(shape[1:]) for shape in inputs)})")
    expected, images = inputs[0][1:], tuple(dataset.input_shape)
    if len(expected) != len(images) or any(want not in (None, have) for want, have in zip(expected, images)):
        raise PsykError(f"model {model_file} expects inputs of shape {expected} (None: any size), "
                        f"but {dataset.name} images are {images}")
    outputs = _shapes(model, "outputs")
    if len(outputs) != 1:
        raise PsykError(f"psyk record needs a classifier with one output; model {model_file} has {len(outputs)}")
    scores, classes = outputs[0][1:], dataset.n_classes
    if len(scores) != 1:
        raise PsykError(f"model {model_file} outputs shape {scores} per image, but psyk record needs one score per "
                        f"class: ({classes},) for {dataset.name}")
    if scores[0] != classes:
        raise PsykError(f"model {model_file} outputs {scores[0]} classes, but {dataset.name} has {classes}")


def check_modes_apply(model, config: RecordConfig) -> dict:
    """PsykError if a compared mode cannot run on ``model`` (NaN or infinite weights, no layer the mode
    applies to); computes each mode's masks without applying them. Returns the kernel statistics
    (``layer_statistics``), for the comparison to reuse."""
    from psykedelic_cli.models.surgery import compute_masks, layer_statistics

    statistics = layer_statistics(model)
    for mode in config.compare:
        compute_masks(model, mode, threshold=config.threshold, contribution_threshold=config.contribution_threshold,
                      rate=config.rate, seed=config.seed, statistics=statistics)
    return statistics


def record_model(model_file: Path, config: RecordConfig, store_file: Path, *, err_console: Console) -> dict:
    """Kernel analysis and comparison of a trained ``.keras`` model, recorded as a completed run.

    Everything that can be refused from the model and the dataset alone (an unbuilt model,
    inputs or outputs that do not fit the dataset, NaN weights, a mode that cannot apply)
    is refused before the store is touched, and so is the kernel analysis computed.
    """
    from psykedelic_cli.backends.determinism import seed_everything
    from psykedelic_cli.errors import run_outcome
    from psykedelic_cli.models.identity import model_identity
    from psykedelic_cli.models.surgery import load_model
    from psykedelic_cli.pruning.analysis import kernel_analysis
    from psykedelic_cli.training.comparison import Evaluator
    from psykedelic_cli.training.flow import compare_configured_modes, conv_kernels, finish_or_keep
    from psykedelic_cli.training.recorder import PhaseTimer

    seed_everything(config.seed)
    model = load_model(model_file)
    dataset = _load(config)
    check_model_for_dataset(model, dataset, model_file)
    statistics = check_modes_apply(model, config)
    timer = PhaseTimer()
    with timer("kernel_analysis"):
        results = kernel_analysis(conv_kernels(model), config.threshold)
    store = Store(store_file)
    document = new_run_document(config.store_config(model.name, model_file, model_identity(model)), source="record")
    run_id = store.add_run(document)
    evaluate = Evaluator(dataset.features("test"), dataset.y_test, batch_size=config.eval_batch_size)
    try:
        with _progress(err_console) as progress, timer("comparison"):
            task = progress.add_task("comparing modes", total=len(config.compare), metrics="")

            def on_mode(mode: str) -> None:
                progress.update(task, advance=1, metrics=mode)

            results.update(compare_configured_modes(model, evaluate, config, on_mode, statistics))
        results["timings"] = timer.seconds
    except BaseException as exc:
        status, error = run_outcome(exc)
        finish_or_keep(lambda: store.update_run(run_id, status=status, error=error, results=results),
                       {**document, "status": status, "error": error, "results": results}, Path.cwd())
        raise
    finish_or_keep(lambda: store.update_run(run_id, status="completed", results=results),
                   {**document, "status": "completed", "results": results}, Path.cwd())
    return store.get_run(run_id)
