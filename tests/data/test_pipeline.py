"""The batches of every backend: seeded shuffling, one-hot labels, shifts and flips for photos, none for digits."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from psykedelic_cli.data import Dataset, load_dataset

pytestmark = pytest.mark.backends

MAX_SHIFT = 3  # ⌊0.1 × 32⌋


def _moved(image: np.ndarray, dy: int, dx: int, mirrored: bool) -> np.ndarray:
    """Reference: shift by (dy, dx) repeating the edges, then mirror left-right."""
    padded = np.pad(image, ((MAX_SHIFT, MAX_SHIFT), (MAX_SHIFT, MAX_SHIFT), (0, 0)), mode="edge")
    height, width = image.shape[:2]
    shifted = padded[MAX_SHIFT - dy : MAX_SHIFT - dy + height, MAX_SHIFT - dx : MAX_SHIFT - dx + width]
    return shifted[:, ::-1] if mirrored else shifted


def _transform_of(output: np.ndarray, source: np.ndarray) -> tuple[int, int, bool]:
    """The one (dy, dx, mirrored) within ±MAX_SHIFT that turns ``source`` into ``output``."""
    matches = [
        (dy, dx, mirrored)
        for dy in range(-MAX_SHIFT, MAX_SHIFT + 1)
        for dx in range(-MAX_SHIFT, MAX_SHIFT + 1)
        for mirrored in (False, True)
        if np.array_equal(_moved(source, dy, dx, mirrored), output)
    ]
    assert len(matches) == 1, f"output is {len(matches)} allowed transforms of its source"
    return matches[0]


def _photos(n: int = 48, seed: int = 0) -> Dataset:
    """Random 32×32 RGB images, image i has label i (so a batch tells which images it holds)."""
    rng = np.random.default_rng(seed)
    images = rng.random((n, 32, 32, 3), dtype=np.float32)
    labels = np.arange(n, dtype=np.int64)
    return Dataset(
        name="cifar10", x_train=images, y_train=labels, x_val=images[:4], y_val=labels[:4],
        x_test=images[:10], y_test=labels[:10], n_classes=n, augment=True,
        mean=np.zeros((32, 32, 3), np.float32), source="test",
    )


def _epoch(pipeline) -> tuple[np.ndarray, np.ndarray]:
    batches = list(pipeline)
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


def test_shift_and_flip_draws_every_allowed_shift_and_both_orientations():
    from psykedelic_cli.data.pipeline import shift_and_flip

    images = np.random.default_rng(1).random((200, 32, 32, 3), dtype=np.float32)
    moved = shift_and_flip(images, np.random.default_rng((7, 11)))
    transforms = [_transform_of(out, source) for out, source in zip(moved, images)]

    assert {dy for dy, _, _ in transforms} == set(range(-MAX_SHIFT, MAX_SHIFT + 1))
    assert {dx for _, dx, _ in transforms} == set(range(-MAX_SHIFT, MAX_SHIFT + 1))
    assert 0.35 < np.mean([mirrored for _, _, mirrored in transforms]) < 0.65
    again = shift_and_flip(images, np.random.default_rng((7, 11)))
    np.testing.assert_array_equal(again, moved)


def test_photo_training_batches_are_shifted_and_flipped_copies_with_one_hot_labels():
    photos = _photos()
    images, one_hot = _epoch(photos.train_pipeline(16, seed=2))

    assert images.shape == (48, 32, 32, 3) and one_hot.shape == (48, 48)
    assert set(np.unique(one_hot)) == {0.0, 1.0} and (one_hot.sum(axis=1) == 1).all()
    labels = one_hot.argmax(axis=1)
    assert sorted(labels.tolist()) == list(range(48))  # every image once per epoch
    assert labels.tolist() != list(range(48))  # shuffled
    transforms = [_transform_of(out, photos.x_train[label]) for out, label in zip(images, labels)]
    assert sum(t != (0, 0, False) for t in transforms) > 24
    assert any(mirrored for _, _, mirrored in transforms) and any(dx != 0 for _, dx, _ in transforms)


def test_digits_training_batches_are_never_augmented():
    digits = load_dataset("digits")
    pipeline = digits.train_pipeline(128, seed=4)
    orders = []
    for _ in range(2):
        images, one_hot = _epoch(pipeline)
        labels = one_hot.argmax(axis=1)
        served = sorted(image.tobytes() + bytes([label]) for image, label in zip(images, labels))
        expected = sorted(
            image.tobytes() + bytes([label]) for image, label in zip(digits.features("train"), digits.y_train))
        assert served == expected  # bit-exact images with their own labels: no flip, no shift
        orders.append(images)
    assert not np.array_equal(orders[0], orders[1])  # a new order each epoch


def test_training_order_and_augmentation_follow_the_seed():
    photos = _photos()
    first = photos.train_pipeline(16, seed=9)
    second = photos.train_pipeline(16, seed=9)
    first_epochs = [_epoch(first) for _ in range(2)]
    second_epochs = [_epoch(second) for _ in range(2)]
    for (x1, y1), (x2, y2) in zip(first_epochs, second_epochs):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(first_epochs[0][0], first_epochs[1][0])
    other, _ = _epoch(photos.train_pipeline(16, seed=10))
    assert not np.array_equal(other, first_epochs[0][0])


@pytest.mark.parametrize("split", ["val", "test"])
def test_eval_batches_keep_order_and_pixels(split):
    digits = load_dataset("digits")
    pipeline = digits.eval_pipeline(split, 100)
    sizes = Counter(int(b[0].shape[0]) for b in pipeline)
    images, one_hot = _epoch(pipeline)
    x, y = digits.features(split), (digits.y_val if split == "val" else digits.y_test)

    np.testing.assert_array_equal(images, x)
    np.testing.assert_array_equal(one_hot, np.eye(10, dtype=np.float32)[y])
    assert sizes == Counter({100: len(y) // 100, len(y) % 100: 1})


def test_uint8_photos_are_normalised_per_batch_exactly_as_the_whole_split():
    rng = np.random.default_rng(3)
    raw = rng.integers(0, 256, size=(40, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(40) % 10
    mean = (raw / np.float32(255)).mean(axis=0).astype(np.float32)
    photos = Dataset(name="cifar10", x_train=raw, y_train=labels, x_val=raw[:5], y_val=labels[:5], x_test=raw[:7],
                     y_test=labels[:7], n_classes=10, augment=False, mean=mean, source="test", pixel_max=255.0)
    images, _ = _epoch(photos.eval_pipeline("test", 3))
    assert images.dtype == np.float32 and photos.x_train.dtype == np.uint8
    np.testing.assert_array_equal(images, np.true_divide(raw[:7], np.float32(255), dtype=np.float32) - mean)
    np.testing.assert_array_equal(photos.features("test"), images)


def test_batches_depend_only_on_seed_epoch_and_index_whatever_order_keras_fetches_them():
    photos = _photos()
    pipeline = photos.train_pipeline(16, seed=5)
    last_first = [pipeline[i] for i in reversed(range(len(pipeline)))][::-1]
    in_order = [pipeline[i] for i in range(len(pipeline))]
    for (x1, y1), (x2, y2) in zip(last_first, in_order):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


def test_fit_moves_to_a_new_order_every_epoch_on_every_backend():
    import keras

    from psykedelic_cli.data.pipeline import EpochOrder

    photos = _photos(n=32)
    pipeline = photos.train_pipeline(8, seed=1)
    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(pipeline.epoch)

    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Dense(32)(keras.layers.GlobalAveragePooling2D()(inputs)))
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    model.fit(pipeline, epochs=3, verbose=0, shuffle=False, callbacks=[EpochOrder(pipeline), Record()])
    model.fit(pipeline, initial_epoch=3, epochs=5, verbose=0, shuffle=False, callbacks=[EpochOrder(pipeline), Record()])
    assert seen == [0, 1, 2, 3, 4]
