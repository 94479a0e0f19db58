"""Where dataset files are looked for: ``--data-dir`` first, then the Keras cache."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

from psykedelic_cli.errors import PsykError


def keras_cache_dir() -> Path:
    """``$KERAS_HOME/datasets`` when KERAS_HOME is set, else ``~/.keras/datasets`` (Keras's own rule)."""
    keras_home = os.environ.get("KERAS_HOME")
    return (Path(keras_home) if keras_home else Path.home() / ".keras") / "datasets"


def search_dirs(data_dir: Optional[os.PathLike | str]) -> list[Path]:
    """The folders searched, in order: ``data_dir`` (when given), then the Keras cache."""
    dirs = [Path(data_dir).expanduser()] if data_dir is not None else []
    cache = keras_cache_dir()
    if cache not in dirs:
        dirs.append(cache)
    return dirs


def find_source(
    dataset: str, names: Sequence[str], data_dir: Optional[os.PathLike | str], how_to_get: str
) -> Path:
    """The first existing ``dir / name`` over the search dirs × ``names`` (in that order).

    ``data_dir`` may also point straight at one of the ``names``. When nothing
    exists, raises a PsykError naming every folder looked in and ``how_to_get``.
    """
    dirs = search_dirs(data_dir)
    if data_dir is not None:
        given = Path(data_dir).expanduser()
        if any(given.name == Path(name).name for name in names) and given.exists():
            return given
    for folder in dirs:
        for name in names:
            candidate = folder / name
            if candidate.exists():
                return candidate
    raise PsykError(
        f"{dataset}: none of {', '.join(names)} in {', '.join(str(d) for d in dirs)}; {how_to_get}"
    )
