"""Runs in the store: new run documents, and the query API every command uses."""

from __future__ import annotations

import contextlib
import functools
import gc
import math
import os
import platform
import secrets
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Iterable, Sequence

from psykedelic_cli import __version__
from psykedelic_cli.errors import PsykError
from psykedelic_cli.store.liveness import process_identity
from psykedelic_cli.store.migrations import migrate_run
from psykedelic_cli.store.schema import (
    CONFIG_FIELDS,
    RECORD_CONFIG_FIELDS,
    RESULT_KINDS,
    SCHEMA_VERSION,
    SENSITIVITY_CONFIG_FIELDS,
    STATUSES,
)
from psykedelic_cli.store.storage import Entry, RunStorage

SOURCES = ("train", "record", "sensitivity", "legacy")
FINAL_STATUSES = ("completed", "failed", "interrupted")
VERSIONED_PACKAGES = (
    "tensorflow", "jax", "jaxlib", "torch", "keras", "numpy", "scipy", "scikit-learn", "matplotlib", "tinydb",
    "typer", "rich",
)
_FIXED_FIELDS = ("id", "schema_version")


def _moment(now: datetime | None) -> datetime:
    """``now`` in UTC (the clock when None). Time is an argument so that callers and tests can pin it."""
    if now is None:
        return datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise PsykError(f"a time stamp needs a time zone, got the naive {now.isoformat()}")
    return now.astimezone(timezone.utc)


def utc_now(now: datetime | None = None) -> str:
    """``now`` (default: the clock) as ISO 8601 in UTC, to the millisecond (several updates
    per second stay ordered)."""
    return _moment(now).isoformat(timespec="milliseconds")


def new_run_id(now: datetime | None = None) -> str:
    """A sortable id unique across machines: UTC time (``now``, default the clock) to the
    second plus 24 random bits."""
    return f"{_moment(now):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def host_info() -> dict:
    """Where a run runs: the machine, and this process (:func:`.liveness.process_identity`,
    so that a run whose process is gone can be told from a live one)."""
    return {
        **process_identity(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }


@functools.cache
def package_versions() -> dict:
    """Installed versions from package metadata (never imports a backend); None if absent."""
    versions = {"psykedelic": __version__}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def new_run_document(config: dict, *, source: str = "train", now: datetime | None = None) -> dict:
    """A fresh "running" run: every config key of its source (``config_fields``; None when not
    given) plus extras.

    ``now`` (an aware datetime; default: the clock) stamps its id, ``created_at`` and ``updated_at``.
    """
    if not isinstance(config, dict):
        raise PsykError(f"a run config must be a dict of config fields, not {type(config).__name__}")
    if source not in SOURCES:
        raise PsykError(f"run source {source!r} is not one of {', '.join(SOURCES)}")
    moment = _moment(now)
    stamp = utc_now(moment)
    return {
        "id": new_run_id(moment),
        "schema_version": SCHEMA_VERSION,
        "status": "running",
        "error": None,
        "source": source,
        "created_at": stamp,
        "updated_at": stamp,
        "finished_at": None,
        "host": host_info(),
        "versions": dict(package_versions()),
        "config": {**{name: None for name in config_fields(source)}, **config},
        "results": {},
    }


def config_fields(source: str) -> tuple[str, ...]:
    """The config keys a run of ``source`` stores: ``RECORD_CONFIG_FIELDS`` for ``record``,
    ``SENSITIVITY_CONFIG_FIELDS`` for ``sensitivity``, else ``CONFIG_FIELDS``."""
    return {"record": RECORD_CONFIG_FIELDS, "sensitivity": SENSITIVITY_CONFIG_FIELDS}.get(source, CONFIG_FIELDS)


def _same(wanted, actual) -> bool:
    numbers = (int, float)
    if (
        isinstance(wanted, numbers) and isinstance(actual, numbers)
        and not isinstance(wanted, bool) and not isinstance(actual, bool)
    ):
        return math.isclose(wanted, actual, rel_tol=1e-9)
    return wanted == actual


def config_matches(config: dict, filters: dict) -> bool:
    """Equality on each filter (floats within rel. 1e-9); a list or tuple means "any of"."""
    for name, wanted in filters.items():
        choices = wanted if isinstance(wanted, (list, tuple)) else (wanted,)
        if not any(_same(choice, config.get(name)) for choice in choices):
            return False
    return True


def resolve(entries: Sequence[Entry], id_or_prefix: str, path: Path) -> Entry:
    """The entry whose run id is ``id_or_prefix`` or the only one starting with it."""
    for entry in entries:
        if entry.run_id == id_or_prefix:
            return entry
    matches = [e for e in entries if e.run_id.startswith(id_or_prefix)] if id_or_prefix else []
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise PsykError(f"no run {id_or_prefix!r} in {path} ({len(entries)} runs; see `psyk list-experiments`)")
    shown = ", ".join(sorted(e.run_id for e in matches)[:10])
    more = f" and {len(matches) - 10} more" if len(matches) > 10 else ""
    raise PsykError(f"run id prefix {id_or_prefix!r} is ambiguous: it matches {shown}{more}")


def updated(doc: dict, *, status=None, error=None, results=None, now: datetime | None = None, **fields) -> dict:
    """``doc`` changed in place as ``Store.update_run`` changes a stored run: top-level ``fields``,
    ``error``, ``results`` merged kind by kind, ``updated_at`` stamped (``now``), and ``finished_at``
    with a final ``status``."""
    doc.update(fields)
    if error is not None:
        doc["error"] = error
    if results:
        doc["results"] = {**doc.get("results", {}), **results}
    doc["updated_at"] = utc_now(now)
    if status is not None:
        doc["status"] = status
        if status in FINAL_STATUSES:
            doc["finished_at"] = doc["updated_at"]
    return doc


class Store:
    """The experiment store at ``path``: nothing is created before the first write, and
    reading a missing store sees zero runs. Runs are returned in id (= time) order."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.storage = RunStorage(self.path)

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # ---------------------------------------------------------------- writing

    def add_run(self, doc: dict) -> str:
        """Store a new run (its id assigned when missing); returns the id."""
        return self.add_runs([doc])[0]

    def add_runs(self, docs: Iterable[dict]) -> list[str]:
        """Store several new runs in one write; PsykError (nothing written) if an id exists."""
        with self.storage.transaction() as transaction:
            taken = {entry.run_id for entry in transaction.entries}
            ids = []
            for doc in docs:
                _check_document(doc)
                doc.setdefault("id", new_run_id())
                doc.setdefault("schema_version", SCHEMA_VERSION)
                doc.setdefault("status", "running")
                doc.setdefault("results", {})
                migrate_run(doc)
                if doc["id"] in taken:
                    raise PsykError(f"run {doc['id']} is already in {self.path}")
                taken.add(doc["id"])
                transaction.put(doc)
                ids.append(doc["id"])
            return ids

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        error: str | None = None,
        results: dict | None = None,
        now: datetime | None = None,
        **top_level_fields,
    ) -> dict:
        """Change one run: ``results`` is merged key by key into its results; stamps
        ``updated_at`` (and ``finished_at`` on completed/failed/interrupted) with ``now``
        (default: the clock). Returns it."""
        if status is not None and status not in STATUSES:
            raise PsykError(f"run status {status!r} is not one of {', '.join(STATUSES)}")
        fixed = sorted(set(top_level_fields) & set(_FIXED_FIELDS))
        if fixed:
            raise PsykError(f"a run's {', '.join(fixed)} cannot be replaced by update_run")
        if results is not None and not isinstance(results, dict):
            raise PsykError(f"results must be a dict of result kinds, not {type(results).__name__}")
        with self.storage.transaction() as transaction:
            entry = resolve(transaction.entries, run_id, self.path)
            doc = updated(entry.load(), status=status, error=error, results=results, now=now, **top_level_fields)
            transaction.put(doc, entry.doc_id)
            return doc

    def delete_runs(self, ids: Iterable[str]) -> int:
        """Delete the runs with these ids or unique prefixes (all or none); returns the count."""
        with self.storage.transaction() as transaction:
            doomed = {resolve(transaction.entries, run_id, self.path).doc_id for run_id in ids}
            transaction.remove(doomed)
            return len(doomed)

    # ---------------------------------------------------------------- reading

    def get_run(self, id_or_prefix: str, *, kinds: Sequence[str] | None = None) -> dict:
        """The run with this id or unique id prefix (PsykError naming the candidates if
        ambiguous); ``kinds`` limits the result kinds read, as in :meth:`runs`."""
        with self.storage.snapshot() as snapshot:
            return resolve(snapshot.entries, id_or_prefix, self.path).load(kinds)

    def summaries(self, status: str | None = None, **config_filters) -> list[dict]:
        """The index summaries (id, status, timestamps, config, headline) of matching runs."""
        with self.storage.snapshot() as snapshot:
            return [entry.summary for entry in self._matching(snapshot.entries, status, config_filters)]

    def runs(self, status: str | None = None, *, kinds: Sequence[str] | None = None, **config_filters) -> list[dict]:
        """Matching run documents. ``kinds`` limits the result kinds read (a report needing
        only ``performance`` need not parse every run's per-epoch history)."""
        if kinds is not None:
            unknown = sorted(set(kinds) - set(RESULT_KINDS) - {"legacy"})
            if unknown:
                raise PsykError(
                    f"unknown result kind(s) {', '.join(unknown)}; known: {', '.join(RESULT_KINDS)}, legacy"
                )
        with self.storage.snapshot() as snapshot, _collector_paused():
            return [entry.load(kinds) for entry in self._matching(snapshot.entries, status, config_filters)]

    def _matching(self, entries: Sequence[Entry], status: str | None, config_filters: dict) -> list[Entry]:
        if status is not None and status not in STATUSES:
            raise PsykError(f"run status {status!r} is not one of {', '.join(STATUSES)}")
        filters = {name: value for name, value in config_filters.items() if value is not None}
        fields = [*CONFIG_FIELDS, *RECORD_CONFIG_FIELDS, *SENSITIVITY_CONFIG_FIELDS]
        known = set(fields).union(*(entry.summary["config"] for entry in entries))
        unknown = sorted(set(filters) - known)
        if unknown:
            allowed = ", ".join(dict.fromkeys(fields))
            raise PsykError(f"unknown config field(s) {', '.join(unknown)}; filter on {allowed}")
        matching = [
            entry for entry in entries
            if (status is None or entry.summary["status"] == status)
            and config_matches(entry.summary["config"], filters)
        ]
        return sorted(matching, key=lambda entry: entry.run_id)


@contextlib.contextmanager
def _collector_paused():
    """Pause Python's cyclic garbage collector while documents are parsed.

    Parsing builds millions of containers and none is garbage, but each allocation burst
    triggers collections that scan them all again: pausing it reads 1,000 large runs about
    a third faster. Restores the collector's previous state.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _check_document(doc) -> None:
    if not isinstance(doc, dict):
        raise PsykError(f"a run document must be a dict, not {type(doc).__name__}")
    for name, kind in (("id", str), ("config", dict), ("results", dict)):
        if name in doc and not isinstance(doc[name], kind):
            raise PsykError(f"run document field {name!r} must be a {kind.__name__}, not {type(doc[name]).__name__}")
    if doc.get("status", "running") not in STATUSES:
        raise PsykError(f"run status {doc['status']!r} is not one of {', '.join(STATUSES)}")
