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


def _nearest_existing(path: Path, option: str) -> Path:
    """``path`` itself or its nearest existing parent (PsykError when a parent cannot be looked at)."""
    for part in (path, *path.parents):
        try:
            if part.exists():
                return part
        except OSError as exc:  # a parent folder that may not be read
            raise PsykError(f"{option} {path}: cannot look at {part} ({exc.strerror or exc})") from None
    return Path(path.anchor)  # the root of an absolute path: always there


def _probe(folder: Path) -> None:
    """Create and remove a file in ``folder``: the only honest test of writability (permission
    bits say nothing to root, nor about read-only mounts or full disks). OSError when it fails."""
    probe = folder / f".psyk-write-test-{secrets.token_hex(4)}"
    with open(probe, "xb"):
        pass
    probe.unlink()


def _check_folder(folder: Path, option: str, shown: Path) -> None:
    """PsykError unless ``folder`` exists and can be written, or its nearest existing parent is a
    folder that can be written (so the writer can create it later). Nothing is created here."""
    absolute = folder.absolute()
    existing = _nearest_existing(absolute, option)  # absolute: the walk ends at the root
    if not existing.is_dir():
        where = "is a file" if existing == shown.absolute() else f"lies under the file {existing}"
        raise PsykError(f"{option} {shown} {where}" + ("; give a folder" if shown == folder else ""))
    try:
        _probe(existing)
    except OSError as exc:
        reason = exc.strerror or exc
        if shown != folder:  # a file's folder
            raise PsykError(f"{option} {shown}: cannot write into {folder} ({reason})") from None
        doing = "write into" if existing == absolute else "create"
        raise PsykError(f"{option} {shown}: cannot {doing} it ({reason})") from None


def check_output_dir(path: str | os.PathLike, option: str) -> Path:
    """Check that the folder ``path`` can be written, or created by the command when it writes.

    ``option`` names it in the message (e.g. ``--out-dir``). Returns the path. Nothing is
    created: a command refused later leaves no empty folder behind. Raises PsykError
    (exit 2) naming the path and the problem: it is a file, it lies under a file, or it
    cannot be created or written (permission, read-only file system).
    """
    folder = Path(path)
    _check_folder(folder, option, folder)
    return folder


def check_output_file(path: str | os.PathLike, option: str) -> Path:
    """Check that the file ``path`` can be written: it is not a folder, and its folder can be
    written or created. Raises PsykError (exit 2) naming the path and the problem."""
    target = Path(path)
    if target.is_dir():
        raise PsykError(f"{option} {target} is a folder; give a file path")
    _check_folder(target.parent, option, target)
    return target


def check_model_output(model: Path, output: Path, what: str) -> None:
    """The ``--output`` of a command that writes a model read from ``model``: a ``.keras`` file
    that can be written and is not the input itself. PsykError (exit 2) otherwise."""
    if output.absolute() == model.absolute() or (output.exists() and output.samefile(model)):
        raise PsykError(f"--output {output} is the input model; write the {what} model to another file")
    check_output_file(output, "--output")
    if output.suffix != ".keras":
        raise PsykError(f"--output must be a .keras file, got {output}")


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
    suffix still work; the folder is created when missing); on success it is renamed over
    ``path``, on any error removed.

    The rename is atomic on one file system: readers see the old file or the new one,
    never a part.
    """
    target = Path(path)
    temporary = target.with_name(f".{target.stem}.{secrets.token_hex(4)}.tmp{target.suffix}")
    target.parent.mkdir(parents=True, exist_ok=True)
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
