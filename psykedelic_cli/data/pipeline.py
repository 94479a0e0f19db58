"""Training and evaluation batches for every Keras backend: ``keras.utils.PyDataset`` over in-memory arrays.

Images stay in memory as the files hold them (uint8 for CIFAR and Tiny ImageNet: 150 MB
and 1.2 GB) and become float32 one batch at a time: scaled to [0, 1], the training mean
subtracted, then (photos only) shifted and mirrored. Everything is NumPy, so TensorFlow,
JAX and PyTorch train on the same batches, bit for bit, from the same seed.

Randomness is a pure function of (seed, epoch, batch): epoch e is ordered by a
permutation drawn from ``default_rng((seed, e))``, and batch i of it is augmented from
``default_rng((seed, e, i))``. Keras may fetch batches in any order or twice (its
adapters peek at the first one); the batches do not change. The epoch is set, not counted:
``fit`` says which epoch begins through the ``EpochOrder`` callback (Keras' own calls of
``on_epoch_end`` differ between backends), so a run resumed at ``initial_epoch`` sees the
batches it would have seen.
"""

from __future__ import annotations

import math
from typing import Optional

import keras
import numpy as np

from psykedelic_cli.data.dataset import normalised

MAX_SHIFT_FRACTION = 0.1


def shift_and_flip(images: np.ndarray, rng: np.random.Generator, max_shift_fraction: float = MAX_SHIFT_FRACTION):
    """Each image of an NHWC batch moved and maybe mirrored, independently; a new array.

    Image i becomes ``out[r, j] = in[clip(r - dy), clip(j' - dx)]`` with ``j' = W-1-j``
    when mirrored (probability 1/2) else ``j``: whole-pixel shifts ``dy``, ``dx``
    drawn uniformly from ``±⌊fraction·H⌋`` and ``±⌊fraction·W⌋``, edge pixels
    repeated into the uncovered border. Every value out is a value in (a gather).
    """
    batch, height, width = images.shape[:3]
    max_dy, max_dx = int(max_shift_fraction * height), int(max_shift_fraction * width)
    dy = rng.integers(-max_dy, max_dy + 1, size=(batch, 1))
    dx = rng.integers(-max_dx, max_dx + 1, size=(batch, 1))
    mirrored = rng.random((batch, 1)) < 0.5
    rows = np.arange(height)[np.newaxis, :]
    cols = np.arange(width)[np.newaxis, :]
    source_rows = np.clip(rows - dy, 0, height - 1)
    source_cols = np.clip(np.where(mirrored, width - 1 - cols, cols) - dx, 0, width - 1)
    picks = np.arange(batch)[:, np.newaxis, np.newaxis]
    return images[picks, source_rows[:, :, np.newaxis], source_cols[:, np.newaxis, :]]


class Batches(keras.utils.PyDataset):
    """``(images, one-hot labels)`` batches: in order, or reshuffled every epoch, optionally augmented.

    ``images`` (N, H, W, C) as stored; each batch is ``normalised(·, pixel_max, mean)``
    float32 and one-hot float32 labels (N, n_classes). With ``shuffle_seed``, each epoch
    has its own order, the same in every run; ``augment_seed`` adds ``shift_and_flip``.
    ``set_epoch`` (or the ``EpochOrder`` callback in ``fit``) chooses the epoch served.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        n_classes: int,
        batch_size: int,
        *,
        pixel_max: float = 1.0,
        mean: np.ndarray | float = 0.0,
        shuffle_seed: Optional[int] = None,
        augment_seed: Optional[int] = None,
    ):
        super().__init__(workers=1, use_multiprocessing=False)
        self.images = images
        self.one_hot = np.eye(n_classes, dtype=np.float32)[np.asarray(labels, dtype=np.int64)]
        self.batch_size = batch_size
        self.pixel_max = pixel_max
        self.mean = np.asarray(mean, dtype=np.float32)
        self.shuffle_seed = shuffle_seed
        self.augment_seed = augment_seed
        self.set_epoch(0)

    def _order_of(self, epoch: int) -> np.ndarray | None:
        if self.shuffle_seed is None:
            return None
        return np.random.default_rng((self.shuffle_seed, epoch)).permutation(len(self.images))

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, index: int):
        window = slice(index * self.batch_size, (index + 1) * self.batch_size)
        indices = window if self._order is None else self._order[window]
        images = normalised(self.images[indices], self.pixel_max, self.mean)
        if self.augment_seed is not None:
            images = shift_and_flip(images, np.random.default_rng((self.augment_seed, self.epoch, index)))
        return images, self.one_hot[indices]

    def set_epoch(self, epoch: int) -> None:
        """Serve the batches of (0-based) ``epoch`` from now on."""
        self.epoch = int(epoch)
        self._order = self._order_of(self.epoch)

    def __iter__(self):
        """One epoch of batches, then on to the next epoch."""
        for index in range(len(self)):
            yield self[index]
        self.set_epoch(self.epoch + 1)


class EpochOrder(keras.callbacks.Callback):
    """Sets ``batches`` to each epoch ``fit`` begins (absolute: ``initial_epoch`` counts)."""

    def __init__(self, batches: Batches):
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.set_epoch(epoch)
