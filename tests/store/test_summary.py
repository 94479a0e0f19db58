"""The headline numbers list-experiments shows come from the right result."""

from psykedelic_cli.store.summary import headline, run_summary


def _row(accuracy, compression):
    return {"accuracy": accuracy, "compression_ratio": compression}


def test_headline_prefers_final_then_trained_mode_then_baseline():
    doc = {"config": {"mode": "det"}, "results": {"performance": {"None": _row(0.9, 0.0), "det": _row(0.8, 0.5)}}}
    assert headline(doc) == {"accuracy": 0.8, "compression_ratio": 0.5, "source": "det"}
    doc["results"]["final"] = {**_row(0.85, 0.4), "mode": "det"}
    assert headline(doc) == {"accuracy": 0.85, "compression_ratio": 0.4, "source": "final"}
    baseline_only = {
        "config": {"mode": None}, "results": {"performance": {"None": _row(0.9, 0.0), "det": _row(0.8, 0.5)}}
    }
    assert headline(baseline_only) == {"accuracy": 0.9, "compression_ratio": 0.0, "source": "None"}
    assert headline({"config": {}, "results": {}}) == {"accuracy": None, "compression_ratio": None, "source": None}


def test_summary_keeps_identity_config_and_legacy_digest():
    doc = {"id": "r", "status": "completed", "source": "legacy", "created_at": "a", "updated_at": "b",
           "config": {"model": "m"}, "results": {}, "legacy": {"digest": "abc"}, "host": {"hostname": "h"}}
    assert run_summary(doc) == {
        "id": "r", "status": "completed", "source": "legacy", "created_at": "a", "updated_at": "b",
        "config": {"model": "m"}, "headline": {"accuracy": None, "compression_ratio": None, "source": None},
        "legacy": {"digest": "abc"},
    }
