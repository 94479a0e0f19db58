"""Output files and folders: checked before long work, written whole or not at all.

Every command that writes files (``psyk train --out-dir``, ``psyk prune --output``,
``psyk report --out-dir``) checks its paths here before it starts working, so a path
that cannot be written is one line and exit 2 instead of a traceback after minutes of
training. Files are written through ``replacing``: into a temporary file beside the
target, renamed over it only when complete, so a failed or interrupted write never
leaves half a file. No backend is imported.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

from psykedelic_cli.errors import PsykError


def os_error_text(exc: OSError) -> str:
    """``exc`` as "<reason>: <path>" (no errno number, no Python class name)."""
    reason = exc.strerror or (errno.errorcode.get(exc.errno or 0)) or str(exc) or type(exc).__name__
    names = [name for name in (exc.filename, exc.filename2) if name is not None]
    return f"{reason}: {' -> '.join(map(str, names))}" if names else reason


def _first_non_folder(path: Path) -> Path | None:
    """The first existing component of ``path`` (itself included) that is not a folder."""
    for part in (*reversed(path.parents), path):
        if part.exists() and not part.is_dir():
            return part
        if not part.exists():
            return None
    return None


def _make_writable(folder: Path) -> None:
    """Create ``folder`` (with its parents), or create and remove a file in it when it exists:
    the only honest test of writability (permission bits say nothing to root, nor about
    read-only mounts or full disks). OSError when it fails."""
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        return
    probe = folder / f".psyk-write-test-{secrets.token_hex(4)}"
    with open(probe, "xb"):
        pass
    probe.unlink()


def check_output_dir(path: str | os.PathLike, option: str) -> Path:
    """Create the folder ``path`` (with its parents) or prove an existing one writable.

    ``option`` names it in the message (e.g. ``--out-dir``). Returns the path.
    Raises PsykError (exit 2) naming the path and the problem: it is a file, it lies
    under a file, or it cannot be created or written (permission, read-only file system).
    """
    folder = Path(path)
    blocker = _first_non_folder(folder.absolute())
    if blocker is not None:
        where = "is a file" if blocker == folder.absolute() else f"lies under the file {blocker}"
        raise PsykError(f"{option} {folder} {where}; give a folder")
    doing = "write into" if folder.is_dir() else "create"
    try:
        _make_writable(folder)
    except OSError as exc:
        raise PsykError(f"{option} {folder}: cannot {doing} it ({exc.strerror or exc})") from None
    return folder


def check_output_file(path: str | os.PathLike, option: str) -> Path:
    """Check that the file ``path`` can be written: it is not a folder and its folder can
    be created or written. Raises PsykError (exit 2) naming the path and the problem."""
    target = Path(path)
    if target.is_dir():
        raise PsykError(f"{option} {target} is a folder; give a file path")
    blocker = _first_non_folder(target.absolute().parent)
    if blocker is not None:
        raise PsykError(f"{option} {target} lies under the file {blocker}")
    try:
        _make_writable(target.parent)
    except OSError as exc:
        raise PsykError(f"{option} {target}: cannot write into {target.parent} ({exc.strerror or exc})") from None
    return target


def check_distinct(paths: Iterable[Path], what: str) -> None:
    """Refuse outputs of one command that would overwrite each other (same resolved path)."""
    counts = Counter(Path(p).absolute() for p in paths)
    twice = sorted(str(p) for p, n in counts.items() if n > 1)
    if twice:
        raise PsykError(f"{what} would write {', '.join(twice)} more than once; one output would overwrite another")


def check_output_files(paths: Iterable[Path], what: str) -> None:
    """The files a command is about to write: distinct, none of them a folder."""
    paths = list(paths)
    check_distinct(paths, what)
    for path in paths:
        if Path(path).is_dir():
            raise PsykError(f"{what}: {path} is a folder; it stands where a file must be written")


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, so writers that go by the
    suffix still work); on success it is renamed over ``path``, on any error removed.

    The rename is atomic on one file system: readers see the old file or the new one,
    never a part.
    """
    target = Path(path)
    temporary = target.with_name(f".{target.stem}.{secrets.token_hex(4)}.tmp{target.suffix}")
    try:
        yield temporary
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all; returns the path."""
    with replacing(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)
