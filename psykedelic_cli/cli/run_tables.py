"""Rich tables of runs' results, shared by ``psyk show`` and the end of ``psyk train`` / ``psyk record``.

Every column but the mode keeps the width of its longest entry; in a terminal too narrow
for the table the mode names wrap first, and only where even that is not enough are the
other entries folded onto more lines — never cut short with "…".
"""

from __future__ import annotations

from typing import Callable, Sequence

from rich import box
from rich.cells import cell_len
from rich.table import Table

from psykedelic_cli.store.schema import BASELINE


def percent(value) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def fixed(value) -> str:
    return "—" if value is None else f"{value:.4f}"


def count(value) -> str:
    return "—" if value is None else f"{value:,}"


def _widths(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    return [
        max(cell_len(line) for text in (header, *(row[i] for row in rows)) for line in text.splitlines())
        for i, header in enumerate(headers)
    ]


def _fill(
    table: Table, headers: Sequence[str], rows: Sequence[Sequence[str]], *, flexible: str, left: set[str]
) -> None:
    """Columns named ``headers`` (the ``flexible`` one wraps first), then ``rows``."""
    for header, width in zip(headers, _widths(headers, rows)):
        # the flexible column shrinks first, but never away
        sizes = {"min_width": min(width, 8)} if header == flexible else {"width": width}
        table.add_column(header, justify="left" if header in left else "right", overflow="fold", **sizes)
    for row in rows:
        table.add_row(*row)


class _FittedTable:
    """The first table of ``layouts()`` that fits the width it is printed at (else the last)."""

    def __init__(self, layouts: Callable[[], Sequence[Table]]):
        self.layouts = layouts

    def __rich_console__(self, console, options):
        from rich.measure import Measurement

        layouts = self.layouts()
        unbounded = options.update(max_width=10**6)
        fitting = (t for t in layouts if Measurement.get(console, unbounded, t).maximum <= options.max_width)
        yield next(fitting, layouts[-1])


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
                  title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, padding=0)
    cells = []
    for label, row in rows:
        alive, total = row.get("alive_kernels"), row.get("total_kernels")
        cells.append((
            label,
            percent(row.get("accuracy")),
            percent(row.get("compression_ratio")),
            "—" if label.startswith("None") else fixed(row.get("score")),
            "—" if alive is None or total is None else count(total - alive),
            count(row.get("active_params")),
        ))
    headers = ("mode", "accuracy", "compression", "score", "dead\nkernels", "active\nparams")
    _fill(table, headers, cells, flexible="mode", left={"mode"})
    timings = results.get("timings")
    if timings:
        table.caption = "time: " + timings_text(timings)
    return table


def timings_text(timings: dict) -> str:
    return ", ".join(f"{phase.replace('_', ' ')} {seconds:.1f} s" for phase, seconds in timings.items())


def runs_table(runs: list[dict]) -> _FittedTable:
    """One line per run: mode, L1, seed, status and the final accuracy, compression and score.

    Too wide for the terminal (long mode names at 80 columns), each mode goes on a line of
    its own under its run id instead."""
    return _FittedTable(lambda: [_runs_table(runs, stacked) for stacked in (False, True)])


def _runs_table(runs: list[dict], stacked: bool) -> Table:
    cells = []
    for run in runs:
        final = (run.get("results") or {}).get("final") or {}
        config = run["config"]
        cells.append((
            run["id"], str(config.get("mode")), f"{config.get('l1_penalty'):g}", str(config.get("seed")), run["status"],
            percent(final.get("accuracy")), percent(final.get("compression_ratio")), fixed(final.get("score")),
        ))
    headers = ("run", "mode", "L1", "seed", "status", "accuracy", "compression", "score")
    # one space between columns (the box's), no edges: 80 columns hold a line with a short mode name
    table = Table(title="runs", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, padding=0)
    flexible = "mode"
    if stacked:
        flexible = "run\n  mode"
        headers = (flexible, *headers[2:])
        cells = [(f"{run}\n  {mode}", *rest) for run, mode, *rest in cells]
    _fill(table, headers, cells, flexible=flexible, left={"run", "mode", "status", flexible})
    return table
