"""CIFAR-10 and CIFAR-100 from the official python-pickle release, read without Keras.

Each batch file is a pickled dict: ``b"data"`` is a uint8 array of shape
``(N, 3072)`` holding, per image, the 32×32 red plane row by row, then green,
then blue; the labels are ``b"labels"`` (CIFAR-10) or ``b"fine_labels"``
(CIFAR-100). The files are found as the extracted folder or the ``.tar.gz``
archive (official names and the layouts Keras 2 and Keras 3 leave in their cache).
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from psykedelic_cli.data.locate import find_source
from psykedelic_cli.data.raw import RawImages
from psykedelic_cli.errors import PsykError

SIDE = 32
CHANNELS = 3


@dataclass(frozen=True)
class CifarRelease:
    """One CIFAR variant: where its files are and which keys hold what."""

    name: str
    folder: str
    archive: str
    train_files: tuple[str, ...]
    test_file: str
    label_key: bytes
    n_classes: int

    @property
    def candidates(self) -> tuple[str, ...]:
        """Folders before archives (reading them is faster); official names before Keras cache names."""
        keras3 = f"{self.folder}-target"
        return (
            self.folder,
            f"{keras3}/{self.folder}",
            self.archive,
            f"{self.folder}.tar.gz",
            f"{keras3}_archive",
        )

    @property
    def url(self) -> str:
        return f"https://www.cs.toronto.edu/~kriz/{self.archive}"


RELEASES = {
    "cifar10": CifarRelease(
        name="cifar10",
        folder="cifar-10-batches-py",
        archive="cifar-10-python.tar.gz",
        train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test_file="test_batch",
        label_key=b"labels",
        n_classes=10,
    ),
    "cifar100": CifarRelease(
        name="cifar100",
        folder="cifar-100-python",
        archive="cifar-100-python.tar.gz",
        train_files=("train",),
        test_file="test",
        label_key=b"fine_labels",
        n_classes=100,
    ),
}

# The only globals a CIFAR batch may name: numpy's array reconstruction (old and
# new module paths) and the helper protocol-2 pickles use for bytes. Anything else
# would let a crafted "dataset" run code on load.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _unpickle_batch(payload: bytes, where: str) -> dict:
    try:
        batch = _BatchUnpickler(io.BytesIO(payload), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as exc:
        raise PsykError(f"{where} is not a CIFAR batch: {exc}") from exc
    if not isinstance(batch, dict):
        raise PsykError(f"{where} is not a CIFAR batch: holds a {type(batch).__name__}, not a dict")
    return batch


def _read_payloads(source: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    """The bytes of each named batch file, from a folder or in one pass over a tar archive."""
    if source.is_dir():
        missing = [name for name in names if not (source / name).is_file()]
        if missing:
            raise PsykError(f"{source} is incomplete: no {', '.join(missing)}")
        return {name: (source / name).read_bytes() for name in names}
    payloads: dict[str, bytes] = {}
    try:
        with tarfile.open(source) as archive:
            for member in archive:
                base = os.path.basename(member.name)
                if member.isfile() and base in names and base not in payloads:
                    payloads[base] = archive.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise PsykError(f"{source} is not a readable CIFAR archive: {exc}") from exc
    missing = [name for name in names if name not in payloads]
    if missing:
        raise PsykError(f"{source} is not a complete CIFAR archive: no {', '.join(missing)}")
    return payloads


def _images_and_labels(batch: dict, release: CifarRelease, where: str) -> tuple[np.ndarray, np.ndarray]:
    """``b"data"`` as NHWC uint8 (channel-first rows → channels last) and the labels as int64."""
    data = batch.get(b"data")
    labels = batch.get(release.label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or labels is None:
        raise PsykError(f"{where} is not a {release.name} batch: needs uint8 b'data' and {release.label_key!r}")
    labels = np.asarray(labels, dtype=np.int64)
    row_length = CHANNELS * SIDE * SIDE
    if data.ndim != 2 or data.shape[1] != row_length or len(labels) != len(data):
        raise PsykError(
            f"{where}: expected data of shape (N, {row_length}) and N labels, "
            f"found {data.shape} and {len(labels)}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= release.n_classes):
        raise PsykError(f"{where}: labels must lie in 0..{release.n_classes - 1}, found {labels.min()}..{labels.max()}")
    images = data.reshape(-1, CHANNELS, SIDE, SIDE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def read_cifar(name: str, data_dir: Optional[os.PathLike | str] = None) -> RawImages:
    """CIFAR-10 (``name="cifar10"``) or CIFAR-100 (``"cifar100"``, fine labels) as raw uint8 images."""
    release = RELEASES[name]
    source = find_source(
        name, release.candidates, data_dir, how_to_get=f"download {release.url} into --data-dir"
    )
    names = (*release.train_files, release.test_file)
    payloads = _read_payloads(source, names)
    parts = {
        file: _images_and_labels(_unpickle_batch(payloads[file], f"{source}:{file}"), release, f"{source}:{file}")
        for file in names
    }
    x_train = np.concatenate([parts[file][0] for file in release.train_files])
    y_train = np.concatenate([parts[file][1] for file in release.train_files])
    x_test, y_test = parts[release.test_file]
    return RawImages(x_train, y_train, x_test, y_test, n_classes=release.n_classes, pixel_max=255.0, source=str(source))
