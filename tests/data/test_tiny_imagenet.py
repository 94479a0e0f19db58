"""Tiny ImageNet reader on a small folder of real JPEG files."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from psykedelic_cli.data import load_dataset
from psykedelic_cli.data import tiny_imagenet as tiny
from psykedelic_cli.data.tiny_imagenet import read_tiny_imagenet
from psykedelic_cli.errors import PsykError

JPEG_TOLERANCE = 3  # flat colours survive JPEG within a few levels


@pytest.fixture
def decode_calls(monkeypatch) -> list:
    """Every path the reader decodes, in order."""
    calls = []
    real_decode = tiny._decode

    def counting_decode(path):
        calls.append(path)
        return real_decode(path)

    monkeypatch.setattr(tiny, "_decode", counting_decode)
    return calls


def test_reads_labels_in_wnids_order_and_rgb_pixels(tiny_imagenet):
    raw = read_tiny_imagenet(tiny_imagenet.root.parent)

    assert raw.x_train.shape == (30, 64, 64, 3) and raw.x_train.dtype == np.uint8
    assert raw.x_test.shape == (6, 64, 64, 3)
    assert raw.n_classes == 3 and raw.pixel_max == 255.0
    assert raw.y_train.tolist() == [0] * 10 + [1] * 10 + [2] * 10  # n03, n01, n02 as wnids.txt lists them
    assert raw.y_test.tolist() == [tiny_imagenet.wnids.index(w) for w in tiny_imagenet.val_wnids]
    colour_images = np.concatenate([np.delete(raw.x_train, 10, axis=0), raw.x_test])  # all but the grayscale one
    colour_labels = np.concatenate([np.delete(raw.y_train, 10), raw.y_test])
    for image, label in zip(colour_images, colour_labels):
        colour = np.array(tiny_imagenet.colours[tiny_imagenet.wnids[label]])
        assert np.abs(image.astype(int) - colour).max() <= JPEG_TOLERANCE
    grayscale = raw.x_train[10].astype(int)  # n01_0.JPEG, saved as one-channel
    assert (grayscale[..., 0] == grayscale[..., 1]).all() and (grayscale[..., 1] == grayscale[..., 2]).all()
    luminance = 0.299 * 30 + 0.587 * 200 + 0.114 * 30
    assert abs(grayscale.mean() - luminance) <= JPEG_TOLERANCE


def test_second_load_comes_from_the_cache(tiny_imagenet, decode_calls):
    first = read_tiny_imagenet(tiny_imagenet.root.parent)
    assert len(decode_calls) == 36
    assert (tiny_imagenet.root.parent / "tiny-imagenet-200-decoded.npz").is_file()

    second = read_tiny_imagenet(tiny_imagenet.root.parent)
    assert len(decode_calls) == 36
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(second, field), getattr(first, field))


def test_a_new_image_invalidates_the_cache(tiny_imagenet, decode_calls, jpeg_writer):
    read_tiny_imagenet(tiny_imagenet.root.parent)
    jpeg_writer(tiny_imagenet.root / "train" / "n02" / "images" / "n02_extra.JPEG", (0, 0, 0))
    raw = read_tiny_imagenet(tiny_imagenet.root.parent)

    assert len(decode_calls) == 36 + 37
    assert raw.x_train.shape[0] == 31 and raw.y_train.tolist().count(2) == 11


@pytest.mark.parametrize("change", ["later mtime, same size", "same mtime, other size"])
def test_an_image_replaced_under_the_same_name_invalidates_the_cache(tiny_imagenet, decode_calls, jpeg_writer, change):
    read_tiny_imagenet(tiny_imagenet.root.parent)
    replaced = tiny_imagenet.root / "val" / "images" / "val_0.JPEG"  # an n01 (green) image
    before = replaced.stat()
    if change == "later mtime, same size":
        jpeg_writer(replaced, (200, 200, 30))  # yellow: a flat JPEG of the same byte size
        mtime = before.st_mtime_ns + 1_000_000_000  # the file time pinned, not read from the clock
    else:
        noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(noise).save(replaced, "JPEG", quality=95)
        mtime = before.st_mtime_ns  # e.g. a copy that preserves times
    os.utime(replaced, ns=(before.st_atime_ns, mtime))
    assert (replaced.stat().st_size == before.st_size) == (change == "later mtime, same size")
    raw = read_tiny_imagenet(tiny_imagenet.root.parent)

    assert len(decode_calls) == 36 + 36
    expected = np.asarray(Image.open(replaced).convert("RGB"), dtype=int)
    np.testing.assert_array_equal(raw.x_test[0].astype(int), expected)
    assert np.abs(raw.x_test[0].astype(int) - np.array(tiny_imagenet.colours["n01"])).max() > JPEG_TOLERANCE


def test_cache_falls_back_to_the_user_cache(tiny_imagenet, decode_calls, tmp_path, monkeypatch):
    # A folder where the cache file would go makes that place unwritable, even for root.
    (tiny_imagenet.root.parent / "tiny-imagenet-200-decoded.npz").mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    read_tiny_imagenet(tiny_imagenet.root.parent)
    read_tiny_imagenet(tiny_imagenet.root.parent)

    assert len(decode_calls) == 36
    assert len(list((tmp_path / "xdg" / "psykedelic").glob("tiny-imagenet-200-*.npz"))) == 1
    assert not list((tmp_path / "xdg" / "psykedelic").glob("*.partial"))


def test_found_in_the_keras_cache(tiny_imagenet, empty_home):
    cache = empty_home / ".keras" / "datasets"
    cache.mkdir(parents=True)
    moved = tiny_imagenet.root.rename(cache / "tiny-imagenet-200")
    raw = read_tiny_imagenet(None)
    assert raw.source == str(moved) and raw.x_train.shape[0] == 30


def test_missing_folder_says_where_to_get_it(tmp_path, empty_home):
    with pytest.raises(PsykError) as error:
        load_dataset("tiny-imagenet", data_dir=tmp_path / "nowhere")
    message = str(error.value)
    assert str(tmp_path / "nowhere") in message and str(empty_home / ".keras" / "datasets") in message
    assert "tiny-imagenet-200" in message and "http://cs231n.stanford.edu/tiny-imagenet-200.zip" in message


def test_corrupt_jpeg_names_the_file(tiny_imagenet):
    broken = tiny_imagenet.root / "val" / "images" / "val_3.JPEG"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(PsykError, match="val_3.JPEG"):
        read_tiny_imagenet(tiny_imagenet.root.parent)


def test_wrong_image_size_names_the_file(tiny_imagenet, jpeg_writer):
    jpeg_writer(tiny_imagenet.root / "train" / "n01" / "images" / "n01_big.JPEG", (1, 2, 3), size=65)
    with pytest.raises(PsykError, match=r"n01_big.JPEG is 65×65, expected 64×64"):
        read_tiny_imagenet(tiny_imagenet.root.parent)


def test_unknown_class_in_val_annotations_names_the_line(tiny_imagenet):
    annotations = tiny_imagenet.root / "val" / "val_annotations.txt"
    annotations.write_text(annotations.read_text() + "val_9.JPEG\tn99\t0\t0\t63\t63\n")
    with pytest.raises(PsykError, match="val_annotations.txt line 7"):
        read_tiny_imagenet(tiny_imagenet.root.parent)


def test_load_dataset_holds_out_one_per_class_and_augments(tiny_imagenet):
    ds = load_dataset("tiny-imagenet", data_dir=tiny_imagenet.root.parent)

    assert ds.input_shape == (64, 64, 3) and ds.n_classes == 3 and ds.augment
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (27, 3, 6)
    assert sorted(ds.y_val.tolist()) == [0, 1, 2]
    np.testing.assert_allclose(ds.features("train").mean(axis=0), 0, atol=1e-6)
    assert ds.describe()["source"] == str(tiny_imagenet.root)
