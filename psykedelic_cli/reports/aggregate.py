"""Aggregation every report shares: like-with-like groups of runs, mean ± population std.

Reports average only runs that agree on every setting that changes the numbers.
The fields that define a report's cells (dataset, model, …) are its group keys;
any other setting that differs among the matching runs (``SETTINGS``) becomes an
extra key, so e.g. two L1 penalties give two sets of tables instead of one blend.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from psykedelic_cli.errors import NothingFound
from psykedelic_cli.store.schema import CONFIG_FIELDS

STD_NOTE = "mean ± population std (ddof=0, as the original)"

_NOT_SETTINGS = (
    "model", "depth", "params", "dataset", "mode", "compare", "seed", "init", "distribute", "patience",
    "stop_after_pruning", "share_first_stage", "backend",
)
"""Config fields that never split a report: ``model`` and ``dataset`` are every report's own
keys, ``depth`` and ``params`` are implied by the model and its ``architecture`` (which does
split: two architectures of one name are never averaged), ``seed`` repeats an experiment, ``mode`` and
``compare`` do not change the first-stage analysis every report reads (nor do the last
stage's ``patience`` and ``stop_after_pruning``), ``init`` is the file behind
``init_mode`` (its path differs from machine to machine), ``distribute`` spreads the
same computation over devices, ``share_first_stage`` trains the same first stage once, and
``backend`` runs the same model and flow on TensorFlow, JAX or PyTorch (``--backend`` filters)."""

SETTINGS = tuple(name for name in CONFIG_FIELDS if name not in _NOT_SETTINGS)
"""Config fields that change a run's results: every other field of the schema's config."""

_FIRST_STAGE_SETTINGS = tuple(s for s in SETTINGS if s != "history_interval")
"""History sampling does not change the end-of-first-stage results."""


@dataclass(frozen=True)
class Stat:
    """Mean and population standard deviation (ddof=0) of ``n`` finite values."""

    mean: float
    std: float
    n: int


def summarize(values: Iterable[float | None]) -> Stat | None:
    """Stat of the finite values (``None``/NaN are missing, not zero); ``None`` when there are none."""
    array = np.array([v for v in values if v is not None], dtype=float)
    array = array[np.isfinite(array)]
    if array.size == 0:
        return None
    return Stat(float(array.mean()), float(array.std()), int(array.size))


def ragged_matrix(rows: Sequence[Sequence[float | None]], width: int | None = None) -> np.ndarray:
    """Ragged rows as a (rows × ``width``) float matrix (default: the longest row's length),
    NaN where a row is shorter or holds ``None``."""
    if width is None:
        width = max((len(row) for row in rows), default=0)
    matrix = np.full((len(rows), width), np.nan)
    for i, row in enumerate(rows):
        matrix[i, : len(row)] = [np.nan if v is None else v for v in row]
    return matrix


def summarize_columns(rows: Sequence[Sequence[float | None]]) -> list[Stat | None]:
    """Column-wise ``summarize`` of ragged rows (one row per run); a shorter row is missing there."""
    return summarize_matrix(ragged_matrix(rows))


def summarize_matrix(matrix: np.ndarray) -> list[Stat | None]:
    """Column-wise stats of a (runs × items) float matrix whose NaNs are missing values."""
    finite = np.isfinite(matrix)
    counts = finite.sum(axis=0)
    filled = np.where(finite, matrix, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = filled.sum(axis=0) / counts
        stds = np.sqrt(np.where(finite, (filled - means) ** 2, 0.0).sum(axis=0) / counts)
    return [Stat(float(m), float(s), int(c)) if c else None for m, s, c in zip(means, stds, counts)]


def canonical(value: object) -> object:
    """A hashable value that makes ``isclose`` floats equal (12 significant digits) and lists tuples."""
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.12g}")
    if isinstance(value, list):
        return tuple(canonical(v) for v in value)
    return value


def config_value(run: dict, field: str) -> object:
    return canonical((run.get("config") or {}).get(field))


def natural_key(value: object) -> tuple:
    """Sort key: numbers numerically, embedded numbers too (ResNet20 < ResNet110), ``None`` last."""
    if value is None:
        return (2,)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value))
    if isinstance(value, tuple):
        return (1, tuple(natural_key(v) for v in value))
    parts = re.split(r"(\d+)", str(value))
    return (1, tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts))


def varying_settings(runs: Sequence[dict], *, exclude: Iterable[str] = (), first_stage: bool = True) -> tuple[str, ...]:
    """The settings (in ``SETTINGS`` order) that differ among ``runs`` and so must split the tables.

    ``first_stage``: the report reads end-of-first-stage results, which the history
    interval does not change.
    """
    skip = set(exclude)
    candidates = _FIRST_STAGE_SETTINGS if first_stage else SETTINGS
    return tuple(
        s for s in candidates if s not in skip and len({config_value(run, s) for run in runs}) > 1
    )


def group_runs(runs: Iterable[dict], key: Callable[[dict], tuple]) -> dict[tuple, list[dict]]:
    """Runs by ``key(run)``, groups in natural order of their keys."""
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault(key(run), []).append(run)
    return dict(sorted(groups.items(), key=lambda item: natural_key(item[0])))


def group_by_config(runs: Iterable[dict], fields: Sequence[str]) -> dict[tuple, list[dict]]:
    return group_runs(runs, lambda run: tuple(config_value(run, f) for f in fields))


FIRST_STAGE_KINDS = frozenset({
    "performance", "pruning_per_layer", "eig_stats", "set_analysis", "pruning_per_threshold", "history",
    "per_layer_history", "sensitivity",
})
"""Result kinds measured on the weights of the first stage (before the mode acts)."""


def runs_with(runs: Iterable[dict], kind: str) -> list[dict]:
    """The runs that hold result ``kind``; ``NothingFound`` when none does.

    A first-stage kind (``FIRST_STAGE_KINDS``) is counted once per first stage: a run whose
    first stage was trained by another run among them (``results.first_stage.trained_by``,
    ``share_first_stage``) holds a copy of that run's results and is left out, so ``n`` counts
    independent trainings, not copies.
    """
    kept = [run for run in runs if (run.get("results") or {}).get(kind)]
    if not kept:
        raise NothingFound(f"no matching run has {kind.replace('_', ' ')} results")
    if kind in FIRST_STAGE_KINDS:
        ids = {run["id"] for run in kept}
        kept = [run for run in kept if _first_stage_owner(run) in (None, run["id"])
                or _first_stage_owner(run) not in ids]
    return kept


def _first_stage_owner(run: dict) -> str | None:
    shared = (run.get("results") or {}).get("first_stage")
    return shared.get("trained_by") if isinstance(shared, dict) else None


def format_value(value: object) -> str:
    """How a key value reads in titles and headers: small floats as 1e-04, other floats plainly, None as "-"."""
    if value is None:
        return "-"
    if isinstance(value, float):
        # thresholds read as the original wrote them (1e-04), other floats plainly
        return np.format_float_scientific(value, trim="-", exp_digits=2) if 0 < abs(value) < 1e-3 else f"{value:g}"
    if isinstance(value, tuple):
        return "+".join(format_value(v) for v in value)
    return str(value)


def settings_text(fields: Sequence[str], values: Sequence[object]) -> str:
    """``"l1_penalty=0.0001, lr=0.01"`` for the split settings of a group ("" when there are none)."""
    return ", ".join(f"{f}={format_value(v)}" for f, v in zip(fields, values))


_PLAIN_TITLE_FIELDS = ("dataset", "model")
_PLAIN_STEM_FIELDS = ("dataset", "model", "init_mode", "threshold", "rule")


def group_title(fields: Sequence[str], values: Sequence[object]) -> str:
    """``"cifar10, MicroResNet32, init_mode=default, threshold=1e-04"``: a group named in a chart title."""
    return ", ".join(
        format_value(v) if f in _PLAIN_TITLE_FIELDS else f"{f}={format_value(v)}" for f, v in zip(fields, values)
    )


def group_stem(fields: Sequence[str], values: Sequence[object]) -> str:
    """``"cifar10_MicroResNet32_l1_penalty-0.001"``: a group named in a chart's file name."""
    return "_".join(
        format_value(v) if f in _PLAIN_STEM_FIELDS else f"{f}-{format_value(v)}" for f, v in zip(fields, values)
    )


def nothing_compared(modes: Sequence[str] | None, what: str) -> NothingFound:
    """The NothingFound of a report whose matching runs hold no ``what`` (for ``modes``, when given)."""
    if modes:
        return NothingFound(f"no matching run has {what} for the mode(s) {', '.join(modes)}")
    return NothingFound(f"no matching run has {what}")
