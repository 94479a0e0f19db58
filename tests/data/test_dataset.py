"""Dataset preparation: digits end to end, the stratified hold-out, argument checks (no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from psykedelic_cli.data import DATASETS, Dataset, load_dataset
from psykedelic_cli.data.dataset import stratified_holdout
from psykedelic_cli.errors import PsykError


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits", split_seed=0)


def _sorted_rows(images: np.ndarray, labels: np.ndarray) -> list[bytes]:
    """(image, label) pairs as an order-free multiset."""
    return sorted(image.tobytes() + bytes([label]) for image, label in zip(images, labels))


def test_names():
    assert DATASETS == ("digits", "cifar10", "cifar100", "tiny-imagenet")


def test_digits_shapes_ranges_and_centring(digits):
    assert digits.input_shape == (8, 8, 1) and digits.n_classes == 10 and not digits.augment
    assert (len(digits.y_train), len(digits.y_val), len(digits.y_test)) == (1295, 143, 359)
    for images in (digits.features(split) for split in ("train", "val", "test")):
        assert images.dtype == np.float32 and images.shape[1:] == (8, 8, 1)
        restored = images + digits.mean
        assert restored.min() >= -1e-6 and restored.max() <= 1 + 1e-6
    assert digits.y_train.dtype == np.int64 and set(digits.y_train.tolist()) == set(range(10))
    np.testing.assert_allclose(digits.features("train").mean(axis=0), 0, atol=1e-6)
    # The mean is the training part's own, not the whole set's.
    assert np.abs(digits.mean - load_digits().images.reshape(-1, 8, 8, 1).mean(axis=0) / 16).max() > 1e-4


def test_digits_splits_partition_the_whole_set(digits):
    bunch = load_digits()
    original = np.rint(bunch.images.reshape(-1, 8, 8, 1)).astype(np.uint8)
    parts = [(digits.features(split), getattr(digits, f"y_{split}")) for split in ("train", "val", "test")]
    restored = np.concatenate([np.rint((x + digits.mean) * 16).astype(np.uint8) for x, _ in parts])
    labels = np.concatenate([y for _, y in parts])
    assert _sorted_rows(restored, labels) == _sorted_rows(original, bunch.target)


def test_digits_splits_are_stratified(digits):
    counts = np.bincount(load_digits().target, minlength=10)
    test_counts = np.bincount(digits.y_test, minlength=10)
    np.testing.assert_array_equal(test_counts, np.rint(0.2 * counts))
    val_counts = np.bincount(digits.y_val, minlength=10)
    np.testing.assert_array_equal(val_counts, np.rint(0.1 * (counts - test_counts)))


def test_seed_moves_the_validation_set_but_not_the_test_set(digits):
    same = load_dataset("digits", split_seed=0)
    other = load_dataset("digits", split_seed=1)
    for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "mean"):
        np.testing.assert_array_equal(getattr(same, field), getattr(digits, field))
    np.testing.assert_array_equal(other.x_test, digits.x_test)
    assert _sorted_rows(other.x_val, other.y_val) != _sorted_rows(digits.x_val, digits.y_val)


def test_stratified_holdout_is_a_seeded_stratified_partition():
    labels = np.repeat([0, 1, 2], [20, 30, 7])
    kept, held = stratified_holdout(labels, 0.1, np.random.default_rng(5))

    assert np.intersect1d(kept, held).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([kept, held])), np.arange(len(labels)))
    np.testing.assert_array_equal(np.bincount(labels[held]), [2, 3, 1])
    again_kept, again_held = stratified_holdout(labels, 0.1, np.random.default_rng(5))
    np.testing.assert_array_equal(again_held, held)
    _, other_held = stratified_holdout(labels, 0.1, np.random.default_rng(6))
    assert not np.array_equal(other_held, held)


def test_unknown_dataset_lists_the_names():
    with pytest.raises(
        PsykError, match="unknown dataset 'mnist'; choose one of digits, cifar10, cifar100, tiny-imagenet"
    ):
        load_dataset("mnist")


def test_describe_is_json_ready(digits):
    assert repr(digits) == (
        "Dataset('digits', train=1295, val=143, test=359, input_shape=(8, 8, 1), n_classes=10, augment=False)"
    )
    assert digits.describe() == {
        "name": "digits",
        "source": "scikit-learn load_digits",
        "input_shape": [8, 8, 1],
        "n_classes": 10,
        "n_train": 1295,
        "n_val": 143,
        "n_test": 359,
        "augment": False,
    }


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, "32", True])
def test_bad_batch_size_is_refused(digits, batch_size):
    with pytest.raises(PsykError, match="batch size must be a whole number"):
        digits.train_pipeline(batch_size)
    with pytest.raises(PsykError, match="batch size must be a whole number"):
        digits.eval_pipeline("test", batch_size)


def test_unknown_split_is_refused(digits):
    with pytest.raises(PsykError, match="unknown split 'train'; choose one of val, test"):
        digits.eval_pipeline("train", 32)
