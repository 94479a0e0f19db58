"""CIFAR-10/100 readers on small releases written in the real pickle format."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from psykedelic_cli.data import load_dataset
from psykedelic_cli.data.cifar import read_cifar
from psykedelic_cli.errors import PsykError


def _sorted_images(images: np.ndarray) -> list[bytes]:
    """The images as an order-free multiset."""
    return sorted(image.tobytes() for image in images)


def _written_row(writer, file: str, index: int) -> np.ndarray:
    return pickle.loads(writer.payload(file), encoding="bytes")[b"data"][index]


def test_folder_rows_become_nhwc_pixels(tmp_path, cifar10):
    cifar10.write_folder(tmp_path / "cifar-10-batches-py")
    raw = read_cifar("cifar10", tmp_path)

    assert raw.x_train.shape == (100, 32, 32, 3) and raw.x_train.dtype == np.uint8
    assert raw.x_test.shape == (10, 32, 32, 3)
    row = _written_row(cifar10, "data_batch_2", 3)
    image = raw.x_train[20 + 3]  # batches are concatenated in order, 20 images each
    assert image[0, 0, 0] == row[0]
    assert image[0, 1, 0] == row[1]  # red, row 0, column 1
    assert image[1, 0, 0] == row[32]  # red, row 1, column 0
    assert image[0, 0, 1] == row[1024]  # the green plane starts at 1024
    assert image[2, 5, 2] == row[2048 + 2 * 32 + 5]
    assert image[31, 31, 2] == row[3071]
    np.testing.assert_array_equal(raw.x_train, cifar10.x_train)
    np.testing.assert_array_equal(raw.y_train, cifar10.y_train)
    np.testing.assert_array_equal(raw.x_test, cifar10.x_test)
    np.testing.assert_array_equal(raw.y_test, cifar10.y_test)
    assert raw.n_classes == 10 and raw.pixel_max == 255.0
    assert raw.source == str(tmp_path / "cifar-10-batches-py")


def test_archive_reads_the_same_as_the_folder(tmp_path, cifar10):
    cifar10.write_folder(tmp_path / "folder" / "cifar-10-batches-py")
    cifar10.write_archive(tmp_path / "archive" / "cifar-10-python.tar.gz")
    from_folder = read_cifar("cifar10", tmp_path / "folder")
    from_archive = read_cifar("cifar10", tmp_path / "archive")

    assert from_archive.source.endswith("cifar-10-python.tar.gz")
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(from_archive, field), getattr(from_folder, field))


def test_cifar100_reads_fine_labels_from_the_archive(tmp_path, cifar100):
    cifar100.write_archive(tmp_path / "cifar-100-python.tar.gz")
    raw = read_cifar("cifar100", tmp_path)

    assert raw.n_classes == 100
    assert set(raw.y_train.tolist()) == {0, 7, 14, 21, 28}  # fine labels; the coarse ones are 0..5
    np.testing.assert_array_equal(raw.y_train, cifar100.y_train)
    np.testing.assert_array_equal(raw.x_test, cifar100.x_test)
    assert raw.x_test[4, 7, 9, 1] == _written_row(cifar100, "test", 4)[1024 + 7 * 32 + 9]


@pytest.mark.parametrize(
    "keras_home_env, relative",
    [
        (True, "datasets/cifar-10-batches-py"),  # KERAS_HOME set, Keras 2 extracted layout
        (False, ".keras/datasets/cifar-10-batches-py-target/cifar-10-batches-py"),  # Keras 3 layout under ~
        (False, ".keras/datasets/cifar-10-batches-py.tar.gz"),  # Keras 2 archive name
        (False, ".keras/datasets/cifar-10-batches-py-target_archive"),  # Keras 3 archive name
    ],
)
def test_found_in_the_keras_cache(tmp_path, empty_home, monkeypatch, cifar10, keras_home_env, relative):
    base = tmp_path / "keras-home" if keras_home_env else empty_home
    if keras_home_env:
        monkeypatch.setenv("KERAS_HOME", str(base))
    target = base / relative
    if relative.endswith("py"):
        cifar10.write_folder(target)
    else:
        cifar10.write_archive(target)

    raw = read_cifar("cifar10", tmp_path / "no-such-dir")
    assert raw.source == str(target)
    np.testing.assert_array_equal(raw.x_train, cifar10.x_train)


def test_data_dir_comes_before_the_keras_cache(tmp_path, empty_home, cifar10, make_cifar):
    make_cifar("cifar10", seed=1).write_folder(empty_home / ".keras" / "datasets" / "cifar-10-batches-py")
    cifar10.write_archive(tmp_path / "mine" / "cifar-10-python.tar.gz")
    raw = read_cifar("cifar10", tmp_path / "mine")
    np.testing.assert_array_equal(raw.x_train, cifar10.x_train)


def test_data_dir_may_name_the_folder_itself(tmp_path, cifar10):
    folder = cifar10.write_folder(tmp_path / "cifar-10-batches-py")
    assert read_cifar("cifar10", folder).source == str(folder)


def test_missing_dataset_names_every_place_and_the_download(tmp_path, empty_home):
    with pytest.raises(PsykError) as error:
        load_dataset("cifar10", data_dir=tmp_path / "data")
    message = str(error.value)
    assert "\n" not in message
    assert str(tmp_path / "data") in message
    assert str(empty_home / ".keras" / "datasets") in message
    assert "cifar-10-python.tar.gz" in message and "cifar-10-batches-py" in message
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message


def test_keras_home_replaces_home_in_the_message(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    with pytest.raises(PsykError, match="cifar-100-python.tar.gz") as error:
        load_dataset("cifar100")
    assert str(tmp_path / "kh" / "datasets") in str(error.value)


def test_garbage_archive_names_the_file(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(b"not a tar file at all" * 100)
    with pytest.raises(PsykError, match=str(archive)):
        read_cifar("cifar10", tmp_path)


def test_truncated_archive_names_the_file(tmp_path, cifar10):
    archive = cifar10.write_archive(tmp_path / "cifar-10-python.tar.gz")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(PsykError, match=str(archive)):
        read_cifar("cifar10", tmp_path)


def test_archive_without_a_batch_names_it(tmp_path, cifar10):
    archive = cifar10.write_archive(tmp_path / "cifar-10-python.tar.gz", skip=("data_batch_4",))
    with pytest.raises(PsykError, match="data_batch_4") as error:
        read_cifar("cifar10", tmp_path)
    assert str(archive) in str(error.value)


def test_batch_with_wrong_row_length_is_refused(tmp_path, cifar10):
    folder = cifar10.write_folder(tmp_path / "cifar-10-batches-py")
    (folder / "test_batch").write_bytes(
        pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, protocol=2)
    )
    with pytest.raises(PsykError, match=r"test_batch.*\(N, 3072\)"):
        read_cifar("cifar10", tmp_path)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_naming_other_globals_is_refused_without_running_them(tmp_path, cifar10):
    folder = cifar10.write_folder(tmp_path / "cifar-10-batches-py")
    marker = tmp_path / "exploited"
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": _Exploit(marker), b"labels": []}, protocol=2))
    with pytest.raises(PsykError, match="data_batch_1"):
        read_cifar("cifar10", tmp_path)
    assert not marker.exists()


def test_load_dataset_splits_scales_and_centres_cifar(tmp_path, cifar10):
    cifar10.write_archive(tmp_path / "cifar-10-python.tar.gz")
    ds = load_dataset("cifar10", data_dir=tmp_path, split_seed=3)

    assert ds.input_shape == (32, 32, 3) and ds.n_classes == 10 and ds.augment
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (90, 10, 10)
    assert sorted(ds.y_val.tolist()) == list(range(10))  # stratified: one of each class
    assert ds.x_train.dtype == np.uint8 and ds.pixel_max == 255  # kept as stored: normalised per batch
    assert ds.features("train").dtype == np.float32
    np.testing.assert_allclose(ds.features("train").mean(axis=0), 0, atol=1e-6)
    # Undoing the centring and scaling gives back exactly the written pixels, each image once.
    features = np.concatenate([ds.features("train"), ds.features("val")])
    restored = np.rint((features + ds.mean) * 255).astype(np.uint8)
    assert _sorted_images(restored) == _sorted_images(cifar10.x_train)
    np.testing.assert_allclose((ds.features("test") + ds.mean) * 255, cifar10.x_test, atol=1e-3)
    np.testing.assert_array_equal(ds.y_test, cifar10.y_test)
