"""Bringing runs from stores made on other machines into this one."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from psykedelic_cli.errors import PsykError
from psykedelic_cli.store.runs import Store
from psykedelic_cli.store.storage import Entry, open_snapshot

_OLDEST = datetime.min.replace(tzinfo=timezone.utc)


@dataclass
class MergeCounts:
    """What merging one other store did."""

    source: Path
    added: int = 0
    updated: int = 0
    skipped: int = 0


def _updated_at(summary: dict) -> datetime:
    try:
        stamp = datetime.fromisoformat(summary.get("updated_at") or "")
    except ValueError:
        return _OLDEST
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def merge_stores(store: Store, others: Sequence[str | Path]) -> list[MergeCounts]:
    """Add the runs of ``others`` to ``store`` in one write, keyed by run id.

    A run id not in the store is added; a known one is replaced only when the incoming
    run is newer (``updated_at``), else skipped, so merging twice adds nothing and no run
    is lost. Every other store is read and checked before anything is written.
    """
    with contextlib.ExitStack() as stack:
        snapshots = []
        for other in map(Path, others):
            if not other.is_file():
                raise PsykError(f"no store to merge at {other}")
            snapshot = open_snapshot(other)
            stack.callback(snapshot.close)
            snapshots.append(snapshot)
        counts = []
        with store.storage.transaction() as transaction:
            mine = {entry.run_id: entry for entry in transaction.entries}
            for snapshot in snapshots:
                tally = MergeCounts(snapshot.path)
                for incoming in snapshot.entries:
                    present = mine.get(incoming.run_id)
                    if present is not None and _updated_at(incoming.summary) <= _updated_at(present.summary):
                        tally.skipped += 1
                        continue
                    if present is None:
                        tally.added += 1
                    else:
                        tally.updated += 1
                    copy = Entry(
                        present.doc_id if present else 0, incoming.summary, incoming.doc, incoming.source, incoming.span
                    )
                    mine[incoming.run_id] = transaction.place(copy)
                counts.append(tally)
        return counts
