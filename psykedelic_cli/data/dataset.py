"""Load a dataset by name, split it, and serve normalised batches to any Keras backend.

Preprocessing, the same for every dataset: hold out 10 % of the training
images for validation (stratified, by ``split_seed``), scale pixels to [0, 1],
and subtract the per-pixel mean of the remaining training images from every
split. Images are kept as the files hold them (uint8 for photos) and normalised
one batch at a time (``psykedelic_cli.data.pipeline``). Digits has no official
test split: a stratified 80/20 split with the fixed seed ``DIGITS_SPLIT_SEED`` stands in for one.

psyk keeps ``split_seed`` at its default for every run, whatever ``--seed``
says: all seeds then train, validate (early stopping) and test on the same
images, so runs of different seeds differ only by their training randomness
and criteria are always compared on identical test images.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from typing import Callable, Optional

import numpy as np

from psykedelic_cli.data.cifar import read_cifar
from psykedelic_cli.data.digits import read_digits
from psykedelic_cli.data.raw import RawImages
from psykedelic_cli.data.tiny_imagenet import read_tiny_imagenet
from psykedelic_cli.errors import PsykError

VALIDATION_FRACTION = 0.1
VALIDATION_SPLIT_SEED = 0
"""The validation hold-out seed of every psyk run (it never follows --seed; see the module docstring)."""
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0

_READERS: dict[str, Callable[[Optional[os.PathLike | str]], RawImages]] = {
    "digits": lambda data_dir: read_digits(),
    "cifar10": partial(read_cifar, "cifar10"),
    "cifar100": partial(read_cifar, "cifar100"),
    "tiny-imagenet": read_tiny_imagenet,
}
DATASETS = tuple(_READERS)
# Natural photographs survive a small shift or a mirror; handwritten digits do not (a mirrored 2 is no 2).
_AUGMENTED = frozenset({"cifar10", "cifar100", "tiny-imagenet"})


@dataclass(frozen=True, eq=False)
class Dataset:
    """A dataset ready to train on: NHWC images as stored (pixels in [0, ``pixel_max``]), int labels.

    The network sees ``images / pixel_max - mean`` (``features``, and the batches of the
    pipelines); ``mean`` is the per-pixel mean of the scaled training images.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    augment: bool
    mean: np.ndarray
    source: str
    pixel_max: float = 1.0

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(side) for side in self.x_train.shape[1:])

    def __repr__(self) -> str:  # the dataclass default would print every array
        return (
            f"Dataset({self.name!r}, train={len(self.y_train)}, val={len(self.y_val)}, test={len(self.y_test)}, "
            f"input_shape={self.input_shape}, n_classes={self.n_classes}, augment={self.augment})"
        )

    def describe(self) -> dict:
        """The facts a run records about its data (JSON-ready)."""
        return {
            "name": self.name,
            "source": self.source,
            "input_shape": list(self.input_shape),
            "n_classes": self.n_classes,
            "n_train": len(self.y_train),
            "n_val": len(self.y_val),
            "n_test": len(self.y_test),
            "augment": self.augment,
        }

    def _split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        splits = {"train": (self.x_train, self.y_train), "val": (self.x_val, self.y_val),
                  "test": (self.x_test, self.y_test)}
        if split not in splits:
            raise PsykError(f"unknown split {split!r}; choose one of {', '.join(splits)}")
        return splits[split]

    def features(self, split: str) -> np.ndarray:
        """The ``"train"``, ``"val"`` or ``"test"`` images as the network sees them: float32, normalised."""
        return normalised(self._split(split)[0], self.pixel_max, self.mean)

    def train_pipeline(self, batch_size: int, seed: int = 0):
        """Training batches ``(images, one-hot labels)``: reshuffled every epoch, shifted and mirrored when ``augment``."""  # noqa: E501
        return self._batches("train", batch_size, shuffle_seed=seed, augment_seed=seed if self.augment else None)

    def eval_pipeline(self, split: str, batch_size: int):
        """Batches of the ``"val"`` or ``"test"`` split, in order, never augmented."""
        if split == "train":
            raise PsykError("unknown split 'train'; choose one of val, test")
        return self._batches(split, batch_size)

    def _batches(self, split: str, batch_size: int, **seeds):
        images, labels = self._split(split)
        batch_size = _checked_batch_size(batch_size)
        from psykedelic_cli.data.pipeline import Batches  # Keras loads here, not on import

        return Batches(images, labels, self.n_classes, batch_size, pixel_max=self.pixel_max, mean=self.mean, **seeds)


def _checked_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise PsykError(f"batch size must be a whole number ≥ 1, got {batch_size!r}")
    return int(batch_size)


def stratified_holdout(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(kept, held)``: from each class, ``round(fraction · count)`` random members are held out.

    Both index arrays are sorted, disjoint, and together cover ``range(len(labels))``.
    """
    held = np.concatenate(
        [
            rng.permutation(members)[: int(round(fraction * len(members)))]
            for members in (np.flatnonzero(labels == label) for label in np.unique(labels))
        ]
        or [np.empty(0, dtype=np.int64)]
    )
    is_held = np.zeros(len(labels), dtype=bool)
    is_held[held] = True
    return np.flatnonzero(~is_held), np.flatnonzero(is_held)


def normalised(images: np.ndarray, pixel_max: float, mean: np.ndarray) -> np.ndarray:
    """``images / pixel_max - mean`` in float32, the network's input (``mean``: the scaled training images' mean)."""
    scaled = np.true_divide(images, np.float32(pixel_max), dtype=np.float32)
    scaled -= mean
    return scaled


def _training_mean(images: np.ndarray, pixel_max: float, chunk: int = 4096) -> np.ndarray:
    """The per-pixel mean of ``images / pixel_max`` (float32 scaling, float64 sums), a chunk at a time."""
    total = np.zeros(images.shape[1:], dtype=np.float64)
    for start in range(0, len(images), chunk):
        total += np.true_divide(images[start:start + chunk], np.float32(pixel_max), dtype=np.float32).sum(
            axis=0, dtype=np.float64)
    return (total / max(len(images), 1)).astype(np.float32)


def prepare(name: str, raw: RawImages, split_seed: int = VALIDATION_SPLIT_SEED) -> Dataset:
    """Split ``raw`` (test, then validation) and normalise it as the module docstring says."""
    x_train, y_train = raw.x_train, raw.y_train
    if raw.x_test is None:
        kept, held = stratified_holdout(y_train, DIGITS_TEST_FRACTION, np.random.default_rng(DIGITS_SPLIT_SEED))
        x_test, y_test = x_train[held], y_train[held]
        x_train, y_train = x_train[kept], y_train[kept]
    else:
        x_test, y_test = raw.x_test, raw.y_test
    kept, held = stratified_holdout(y_train, VALIDATION_FRACTION, np.random.default_rng(split_seed))
    if len(kept) == 0:
        raise PsykError(f"{name}: {raw.source} holds too few training images to split ({len(y_train)})")
    train_images = x_train[kept]
    mean = _training_mean(train_images, raw.pixel_max)
    return Dataset(
        name=name,
        x_train=train_images,
        y_train=y_train[kept],
        x_val=x_train[held],
        y_val=y_train[held],
        x_test=x_test,
        y_test=np.asarray(y_test, dtype=np.int64),
        n_classes=raw.n_classes,
        augment=name in _AUGMENTED,
        mean=mean,
        source=raw.source,
        pixel_max=float(raw.pixel_max),
    )


def load_dataset(
    name: str, data_dir: Optional[os.PathLike | str] = None, split_seed: int = VALIDATION_SPLIT_SEED
) -> Dataset:
    """The named dataset (one of ``DATASETS``), read from ``data_dir`` or the Keras cache, split and normalised.

    ``split_seed`` chooses the validation hold-out (psyk never changes it, see the module
    docstring). Files are never downloaded: a missing dataset raises a PsykError naming
    the folders searched and where to get it.
    """
    if name not in _READERS:
        raise PsykError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return prepare(name, _READERS[name](data_dir), split_seed)
