"""The contract every dataset reader returns: raw images and labels, before preprocessing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True, eq=False)
class RawImages:
    """Unscaled NHWC images with integer labels, as the files hold them.

    Pixel values lie in ``[0, pixel_max]``. ``x_test``/``y_test`` are ``None`` when
    the dataset has no official test split (digits): preprocessing then makes one.
    ``source`` says where the data came from (a path, or the library that bundles it).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: Optional[np.ndarray]
    y_test: Optional[np.ndarray]
    n_classes: int
    pixel_max: float
    source: str
