"""What ``list-experiments`` shows of a run, kept in the store's index so listing a
store never parses the runs themselves."""

from __future__ import annotations

from psykedelic_cli.store.schema import BASELINE


def headline(doc: dict) -> dict:
    """The run's headline accuracy and compression ratio, and where they come from.

    ``results.final`` when present, else the performance row of the mode trained with,
    else the unpruned ``"None"`` baseline (of the comparison, else of a sensitivity run);
    ``{"accuracy": None, ...}`` when none exists.
    """
    results = doc.get("results") or {}
    performance = results.get("performance") or {}
    sensitivity = results.get("sensitivity") if isinstance(results.get("sensitivity"), dict) else {}
    mode = (doc.get("config") or {}).get("mode")
    for source, row in (
        ("final", results.get("final")), (mode, performance.get(mode)), (BASELINE, performance.get(BASELINE)),
        (BASELINE, sensitivity.get("baseline")),
    ):
        if isinstance(row, dict) and source is not None:
            return {
                "accuracy": row.get("accuracy"), "compression_ratio": row.get("compression_ratio"), "source": source
            }
    return {"accuracy": None, "compression_ratio": None, "source": None}


def run_summary(doc: dict) -> dict:
    """The index entry of a run: identity, status, timestamps, config and headline."""
    return {
        "id": doc["id"],
        "status": doc.get("status"),
        "source": doc.get("source"),
        "created_at": doc.get("created_at"),
        "updated_at": doc.get("updated_at"),
        "config": doc.get("config") or {},
        "headline": headline(doc),
        "legacy": doc.get("legacy"),
    }
