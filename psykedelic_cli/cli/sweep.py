"""``psyk sweep GRID.toml``: a grid of ``psyk train`` runs, in turn or on Ray; only this process writes the store."""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich import box
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from psykedelic_cli.cli.app import app
from psykedelic_cli.cli.common import console, err_console, start_backend, stop_gracefully_on_termination, store_path
from psykedelic_cli.cli.run_tables import fixed, percent
from psykedelic_cli.errors import PsykError
from psykedelic_cli.outputs import check_output_dir


class Executor(str, enum.Enum):
    local = "local"
    ray = "ray"


def _label(config, axes: list[str]) -> str:
    return " ".join(f"{name.replace('_', '-')}={_value(getattr(config, name))}" for name in axes) or "run"


def _value(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list)):
        return "+".join(map(str, value))
    return str(value)


class SweepDisplay:
    """One rich progress display: runs done / running / failed, and per running run its epoch."""

    def __init__(self, plan, axes: list[str]):
        self.plan = {run.index: run for run in plan.to_run}
        self.axes = axes
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.fields[note]}"), console=err_console, transient=True,
            disable=not err_console.is_terminal,
        )
        self.overall = self.progress.add_task("sweep", total=len(self.plan), note="")
        self.bars: dict[str, int] = {}

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def __call__(self, driver) -> None:
        statuses = [state.doc.get("status") for state in driver.runs.values()]
        done = sum(status in ("completed", "failed", "interrupted") for status in statuses) + len(driver.task_errors)
        failed = sum(status in ("failed", "interrupted") for status in statuses) + len(driver.task_errors)
        running = statuses.count("running")
        self.progress.update(self.overall, completed=done,
                             note=f"{done - failed} completed · {running} running · {failed} failed")
        for run_id, state in driver.runs.items():
            bar = self.bars.get(run_id)
            if state.doc.get("status") == "running":
                config = self.plan[state.index].config
                if bar is None:
                    bar = self.bars[run_id] = self.progress.add_task(
                        f"  {_label(config, self.axes)}", total=config.epochs, note="")
                self.progress.update(bar, completed=state.epochs, note=f"epoch {state.epochs}/{config.epochs}")
            elif bar is not None:
                self.progress.remove_task(bar)
                del self.bars[run_id]


def summary_table(plan, driver, axes: list[str], store) -> Table:
    """One line per run of the grid: the axes' values, what this sweep did with it, and its final row."""
    table = Table(title="sweep", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0))
    for header in ("run", *[a.replace("_", "-") for a in axes], "status", "accuracy", "compression", "score"):
        table.add_column(header, justify="right" if header in ("accuracy", "compression", "score") else "left",
                         overflow="fold", no_wrap=header in ("run", "status"))
    started = {state.index: (run_id, state.doc) for run_id, state in driver.runs.items()}
    for run in plan.runs:
        run_id, doc = started.get(run.index, (run.run_id, None))
        if doc is not None:
            status = doc["status"]
            final = (doc.get("results") or {}).get("final") or {}
        elif run.index in driver.task_errors:
            status, final = f"failed: {driver.task_errors[run.index]}", {}
        elif run.state != "new":
            status, final = f"skipped ({run.state})", store.get_run(run.run_id, kinds=["final"])["results"].get(
                "final") or {}
        else:
            status, final = "not run", {}
        table.add_row(run_id or "—", *[_value(getattr(run.config, a)) for a in axes], status,
                      percent(final.get("accuracy")), percent(final.get("compression_ratio")),
                      fixed(final.get("score")))
    return table


def _plan_line(grid, plan, tasks: list, executor: str) -> str:
    counts = plan.counts()
    stored = ", ".join(f"{counts[state]} {state}" for state in ("completed", "running", "failed", "interrupted")
                       if counts[state])
    again = counts["failed"] + counts["interrupted"] and not plan.retry_failed
    retried = " (--retry-failed trains the failed and interrupted ones again)" if again else ""
    shared = sum(len(task) > 1 for task in tasks)
    sharing = f", {shared} of them sharing a first stage among runs alike but for the mode" if shared else ""
    return (f"{grid.path}: {len(plan.runs)} run(s); in the store: {stored or 'none'}{retried}; "
            f"to train: {len(plan.to_run)} in {len(tasks)} task(s){sharing}, --executor {executor}")


def sweep(
    ctx: typer.Context,
    grid_file: Annotated[Path, typer.Argument(
        help="A TOML grid: psyk train options, lists as axes, a \\[sweep] table.")],
    executor: Annotated[Executor, typer.Option(help="local: in turn in this process; ray: as Ray tasks.")] = (
        Executor.local),
    address: Annotated[Optional[str], typer.Option(
        help="Join this Ray cluster (e.g. auto, ray://head:10001) instead of starting Ray on this machine.")] = None,
    cpus_per_run: Annotated[float, typer.Option(help="CPUs a run reserves on Ray.")] = 1.0,
    gpus_per_run: Annotated[float, typer.Option(help="GPUs a run reserves on Ray (0.25: four runs per GPU).")] = 0.0,
    retry_failed: Annotated[bool, typer.Option(
        help="Train again the runs the store holds as failed or interrupted.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Print the plan, train nothing.")] = False,
) -> None:
    """Train every run of a grid of psyk train options; runs already completed in the store are skipped."""
    from psykedelic_cli.store import Store
    from psykedelic_cli.training.executors import RayOptions, SweepDriver, execute, tasks_of
    from psykedelic_cli.training.sweep import plan_sweep, read_grid

    grid = read_grid(grid_file)
    configs = grid.configs()
    if cpus_per_run <= 0 or gpus_per_run < 0:
        raise PsykError(f"--cpus-per-run must be > 0 and --gpus-per-run ≥ 0 (got {cpus_per_run:g}, {gpus_per_run:g})")
    if executor is not Executor.ray and (address is not None or gpus_per_run):
        raise PsykError("--address and --gpus-per-run are options of --executor ray")
    backends = sorted({str(getattr(config, "backend", None)) for config in configs})
    if executor is Executor.local and len(backends) > 1:
        raise PsykError(f"{grid.path}: --executor local trains on one backend; the grid asks for "
                        f"{', '.join(backends)} (use --executor ray)")
    for out_dir in {config.out_dir for config in configs if config.out_dir is not None}:
        check_output_dir(out_dir, "--out-dir")
    store = Store(store_path(ctx))
    plan = plan_sweep(configs, store, now=datetime.now(timezone.utc), retry_failed=retry_failed)
    tasks = tasks_of(plan.to_run)
    err_console.print(_plan_line(grid, plan, tasks, executor.value), highlight=False)
    axes = [name for name in grid.axes if len(grid.axes[name]) > 1] + [
        name for rule in grid.include for name in rule if len(grid.axes.get(name, ())) <= 1]
    axes = list(dict.fromkeys(axes + (["seed"] if grid.repeat > 1 and "seed" not in axes else [])))
    if dry_run or not tasks:
        console.print(summary_table(plan, SweepDriver(store), axes, store))
        return
    if executor is Executor.local:
        start_backend(getattr(configs[0], "backend", None))
    with stop_gracefully_on_termination(), SweepDisplay(plan, axes) as display:
        driver = SweepDriver(store, on_change=display)
        execute(tasks, driver, executor.value,
                RayOptions(address=address, cpus_per_run=cpus_per_run, gpus_per_run=gpus_per_run))
    console.print(summary_table(plan, driver, axes, store))
    kept = driver.keep_unsaved(Path.cwd())
    if kept:
        raise PsykError(f"the store refused the last writes of {len(kept)} run(s); they are kept in "
                        f"{', '.join(map(str, kept))} (`psyk merge` adds them to a store)", exit_code=1)
    statuses = [state.doc["status"] for state in driver.runs.values()]
    bad = sum(status != "completed" for status in statuses) + len(driver.task_errors)
    if bad:
        raise PsykError(f"{bad} of {len(plan.to_run)} run(s) did not complete (see the table; "
                        f"`psyk sweep {grid.path} --retry-failed` trains them again)", exit_code=1)
    console.print(f"[dim]{len(statuses)} run(s) recorded in {store_path(ctx)}[/dim]")


app.command(
    "sweep",
    epilog="Examples: `psyk sweep grid.toml` · `psyk sweep grid.toml --executor ray --gpus-per-run 0.25` · "
    "`psyk sweep grid.toml --executor ray --address auto` (a running cluster) · `psyk sweep grid.toml --dry-run`",
)(sweep)
