"""tf.data pipelines over in-memory arrays, with batch-level augmentation.

The pipelines shuffle and batch *indices*, then gather whole batches from the
image tensor: one gather per batch instead of one element per image through
shuffle buffers, which is what keeps the CPU pipeline ahead of training.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import tensorflow as tf

MAX_SHIFT_FRACTION = 0.1


def shift_and_flip(images: tf.Tensor, seed: tf.Tensor, max_shift_fraction: float = MAX_SHIFT_FRACTION) -> tf.Tensor:
    """Each image of an NHWC batch moved and maybe mirrored, independently and reproducibly.

    Image i becomes ``out[r, j] = in[clip(r - dy), clip(j' - dx)]`` with ``j' = W-1-j``
    when mirrored (probability 1/2) else ``j``: whole-pixel shifts ``dy``, ``dx``
    drawn uniformly from ``±⌊fraction·H⌋`` and ``±⌊fraction·W⌋``, edge pixels
    repeated into the uncovered border. ``seed`` is a stateless seed pair.
    """
    height, width = int(images.shape[1]), int(images.shape[2])
    max_dy, max_dx = int(max_shift_fraction * height), int(max_shift_fraction * width)
    batch = tf.shape(images)[0]
    dy_seed, dx_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    dy = tf.random.stateless_uniform([batch, 1], dy_seed, -max_dy, max_dy + 1, dtype=tf.int32)
    dx = tf.random.stateless_uniform([batch, 1], dx_seed, -max_dx, max_dx + 1, dtype=tf.int32)
    mirrored = tf.random.stateless_uniform([batch, 1], flip_seed) < 0.5
    rows = tf.range(height)[tf.newaxis, :]
    cols = tf.range(width)[tf.newaxis, :]
    source_rows = tf.clip_by_value(rows - dy, 0, height - 1)
    source_cols = tf.clip_by_value(tf.where(mirrored, width - 1 - cols, cols) - dx, 0, width - 1)
    moved = tf.gather(images, source_rows, axis=1, batch_dims=1)
    return tf.gather(moved, source_cols, axis=2, batch_dims=1)


def batches(
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    batch_size: int,
    *,
    shuffle_seed: Optional[int] = None,
    augment_seed: Optional[int] = None,
) -> tf.data.Dataset:
    """``(images, one-hot labels)`` batches, in order or reshuffled every epoch, optionally augmented.

    With a seed, every epoch draws a new order (and new shifts and flips), and
    the sequence of epochs is the same in every run.
    """
    image_tensor = tf.convert_to_tensor(images, dtype=tf.float32)
    one_hot = tf.one_hot(tf.convert_to_tensor(labels, dtype=tf.int64), n_classes)
    order = tf.data.Dataset.range(len(images))
    if shuffle_seed is not None:
        order = order.shuffle(len(images), seed=shuffle_seed, reshuffle_each_iteration=True)
    order = order.batch(batch_size)

    def gather(indices):
        return tf.gather(image_tensor, indices), tf.gather(one_hot, indices)

    if augment_seed is None:
        pipeline = order.map(gather, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        seeds = tf.data.Dataset.random(seed=augment_seed, rerandomize_each_iteration=True).batch(2)

        def gather_augmented(indices, seed):
            batch_images, batch_labels = gather(indices)
            return shift_and_flip(batch_images, seed), batch_labels

        pipeline = tf.data.Dataset.zip(order, seeds).map(gather_augmented, num_parallel_calls=tf.data.AUTOTUNE)
    return pipeline.prefetch(tf.data.AUTOTUNE)
