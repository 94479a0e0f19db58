"""The store file: a TinyDB JSON document store that several processes can share.

The file is plain JSON that TinyDB's own ``JSONStorage`` reads (tables ``meta`` and
``runs``), written in a fixed line layout so that a command needing one run, or only
the run summaries, reads a few kilobytes instead of parsing the whole file::

    {"meta":{"1":{"format":"psyk-store","schema_version":1,"body_bytes":B,"index":[...],"check":C}},
    "runs":{
    "1":{...one run document...},
    "2":{...}
    }}

Line 1 is the ``meta`` table: its ``index`` has, per run, the TinyDB doc id, where the
encoded document sits (offsets relative to the start of line 3), its CRC-32, where each
result kind sits inside it, and a small summary
(:func:`~psykedelic_cli.store.summary.run_summary`). ``body_bytes`` is the size of
everything after line 2 and ``check`` the CRC-32 of line 1 up to it. The index is used
only when the whole file is verified against it (line 1 by ``check``, every document by
its CRC-32, every byte between them by the layout), so a change made by anything else,
of whatever size, is seen: such a file, or one in any other layout (e.g. rewritten by
plain TinyDB), is parsed whole instead, and the next write restores the layout.
Verifying costs a read and a CRC-32 of the file (about 0.2 s for 420 MB), never a parse.

Safety:

* every read-modify-write holds an exclusive ``flock`` on ``<store>.lock`` (a separate
  file, because the store itself is replaced by each write);
* a write goes to a temporary file in the same directory, is fsynced and atomically
  renamed over the store, so a process killed at any moment leaves the old or the new
  store; readers therefore need no lock: an open file stays one consistent snapshot;
* a store path that is a symbolic link (e.g. ``PSYK_STORE`` pointing at a shared store)
  is written through: the lock, the temporary file and the rename are beside the link's
  target, the link itself stays, and the file keeps its permission bits and group;
* a file that cannot be parsed is refused with a message naming it, and never written;
* unchanged documents are copied byte for byte (in the kernel where possible), so a write
  costs a file copy, not a parse and re-serialisation of every run.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import json
import os
import re
import secrets
import stat
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from tinydb.storages import Storage

from psykedelic_cli.errors import PsykError
from psykedelic_cli.store.migrations import migrate_run
from psykedelic_cli.store.schema import SCHEMA_VERSION
from psykedelic_cli.store.summary import run_summary

FORMAT = "psyk-store"
META_TABLE = "meta"
RUNS_TABLE = "runs"

_HEAD_PREFIX = b'{"meta":{"1":'
_HEAD_SUFFIX = b"},\n"
_RUNS_LINE = b'"runs":{\n'
_CLOSING = b"}}\n"
_COPY_CHUNK = 1 << 24
_CHECK = re.compile(rb',"check":(\d+)\}\Z')


def _encode(value) -> str:
    return json.dumps(value, separators=(",", ":"), default=_plain)


def _plain(value):
    # NumPy scalars and arrays (from training) without importing NumPy here.
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@dataclass(frozen=True)
class Span:
    """Where an encoded run sits in a store file (offsets absolute in that file)."""

    offset: int
    length: int
    crc: int  # zlib.crc32 of the encoded document
    head: int  # length of the document's JSON before its "results" object, less the "}"
    results: Mapping[str, tuple[int, int]]  # kind -> (offset from the document start, length)


@dataclass
class Entry:
    """One run in a snapshot or transaction: in memory (``doc``) or encoded in a file."""

    doc_id: int
    summary: dict
    doc: dict | None = None
    source: Snapshot | None = None
    span: Span | None = None

    @property
    def run_id(self) -> str:
        return self.summary["id"]

    def load(self, kinds: Sequence[str] | None = None) -> dict:
        """The run document; with ``kinds``, only those result kinds are read."""
        if self.doc is not None:
            results = self.doc.get("results", {})
            return {**self.doc, "results": {k: v for k, v in results.items() if kinds is None or k in kinds}}
        fd, span, path = self.source.fd, self.span, self.source.path
        try:
            if kinds is None:
                doc = json.loads(os.pread(fd, span.length, span.offset))
            else:
                doc = json.loads(os.pread(fd, span.head, span.offset) + b"}")
                doc["results"] = {
                    kind: json.loads(os.pread(fd, length, span.offset + start))
                    for kind, (start, length) in span.results.items()
                    if kind in kinds
                }
        except ValueError as exc:
            raise PsykError(f"store {path} is damaged: run {self.run_id} cannot be parsed ({exc})") from None
        if not isinstance(doc, dict) or doc.get("id") != self.run_id:
            raise PsykError(f"store {path} is damaged: its index does not match run {self.run_id}")
        return doc


@dataclass
class Snapshot:
    """A consistent view of one store file: its runs, readable until :meth:`close`."""

    path: Path
    entries: list[Entry] = field(default_factory=list)
    fd: int | None = None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


# ---------------------------------------------------------------- reading


def open_snapshot(path: Path) -> Snapshot:
    """Open ``path`` (a missing file is an empty store) and index its runs."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return Snapshot(path)
    except OSError as exc:
        why = _misplaced(path) if exc.errno == errno.ENOTDIR else None
        raise PsykError(f"cannot read store {path}: {why or exc.strerror}") from None
    snapshot = Snapshot(path, fd=fd)
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise PsykError(f"store {path} is not a file")
        if status.st_size and not _read_index(snapshot):
            _parse_whole(snapshot)
    except BaseException:
        snapshot.close()
        raise
    return snapshot


def _read_index(snapshot: Snapshot) -> bool:
    """Index ``snapshot`` from its meta line; False when the file is not in our layout or
    differs in any byte from what the index says it holds."""
    fd, path = snapshot.fd, snapshot.path
    if os.pread(fd, len(_HEAD_PREFIX), 0) != _HEAD_PREFIX:
        return False
    with os.fdopen(os.dup(fd), "rb") as handle:  # a dup shares the offset: start at 0
        handle.seek(0)
        head = handle.readline()
        runs_line = handle.readline()
    if not head.endswith(_HEAD_SUFFIX) or runs_line != _RUNS_LINE:
        return False
    raw = head[len(_HEAD_PREFIX) : -len(_HEAD_SUFFIX)]
    check = _CHECK.search(raw)
    try:
        meta = json.loads(raw)
        if meta.get("format") != FORMAT:
            return False
        version = meta["schema_version"]
        _check_version(path, version)
        body_start = len(head) + len(runs_line)
        if version < SCHEMA_VERSION or os.fstat(fd).st_size != body_start + meta["body_bytes"]:
            return False  # older documents need migrating; a changed size means edited by hand
        if check is None or zlib.crc32(raw[: check.start()] + b"}") != int(check[1]):
            return False  # an index written before checks, or a changed meta line
        entries = [
            Entry(
                doc_id=item["doc_id"],
                summary=item["summary"],
                source=snapshot,
                span=Span(
                    offset=body_start + item["offset"],
                    length=item["length"],
                    crc=item["crc"],
                    head=item["head"],
                    results={kind: tuple(where) for kind, where in item["results"].items()},
                ),
            )
            for item in meta["index"]
        ]
        if not _body_matches(fd, body_start, entries, meta["body_bytes"]):
            return False
    except (ValueError, KeyError, TypeError, AttributeError):
        return False
    snapshot.entries = entries
    return True


def _body_matches(fd: int, body_start: int, entries: list[Entry], body_bytes: int) -> bool:
    """Whether the file after line 2 is exactly what :func:`_layout` writes for ``entries``:
    each document's key, its bytes (by CRC-32) and separator, then the closing braces."""
    position = body_start
    for i, entry in enumerate(entries):
        key = f'"{entry.doc_id}":'.encode("ascii")
        separator = b",\n" if i < len(entries) - 1 else b"\n"
        span = entry.span
        if span.offset != position + len(key):
            return False
        piece = os.pread(fd, len(key) + span.length + len(separator), position)
        if (
            len(piece) != len(key) + span.length + len(separator)
            or not piece.startswith(key)
            or not piece.endswith(separator)
            or zlib.crc32(memoryview(piece)[len(key) : len(key) + span.length]) != span.crc
        ):
            return False
        position += len(piece)
    return position + len(_CLOSING) == body_start + body_bytes and os.pread(fd, len(_CLOSING), position) == _CLOSING


def _check_version(path: Path, version) -> None:
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise PsykError(
            f"store {path} has schema version {version!r}; this psyk reads versions up to "
            f"{SCHEMA_VERSION}: upgrade psykedelic to use it"
        )


def _parse_whole(snapshot: Snapshot) -> None:
    """Index a file in any TinyDB layout by parsing all of it (migrating old documents)."""
    path = snapshot.path
    with os.fdopen(os.dup(snapshot.fd), "rb") as handle:
        handle.seek(0)
        raw = handle.read()
    try:
        tables = json.loads(raw)
    except ValueError as exc:
        raise PsykError(f"store {path} is not valid JSON ({exc}); it was left untouched") from None
    if not isinstance(tables, dict):
        raise PsykError(f"store {path} is not a TinyDB store: expected a JSON object of tables")
    unknown = sorted(name for name, table in tables.items() if name not in (META_TABLE, RUNS_TABLE) and table)
    if unknown:
        raise PsykError(
            f"store {path} has unexpected table(s) {', '.join(unknown)}; a psyk store holds "
            f"only '{META_TABLE}' and '{RUNS_TABLE}'"
        )
    meta = tables.get(META_TABLE) or {}
    if isinstance(meta, dict) and isinstance(meta.get("1"), dict) and "schema_version" in meta["1"]:
        _check_version(path, meta["1"]["schema_version"])
    runs = tables.get(RUNS_TABLE) or {}
    if not isinstance(runs, dict):
        raise PsykError(f"store {path}: table '{RUNS_TABLE}' must be an object of documents")
    seen: set[str] = set()
    for doc_id, doc in runs.items():
        where = f"store {path}: run document {doc_id!r}"
        if not doc_id.isdigit():
            raise PsykError(f"{where}: TinyDB document ids are integers")
        if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
            raise PsykError(f"{where} has no run id")
        if doc["id"] in seen:
            raise PsykError(f"{where} repeats run id {doc['id']}")
        seen.add(doc["id"])
        try:
            doc = migrate_run(doc)
        except PsykError as exc:
            raise PsykError(f"{where}: {exc}") from None
        snapshot.entries.append(Entry(int(doc_id), run_summary(doc), doc=doc))


# ---------------------------------------------------------------- writing


class Transaction:
    """The runs of a store under its exclusive lock; changes are written on success."""

    def __init__(self, entries: list[Entry]):
        self.replace_all(entries)
        self.changed = False

    @property
    def entries(self) -> list[Entry]:
        return list(self._by_doc_id.values())

    def put(self, doc: dict, doc_id: int | None = None) -> Entry:
        """Store ``doc`` under ``doc_id`` (replacing that entry) or as a new document."""
        return self.place(Entry(doc_id or 0, run_summary(doc), doc=doc))

    def place(self, entry: Entry) -> Entry:
        """Add ``entry`` (perhaps encoded in another store's file); a known doc id replaces."""
        if entry.doc_id not in self._by_doc_id:
            self._last_doc_id += 1  # as TinyDB: ids grow, a deleted id is not reused
            entry.doc_id = self._last_doc_id
        self._by_doc_id[entry.doc_id] = entry
        self.changed = True
        return entry

    def remove(self, doc_ids: set[int]) -> None:
        for doc_id in doc_ids:
            self._by_doc_id.pop(doc_id, None)
        self.changed = True

    def replace_all(self, entries: list[Entry]) -> None:
        self._by_doc_id = {entry.doc_id: entry for entry in entries}
        self._last_doc_id = max(self._by_doc_id, default=0)
        self.changed = True


def _encode_run(doc: dict) -> tuple[bytes, int, dict[str, tuple[int, int]]]:
    """A run document as JSON bytes with ``results`` last, the head length and result spans."""
    head = _encode({k: v for k, v in doc.items() if k != "results"})[:-1]
    pieces = [head, ',"results":{' if len(head) > 1 else '"results":{']
    position = sum(map(len, pieces))
    spans = {}
    for i, (kind, value) in enumerate(doc.get("results", {}).items()):
        key = ("," if i else "") + _encode(kind) + ":"
        encoded = _encode(value)
        spans[kind] = (position + len(key), len(encoded))
        pieces += [key, encoded]
        position += len(key) + len(encoded)
    pieces.append("}}")
    return "".join(pieces).encode("ascii"), len(head), spans


def _layout(entries: list[Entry]) -> list[bytes | tuple[int, int, int]]:
    """The pieces of a whole store file: bytes to write, or (fd, offset, length) to copy."""
    body: list[bytes | tuple[int, int, int]] = []
    index = []
    position = 0
    for i, entry in enumerate(entries):
        key = f'"{entry.doc_id}":'.encode("ascii")
        if entry.doc is not None:
            encoded, head, results = _encode_run(entry.doc)
            length, crc, piece = len(encoded), zlib.crc32(encoded), encoded
        else:
            span = entry.span  # verified when its snapshot was opened: copied unread
            length, crc, head, results, piece = (
                span.length, span.crc, span.head, span.results, (entry.source.fd, span.offset, span.length)
            )
        index.append({
            "doc_id": entry.doc_id, "offset": position + len(key), "length": length, "crc": crc,
            "head": head, "results": results, "summary": entry.summary,
        })
        separator = b",\n" if i < len(entries) - 1 else b"\n"
        body += [key, piece, separator]
        position += len(key) + length + len(separator)
    meta = _encode({
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "body_bytes": position + len(_CLOSING),
        "index": index,
    }).encode("ascii")
    head = _HEAD_PREFIX + meta[:-1] + b',"check":%d}' % zlib.crc32(meta) + _HEAD_SUFFIX
    return [head, _RUNS_LINE, *body, _CLOSING]


def _write_pieces(fd: int, pieces: list[bytes | tuple[int, int, int]]) -> None:
    pending: list[bytes] = []
    for piece in pieces:
        if isinstance(piece, bytes):
            pending.append(piece)
            continue
        _write_all(fd, b"".join(pending))
        pending = []
        _copy_range(*piece, fd)
    _write_all(fd, b"".join(pending))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _copy_range(src: int, offset: int, length: int, dst: int) -> None:
    """Append ``length`` bytes of ``src`` from ``offset`` to ``dst``, in the kernel when possible."""
    end = offset + length
    try:
        while offset < end:
            copied = os.copy_file_range(src, dst, end - offset, offset)
            if not copied:
                break
            offset += copied
    except (AttributeError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    while offset < end:
        chunk = os.pread(src, min(_COPY_CHUNK, end - offset), offset)
        if not chunk:
            raise PsykError(f"store file shrank while it was being copied (at byte {offset})")
        _write_all(dst, chunk)
        offset += len(chunk)


class RunStorage(Storage):
    """TinyDB storage of a psyk store (see the module docstring for the guarantees).

    ``TinyDB(path, storage=RunStorage)`` works as with ``JSONStorage``; wrap TinyDB
    read-modify-write operations in :meth:`transaction` to make them atomic across processes.
    :class:`~psykedelic_cli.store.runs.Store` uses :meth:`snapshot` and :meth:`transaction`.
    """

    def __init__(self, path: str | os.PathLike):
        super().__init__()
        self.path = Path(path)
        self._held: Transaction | None = None

    @property
    def target(self) -> Path:
        """The file writes replace: ``path`` with every symbolic link resolved (``path`` when none)."""
        return Path(os.path.realpath(self.path))

    @property
    def lock_path(self) -> Path:
        """``<target>.lock``: beside the file itself, so that every path to one store shares one lock."""
        target = self.target
        return target.with_name(target.name + ".lock")

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        """A lock-free consistent view (writers replace the file, never change it in place)."""
        snapshot = open_snapshot(self.path)
        try:
            yield snapshot
        finally:
            snapshot.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Hold the exclusive lock; re-entrant; changes are written when the outermost exits."""
        if self._held is not None:
            yield self._held
            return
        cannot = f"cannot write store {self.path}"
        why = _misplaced(self.path)
        if why:
            raise PsykError(f"{cannot}: {why}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            target = self.target
            if not target.parent.is_dir():
                raise PsykError(f"{cannot}: it links to {target}, whose folder does not exist")
            lock = self.lock_path
            if os.path.lexists(lock) and not lock.is_file():
                raise PsykError(f"{cannot}: its lock {lock} is not a file")
            lock_fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise PsykError(f"{cannot}: {exc.strerror}") from None
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            _remove_stale_temporaries(target)
            snapshot = open_snapshot(target)
            try:
                self._held = Transaction(snapshot.entries)
                yield self._held
                if self._held.changed:
                    _replace(target, _layout(self._held.entries), snapshot)
            except OSError as exc:
                raise PsykError(f"cannot write store {self.path} ({exc.strerror}); it was left as it was") from None
            finally:
                self._held = None
                snapshot.close()
        finally:
            os.close(lock_fd)  # closing releases the flock

    # -- TinyDB's Storage interface: whole-database read and write

    def read(self) -> dict | None:
        if self._held is not None:
            return _tables(self._held.entries)
        with self.snapshot() as snapshot:
            return _tables(snapshot.entries) if snapshot.fd is not None else None

    def write(self, data: dict) -> None:
        unknown = sorted(name for name, table in data.items() if name not in (META_TABLE, RUNS_TABLE) and table)
        if unknown:
            raise PsykError(
                f"a psyk store holds only tables '{META_TABLE}' and '{RUNS_TABLE}', not {', '.join(unknown)}"
            )
        runs = data.get(RUNS_TABLE, {})
        nameless = [doc_id for doc_id, doc in runs.items() if not isinstance(doc.get("id"), str)]
        if nameless:
            raise PsykError(f"every run needs a string \"id\"; document(s) {', '.join(nameless)} have none")
        with self.transaction() as transaction:
            transaction.replace_all(
                [Entry(int(doc_id), run_summary(doc), doc=dict(doc)) for doc_id, doc in runs.items()]
            )


def _misplaced(path: Path) -> str | None:
    """Why no file can be made at ``path``: it (or the file a link there points to) lies under
    a file or a dangling link; None when not."""
    blocker = _non_folder_above(path)
    if blocker:
        return f"it lies under {blocker}"
    if os.path.islink(path):
        target = Path(os.path.realpath(path))
        blocker = _non_folder_above(target)
        if blocker:
            return f"it links to {target}, which lies under {blocker}"
    return None


def _non_folder_above(path: Path) -> str | None:
    """The nearest folder of ``path`` that exists but is no folder (a file, a dangling link),
    described; None when each one is a folder or missing (and so can be made)."""
    for parent in reversed(path.parents):
        if parent.is_dir():
            continue
        if parent.is_symlink() and not parent.exists():
            return f"{parent}, a link to the missing {os.readlink(parent)}"
        if os.path.lexists(parent):
            return f"the file {parent}" if parent.is_file() else f"{parent}, which is not a folder"
        return None
    return None


def _temporary_pattern(target: Path) -> re.Pattern:
    return re.compile(rf"\.{re.escape(target.name)}\.[0-9a-f]{{12}}\.tmp")


def _remove_stale_temporaries(target: Path) -> None:
    # Under the lock no writer is mid-write, so any temporary left is from a killed one.
    pattern = _temporary_pattern(target)
    for leftover in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        if pattern.fullmatch(leftover.name):
            leftover.unlink(missing_ok=True)


def _replace(target: Path, pieces, snapshot: Snapshot) -> None:
    """Write ``pieces`` to a temporary file beside ``target`` and rename it over ``target``
    (a regular file, never a link), with the permission bits and group of the file replaced."""
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        if snapshot.fd is not None:
            replaced = os.fstat(snapshot.fd)
            with contextlib.suppress(PermissionError):  # a group this user is not in stays as it was
                os.fchown(fd, -1, replaced.st_gid)
            os.fchmod(fd, replaced.st_mode & 0o7777)  # after fchown, which may clear the setgid bit
        _write_pieces(fd, pieces)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        temporary.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(temporary, target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)


def _tables(entries: list[Entry]) -> dict:
    runs = {str(entry.doc_id): entry.load() for entry in entries}
    return {META_TABLE: {"1": {"format": FORMAT, "schema_version": SCHEMA_VERSION}}, RUNS_TABLE: runs}
