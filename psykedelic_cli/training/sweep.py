"""``psyk sweep GRID.toml``: a grid of ``psyk train`` options expanded into runs and planned against the store.

A grid file holds ``psyk train`` options (keys as in ``--config``: at the top level or in a
``[train]`` table). Any option may be a list: each list is an axis, and the runs are every
combination of the axes (a list option such as ``compare`` takes a list of lists to be an
axis). A ``[sweep]`` table may add

- ``exclude = [{depth = 14, mode = "det"}, …]``: a combination matching every key of one of
  these tables is left out (a list there means any of its values);
- ``include = [{depth = 20, mode = "weight"}, …]``: more combinations: the table's keys, and
  every other option as the grid has it (an axis it does not name is still an axis);
- ``repeat = N``: every combination with N seeds, its seed and the N − 1 after it.

Nothing here imports a Keras backend: the grid is read, checked and planned before any
training starts, so a bad file is one line and nothing else happens.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from psykedelic_cli.errors import PsykError
from psykedelic_cli.training.config import (
    TrainConfig,
    check_value,
    hints,
    is_sequence,
    option_fields,
    read_toml,
    scalar_type,
)

SWEEP_KEYS = ("exclude", "include", "repeat")
NOT_IDENTITY = ("share_first_stage",)
"""Stored config fields that do not tell two runs' results apart (a shared first stage gives the same numbers)."""


def _shown(value: Any) -> str:
    return json.dumps(value, default=str)


class _Reader:
    """Checks the values of one grid file, naming the file and the key in every message."""

    def __init__(self, path: Path):
        self.path = path
        self.fields = {item.name: item for item in option_fields(TrainConfig)}

    def name(self, key: str, where: str = "") -> str:
        name = key.replace("-", "_")
        if name not in self.fields:
            allowed = ", ".join(sorted(n.replace("_", "-") for n in self.fields))
            raise PsykError(f"{self.path}: unknown option '{where}{key}'; allowed: {allowed}")
        return name

    def values(self, key: str, value: Any, where: str = "") -> list:
        """The values of option ``key`` given as ``value`` (one, or a list of them: an axis), checked."""
        name = self.name(key, where)
        item = self.fields[name]
        hint = hints(TrainConfig)[name]
        sequence = is_sequence(hint)
        many = isinstance(value, list) and (not sequence or (value and all(isinstance(v, list) for v in value)))
        values = value if many else [value]
        if not values:
            raise PsykError(f"{self.path}: {where}{key} = []: expected at least one value")
        checked = []
        for each in values:
            if isinstance(each, dict):
                raise PsykError(f"{self.path}: {where}{key} = a table: expected a value or a list of values")
            check_value(each, item.metadata["spec"], hint, f"{self.path}: {where}{key}")
            if scalar_type(hint) is float and not sequence:
                each = float(each)
            checked.append(tuple(each) if sequence else each)
        return checked

    def combinations(self, tables: Any, key: str) -> list[dict[str, list]]:
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise PsykError(f"{self.path}: sweep.{key} = {_shown(tables)}: expected a list of tables "
                            f"of options, e.g. {key} = [{{depth = 14, mode = \"det\"}}]")
        return [{self.name(k, f"sweep.{key}."): self.values(k, v, f"sweep.{key}.") for k, v in table.items()}
                for table in tables]


@dataclass
class Grid:
    """A grid file, read and checked: ``axes`` maps each option given to its values (one or more)."""

    path: Path
    axes: dict[str, list]
    exclude: list[dict[str, list]] = field(default_factory=list)
    include: list[dict[str, list]] = field(default_factory=list)
    repeat: int = 1

    def configs(self) -> list[TrainConfig]:
        """Every run of the grid, validated (as ``psyk train`` validates its options), in grid order,
        each combination once."""
        combos = [c for c in _product(self.axes) if not any(_matches(c, rule) for rule in self.exclude)]
        for extra in self.include:
            combos += _product({**self.axes, **extra})
        configs, seen = [], set()
        for combo in combos:
            for config in _repeated(combo, self.repeat):
                try:
                    config.validate()
                except PsykError as exc:
                    raise PsykError(f"{self.path}: {exc}") from None
                key = json.dumps(identity(config), sort_keys=True, default=str)
                if key not in seen:
                    seen.add(key)
                    configs.append(config)
        return configs


def read_grid(path: str | Path) -> Grid:
    """The grid file ``path`` (module docstring), checked; PsykError naming the file, the key, what was
    given and what is allowed."""
    path = Path(path)
    data = read_toml(path, "grid")
    reader = _Reader(path)
    tables = {}
    for table in ("train", "sweep"):
        tables[table] = data.pop(table, {})
        if not isinstance(tables[table], dict):
            raise PsykError(f"{path}: {table} = {_shown(tables[table])}: expected a [{table}] table")
    axes = {}
    for key, value in [*data.items(), *tables["train"].items()]:
        axes[reader.name(key)] = reader.values(key, value)
    sweep = tables["sweep"]
    unknown = sorted(set(sweep) - set(SWEEP_KEYS))
    if unknown:
        raise PsykError(f"{path}: unknown key 'sweep.{unknown[0]}'; the [sweep] table takes {', '.join(SWEEP_KEYS)}")
    repeat = sweep.get("repeat", 1)
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise PsykError(f"{path}: sweep.repeat = {_shown(repeat)}: expected an integer ≥ 1")
    return Grid(path, axes, exclude=reader.combinations(sweep.get("exclude", []), "exclude"),
                include=reader.combinations(sweep.get("include", []), "include"), repeat=repeat)


def _product(axes: dict[str, list]) -> list[dict[str, Any]]:
    names = list(axes)
    return [dict(zip(names, values)) for values in itertools.product(*(axes[name] for name in names))]


def _matches(combo: dict[str, Any], rule: dict[str, list]) -> bool:
    defaults = TrainConfig()
    return all(combo.get(name, getattr(defaults, name)) in values for name, values in rule.items())


def _repeated(combo: dict[str, Any], repeat: int) -> list[TrainConfig]:
    config = TrainConfig(**combo)
    if repeat == 1:
        return [config]
    first = config.seed or 0
    return [config.replace(seed=first + offset) for offset in range(repeat)]


def identity(config: TrainConfig) -> dict:
    """What tells a run of ``config`` from another in the store: its stored config (``store_config``
    without the model's own fields) and the digest of its ``--init`` file, as JSON has them."""
    stored = {name: value for name, value in config._stored().items() if name not in NOT_IDENTITY}
    return json.loads(json.dumps({**stored, "init_digest": config.init_digest, **config.extra}, default=str))


PLAN_STATES = ("new", "completed", "failed", "interrupted", "running")


@dataclass
class PlannedRun:
    """One run of a sweep: its config, and what the store already holds of it (``state``, the run)."""

    index: int
    config: TrainConfig
    state: str = "new"
    """``new`` (no such run), or the status of the best stored run of it: completed, running, failed,
    interrupted (a ``running`` run whose process is gone counts as interrupted)."""
    run_id: str | None = None


@dataclass
class Plan:
    runs: list[PlannedRun]
    retry_failed: bool

    @property
    def to_run(self) -> list[PlannedRun]:
        """The runs to train: new ones, and failed or interrupted ones with ``retry_failed``."""
        retry = ("failed", "interrupted") if self.retry_failed else ()
        return [run for run in self.runs if run.state == "new" or run.state in retry]

    def counts(self) -> dict[str, int]:
        return {state: sum(run.state == state for run in self.runs) for state in PLAN_STATES}


_RANK = {"completed": 0, "running": 1, "interrupted": 2, "failed": 3}


def plan_sweep(configs: list[TrainConfig], store, *, now: datetime, retry_failed: bool = False) -> Plan:
    """Each config matched against the runs of ``store`` (by ``identity``; the best of several: completed,
    then live running, then interrupted, then failed). ``now`` (aware) decides which running runs are stale."""
    from psykedelic_cli.store.liveness import stale_runs

    stale = stale_runs(store, now=now)
    stored: dict[str, list[tuple[str, str]]] = {}
    for summary in store.summaries():
        if summary.get("source") != "train":
            continue
        state = "interrupted" if summary["id"] in stale else summary["status"]
        stored.setdefault(_key(summary["config"]), []).append((state, summary["id"]))
    planned = []
    for index, config in enumerate(configs):
        matches = stored.get(_key(identity(config)), [])
        best = min(matches, key=lambda match: _RANK.get(match[0], 9), default=("new", None))
        planned.append(PlannedRun(index, config, *best))
    return Plan(planned, retry_failed)


def _key(config: dict) -> str:
    """A config's values of the identity fields (``identity``), as one string."""
    names = sorted(identity(TrainConfig()))
    return json.dumps({name: config.get(name) for name in names}, sort_keys=True, default=str)
