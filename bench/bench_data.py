"""Dataset figures: the augmented training batches against the usual tf.data recipes,
and the Tiny ImageNet decode cache against decoding the JPEGs.

Batches: one epoch of 10,000 CIFAR-sized uint8 images (batch 128, shuffled, normalised,
shifted and flipped), consumed to the end: ours are the NumPy ``PyDataset`` batches every
backend trains on; each pipeline is built once, as in training, and the median epoch is
reported. Were a tf.data recipe faster, TensorFlow would keep one. Baselines, built the way Keras tutorials do:
(a) per-image ``tf.image`` flip + pad-and-random-crop before batching,
(b) batches through ``keras.layers.RandomTranslation`` + ``RandomFlip``.
Cache: a synthetic ``tiny-imagenet-200`` of 1,200 real JPEGs, first (decoding)
load vs the second (cached) load.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from bench._util import console, figures_table, fmt_seconds, median_seconds

N_IMAGES = 10_000
BATCH = 128


def _consume(pipeline) -> None:
    for _ in pipeline:
        pass


def _baseline_per_image(images, labels, n_classes):
    import tensorflow as tf

    def augment(image, label):
        image = tf.image.random_flip_left_right(image, seed=0)
        padded = tf.image.resize_with_crop_or_pad(image, 32 + 6, 32 + 6)
        return tf.image.random_crop(padded, (32, 32, 3), seed=0), tf.one_hot(label, n_classes)

    return (
        tf.data.Dataset.from_tensor_slices((images, labels))
        .shuffle(len(images), seed=0)
        .map(augment, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(BATCH)
        .prefetch(tf.data.AUTOTUNE)
    )


def _baseline_keras_layers(images, labels, n_classes):
    import keras
    import tensorflow as tf

    augment = keras.Sequential(
        [
            keras.layers.RandomTranslation(0.1, 0.1, fill_mode="nearest", seed=0),
            keras.layers.RandomFlip("horizontal", seed=0),
        ]
    )
    return (
        tf.data.Dataset.from_tensor_slices((images, tf.one_hot(labels, n_classes)))
        .shuffle(len(images), seed=0)
        .batch(BATCH)
        .map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def _pipeline_rows() -> list[dict]:
    from psykedelic_cli.data import Dataset

    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, (N_IMAGES, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, N_IMAGES)
    mean = (raw / np.float32(255)).mean(axis=0).astype(np.float32)
    photos = Dataset(
        name="cifar10", x_train=raw, y_train=labels, x_val=raw[:1], y_val=labels[:1],
        x_test=raw[:1], y_test=labels[:1], n_classes=10, augment=True, mean=mean, source="bench", pixel_max=255.0,
    )
    images = raw.astype(np.float32) / 255 - mean  # the recipes get the images normalised beforehand
    ours_pipeline = photos.train_pipeline(BATCH, seed=0)
    ours = median_seconds(lambda: _consume(ours_pipeline), repeat=5)
    rows = []
    for label, build in (
        ("vs per-image tf.image", _baseline_per_image),
        ("vs keras layers", _baseline_keras_layers),
    ):
        baseline_pipeline = build(images, labels, 10)
        baseline = median_seconds(lambda: _consume(baseline_pipeline), repeat=5)
        ratio = baseline / ours
        rows.append(
            {
                "figure": f"augmented epoch {label}",
                "ours": fmt_seconds(ours),
                "baseline": fmt_seconds(baseline),
                "ratio": f"{ratio:.2f}× faster",
                "goal": "≥ 1×",
                "verdict": "met" if ratio >= 1 else "missed",
            }
        )
    return rows


def _write_tiny_imagenet(root: Path, n_classes: int = 20, per_class: int = 50, n_val: int = 200) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    wnids = [f"n{index:08d}" for index in range(n_classes)]
    root.mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")

    def save(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path, "JPEG")

    for wnid in wnids:
        for index in range(per_class):
            save(root / "train" / wnid / "images" / f"{wnid}_{index}.JPEG")
    lines = []
    for index in range(n_val):
        save(root / "val" / "images" / f"val_{index}.JPEG")
        lines.append(f"val_{index}.JPEG\t{wnids[index % n_classes]}\t0\t0\t63\t63")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")


def _cache_row() -> dict:
    from psykedelic_cli.data.tiny_imagenet import read_tiny_imagenet

    with tempfile.TemporaryDirectory() as scratch:
        _write_tiny_imagenet(Path(scratch) / "tiny-imagenet-200")
        start = time.perf_counter()
        read_tiny_imagenet(scratch)  # decodes every JPEG and writes the cache
        decode = time.perf_counter() - start
        cached = median_seconds(lambda: read_tiny_imagenet(scratch), repeat=3, warmup=0)
    ratio = decode / cached
    return {
        "figure": "tiny-imagenet cached vs decoding",
        "ours": fmt_seconds(cached),
        "baseline": fmt_seconds(decode),
        "ratio": f"{ratio:.1f}× faster",
        "goal": "≥ 5×",
        "verdict": "met" if ratio >= 5 else "missed",
    }


def run() -> None:
    rows = _pipeline_rows() + [_cache_row()]
    console.print(figures_table("datasets: training pipeline and decode cache", rows))
