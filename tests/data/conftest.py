"""Fixtures writing small datasets in their real on-disk formats, and a home with no real data in it."""

from __future__ import annotations

import io
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(autouse=True)
def empty_home(tmp_path, monkeypatch) -> Path:
    """A fresh HOME (so the real ~/.keras and ~/.cache are never read or written)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    return home


def cifar_rows(images: np.ndarray) -> np.ndarray:
    """NHWC uint8 images as CIFAR rows: per image the red plane row by row, then green, then blue."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), -1)


class CifarWriter:
    """Writes a small CIFAR release (random images, balanced labels) as a folder or a tar.gz."""

    def __init__(self, name: str, seed: int = 0):
        self.name = name
        rng = np.random.default_rng(seed)
        if name == "cifar10":
            self.folder, self.archive = "cifar-10-batches-py", "cifar-10-python.tar.gz"
            # five training batches of 20 (10 images per class in all), a test batch of 10
            self.train_batches = [f"data_batch_{i}" for i in range(1, 6)]
            self.test_batch = "test_batch"
            self.label_key = b"labels"
            sizes, label_values = [20] * 5 + [10], np.arange(10)
        else:
            self.folder, self.archive = "cifar-100-python", "cifar-100-python.tar.gz"
            self.train_batches, self.test_batch = ["train"], "test"
            self.label_key = b"fine_labels"
            # five of the 100 fine classes are enough to tell the fine labels are read
            sizes, label_values = [50, 10], np.array([0, 7, 14, 21, 28])
        self.batches = {}
        for file, size in zip(self.train_batches + [self.test_batch], sizes):
            images = rng.integers(0, 256, size=(size, 32, 32, 3), dtype=np.uint8)
            labels = label_values[rng.permutation(np.arange(size) % len(label_values))].tolist()
            self.batches[file] = (images, labels)
        self.x_train = np.concatenate([self.batches[f][0] for f in self.train_batches])
        self.y_train = np.concatenate([self.batches[f][1] for f in self.train_batches])
        self.x_test, self.y_test = self.batches[self.test_batch][0], np.asarray(self.batches[self.test_batch][1])

    def payload(self, file: str) -> bytes:
        images, labels = self.batches[file]
        batch = {b"batch_label": file.encode(), b"data": cifar_rows(images), self.label_key: labels,
                 b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))]}
        if self.name == "cifar100":
            batch[b"coarse_labels"] = [label // 5 for label in labels]
        return pickle.dumps(batch, protocol=2)  # the protocol of the official files

    def write_folder(self, folder: Path) -> Path:
        folder.mkdir(parents=True)
        for file in self.batches:
            (folder / file).write_bytes(self.payload(file))
        (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": []}))
        return folder

    def write_archive(self, path: Path, *, skip: tuple[str, ...] = ()) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(path, "w:gz") as archive:
            for file in self.batches:
                if file in skip:
                    continue
                data = self.payload(file)
                info = tarfile.TarInfo(f"{self.folder}/{file}")
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        return path


@pytest.fixture
def make_cifar():
    """``make_cifar(name, seed)``: a CifarWriter, for tests needing more than one release."""
    return CifarWriter


@pytest.fixture
def cifar10() -> CifarWriter:
    return CifarWriter("cifar10")


@pytest.fixture
def cifar100() -> CifarWriter:
    return CifarWriter("cifar100")


@dataclass(frozen=True)
class TinyImagenetFolder:
    """A written ``tiny-imagenet-200`` folder and what it holds."""

    root: Path
    wnids: tuple[str, ...]  # out of alphabetical order: labels must follow wnids.txt
    colours: dict  # wnid -> the flat RGB colour of its images
    train_per_class: int
    val_wnids: tuple[str, ...]  # the class of val_0.JPEG, val_1.JPEG, ...


def save_jpeg(path: Path, colour: tuple[int, int, int], *, grayscale: bool = False, size: int = 64) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (size, size), colour)
    (image.convert("L") if grayscale else image).save(path, "JPEG", quality=95)


@pytest.fixture
def jpeg_writer():
    """``jpeg_writer(path, colour, grayscale=False, size=64)`` writes a flat-colour JPEG."""
    return save_jpeg


@pytest.fixture
def tiny_imagenet(tmp_path) -> TinyImagenetFolder:
    """3 classes × 10 training JPEGs and 6 validation JPEGs, in the official layout.

    The first training image of class n01 is a grayscale JPEG, as a few real ones are.
    """
    folder = TinyImagenetFolder(
        root=tmp_path / "data" / "tiny-imagenet-200",
        wnids=("n03", "n01", "n02"),
        colours={"n03": (200, 30, 30), "n01": (30, 200, 30), "n02": (30, 30, 200)},
        train_per_class=10,
        val_wnids=("n01", "n02", "n03", "n01", "n03", "n02"),
    )
    root = folder.root
    root.mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(folder.wnids) + "\n")
    for wnid in folder.wnids:
        for index in range(folder.train_per_class):
            save_jpeg(root / "train" / wnid / "images" / f"{wnid}_{index}.JPEG", folder.colours[wnid],
                      grayscale=(wnid == "n01" and index == 0))
        (root / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
    lines = []
    for index, wnid in enumerate(folder.val_wnids):
        save_jpeg(root / "val" / "images" / f"val_{index}.JPEG", folder.colours[wnid])
        lines.append(f"val_{index}.JPEG\t{wnid}\t0\t0\t63\t63")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return folder
