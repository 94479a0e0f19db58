"""Importing the original psykedelic's ``experiments.json`` (its ExperimentRecorder) as runs.

The original appended one entry per run to nested lists::

    chart_type -> "model:optimizer:loss:lr:epochs:batch_size:init_mode:dataset:l1"
               -> threshold ("1e-04") -> [entry, ...]          (most charts)
               -> threshold -> training mode | history interval -> [entry, ...]

so run i of a (key, threshold) is entry i of each of its lists. How runs are rebuilt:

* performance, eig_stats, set_analysis and pruning_per_layer[compared mode]: entry i
  belongs to run i of the (key, threshold).
* learning_curve and eig_analysis (by training mode) and the two history charts (by
  history interval) are flattened in file order (sub-keys in order, then their entries)
  and entry i goes to run i. Only when such a flattened list has exactly as many entries
  as the (key, threshold) has runs is its sub-key taken as ``config.mode`` /
  ``config.history_interval`` (this assumes runs were recorded sub-key after sub-key, as
  a sweep over modes does); otherwise those stay null and the sub-key is still recorded
  in ``doc["legacy"]["sub_keys"]``.
* pruning_per_threshold has no threshold level: entry i goes to the i-th run of the key
  in ascending threshold order (extra entries become runs of their own).
* unknown chart types, keyed by model key, are kept verbatim under
  ``results["legacy"][chart]`` of the key's first run.

Nothing is dropped: the eig_stats entries are converted to the schema's totals and also
kept verbatim under ``results["legacy"]["eig_stats"]`` (they hold per-layer counts the
totals lose). Each run records ``doc["legacy"] = {"file", "key", "threshold", "index",
"sub_keys", "digest"}``; the digest (SHA-256 of key, threshold, index and results)
makes a second import of the same entries add nothing, even from a copy of the file
with another name or with more runs appended.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Sequence

from psykedelic_cli.errors import PsykError
from psykedelic_cli.store.runs import Store, new_run_document, new_run_id, utc_now
from psykedelic_cli.store.schema import BASE_CRITERIA, BASELINE, EIG_CRITERIA

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


def _numbers(value, where: _Path, length: int | None = None) -> list:
    values = [_number(v, where / i) for i, v in enumerate(_list(value, where))]
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
    row = {name: _number(values.get(name), where / name) for name in ("accuracy", "precision", "recall")}
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


def convert_learning_curve(entry: dict, where: _Path) -> dict:
    """A Keras ``History.history`` dict -> parallel per-epoch lists (epochs counted from 1)."""
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
        "stage": blank,
        **curves,
    }


def convert_performance_history(entry: dict, interval: int, where: _Path) -> dict[int, dict]:
    """Per-mode metric lists, one value per step -> {epoch: {mode: performance row}}."""
    params = _object(entry.get("param_count"), where / "param_count")
    metrics = {name: _object(entry.get(name, {}), where / name) for name in PERFORMANCE_METRICS}
    steps = None
    for name, per_mode in {"param_count": params, **metrics}.items():
        for mode, values in per_mode.items():
            values = _numbers(values, where / name / mode, steps)
            steps = len(values)
    history: dict[int, dict] = {}
    for step in range(steps or 0):
        baseline = params[BASELINE][step] if BASELINE in params else None
        rows = {}
        for mode in params:
            active = params[mode][step]
            rows[mode] = {
                **{
                    name: metrics[name][mode][step] if mode in metrics[name] else None
                    for name in ("accuracy", "precision", "recall")
                },
                "active_params": active,
                "total_params": baseline,
                "compression_ratio": 1 - active / baseline if baseline else None,
                "score": metrics["score"][mode][step] if mode in metrics["score"] else None,
                "alive_kernels": None,
                "total_kernels": None,
            }
        history[step * interval] = rows
    return history


def convert_pruning_per_layer_history(entry: dict, interval: int, where: _Path) -> dict[int, dict]:
    """Per-mode, per-step active parameters per layer -> {epoch: {mode: per-layer list}}."""
    names = _layer_names(entry, where)
    total = _numbers(entry.get("total_params"), where / "total_params", len(names))
    history: dict[int, dict] = defaultdict(dict)
    for mode, steps in _object(entry.get("active_params"), where / "active_params").items():
        for step, active in enumerate(_list(steps, where / "active_params" / mode)):
            active = _numbers(active, where / "active_params" / mode / step, len(names))
            history[step * interval][mode] = _layer_rows(names, active, total)
    return dict(history)


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


def _line_up(group: _Group, chart: str, runs: int) -> list[str] | None:
    """The sub-key of each run from a sub-keyed chart, when its count matches the runs."""
    entries = group.sub_keyed.get(chart, [])
    return [sub_key for sub_key, _, _ in entries] if entries and len(entries) == runs else None


def _build_run(group: _Group, index: int, runs: int, file: Path) -> dict:
    config = key_config(group.key, _Path(file))
    sub_keys = {}
    results: dict = {}
    performance = group.lists.get("performance", [])
    if index < len(performance):
        results["performance"] = convert_performance(performance[index][1], performance[index][0])
    per_layer = {
        mode: convert_pruning_per_layer(e[index][1], e[index][0])
        for mode, e in group.per_mode.items()
        if index < len(e)
    }
    if per_layer:
        results["pruning_per_layer"] = per_layer
    eig_stats = group.lists.get("eig_stats", [])
    if index < len(eig_stats):
        results["eig_stats"] = convert_eig_stats(eig_stats[index][1], eig_stats[index][0])
        results.setdefault("legacy", {})["eig_stats"] = eig_stats[index][1]
    set_analysis = group.lists.get("set_analysis", [])
    if index < len(set_analysis):
        results["set_analysis"] = convert_set_analysis(set_analysis[index][1], set_analysis[index][0])
    history: dict[str, dict[int, dict]] = {"performance": {}, "pruning_per_layer": {}}
    for chart, entries in group.sub_keyed.items():
        if index >= len(entries):
            continue
        sub_key, where, entry = entries[index]
        sub_keys[chart] = sub_key
        if chart == "learning_curve":
            results["learning_curve"] = convert_learning_curve(entry, where)
        elif chart == "eig_analysis":
            results.setdefault("legacy", {})["eig_analysis"] = entry
        else:
            convert = (
                convert_performance_history if chart == "performance_history" else convert_pruning_per_layer_history
            )
            kind = "performance" if chart == "performance_history" else "pruning_per_layer"
            history[kind].update(convert(entry, int(float(sub_key)), where))
    for kind, result_kind in (("performance", "history"), ("pruning_per_layer", "per_layer_history")):
        if history[kind]:
            results[result_kind] = [{"epoch": epoch, kind: history[kind][epoch]} for epoch in sorted(history[kind])]
    modes = _line_up(group, "learning_curve", runs) or _line_up(group, "eig_analysis", runs)
    intervals = _line_up(group, "performance_history", runs) or _line_up(group, "pruning_per_layer_history", runs)
    compared = list(results.get("performance") or group.per_mode)
    config.update(
        mode=modes[index] if modes and modes[index] != BASELINE else None,
        history_interval=int(float(intervals[index])) if intervals else None,
        compare=[mode for mode in compared if mode != BASELINE] or None,
        threshold=float(group.threshold) if group.threshold is not None else None,
    )
    doc = new_run_document(config, source="legacy")
    doc.update(status="completed", finished_at=doc["created_at"], results=results)
    doc["legacy"] = {
        "file": file.name, "key": group.key, "threshold": group.threshold, "index": index, "sub_keys": sub_keys
    }
    return doc


def _threshold_order(doc: dict) -> tuple:
    threshold = doc["config"]["threshold"]
    return (threshold is None, threshold or 0.0, doc["legacy"]["index"])


def _digest(doc: dict) -> str:
    identity = {name: doc["legacy"][name] for name in ("key", "threshold", "index")}
    text = json.dumps({**identity, "results": doc["results"]}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def read_legacy(file: str | Path, progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """The runs of one ``experiments.json``, fully validated (PsykError with the JSON path
    of the first problem). ``progress(done, total)`` is called after each run is built."""
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
    slots = [(group, i, group.run_count()) for group in groups.values() for i in range(group.run_count())]
    by_key = defaultdict(list)
    docs = []
    for done, (group, index, runs) in enumerate(slots, 1):
        doc = _build_run(group, index, runs, file)
        by_key[group.key].append(doc)
        docs.append(doc)
        if progress:
            progress(done, len(slots))
    for key, entries in per_threshold.items():
        runs = sorted(by_key[key], key=_threshold_order)
        for i, (where, entry) in enumerate(entries):
            if i >= len(runs):
                extra = _build_run(_Group(key, None), i, 0, file)
                by_key[key].append(extra)
                docs.append(extra)
                runs.append(extra)
            runs[i]["results"]["pruning_per_threshold"] = convert_pruning_per_threshold(entry, where)
    for key, charts in unknown.items():
        first = min(by_key[key], key=_threshold_order)
        first["results"].setdefault("legacy", {}).update(charts)
    for doc in docs:
        doc["legacy"]["digest"] = _digest(doc)
    return docs


@dataclass
class ImportOutcome:
    """What one import did: the runs added, and how many were already in the store."""

    imported: list[dict] = field(default_factory=list)
    skipped: int = 0


def import_legacy(
    store: Store,
    files: Sequence[str | Path],
    progress: Callable[[int, int], None] | None = None,
    *,
    now: datetime | None = None,
) -> ImportOutcome:
    """Import every run of ``files`` in one write; runs already imported (same digest) are
    skipped. Every file is validated before anything is written. ``now`` (default: the
    clock) stamps the imported runs."""
    docs = [doc for file in files for doc in read_legacy(file, progress)]
    outcome = ImportOutcome()
    with store.storage.transaction() as transaction:
        seen = {(entry.summary.get("legacy") or {}).get("digest") for entry in transaction.entries}
        taken = {entry.run_id for entry in transaction.entries}
        stamp = utc_now(now)
        for doc in docs:
            if doc["legacy"]["digest"] in seen:
                outcome.skipped += 1
                continue
            seen.add(doc["legacy"]["digest"])
            while doc["id"] in taken:  # thousands of ids made in one second can collide
                doc["id"] = new_run_id(now)
            taken.add(doc["id"])
            doc.update(created_at=stamp, updated_at=stamp, finished_at=stamp)
            transaction.put(doc)
            outcome.imported.append(doc)
    return outcome
