"""What ``psyk train`` and ``psyk record`` do around the flow: data, store, progress, summary tables."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

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
    """Run every config one after another (one store run each), with progress on ``err_console``.

    ``on_finished(run)`` is called with each finished run document.
    """
    from psykedelic_cli.training.flow import train_run

    store = Store(store_file)
    datasets: dict = {}
    finished = []
    for number, config in enumerate(configs, start=1):
        key = (config.dataset, str(config.data_dir))
        if key not in datasets:
            datasets[key] = _load(config)
        if len(configs) > 1:
            err_console.rule(f"run {number} of {len(configs)}")
        with _progress(err_console) as progress:
            run = train_run(config, store, datasets[key], progress=progress,
                            on_status=lambda message: progress.console.log(message))
        if on_finished is not None:
            on_finished(run)
        finished.append(run)
    return finished


def record_model(model_file: Path, config: RecordConfig, store_file: Path, *, err_console: Console) -> dict:
    """Kernel analysis and comparison of a trained ``.keras`` model, recorded as a completed run."""
    from psykedelic_cli.errors import PsykError, run_outcome
    from psykedelic_cli.models.surgery import load_model
    from psykedelic_cli.training.comparison import Evaluator
    from psykedelic_cli.training.flow import analyse_and_compare, seed_everything
    from psykedelic_cli.training.recorder import PhaseTimer

    seed_everything(config.seed)
    model = load_model(model_file)
    dataset = _load(config)
    expected = tuple(model.input_shape[1:])
    if expected != tuple(dataset.input_shape):
        raise PsykError(
            f"model {model_file} expects inputs of shape {expected}, "
            f"but {config.dataset} has {tuple(dataset.input_shape)}"
        )
    store = Store(store_file)
    document = new_run_document(config.store_config(model.name, model_file), source="record")
    run_id = store.add_run(document)
    timer = PhaseTimer()
    evaluate = Evaluator(dataset.x_test, dataset.y_test, batch_size=config.eval_batch_size)
    try:
        with _progress(err_console) as progress:
            task = progress.add_task("comparing modes", total=len(config.compare), metrics="")

            def on_mode(mode: str) -> None:
                progress.update(task, advance=1, metrics=mode)

            results = analyse_and_compare(model, evaluate, config, timer, on_mode=on_mode)
        results["timings"] = timer.seconds
        store.update_run(run_id, status="completed", results=results)
    except BaseException as exc:
        status, error = run_outcome(exc)
        store.update_run(run_id, status=status, error=error)
        raise
    return store.get_run(run_id)
