"""What ``psyk train`` and ``psyk record`` do around the flow: data, store, progress, summary tables."""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from psykedelic_cli.store import Store, new_run_document
from psykedelic_cli.store.schema import BASELINE
from psykedelic_cli.training.config import TrainConfig


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[metrics]}"),
        console=console,
        transient=False,
    )


def _load(config: TrainConfig):
    from psykedelic_cli.data import load_dataset

    return load_dataset(config.dataset, data_dir=config.data_dir, seed=0)


def train_all(configs: list[TrainConfig], store_file: Path, *, console: Console, err_console: Console) -> list[dict]:
    """Run every config one after another (one store run each); print a table per run and a summary."""
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
        console.print(run_table(run))
        finished.append(run)
    if len(finished) > 1:
        console.print(summary_table(finished))
    console.print(f"[dim]{len(finished)} run(s) recorded in {store_file}[/dim]")
    return finished


def record_model(model_file: Path, config: TrainConfig, store_file: Path, *, console: Console,
                 err_console: Console) -> dict:
    """Kernel analysis and comparison of a trained ``.keras`` model, recorded as a completed run."""
    from psykedelic_cli.errors import PsykError
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
            f"model {model_file} expects inputs of shape {expected}, but {config.dataset} has {tuple(dataset.input_shape)}"
        )
    store = Store(store_file)
    document = new_run_document(
        {**config.store_config(model.name), "depth": None, "model_file": str(model_file), "epochs": None,
         "l1_penalty": None, "optimizer": None, "lr": None},
        source="record",
    )
    run_id = store.add_run(document)
    timer = PhaseTimer()
    evaluate = Evaluator(dataset.x_test, dataset.y_test, batch_size=config.batch_size)
    try:
        with _progress(err_console) as progress:
            task = progress.add_task("comparing modes", total=len(config.compare), metrics="")

            def on_mode(mode: str) -> None:
                progress.update(task, advance=1, metrics=mode)

            results = analyse_and_compare(model, evaluate, config, timer, on_mode=on_mode)
        results["timings"] = timer.seconds
        store.update_run(run_id, status="completed", results=results)
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        store.update_run(run_id, status=status, error=f"{type(exc).__name__}: {exc}".splitlines()[0])
        raise
    run = store.get_run(run_id)
    console.print(run_table(run))
    return run


def run_table(run: dict) -> Table:
    """Per mode: kernels pruned, active parameters, accuracy and score (the compared modes and the final model)."""
    results = run.get("results", {})
    config = run.get("config", {})
    rows = list(results.get("performance", {}).items())
    if "final" in results:
        rows.append((f"final: {config.get('mode')}", results["final"]))
    total = rows[0][1]["total_params"] if rows else 0
    table = Table(
        title=f"run {run['id']}: {config.get('model')} on {config.get('dataset')} ({total:,} parameters)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("mode", no_wrap=True)
    for column in ("pruned kernels", "active params", "compression", "accuracy", "score"):
        table.add_column(column, justify="right")
    for name, row in rows:
        pruned = None
        if row.get("total_kernels") is not None and row.get("alive_kernels") is not None:
            pruned = row["total_kernels"] - row["alive_kernels"]
        table.add_row(
            "None (unpruned)" if name == BASELINE else name,
            "—" if pruned is None else f"{pruned:,}",
            f"{row['active_params']:,}",
            f"{row['compression_ratio']:.2%}",
            f"{row['accuracy']:.4f}",
            "—" if name == BASELINE else f"{row['score']:.4f}",
        )
    timings = results.get("timings")
    if timings:
        table.caption = "time: " + ", ".join(f"{phase.replace('_', ' ')} {seconds:.1f} s" for phase, seconds in timings.items())
    return table


def summary_table(runs: list[dict]) -> Table:
    table = Table(title="runs", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("run", "mode", "L1", "seed", "status", "accuracy", "compression", "score"):
        table.add_column(column, justify="left" if column in ("run", "mode", "status") else "right")
    for run in runs:
        final = run.get("results", {}).get("final", {})
        config = run["config"]
        table.add_row(
            run["id"], str(config.get("mode")), f"{config.get('l1_penalty'):g}", str(config.get("seed")), run["status"],
            f"{final.get('accuracy', float('nan')):.4f}", f"{final.get('compression_ratio', float('nan')):.2%}",
            f"{final.get('score', float('nan')):.4f}",
        )
    return table
