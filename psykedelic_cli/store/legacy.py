"""Importing the original psykedelic's ``experiments.json`` (its ExperimentRecorder) as runs.

The original appended one entry per run to nested lists::

    chart_type -> "model:optimizer:loss:lr:epochs:batch_size:init_mode:dataset:l1"
               -> threshold ("1e-04") -> [entry, ...]          (most charts)
               -> threshold -> training mode | history interval -> [entry, ...]

so run i of a (key, threshold) is entry i of each of its lists. How runs are rebuilt:

* performance, eig_stats, set_analysis and pruning_per_layer[compared mode]: entry i
  belongs to run i of the (key, threshold) (one run appended one entry to each).
* eig_analysis (by training mode): an entry goes to the run whose eig_stats per-layer
  counts it was computed from, which also proves that run's training mode.
* learning_curve (by training mode): a proven mode's curves go to that mode's runs in
  file order; the others, and both history charts (by history interval), which nothing in
  the file ties to a run, are flattened in file order (sub-keys in order, then their
  entries) and given to the runs left, in order: by position only.
* pruning_per_threshold has no threshold level: an entry goes to the run of the key whose
  own pruned share (eig_stats) it shows at that run's threshold; the rest, by position, to
  the runs left in ascending threshold order (entries that fit no run become runs of their
  own).
* unknown chart types, keyed by model key, are kept verbatim under
  ``results["legacy"][chart]`` of the key's first run.

A sub-key becomes ``config.mode`` / ``config.history_interval`` when its entry was placed
by evidence, or by position when its chart has exactly one entry per run; it is always
recorded in ``doc["legacy"]["sub_keys"]``, and ``doc["legacy"]["placed_by"]`` says, per
placed chart, ``"evidence"`` or ``"position"``.

Converted to psyk's meaning: the key's epochs are the original's epochs per stage, so
``config.epochs`` = that × ``config.steps`` (the stages its learning curve shows, else its
default 2; ``legacy.stage_epochs`` keeps the key's value); history epochs count completed
epochs (the original's step i came after Keras epoch i × interval, counted from 0); the
history's "None" row gets back the precision and recall the original stored swapped
(``legacy.corrected``); a null precision or recall (a class never predicted) is None.

Nothing is dropped: the eig_stats entries are converted to the schema's totals and also
kept verbatim under ``results["legacy"]["eig_stats"]`` (they hold per-layer counts the
totals lose). Each run records ``doc["legacy"] = {"file", "key", "threshold", "index",
"importer", "stage_epochs", "sub_keys", "placed_by", "corrected", "digest"}``; the digest
(SHA-256 of key, threshold, index and the raw entries of the run) makes a second import of
the same entries add nothing, even from a copy of the file with another name or with more
runs appended; a run imported by an earlier psyk (no ``importer``) is corrected in place.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Sequence

from psykedelic_cli.errors import PsykError
from psykedelic_cli.store.runs import Store, new_run_document, new_run_id, utc_now
from psykedelic_cli.store.schema import BASE_CRITERIA, BASELINE, EIG_CRITERIA
from psykedelic_cli.store.storage import Entry

KEY_FIELDS = ("model", "optimizer", "loss", "lr", "epochs", "batch_size", "init_mode", "dataset", "l1")
RUN_CHARTS = ("performance", "eig_stats", "set_analysis")
SUB_KEYED_CHARTS = ("learning_curve", "eig_analysis", "performance_history", "pruning_per_layer_history")
KNOWN_CHARTS = (*RUN_CHARTS, *SUB_KEYED_CHARTS, "pruning_per_layer", "pruning_per_threshold")
DATASET_NAMES = {
    "cifar-10": "cifar10",
    "cifar-100": "cifar100",
    "tinyimagenet": "tiny-imagenet",
    "tiny_imagenet": "tiny-imagenet",
    "tiny-imagenet-200": "tiny-imagenet",
}
HISTORY_RENAMES = {"acc": "accuracy", "val_acc": "val_accuracy"}
LEARNING_CURVE_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr")
PERFORMANCE_METRICS = ("accuracy", "precision", "recall", "score")
NULLABLE_METRICS = ("precision", "recall")


class _Path:
    """A JSON path inside one legacy file, for error messages: ``$["performance"][0]``."""

    def __init__(self, file: Path, parts: tuple = ()):
        self.file = file
        self.parts = parts

    def __truediv__(self, part) -> "_Path":
        return _Path(self.file, (*self.parts, part))

    def __str__(self) -> str:
        return "$" + "".join(f"[{p}]" if isinstance(p, int) else f"[{json.dumps(p)}]" for p in self.parts)

    def fail(self, problem: str) -> PsykError:
        return PsykError(f"{self.file}: {self}: {problem}; nothing was imported")


def _describe(value) -> str:
    text = json.dumps(value)
    return f"{type(value).__name__} {text[:40]}{'…' if len(text) > 40 else ''}"


def _object(value, where: _Path) -> dict:
    if not isinstance(value, dict):
        raise where.fail(f"expected an object, got {_describe(value)}")
    return value


def _list(value, where: _Path) -> list:
    if not isinstance(value, list):
        raise where.fail(f"expected a list, got {_describe(value)}")
    return value


def _number(value, where: _Path):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise where.fail(f"expected a number, got {_describe(value)}")
    return value


def _metric(value, where: _Path):
    """A precision or recall: a number, or None where the original found it undefined (it
    writes null when some class is never predicted: scikit-learn's undefined-metric case)."""
    return None if value is None else _number(value, where)


def _numbers(value, where: _Path, length: int | None = None, *, nullable: bool = False) -> list:
    check = _metric if nullable else _number
    values = [check(v, where / i) for i, v in enumerate(_list(value, where))]
    if length is not None and len(values) != length:
        raise where.fail(f"expected {length} numbers (one per item), got {len(values)}")
    return values


def _entries(value, where: _Path) -> list[tuple[_Path, dict]]:
    """An entry list; a bare object is one entry (the original's writer sometimes stored one)."""
    if isinstance(value, dict):
        return [(where, value)]
    return [(where / i, _object(entry, where / i)) for i, entry in enumerate(_list(value, where))]


def _parse_float(text: str, what: str, where: _Path) -> float:
    try:
        return float(text)
    except ValueError:
        raise where.fail(f"{what} {text!r} is not a number") from None


def _parse_int(text: str, what: str, where: _Path) -> int:
    number = _parse_float(text, what, where)
    if not number.is_integer():
        raise where.fail(f"{what} {text!r} is not a whole number")
    return int(number)


def dataset_name(legacy_name: str) -> str:
    """The dataset name psyk uses for the original's ("CIFAR-10" -> "cifar10")."""
    lowered = legacy_name.lower()
    return DATASET_NAMES.get(lowered, lowered)


def key_config(key: str, where: _Path) -> dict:
    """The run config encoded in a legacy key ``model:optimizer:...:dataset:l1``."""
    fields = key.split(":")
    if len(fields) < len(KEY_FIELDS):
        raise where.fail(f"key {key!r} has {len(fields)} fields; expected {len(KEY_FIELDS)}: {':'.join(KEY_FIELDS)}")
    model, optimizer, loss, lr, epochs, batch_size = fields[:6]
    dataset, l1 = fields[-2:]
    digits = re.findall(r"\d+", model)
    return {
        "model": model,
        "depth": int(digits[-1]) if digits else None,
        "dataset": dataset_name(dataset),
        "optimizer": optimizer.lower(),
        "loss": loss,
        "lr": _parse_float(lr, "learning rate", where),
        "epochs": _parse_int(epochs, "epochs", where),
        "batch_size": _parse_int(batch_size, "batch size", where),
        "init_mode": ":".join(fields[6:-2]),
        "l1_penalty": _parse_float(l1, "L1 penalty", where),
    }


# ---------------------------------------------------------------- chart conversions


def _performance_row(values: dict, baseline_params, where: _Path) -> dict:
    active = _number(values.get("param_count"), where / "param_count")
    row = {"accuracy": _number(values.get("accuracy"), where / "accuracy")}
    row.update({name: _metric(values.get(name), where / name) for name in NULLABLE_METRICS})
    row.update(
        active_params=active,
        total_params=baseline_params,
        compression_ratio=1 - active / baseline_params if baseline_params else None,
        score=_number(values.get("score"), where / "score"),
        alive_kernels=None,
        total_kernels=None,
    )
    return row


def convert_performance(entry: dict, where: _Path) -> dict:
    """``{mode: {param_count, score, accuracy, precision, recall}}`` -> performance rows;
    compression ratio = 1 - param_count / the "None" baseline's param_count."""
    baseline = entry.get(BASELINE)
    baseline_params = (
        _number(_object(baseline, where / BASELINE).get("param_count"), where / BASELINE / "param_count")
        if baseline is not None
        else None
    )
    return {
        mode: _performance_row(_object(values, where / mode), baseline_params, where / mode)
        for mode, values in entry.items()
    }


def _layer_rows(names: list, active: list, total: list) -> list[dict]:
    return [
        {"layer": name, "active_params": a, "total_params": t, "alive_kernels": None, "total_kernels": None}
        for name, a, t in zip(names, active, total)
    ]


def _layer_names(entry: dict, where: _Path) -> list:
    names = _list(entry.get("layer_names"), where / "layer_names")
    if not all(isinstance(name, str) for name in names):
        raise (where / "layer_names").fail("expected a list of layer names")
    return names


def convert_pruning_per_layer(entry: dict, where: _Path) -> list[dict]:
    names = _layer_names(entry, where)
    active = _numbers(entry.get("active_params"), where / "active_params", len(names))
    total = _numbers(entry.get("total_params"), where / "total_params", len(names))
    return _layer_rows(names, active, total)


def _per_layer_counts(value, where: _Path, layers: int) -> list[dict]:
    rows = _list(value, where)
    if len(rows) != layers:
        raise where.fail(f"expected {layers} items (one per layer), got {len(rows)}")
    return [
        {crit: _number(n, where / i / crit) for crit, n in _object(row, where / i).items()}
        for i, row in enumerate(rows)
    ]


def convert_eig_stats(entry: dict, where: _Path) -> dict:
    """Per-layer eigenvalue and kernel counts -> the schema's totals and complex ratios."""
    layers = len(_layer_names(entry, where))
    complex_counts = _numbers(entry.get("total_complex_list"), where / "total_complex_list", layers)
    real_counts = _numbers(entry.get("total_real_list"), where / "total_real_list", layers)
    counts = {
        name: _per_layer_counts(entry.get(name), where / name, layers)
        for name in ("target_complex_list", "target_real_list", "pruned_complex_list", "pruned_real_list")
    }
    found = {crit for rows in counts.values() for row in rows for crit in row}
    criteria = {}
    total_kernels = None  # every criterion sees the same kernels; take the first one's count
    for crit in [c for c in EIG_CRITERIA if c in found] + sorted(found - set(EIG_CRITERIA)):
        target_complex, target_real, pruned_complex, pruned_real = (
            sum(row.get(crit, 0) for row in counts[name]) for name in counts
        )
        kernels, pruned = target_complex + target_real, pruned_complex + pruned_real
        criteria[crit] = {
            "pruned": pruned,
            "target_complex": target_complex,
            "pruned_complex": pruned_complex,
            "target_complex_ratio": target_complex / kernels if kernels else None,
            "pruned_complex_ratio": pruned_complex / pruned if pruned else None,
        }
        total_kernels = kernels if total_kernels is None else total_kernels
    eigenvalues = sum(complex_counts) + sum(real_counts)
    return {
        "total_kernels": total_kernels,
        "total_eigenvalues": eigenvalues,
        "complex_eigenvalues": sum(complex_counts),
        "complex_ratio": sum(complex_counts) / eigenvalues if eigenvalues else None,
        "criteria": criteria,
    }


def convert_set_analysis(entry: dict, where: _Path) -> dict:
    """Percent per group ``"{a,b}"`` with letter codes -> shares keyed by criteria joined "+"."""
    codes = _object(entry.get("codes"), where / "codes")
    for letter, crit in codes.items():
        if not isinstance(crit, str):
            raise (where / "codes" / letter).fail(f"expected a criterion name, got {_describe(crit)}")
    order = [c for c in BASE_CRITERIA if c in codes.values()] + sorted(set(codes.values()) - set(BASE_CRITERIA))
    groups = _list(entry.get("groups"), where / "groups")
    sizes = _numbers(entry.get("group_sizes"), where / "group_sizes", len(groups))
    shares: dict[str, float] = {}
    for i, (group, size) in enumerate(zip(groups, sizes)):
        if not isinstance(group, str) or not (group.startswith("{") and group.endswith("}")):
            raise (where / "groups" / i).fail(f"expected a group like \"{{a,b}}\", got {_describe(group)}")
        letters = [part.strip(" '\"") for part in group[1:-1].split(",") if part.strip(" '\"")]
        unknown = [letter for letter in letters if letter not in codes]
        if unknown:
            raise (where / "groups" / i).fail(f"letter(s) {', '.join(unknown)} not in codes ({', '.join(codes)})")
        combination = "+".join(sorted({codes[letter] for letter in letters}, key=order.index))
        shares[combination] = shares.get(combination, 0.0) + size / 100
    return {"criteria": order, "total_kernels": None, "shares": shares}


def convert_pruning_per_threshold(entry: dict, where: _Path) -> dict:
    """Percent pruned per threshold -> fractions, with the original's "raw" |det| vs t rule."""
    thresholds = _numbers(entry.get("thresholds"), where / "thresholds")
    finals = _object(entry.get("final_vals"), where / "final_vals")
    return {
        "thresholds": thresholds,
        "pruned_ratio": {
            crit: [p / 100 for p in _numbers(values, where / "final_vals" / crit, len(thresholds))]
            for crit, values in finals.items()
        },
        "rule": "raw",
    }


def convert_learning_curve(entry: dict, where: _Path, stage_epochs: int | None = None) -> dict:
    """A Keras ``History.history`` dict -> parallel per-epoch lists (epochs counted from 1);
    with ``stage_epochs`` (the original's epochs per stage) epoch e is in stage ceil(e / stage_epochs)."""
    curves = {}
    for name, values in entry.items():
        renamed = HISTORY_RENAMES.get(name, name)
        curves[name if renamed != name and renamed in entry else renamed] = _numbers(values, where / name)
    lengths = {len(values) for values in curves.values()}
    if len(lengths) > 1:
        raise where.fail(f"the per-epoch lists have different lengths ({sorted(lengths)})")
    epochs = lengths.pop() if lengths else 0
    blank = [None] * epochs
    return {
        "epoch": list(range(1, epochs + 1)),
        **{name: curves.pop(name, blank) for name in LEARNING_CURVE_KEYS},
        "stage": [i // stage_epochs + 1 for i in range(epochs)] if stage_epochs else blank,
        **curves,
    }


def _history_epoch(step: int, interval: int) -> int:
    """The completed epochs at history step ``step``: the original compared after Keras epoch
    ``step * interval`` (counted from 0), psyk counts completed epochs."""
    return step * interval + 1


def convert_performance_history(entry: dict, interval: int, where: _Path) -> dict[int, dict]:
    """Per-mode metric lists, one value per step -> {completed epochs: {mode: performance row}}.

    The original's HistoryCallback stored the "None" row's precision under recall and its
    recall under precision; they are swapped back. A null precision or recall is None.
    """
    params = _object(entry.get("param_count"), where / "param_count")
    metrics = {name: _object(entry.get(name, {}), where / name) for name in PERFORMANCE_METRICS}
    steps = None
    for name, per_mode in {"param_count": params, **metrics}.items():
        for mode, values in per_mode.items():
            values = _numbers(values, where / name / mode, steps, nullable=name in NULLABLE_METRICS)
            steps = len(values)
    history: dict[int, dict] = {}
    for step in range(steps or 0):
        baseline = params[BASELINE][step] if BASELINE in params else None
        rows = {}
        for mode in params:
            active = params[mode][step]
            accuracy, precision, recall = (
                metrics[name][mode][step] if mode in metrics[name] else None
                for name in ("accuracy", "precision", "recall")
            )
            if mode == BASELINE:
                precision, recall = recall, precision
            rows[mode] = {
                "accuracy": accuracy,
                "precision": precision,
                "recall": recall,
                "active_params": active,
                "total_params": baseline,
                "compression_ratio": 1 - active / baseline if baseline else None,
                "score": metrics["score"][mode][step] if mode in metrics["score"] else None,
                "alive_kernels": None,
                "total_kernels": None,
            }
        history[_history_epoch(step, interval)] = rows
    return history


def convert_pruning_per_layer_history(entry: dict, interval: int, where: _Path) -> dict[int, dict]:
    """Per-mode, per-step active parameters per layer -> {completed epochs: {mode: per-layer list}}."""
    names = _layer_names(entry, where)
    total = _numbers(entry.get("total_params"), where / "total_params", len(names))
    history: dict[int, dict] = defaultdict(dict)
    for mode, steps in _object(entry.get("active_params"), where / "active_params").items():
        for step, active in enumerate(_list(steps, where / "active_params" / mode)):
            active = _numbers(active, where / "active_params" / mode / step, len(names))
            history[_history_epoch(step, interval)][mode] = _layer_rows(names, active, total)
    return dict(history)


# ---------------------------------------------------------------- placing entries on runs

EVIDENCE = "evidence"
POSITION = "position"
IMPORTER = 2
"""The version of these import rules, kept in each run's ``legacy``; runs without it were
imported by an earlier psyk (see :func:`import_legacy`)."""
UNCHANGED_KINDS = ("performance", "pruning_per_layer", "eig_stats", "set_analysis")
"""Result kinds that earlier import rules converted as these do (for files they accepted)."""


def _place(entries: int, runs: Sequence[int], agrees: Callable[[int, int], bool | None]) -> list[tuple]:
    """The run each entry belongs to and how that was decided: ``(run, EVIDENCE | POSITION)``,
    or ``(None, None)`` for an entry that every free run contradicts.

    ``agrees(entry, run)`` is True when the numbers of both say they are one run, False when
    they say not, None when there is nothing to compare. An entry goes to the one free run it
    agrees with; entries that agree with several (runs with equal numbers) take them in file
    order; the rest go in order to the free runs, in ``runs`` order, that nothing contradicts.
    """
    verdicts = [{run: agrees(entry, run) for run in runs} for entry in range(entries)]
    free = list(runs)
    placed: list[tuple] = [(None, None)] * entries

    def take(entry: int, run: int, how: str) -> None:
        placed[entry] = (run, how)
        free.remove(run)

    pending = list(range(entries))
    while True:
        single = [e for e in pending if sum(1 for run in free if verdicts[e][run]) == 1]
        if not single:
            break
        for entry in single:
            candidates = [run for run in free if verdicts[entry][run]]
            if len(candidates) == 1:
                take(entry, candidates[0], EVIDENCE)
        pending = [e for e in pending if placed[e][0] is None]
    for how, wanted in ((EVIDENCE, True), (POSITION, None)):
        for entry in list(pending):
            run = next((run for run in free if verdicts[entry][run] is wanted), None)
            if run is not None:
                take(entry, run, how)
        pending = [e for e in pending if placed[e][0] is None]
    return placed


def _close(value, expected: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isclose(
        value, expected, rel_tol=1e-9, abs_tol=1e-9
    )


def _eig_analysis_of(stats: dict, mode: str) -> dict | None:
    """The eig_analysis entry the original writes for a run trained with ``mode`` from the
    kernels its raw eig_stats entry ``stats`` counts: per layer, the percentage of kernels whose
    deciding eigenvalue is real or complex, active or pruned. None when ``stats`` does not
    count ``mode``."""
    kinds = ("target_real", "target_complex", "pruned_real", "pruned_complex")
    if not all(mode in row for kind in kinds for row in stats[f"{kind}_list"]):
        return None
    expected: dict = {"layer_names": stats["layer_names"]}
    for layer in range(len(stats["layer_names"])):
        counts = {kind: stats[f"{kind}_list"][layer][mode] for kind in kinds}
        kernels = (counts["target_real"] + counts["target_complex"]) or math.nan  # the original divides by it
        for part in ("real", "complex"):
            pruned = counts[f"pruned_{part}"]
            expected.setdefault(f"pruned_{part}", []).append(pruned / kernels * 100)
            expected.setdefault(f"active_{part}", []).append((counts[f"target_{part}"] - pruned) / kernels * 100)
    return expected


def _eig_analysis_agrees(analysis: dict, expected: dict | None) -> bool | None:
    """Whether an eig_analysis entry is the one :func:`_eig_analysis_of` expects (None: nothing to compare)."""
    if expected is None:
        return None
    return all(
        isinstance(analysis.get(name), list) and len(analysis[name]) == len(values)
        and all(_close(a, b) for a, b in zip(analysis[name], values))
        for name, values in expected.items() if name != "layer_names"
    ) and analysis.get("layer_names") == expected["layer_names"]


def _pruned_shares(results: dict) -> dict[str, float]:
    """The share of all kernels each criterion prunes at the run's own threshold (its eig_stats)."""
    stats = results.get("eig_stats")
    if not stats or not stats["total_kernels"]:
        return {}
    return {crit: row["pruned"] / stats["total_kernels"] for crit, row in stats["criteria"].items()}


def _threshold_index(thresholds: Sequence[float], threshold: float | None) -> int | None:
    if threshold is None:
        return None
    return next((i for i, t in enumerate(thresholds) if math.isclose(t, threshold, rel_tol=1e-9)), None)


def _curve_agrees(curve: dict, at: int | None, shares: dict[str, float]) -> bool | None:
    """Whether a pruning_per_threshold entry, read at index ``at`` (a run's threshold), gives
    that run's pruned ``shares`` (eig criteria prune by statistic < t in both). None when
    there is nothing to compare."""
    common = [crit for crit in shares if crit in curve["pruned_ratio"]]
    if at is None or not common:
        return None
    return all(_close(curve["pruned_ratio"][crit][at], shares[crit]) for crit in common)


# ---------------------------------------------------------------- assembling runs


@dataclass
class _Group:
    """Everything recorded for one (key, threshold): per chart, its entries in run order."""

    key: str
    threshold: str | None
    lists: dict[str, list[tuple[_Path, dict]]] = field(default_factory=lambda: defaultdict(list))
    sub_keyed: dict[str, list[tuple[str, _Path, dict]]] = field(default_factory=lambda: defaultdict(list))
    per_mode: dict[str, list[tuple[_Path, dict]]] = field(default_factory=dict)

    def run_count(self) -> int:
        """The longest entry list; a placeholder group without threshold holds one run."""
        lists = [*self.lists.values(), *self.sub_keyed.values(), *self.per_mode.values()]
        return max(map(len, lists), default=0) or (1 if self.threshold is None else 0)

    def entry(self, chart: str, index: int) -> tuple[_Path, dict] | None:
        entries = self.lists.get(chart, [])
        return entries[index] if index < len(entries) else None


@dataclass
class _Placed:
    """A sub-keyed entry (by training mode or history interval) placed on a run, and how."""

    sub_key: str
    where: _Path
    entry: dict
    by: str


@dataclass
class _Built:
    """A run being rebuilt: its document and the raw entries it was made of (for its digest)."""

    doc: dict
    sources: dict


def _interval(text: str, where: _Path) -> int:
    interval = _parse_int(text, "history interval", where)
    if interval <= 0:
        raise where.fail(f"history interval {text!r} must be a positive whole number")
    return interval


def _collect(data: dict, top: _Path) -> tuple[dict[tuple[str, str | None], _Group], dict, dict]:
    """Sort the file's entries into groups; also pruning_per_threshold and unknown charts by key."""
    groups: dict[tuple[str, str | None], _Group] = {}
    per_threshold: dict[str, list[tuple[_Path, dict]]] = {}
    unknown: dict[str, dict[str, object]] = defaultdict(dict)

    def group(key: str, threshold: str | None) -> _Group:
        return groups.setdefault((key, threshold), _Group(key, threshold))

    for chart, by_key in _object(data, top).items():
        chart_path = top / chart
        by_key = _object(by_key, chart_path)
        for key, value in by_key.items():
            where = chart_path / key
            key_config(key, where)  # validates the key
            if chart not in KNOWN_CHARTS:
                unknown[key][chart] = value
            elif chart == "pruning_per_threshold":
                per_threshold[key] = _entries(value, where)
            else:
                for threshold, nested in _object(value, where).items():
                    at = where / threshold
                    _parse_float(threshold, "threshold", at)
                    target = group(key, threshold)
                    if chart in RUN_CHARTS:
                        target.lists[chart] = _entries(nested, at)
                    elif chart == "pruning_per_layer":
                        target.per_mode = {mode: _entries(e, at / mode) for mode, e in _object(nested, at).items()}
                    else:
                        for sub_key, entries in _object(nested, at).items():
                            if chart.endswith("history"):
                                _interval(sub_key, at / sub_key)
                            target.sub_keyed[chart] += [(sub_key, p, e) for p, e in _entries(entries, at / sub_key)]
    for key in unknown:
        if not any(k == key for k, _ in groups):
            group(key, None)  # a run to hold the key's unknown charts
    return groups, per_threshold, unknown


def _run_results(group: _Group, index: int) -> tuple[dict, dict]:
    """The results (and raw sources) of run ``index`` from the charts with one entry per run."""
    results: dict = {}
    sources: dict = {}
    performance = group.entry("performance", index)
    if performance:
        results["performance"] = convert_performance(performance[1], performance[0])
    per_layer = {mode: e[index] for mode, e in group.per_mode.items() if index < len(e)}
    if per_layer:
        results["pruning_per_layer"] = {
            mode: convert_pruning_per_layer(entry, where) for mode, (where, entry) in per_layer.items()
        }
        sources["pruning_per_layer"] = {mode: entry for mode, (_, entry) in per_layer.items()}
    eig_stats = group.entry("eig_stats", index)
    if eig_stats:
        results["eig_stats"] = convert_eig_stats(eig_stats[1], eig_stats[0])
        results.setdefault("legacy", {})["eig_stats"] = eig_stats[1]
    set_analysis = group.entry("set_analysis", index)
    if set_analysis:
        results["set_analysis"] = convert_set_analysis(set_analysis[1], set_analysis[0])
    for chart in RUN_CHARTS:
        entry = group.entry(chart, index)
        if entry:
            sources[chart] = entry[1]
    return results, sources


def _place_sub_keyed(group: _Group, runs: int) -> list[dict[str, _Placed]]:
    """Per run, its entry of each sub-keyed chart.

    eig_analysis entries go to the run whose eig_stats counts they were computed from (which
    proves that run's training mode); learning curves of a proven mode go to that mode's runs
    in file order; the rest, and the history charts (nothing in the file ties them to a run),
    by position. Entries that fit no run become runs of their own.
    """
    placements: list[dict[str, _Placed]] = [{} for _ in range(runs)]
    raw_stats = {i: entry[1] for i in range(runs) if (entry := group.entry("eig_stats", i))}
    modes: dict[int, str] = {}

    @functools.cache
    def expected(run: int, mode: str) -> dict | None:
        return _eig_analysis_of(raw_stats[run], mode) if run in raw_stats else None

    def verdicts(chart: str) -> Callable[[int, int], bool | None]:
        entries = group.sub_keyed.get(chart, [])
        if chart == "eig_analysis":
            return lambda e, r: _eig_analysis_agrees(entries[e][2], expected(r, entries[e][0]))
        if chart == "learning_curve":
            return lambda e, r: None if r not in modes else modes[r] == entries[e][0]
        return lambda e, r: None

    for chart in ("eig_analysis", "learning_curve", "performance_history", "pruning_per_layer_history"):
        entries = group.sub_keyed.get(chart, [])
        for (sub_key, where, entry), (run, by) in zip(
            entries, _place(len(entries), range(len(placements)), verdicts(chart))
        ):
            if run is None:
                run, by = len(placements), POSITION
                placements.append({})
            placements[run][chart] = _Placed(sub_key, where, entry, by)
            if chart == "eig_analysis" and by == EVIDENCE:
                modes[run] = sub_key
    return placements


def _claimed(group: _Group, placed: dict[str, _Placed], charts: Sequence[str], runs: int) -> str | None:
    """A run's training mode or history interval from its sub-keyed entries: when placed by
    evidence, or by position when the chart has exactly one entry per run."""
    for chart in charts:
        entry = placed.get(chart)
        if entry and (entry.by == EVIDENCE or len(group.sub_keyed.get(chart, [])) == runs):
            return entry.sub_key
    return None


def _build_group(group: _Group, file: Path, now: datetime | None) -> list[_Built]:
    """The runs of one (key, threshold), as the module docstring describes; ``now`` (default:
    the clock) stamps their ids and times."""
    runs = group.run_count()
    converted = [_run_results(group, index) for index in range(runs)]  # validates eig_stats before it is used
    placements = _place_sub_keyed(group, runs)
    built = []
    for index, placed in enumerate(placements):
        results, sources = converted[index] if index < runs else ({}, {})
        config = key_config(group.key, _Path(file))
        stage_epochs = config["epochs"]
        history: dict[str, dict[int, dict]] = {"performance": {}, "pruning_per_layer": {}}
        for chart, entry in placed.items():
            sources[chart] = entry.entry
            if chart == "learning_curve":
                results["learning_curve"] = convert_learning_curve(entry.entry, entry.where, stage_epochs)
            elif chart == "eig_analysis":
                results.setdefault("legacy", {})["eig_analysis"] = entry.entry
            else:
                convert = (
                    convert_performance_history if chart == "performance_history"
                    else convert_pruning_per_layer_history
                )
                kind = "performance" if chart == "performance_history" else "pruning_per_layer"
                history[kind].update(convert(entry.entry, int(float(entry.sub_key)), entry.where))
        for kind, result_kind in (("performance", "history"), ("pruning_per_layer", "per_layer_history")):
            if history[kind]:
                results[result_kind] = [
                    {"epoch": epoch, kind: history[kind][epoch]} for epoch in sorted(history[kind])
                ]
        mode = _claimed(group, placed, ("eig_analysis", "learning_curve"), runs)
        interval = _claimed(group, placed, ("performance_history", "pruning_per_layer_history"), runs)
        # Every stage of the original ran stage_epochs (the last one's early stopping waits as
        # long), so a curve of k whole stages shows k stages; otherwise its default, 2.
        length = len(results["learning_curve"]["epoch"]) if "learning_curve" in results else 0
        steps = max(2, length // stage_epochs) if stage_epochs and length % stage_epochs == 0 else 2
        compared = list(results.get("performance") or group.per_mode)
        config.update(
            epochs=stage_epochs * steps,
            steps=steps,
            mode=mode if mode != BASELINE else None,
            history_interval=int(float(interval)) if interval else None,
            compare=[m for m in compared if m != BASELINE] or None,
            threshold=float(group.threshold) if group.threshold is not None else None,
            backend="tensorflow",  # the original ran Keras 2 on TensorFlow
        )
        doc = new_run_document(config, source="legacy", now=now)
        doc.update(status="completed", finished_at=doc["created_at"], results=results)
        doc["legacy"] = {
            "file": file.name, "key": group.key, "threshold": group.threshold, "index": index,
            "importer": IMPORTER, "stage_epochs": stage_epochs,
            "sub_keys": {chart: entry.sub_key for chart, entry in placed.items()},
            "placed_by": {chart: entry.by for chart, entry in placed.items()},
            "corrected": ["history_none_precision_recall"] if "history" in results else [],
        }
        built.append(_Built(doc, sources))
    return built


def _threshold_order(built: _Built) -> tuple:
    threshold = built.doc["config"]["threshold"]
    return (threshold is None, threshold or 0.0, built.doc["legacy"]["index"])


def _digest(built: _Built) -> str:
    """SHA-256 of the run's place in the file (key, threshold, index) and the raw entries it was rebuilt from."""
    identity = {name: built.doc["legacy"][name] for name in ("key", "threshold", "index")}
    text = json.dumps({**identity, "sources": built.sources}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _place_per_threshold(
    key: str, entries: list[tuple[_Path, dict]], runs: list[_Built], file: Path, now: datetime | None
) -> list[_Built]:
    """Give each pruning_per_threshold entry of ``key`` to its run (see the module docstring);
    returns the runs made for entries that fit none."""
    runs = sorted(runs, key=_threshold_order)
    curves = [convert_pruning_per_threshold(entry, where) for where, entry in entries]
    shares = [_pruned_shares(run.doc["results"]) for run in runs]

    @functools.cache
    def at(curve: int, threshold: float | None) -> int | None:
        return _threshold_index(curves[curve]["thresholds"], threshold)

    extra = []
    placed = _place(len(curves), range(len(runs)),
                    lambda e, r: _curve_agrees(curves[e], at(e, runs[r].doc["config"]["threshold"]), shares[r]))
    for position, ((_, entry), curve, (run, by)) in enumerate(zip(entries, curves, placed)):
        if run is None:
            target = _build_group(_Group(key, None), file, now)[0]
            target.doc["legacy"]["index"] = position
            extra.append(target)
            by = POSITION
        else:
            target = runs[run]
        target.doc["results"]["pruning_per_threshold"] = curve
        target.doc["legacy"]["placed_by"]["pruning_per_threshold"] = by
        target.sources["pruning_per_threshold"] = entry
    return extra


def read_legacy(
    file: str | Path, progress: Callable[[int, int], None] | None = None, *, now: datetime | None = None
) -> list[dict]:
    """The runs of one ``experiments.json``, fully validated (PsykError with the JSON path
    of the first problem). ``progress(done, total)`` is called after each group of runs is built;
    ``now`` (an aware datetime; default: the clock) stamps the runs' ids and times."""
    file = Path(file)
    try:
        data = json.loads(file.read_bytes())
    except FileNotFoundError:
        raise PsykError(f"no legacy file {file}") from None
    except OSError as exc:
        raise PsykError(f"cannot read legacy file {file}: {exc.strerror}") from None
    except ValueError as exc:
        raise PsykError(f"{file} is not valid JSON ({exc}); nothing was imported") from None
    groups, per_threshold, unknown = _collect(data, _Path(file))
    total = sum(group.run_count() for group in groups.values())
    by_key: dict[str, list[_Built]] = defaultdict(list)
    built: list[_Built] = []
    for group in groups.values():
        runs = _build_group(group, file, now)
        by_key[group.key] += runs
        built += runs
        if progress:
            progress(min(len(built), total), total)
    for key, entries in per_threshold.items():
        extra = _place_per_threshold(key, entries, by_key[key], file, now)
        by_key[key] += extra
        built += extra
    for key, charts in unknown.items():
        first = min(by_key[key], key=_threshold_order)
        first.doc["results"].setdefault("legacy", {}).update(charts)
        first.sources.update(charts)
    for run in built:
        run.doc["legacy"]["digest"] = _digest(run)
    return [run.doc for run in built]


@dataclass
class ImportOutcome:
    """What one import did: the runs added, those that replaced a copy imported by an earlier
    psyk (same place in the file, same numbers, now corrected), and how many were already in the store."""

    imported: list[dict] = field(default_factory=list)
    corrected: list[dict] = field(default_factory=list)
    skipped: int = 0


def _identity(legacy: dict) -> tuple:
    return legacy.get("key"), legacy.get("threshold"), legacy.get("index")


def _earlier_copy(candidates: list[Entry], doc: dict) -> Entry | None:
    """The run imported by an earlier psyk that ``doc`` re-imports: same place in the file and
    the same results of every kind earlier rules converted the same way (at least one)."""
    mine = {kind: doc["results"].get(kind) for kind in UNCHANGED_KINDS}
    if not any(value is not None for value in mine.values()):
        return None
    for entry in candidates:
        theirs = entry.load(UNCHANGED_KINDS)["results"]
        if all(theirs.get(kind) == value for kind, value in mine.items()):
            return entry
    return None


def import_legacy(
    store: Store,
    files: Sequence[str | Path],
    progress: Callable[[int, int], None] | None = None,
    *,
    now: datetime | None = None,
) -> ImportOutcome:
    """Import every run of ``files`` in one write; runs already imported (same digest) are
    skipped, and a run imported by an earlier psyk's rules is replaced by its corrected
    import (keeping its id). Every file is validated before anything is written. ``now``
    (default: the clock) stamps the imported runs and their ids."""
    docs = [doc for file in files for doc in read_legacy(file, progress, now=now)]
    outcome = ImportOutcome()
    with store.storage.transaction() as transaction:
        seen = {(entry.summary.get("legacy") or {}).get("digest") for entry in transaction.entries}
        taken = {entry.run_id for entry in transaction.entries}
        earlier: dict[tuple, list[Entry]] = defaultdict(list)
        for entry in transaction.entries:
            legacy = entry.summary.get("legacy")
            if entry.summary.get("source") == "legacy" and isinstance(legacy, dict) and "importer" not in legacy:
                earlier[_identity(legacy)].append(entry)
        stamp = utc_now(now)
        for doc in docs:
            if doc["legacy"]["digest"] in seen:
                outcome.skipped += 1
                continue
            seen.add(doc["legacy"]["digest"])
            doc.update(updated_at=stamp, finished_at=stamp)
            old = _earlier_copy(earlier[_identity(doc["legacy"])], doc)
            if old is not None:
                earlier[_identity(doc["legacy"])].remove(old)
                doc.update(id=old.run_id, created_at=old.summary.get("created_at") or stamp)
                transaction.put(doc, old.doc_id)
                outcome.corrected.append(doc)
                continue
            while doc["id"] in taken:  # thousands of ids made in one second can collide
                doc["id"] = new_run_id(now)
            taken.add(doc["id"])
            doc["created_at"] = stamp
            transaction.put(doc)
            outcome.imported.append(doc)
    return outcome
