"""The store file: concurrent writers, crashes mid-write, corrupt files, TinyDB compatibility."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tinydb import Query, TinyDB

from psykedelic_cli.errors import PsykError
from psykedelic_cli.store import Store
from psykedelic_cli.store.schema import SCHEMA_VERSION
from psykedelic_cli.store.storage import RunStorage


def _temporaries(path):
    return sorted(path.parent.glob(f".{path.name}.*.tmp"))


def _spawn(code: str, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)])


WRITER = """
    import sys
    from psykedelic_cli.store import Store, new_run_document
    from psykedelic_cli.store.storage import RunStorage

    path, worker, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = Store(path)
    for i in range(count):
        doc = new_run_document({"model": f"worker{worker}", "seed": i})
        doc["results"]["learning_curve"] = {"loss": [0.5] * 2000}
        run_id = store.add_run(doc)
        store.update_run(run_id, status="completed", results={"final": {"accuracy": i}})
        # A read-modify-write of one shared counter: lost updates would show in its total.
        storage = RunStorage(path)
        with storage.transaction() as transaction:
            entry = next(e for e in transaction.entries if e.summary["config"]["model"] == "counter")
            counter = entry.load()
            counter["config"]["seed"] += 1
            transaction.put(counter, entry.doc_id)
"""


def test_four_processes_writing_at_once_keep_every_run(tmp_path):
    path = tmp_path / "store.json"
    Store(path).add_run({"config": {"model": "counter", "seed": 0}})
    writers = [_spawn(WRITER, path, worker, 15) for worker in range(4)]
    assert [writer.wait(timeout=300) for writer in writers] == [0, 0, 0, 0]
    store = Store(path)
    runs = store.runs(status="completed")
    assert len(runs) == 60
    assert {(run["config"]["model"], run["config"]["seed"]) for run in runs} == {
        (f"worker{w}", i) for w in range(4) for i in range(15)
    }
    assert all(run["results"]["final"]["accuracy"] == run["config"]["seed"] for run in runs)
    assert store.runs(model="counter")[0]["config"]["seed"] == 60
    assert _temporaries(path) == []


KILLED_WRITER = """
    import sys
    from psykedelic_cli.store import Store, new_run_document

    store = Store(sys.argv[1])
    for i in range(10_000):
        doc = new_run_document({"model": "big", "seed": i})
        doc["results"]["learning_curve"] = {"loss": [float(i)] * 200_000}
        store.add_run(doc)
"""


def _kill_mid_write(path, writes_before_kill: int, wait_until) -> bool:
    """Start a writer and SIGKILL it while its temporary file exists; True if it died
    mid-write (under heavy load the write may finish between looking and killing)."""
    writer = _spawn(KILLED_WRITER, path)
    try:
        wait_until(lambda: len(Store(path).summaries()) >= writes_before_kill and _temporaries(path),
                   interval=0.002, what=f"the writer to start write {writes_before_kill + 1}")
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait()
    assert writer.returncode == -signal.SIGKILL
    return bool(_temporaries(path))


@pytest.mark.race
@pytest.mark.parametrize("writes_before_kill", [0, 2, 5])
def test_a_writer_killed_mid_write_leaves_a_loadable_store(tmp_path, writes_before_kill, wait_until):
    path = tmp_path / "store.json"
    assert any(_kill_mid_write(path, writes_before_kill, wait_until) for _ in range(5)), "never killed mid-write"
    runs = Store(path).runs()
    assert len(runs) >= writes_before_kill
    for run in runs:
        assert run["results"]["learning_curve"]["loss"] == [float(run["config"]["seed"])] * 200_000
    # The next write clears what the killed writer left behind.
    Store(path).add_run({"config": {"model": "after"}})
    assert _temporaries(path) == []
    assert len(Store(path).runs()) == len(runs) + 1


CORRUPT = {
    "not JSON": b'{"meta":{"1":{"format": oops',
    "not an object": b"[1, 2, 3]",
    "runs not an object": b'{"runs": [1, 2]}',
    "a run without id": b'{"runs": {"1": {"status": "completed"}}}',
    "a foreign table": b'{"runs": {}, "notes": {"1": {"text": "mine"}}}',
    "a string doc id": b'{"runs": {"first": {"id": "x"}}}',
    "a repeated run id": b'{"runs": {"1": {"id": "x"}, "2": {"id": "x"}}}',
}


@pytest.mark.parametrize("content", CORRUPT.values(), ids=CORRUPT.keys())
def test_a_corrupt_store_is_refused_and_left_byte_for_byte(tmp_path, content):
    path = tmp_path / "store.json"
    path.write_bytes(content)
    store = Store(path)
    attempts = (store.runs, store.summaries, lambda: store.add_run({"config": {}}), lambda: store.delete_runs(["x"]))
    for attempt in attempts:
        with pytest.raises(PsykError, match=str(path)):
            attempt()
    assert path.read_bytes() == content
    assert _temporaries(path) == []


def test_a_truncated_store_is_refused(tmp_path, make_run):
    path = tmp_path / "store.json"
    Store(path).add_runs([make_run(), make_run()])
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) * 2 // 3])
    with pytest.raises(PsykError, match=rf"store {path} is not valid JSON .*left untouched"):
        Store(path).add_run(make_run())
    assert path.read_bytes() == whole[: len(whole) * 2 // 3]


def test_a_store_from_a_newer_psyk_is_refused(tmp_path, make_run):
    path = tmp_path / "store.json"
    Store(path).add_run(make_run())
    newer = path.read_bytes().replace(b'"schema_version":4,"body_bytes"', b'"schema_version":7,"body_bytes"', 1)
    path.write_bytes(newer)
    with pytest.raises(PsykError, match=f"schema version 7; this psyk reads versions up to {SCHEMA_VERSION}"):
        Store(path).runs()
    assert path.read_bytes() == newer


def test_the_file_is_plain_tinydb_json(tmp_path, make_run):
    path = tmp_path / "store.json"
    ids = Store(path).add_runs([make_run(), make_run(dataset="cifar10")])
    tables = json.loads(path.read_bytes())
    assert set(tables) == {"meta", "runs"}
    assert tables["meta"]["1"]["schema_version"] == SCHEMA_VERSION
    plain = TinyDB(path, access_mode="r")
    assert sorted(doc["id"] for doc in plain.table("runs").all()) == sorted(ids)
    assert plain.table("runs").search(Query().config.dataset == "cifar10")[0]["id"] == ids[1]
    plain.close()


def test_a_store_rewritten_by_plain_tinydb_is_read_and_rewritten_in_layout(tmp_path, make_run):
    path = tmp_path / "store.json"
    first = make_run()
    db = TinyDB(path)  # TinyDB's own JSONStorage, one line
    db.table("runs").insert(first)
    db.close()
    store = Store(path)
    assert store.get_run(first["id"][:17])["results"] == first["results"]
    second = store.add_run(make_run(dataset="cifar10"))
    assert path.read_bytes().startswith(b'{"meta":{"1":{"format":"psyk-store"')
    assert [run["id"] for run in store.runs()] == sorted([first["id"], second])


def test_an_edit_that_changes_the_size_is_seen(tmp_path, make_run):
    path = tmp_path / "store.json"
    Store(path).add_run(make_run(dataset="digits"))
    path.write_bytes(path.read_bytes().replace(b'"dataset":"digits"', b'"dataset":"cifar100"'))
    store = Store(path)
    assert [s["config"]["dataset"] for s in store.summaries()] == ["cifar100"]
    assert len(store.runs(dataset="cifar100")) == 1


def test_tinydb_through_our_storage(tmp_path, make_run):
    path = tmp_path / "store.json"
    run = make_run()
    storage_db = TinyDB(path, storage=RunStorage)
    runs = storage_db.table("runs")
    with storage_db.storage.transaction():
        runs.insert(run)
        runs.update({"status": "failed"}, Query().id == run["id"])
    assert runs.get(Query().id == run["id"])["status"] == "failed"
    assert Store(path).get_run(run["id"])["status"] == "failed"
    with pytest.raises(PsykError, match="only tables 'meta' and 'runs'"):
        storage_db.table("notes").insert({"text": "x"})
    with pytest.raises(PsykError, match='every run needs a string "id"; document.s. 2 have none'):
        runs.insert({"config": {}})
    assert [doc["id"] for doc in runs.all()] == [run["id"]]


def test_a_folder_is_not_a_store(tmp_path):
    with pytest.raises(PsykError, match=f"store {tmp_path} is not a file"):
        Store(tmp_path).runs()


def test_reading_a_missing_store_creates_nothing(tmp_path):
    store = Store(tmp_path / "sub" / "store.json")
    assert store.runs() == [] and store.summaries() == []
    with pytest.raises(PsykError, match="no run 'abc'"):
        store.get_run("abc")
    assert list(tmp_path.iterdir()) == []


def test_partial_reads_return_only_the_kinds_asked_for(tmp_path, make_run):
    path = tmp_path / "store.json"
    run_id = Store(path).add_run(make_run())
    full = Store(path).get_run(run_id)
    only = Store(path).runs(kinds=["pruning_per_layer"])[0]
    assert only["results"] == {"pruning_per_layer": full["results"]["pruning_per_layer"]}
    assert {k: v for k, v in only.items() if k != "results"} == {k: v for k, v in full.items() if k != "results"}
    assert Store(path).get_run(run_id, kinds=())["results"] == {}


def test_unchanged_runs_are_copied_byte_for_byte_and_permissions_kept(tmp_path, make_run):
    path = tmp_path / "store.json"
    kept, changed = Store(path).add_runs([make_run(), make_run()])
    path.chmod(0o600)
    before = path.read_bytes()
    Store(path).update_run(changed, status="failed")
    after = path.read_bytes()
    kept_line = next(line for line in before.splitlines() if kept.encode() in line and not line.startswith(b'{"meta"'))
    assert kept_line.rstrip(b",") in after
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_failed_write_is_a_clear_error_and_changes_nothing(tmp_path, make_run, monkeypatch):
    path = tmp_path / "store.json"
    Store(path).add_run(make_run())
    before = path.read_bytes()

    def disk_full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(PsykError,
                       match=f"cannot write store {path} \\(No space left on device\\); it was left as it was"):
        Store(path).add_run(make_run())
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert _temporaries(path) == []
    (tmp_path / "a-file").write_text("")
    with pytest.raises(PsykError, match="cannot write store .*a-file/store.json"):
        Store(tmp_path / "a-file" / "store.json").add_run(make_run())


@pytest.fixture
def linked_store(tmp_path, make_run):
    """A shared store in ``shared/`` with one run, and ``work/psyk-store.json``: a relative link to it."""
    shared = tmp_path / "shared" / "store.json"
    Store(shared).add_run(make_run(model="shared"))
    link = tmp_path / "work" / "psyk-store.json"
    link.parent.mkdir()
    link.symlink_to(Path("..") / "shared" / "store.json")
    return shared, link


def _assert_written_through(shared, link, runs: int):
    assert link.is_symlink() and os.readlink(link) == str(Path("..") / "shared" / "store.json")
    assert shared.is_file() and not shared.is_symlink()
    assert len(Store(shared).summaries()) == runs
    assert sorted(p.name for p in link.parent.iterdir()) == [link.name]  # no lock, no temporary beside the link
    assert (shared.parent / "store.json.lock").is_file() and _temporaries(shared) == []


def test_every_write_through_a_symbolic_link_reaches_its_target(linked_store, make_run, tmp_path):
    from psykedelic_cli.store.merge import merge_stores

    shared, link = linked_store
    store = Store(link)
    run_id = store.add_run(make_run(model="via-link"))
    _assert_written_through(shared, link, 2)
    store.update_run(run_id, status="failed")
    assert Store(shared).get_run(run_id)["status"] == "failed"
    store.delete_runs([run_id])
    _assert_written_through(shared, link, 1)
    other = tmp_path / "other.json"
    Store(other).add_run(make_run(model="merged"))
    merge_stores(store, [other])
    _assert_written_through(shared, link, 2)
    db = TinyDB(link, storage=RunStorage)
    db.table("runs").insert(make_run(model="tinydb"))
    db.close()
    _assert_written_through(shared, link, 3)
    assert {s["config"]["model"] for s in Store(shared).summaries()} == {"shared", "merged", "tinydb"}


def test_a_link_and_its_target_share_one_lock(linked_store):
    import fcntl

    shared, link = linked_store
    assert RunStorage(link).lock_path == RunStorage(shared).lock_path == shared.parent / "store.json.lock"
    with RunStorage(link).transaction():
        fd = os.open(shared.parent / "store.json.lock", os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a writer using the target's own path waits
        finally:
            os.close(fd)


def test_a_dangling_link_creates_its_target_or_names_the_missing_folder(tmp_path, make_run):
    link = tmp_path / "psyk-store.json"
    link.symlink_to(tmp_path / "shared" / "store.json")
    with pytest.raises(PsykError, match=f"cannot write store {link}: it links to .*shared/store.json, whose folder"):
        Store(link).add_run(make_run())
    assert sorted(p.name for p in tmp_path.iterdir()) == [link.name]
    (tmp_path / "shared").mkdir()
    Store(link).add_run(make_run())
    assert link.is_symlink() and len(Store(tmp_path / "shared" / "store.json").summaries()) == 1


def _edited_by(path: Path, *command: str) -> None:
    """Edit ``path`` in place with another tool (a real process)."""
    subprocess.run([*command, str(path)], check=True)


def test_a_same_size_edit_by_another_tool_is_seen(tmp_path, make_run):
    path = tmp_path / "store.json"
    first, second = Store(path).add_runs([make_run(), make_run()])
    size = path.stat().st_size
    # sed edits each run's line, and the first summary of the index on line 1
    _edited_by(path, "sed", "-i", 's/"status":"completed"/"status":"abandoned"/')
    assert path.stat().st_size == size
    store = Store(path)
    assert [(s["id"], s["status"]) for s in store.summaries()] == [(first, "abandoned"), (second, "abandoned")]
    assert store.get_run(second)["status"] == "abandoned"
    assert store.runs(status="completed") == [] and store.summaries(status="completed") == []


@pytest.mark.parametrize("line", [1, 3], ids=["the index only", "a run only"])
def test_a_same_size_edit_of_one_line_is_seen(tmp_path, make_run, line):
    path = tmp_path / "store.json"
    run_id = Store(path).add_run(make_run(dataset="digits"))
    size = path.stat().st_size
    _edited_by(path, "sed", "-i", f'{line}s/"dataset":"digits"/"dataset":"mnist1"/')
    assert path.stat().st_size == size
    store = Store(path)
    summary, doc = store.summaries()[0], store.get_run(run_id)
    # The file's runs are the truth: an edited index is not believed, an edited run is read as edited.
    expected = "digits" if line == 1 else "mnist1"
    assert summary["config"]["dataset"] == doc["config"]["dataset"] == expected
    assert len(store.runs(dataset=expected)) == 1


def test_an_edited_store_is_rewritten_with_a_true_index_by_the_next_write(tmp_path, make_run):
    path = tmp_path / "store.json"
    first = Store(path).add_run(make_run())
    _edited_by(path, "sed", "-i", '3s/"status":"completed"/"status":"abandoned"/')
    second = Store(path).add_run(make_run())
    meta = json.loads(path.read_bytes())["meta"]["1"]
    assert [item["summary"]["status"] for item in meta["index"]] == ["abandoned", "completed"]
    assert "check" in meta and [s["id"] for s in Store(path).summaries()] == [first, second]


def _write_with(how: str, store: Store, make_run, tmp_path, clock) -> None:
    """One of every way a store is written."""
    if how == "add":
        store.add_run(make_run())
    elif how == "tinydb":
        db = TinyDB(store.path, storage=RunStorage)
        with db.storage.transaction():  # as RunStorage documents: else TinyDB's read comes first
            db.table("runs").insert(make_run())
    elif how == "merge":
        from psykedelic_cli.store.merge import merge_stores

        other = Store(tmp_path / "other.json")
        other.add_run(make_run())
        merge_stores(store, [other.path])
    else:
        from psykedelic_cli.store.liveness import mark_stale

        mark_stale(store, [], now=clock())


WRITES = ("add", "tinydb", "merge", "mark-stale")


@pytest.mark.parametrize("how", WRITES)
def test_a_store_under_a_file_names_the_file(tmp_path, make_run, clock, monkeypatch, how):
    monkeypatch.chdir(tmp_path)
    Path("afile").write_text("mine\n")
    with pytest.raises(PsykError) as raised:
        _write_with(how, Store("afile/x.json"), make_run, tmp_path, clock)
    assert str(raised.value) == "cannot write store afile/x.json: it lies under the file afile"
    with pytest.raises(PsykError, match="^cannot read store afile/x.json: it lies under the file afile$"):
        Store("afile/x.json").summaries()
    assert Path("afile").read_text() == "mine\n"


@pytest.mark.parametrize("how", WRITES)
def test_a_store_under_a_dangling_link_or_linked_under_a_file_says_so(tmp_path, make_run, clock, monkeypatch, how):
    monkeypatch.chdir(tmp_path)
    Path("afile").write_text("")
    Path("gone").symlink_to("nowhere/folder")
    Path("linked.json").symlink_to(tmp_path / "afile" / "x.json")
    with pytest.raises(PsykError, match="^cannot write store gone/x.json: it lies under gone, a link to the "
                                        "missing nowhere/folder$"):
        _write_with(how, Store("gone/x.json"), make_run, tmp_path, clock)
    with pytest.raises(PsykError, match=f"^cannot write store linked.json: it links to {tmp_path}/afile/x.json, "
                                        f"which lies under the file {tmp_path}/afile$"):
        _write_with(how, Store("linked.json"), make_run, tmp_path, clock)
    made = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("other.json"))
    assert made == ["afile", "gone", "linked.json"]


def test_a_lock_that_is_no_file_is_named(tmp_path, make_run):
    path = tmp_path / "store.json"
    (tmp_path / "store.json.lock").mkdir()
    with pytest.raises(PsykError, match=f"^cannot write store {path}: its lock {path}.lock is not a file$"):
        Store(path).add_run(make_run())
    assert not path.exists()
