"""scikit-learn's bundled 8×8 handwritten digits: 1,797 grayscale images, 10 classes, no download."""

from __future__ import annotations

import numpy as np

from psykedelic_cli.data.raw import RawImages


def read_digits() -> RawImages:
    """The digits as ``(1797, 8, 8, 1)`` images with values 0..16; no official test split."""
    from sklearn.datasets import load_digits  # sklearn is slow to import and only digits needs it

    bunch = load_digits()
    images = bunch.images.reshape(-1, 8, 8, 1)
    labels = bunch.target.astype(np.int64)
    return RawImages(images, labels, None, None, n_classes=10, pixel_max=16.0, source="scikit-learn load_digits")
