"""Rich tables of runs' results, shared by ``psyk show`` and the end of ``psyk train`` / ``psyk record``."""

from __future__ import annotations

from rich import box
from rich.table import Table

from psykedelic_cli.store.schema import BASELINE


def percent(value) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def fixed(value) -> str:
    return "—" if value is None else f"{value:.4f}"


def count(value) -> str:
    return "—" if value is None else f"{value:,}"


def performance_table(run: dict) -> Table:
    """Per compared mode (and the trained model at the end): accuracy, compression, score, kernels, parameters."""
    results = run.get("results") or {}
    config = run.get("config") or {}
    trained = config.get("mode")
    rows = [
        ("None (unpruned)" if mode == BASELINE else f"{mode} (trained)" if mode == trained else mode, row)
        for mode, row in (results.get("performance") or {}).items()
    ]
    if results.get("final"):
        rows.append((f"final: {trained}", results["final"]))
    total = next((row.get("total_params") for _, row in rows if row.get("total_params") is not None), None)
    table = Table(title=f"run {run['id']}: {config.get('model')} on {config.get('dataset')}, "
                        f"{count(total)} parameters; performance per mode",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0))
    table.add_column("mode", no_wrap=True)
    for name in ("accuracy", "compression", "score", "dead kernels", "active params"):
        table.add_column(name, justify="right")
    for label, row in rows:
        alive, total = row.get("alive_kernels"), row.get("total_kernels")
        table.add_row(
            label,
            percent(row.get("accuracy")),
            percent(row.get("compression_ratio")),
            "—" if label.startswith("None") else fixed(row.get("score")),
            "—" if alive is None or total is None else count(total - alive),
            count(row.get("active_params")),
        )
    timings = results.get("timings")
    if timings:
        table.caption = "time: " + timings_text(timings)
    return table


def timings_text(timings: dict) -> str:
    return ", ".join(f"{phase.replace('_', ' ')} {seconds:.1f} s" for phase, seconds in timings.items())


def runs_table(runs: list[dict]) -> Table:
    """One line per run: mode, L1, seed, status and the final accuracy, compression and score."""
    table = Table(title="runs", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("run", "mode", "L1", "seed", "status", "accuracy", "compression", "score"):
        table.add_column(column, justify="left" if column in ("run", "mode", "status") else "right")
    for run in runs:
        final = (run.get("results") or {}).get("final") or {}
        config = run["config"]
        table.add_row(
            run["id"], str(config.get("mode")), f"{config.get('l1_penalty'):g}", str(config.get("seed")), run["status"],
            percent(final.get("accuracy")), percent(final.get("compression_ratio")), fixed(final.get("score")),
        )
    return table
