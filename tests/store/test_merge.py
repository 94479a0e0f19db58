"""Merging stores from other machines: idempotent, newest copy wins, never loses a run."""

from __future__ import annotations

import pytest

from psykedelic_cli.errors import PsykError
from psykedelic_cli.store import Store
from psykedelic_cli.store.merge import merge_stores


def _counts(results):
    return [(c.added, c.updated, c.skipped) for c in results]


def test_merge_adds_and_is_idempotent(tmp_path, make_run):
    here, there = Store(tmp_path / "here.json"), Store(tmp_path / "there.json")
    here.add_runs([make_run(dataset="digits")])
    there.add_runs([make_run(dataset="cifar10"), make_run(dataset="cifar100")])
    assert _counts(merge_stores(here, [there.path])) == [(2, 0, 0)]
    merged = {run["id"]: run for run in here.runs()}
    assert sorted(run["config"]["dataset"] for run in merged.values()) == ["cifar10", "cifar100", "digits"]
    for run in there.runs():
        assert merged[run["id"]] == run
    before = here.path.read_bytes()
    assert _counts(merge_stores(here, [there.path])) == [(0, 0, 2)]
    assert len(here.runs()) == 3
    assert [s["id"] for s in Store(tmp_path / "here.json").summaries()] == [s["id"] for s in here.summaries()]
    assert here.path.read_bytes() == before  # nothing changed, nothing rewritten


def test_newer_copies_replace_older_ones_never_the_reverse(tmp_path, make_run, clock):
    here, there = Store(tmp_path / "here.json"), Store(tmp_path / "there.json")
    run = make_run(status="running")
    here.add_run(dict(run))
    there.add_run(dict(run))
    there.update_run(run["id"], status="completed", results={"final": {"accuracy": 0.7}}, now=clock())
    assert _counts(merge_stores(here, [there.path])) == [(0, 1, 0)]
    assert here.get_run(run["id"])["results"]["final"] == {"accuracy": 0.7}
    # Merging the other way: "there" already has the newest copy; the old copy never wins.
    here.update_run(run["id"], status="failed", error="later on this machine", now=clock())
    assert _counts(merge_stores(there, [here.path])) == [(0, 1, 0)]
    assert _counts(merge_stores(here, [there.path])) == [(0, 0, 1)]
    assert here.get_run(run["id"])["status"] == there.get_run(run["id"])["status"] == "failed"


def test_several_stores_at_once_and_itself(tmp_path, make_run):
    here = Store(tmp_path / "here.json")
    here.add_run(make_run())
    others = []
    for name in ("a.json", "b.json"):
        other = Store(tmp_path / name)
        other.add_runs([make_run(), make_run()])
        others.append(other.path)
    assert _counts(merge_stores(here, [*others, here.path])) == [(2, 0, 0), (2, 0, 0), (0, 0, 1)]
    assert len(here.runs()) == 5


def test_an_unreadable_other_store_leaves_the_target_untouched(tmp_path, make_run):
    here, good = Store(tmp_path / "here.json"), Store(tmp_path / "good.json")
    here.add_run(make_run())
    good.add_run(make_run())
    bad = tmp_path / "bad.json"
    bad.write_text('{"runs": {"1": ')
    before = here.path.read_bytes()
    with pytest.raises(PsykError, match=f"store {bad} is not valid JSON"):
        merge_stores(here, [good.path, bad])
    with pytest.raises(PsykError, match=f"no store to merge at {tmp_path / 'missing.json'}"):
        merge_stores(here, [good.path, tmp_path / "missing.json"])
    assert here.path.read_bytes() == before
    assert bad.read_text() == '{"runs": {"1": '


def test_merging_into_a_missing_store_creates_it(tmp_path, make_run):
    there = Store(tmp_path / "there.json")
    there.add_run(make_run())
    here = Store(tmp_path / "new" / "here.json")
    assert _counts(merge_stores(here, [there.path])) == [(1, 0, 0)]
    assert here.runs() == there.runs()
