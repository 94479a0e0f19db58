"""Tiny ImageNet (200 classes, 64×64 RGB) from the extracted ``tiny-imagenet-200`` folder.

Layout: ``wnids.txt`` lists the 200 class ids (their order gives the labels),
``train/<wnid>/images/*.JPEG`` the 500 training images per class, and
``val/images`` with ``val/val_annotations.txt`` (``file<TAB>wnid<TAB>box…``) the
10,000 labelled validation images. The official test images carry no labels, so
the validation images serve as the test split.

Decoding 110,000 JPEGs takes a while, so the arrays are cached in an ``.npz``
next to the folder (or in the user cache when that folder is read-only), keyed
by a fingerprint of the file listing, the labels and each image's size and
modification time: adding, removing, relabelling or replacing a file (even under
the same name) decodes again.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Optional

import numpy as np

from psykedelic_cli.data.locate import find_source
from psykedelic_cli.data.raw import RawImages
from psykedelic_cli.errors import PsykError

FOLDER = "tiny-imagenet-200"
URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
SIDE = 64


def _read_wnids(root: Path) -> list[str]:
    path = root / "wnids.txt"
    try:
        wnids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise PsykError(f"tiny-imagenet: cannot read {path}: {exc}") from exc
    if not wnids or len(set(wnids)) != len(wnids):
        raise PsykError(f"tiny-imagenet: {path} must list distinct class ids, one a line")
    return wnids


def _is_jpeg(name: str) -> bool:
    return name.lower().endswith((".jpeg", ".jpg"))


def _train_listing(root: Path, wnids: list[str]) -> tuple[list[Path], np.ndarray]:
    files: list[Path] = []
    labels: list[int] = []
    for label, wnid in enumerate(wnids):
        folder = root / "train" / wnid / "images"
        try:
            names = sorted(name for name in os.listdir(folder) if _is_jpeg(name))
        except OSError as exc:
            raise PsykError(f"tiny-imagenet: cannot list {folder}: {exc}") from exc
        files += [folder / name for name in names]
        labels += [label] * len(names)
    return files, np.asarray(labels, dtype=np.int64)


def _val_listing(root: Path, wnids: list[str]) -> tuple[list[Path], np.ndarray]:
    path = root / "val" / "val_annotations.txt"
    label_of = {wnid: label for label, wnid in enumerate(wnids)}
    files: list[Path] = []
    labels: list[int] = []
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise PsykError(f"tiny-imagenet: cannot read {path}: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in label_of:
            raise PsykError(f"tiny-imagenet: {path} line {number}: expected 'file<TAB>wnid' with a wnid from wnids.txt")
        files.append(root / "val" / "images" / fields[0])
        labels.append(label_of[fields[1]])
    return files, np.asarray(labels, dtype=np.int64)


def _file_identity(root: Path, path: Path) -> str:
    """``path`` relative to ``root`` with its size and modification time (ns): a file
    replaced under the same name changes at least one of them."""
    try:
        status = path.stat()
    except OSError as exc:
        raise PsykError(f"tiny-imagenet: cannot read {path}: {exc.strerror}") from None
    return f"{path.relative_to(root)}\t{status.st_size}\t{status.st_mtime_ns}"


def _fingerprint(root: Path, wnids: list[str], files: list[Path], labels: np.ndarray) -> str:
    """SHA-256 of the class ids, every image's identity (:func:`_file_identity`) and the labels."""
    digest = hashlib.sha256("\n".join(wnids).encode())
    digest.update("\n".join(_file_identity(root, path) for path in files).encode())
    digest.update(labels.tobytes())
    return digest.hexdigest()


def _cache_paths(root: Path) -> list[Path]:
    """Next to the folder first; the user cache (one file per folder) when that is read-only."""
    user_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "psykedelic"
    folder_key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
    return [root.parent / f"{FOLDER}-decoded.npz", user_cache / f"{FOLDER}-{folder_key}.npz"]


def _load_cache(root: Path, fingerprint: str) -> Optional[dict[str, np.ndarray]]:
    for path in _cache_paths(root):
        try:
            with np.load(path, allow_pickle=False) as cached:
                if str(cached["fingerprint"]) == fingerprint:
                    return {key: cached[key] for key in ("x_train", "y_train", "x_test", "y_test")}
        except (OSError, KeyError, ValueError, EOFError):
            continue  # absent, stale format or half-written: decode again
    return None


def _save_cache(root: Path, arrays: dict[str, np.ndarray], fingerprint: str) -> None:
    """Write the cache in the first writable place; when none is, the next load decodes again."""
    for path in _cache_paths(root):
        partial = path.with_name(path.name + ".partial")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(partial, "wb") as handle:
                np.savez(handle, fingerprint=np.asarray(fingerprint), **arrays)
            os.replace(partial, path)  # a crash mid-write never leaves a cache that looks complete
            return
        except OSError:
            partial.unlink(missing_ok=True)


def _decode(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")  # a few Tiny ImageNet files are grayscale
    except OSError as exc:
        raise PsykError(f"tiny-imagenet: cannot decode {path}: {exc}") from exc
    if rgb.size != (SIDE, SIDE):
        raise PsykError(f"tiny-imagenet: {path} is {rgb.size[0]}×{rgb.size[1]}, expected {SIDE}×{SIDE}")
    return np.asarray(rgb, dtype=np.uint8)


def _decode_all(files: list[Path], split: str) -> np.ndarray:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    images = np.empty((len(files), SIDE, SIDE, 3), dtype=np.uint8)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(f"decoding tiny-imagenet {split}", total=len(files))
        for index, path in enumerate(files):
            images[index] = _decode(path)
            progress.advance(task)
    return images


def read_tiny_imagenet(data_dir: Optional[os.PathLike | str] = None) -> RawImages:
    """Tiny ImageNet as raw uint8 images: train from ``train/``, test from the labelled ``val/``."""
    root = find_source(
        "tiny-imagenet", (FOLDER,), data_dir, how_to_get=f"download {URL} and extract it into --data-dir"
    )
    if not root.is_dir():
        raise PsykError(f"tiny-imagenet: {root} is not a folder; extract {URL} into --data-dir")
    wnids = _read_wnids(root)
    train_files, y_train = _train_listing(root, wnids)
    test_files, y_test = _val_listing(root, wnids)
    fingerprint = _fingerprint(root, wnids, train_files + test_files, np.concatenate([y_train, y_test]))
    arrays = _load_cache(root, fingerprint)
    if arrays is None:
        arrays = {
            "x_train": _decode_all(train_files, "train"),
            "y_train": y_train,
            "x_test": _decode_all(test_files, "val"),
            "y_test": y_test,
        }
        _save_cache(root, arrays, fingerprint)
    return RawImages(**arrays, n_classes=len(wnids), pixel_max=255.0, source=str(root))
