"""Datasets: IDX files (raw and gzipped, every dtype), the MNIST split, .npz datasets, and every
damaged or malformed file as a tflc.Error that names it."""

import gzip
import struct

import numpy as np
import pytest

from tflc import Error
from tflc.runtime.datasets import load_dataset, load_mnist, load_npz, read_idx


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of `array`, written independently of the reader."""
    codes = {"u1": 0x08, "i1": 0x09, ">i2": 0x0B, ">i4": 0x0C, ">f4": 0x0D, ">f8": 0x0E}
    code = codes[array.dtype.str.lstrip("|")]
    header = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                    *array.shape)
    return header + array.tobytes()


def write(path, data: bytes, zipped: bool = False):
    path.write_bytes(gzip.compress(data) if zipped else data)
    return str(path)


@pytest.mark.parametrize("zipped", [False, True])
@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", ">i4", ">f4", ">f8"])
def test_idx_round_trip(tmp_path, dtype, zipped):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype == "u1":
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4) * 10
    got = read_idx(write(tmp_path / "a.idx", idx_bytes(array), zipped))
    assert got.shape == (2, 3, 4) and got.dtype == array.dtype
    np.testing.assert_array_equal(got, array)


def test_gzip_is_told_by_its_bytes_not_its_name(tmp_path):
    labels = np.array([3, 1, 4], np.uint8)
    zipped_without_suffix = write(tmp_path / "labels", idx_bytes(labels), zipped=True)
    raw_with_suffix = write(tmp_path / "labels.gz", idx_bytes(labels))
    for path in (zipped_without_suffix, raw_with_suffix):
        np.testing.assert_array_equal(read_idx(path), labels)


GOOD = idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))


@pytest.mark.parametrize("data, zipped, message", [
    (b"", False, "not an IDX file (bad magic number)"),
    (b"\x01\x00\x08\x01" + GOOD[4:], False, "not an IDX file"),
    (b"\x00\x00\x42\x02" + GOOD[4:], False, "not an IDX file"),          # unknown dtype code
    (GOOD[:9], False, "truncated IDX header"),
    (GOOD[:-1], False, "IDX data truncated: 11 bytes, but shape [3, 4] needs 12"),
    (GOOD + b"\0", False, "IDX data too long: 13 bytes"),
    (GOOD[:-1], True, "IDX data truncated"),                          # gzip fine, IDX short
    (gzip.compress(GOOD)[:-6], True, "corrupt or truncated gzip data"),
    (b"\x1f\x8b" + b"\xff" * 30, True, "corrupt or truncated gzip data"),
])
def test_damaged_idx_files_are_errors(tmp_path, data, zipped, message):
    if zipped and not data.startswith(b"\x1f\x8b"):
        data = gzip.compress(data)
    path = tmp_path / "bad.idx"
    path.write_bytes(data)
    with pytest.raises(Error) as error:
        read_idx(str(path))
    assert str(path) in error.value.message and message in error.value.message


def test_a_damaged_gzip_body_is_an_error(tmp_path):
    zipped = bytearray(gzip.compress(GOOD * 50))
    zipped[len(zipped) // 2] ^= 0xFF  # a flipped byte: a bad deflate block or a CRC mismatch
    path = tmp_path / "flipped.gz"
    path.write_bytes(bytes(zipped))
    with pytest.raises(Error, match="corrupt or truncated gzip data"):
        read_idx(str(path))


def test_missing_file(tmp_path):
    with pytest.raises(Error, match="cannot read .*nothing.idx: No such file"):
        read_idx(str(tmp_path / "nothing.idx"))


def fake_mnist(directory, train: int = 5003, test: int = 7, zipped: bool = True,
               test_labels: int | None = None):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (train, 2, 2), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (test, 2, 2), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, test_labels or test, dtype=np.uint8),
    }
    for stem, array in arrays.items():
        write(directory / (stem + (".gz" if zipped else "")), idx_bytes(array), zipped)
    return arrays


@pytest.mark.parametrize("zipped", [True, False])
def test_the_tutorial_split(tmp_path, zipped):
    arrays = fake_mnist(tmp_path, zipped=zipped)
    data = load_mnist(str(tmp_path))
    assert (len(data.train), len(data.validation), len(data.test)) == (3, 5000, 7)
    images = arrays["train-images-idx3-ubyte"].reshape(-1, 4) / np.float32(255)
    np.testing.assert_array_equal(data.train.images, images[:3])
    np.testing.assert_array_equal(data.validation.images, images[3:])
    np.testing.assert_array_equal(data.validation.labels, arrays["train-labels-idx1-ubyte"][3:])
    assert data.train.images.dtype == np.float32 and data.train.labels.dtype == np.int64
    np.testing.assert_array_equal(data.test.one_hot()[np.arange(7), data.test.labels], 1)


def test_mnist_files_that_do_not_fit(tmp_path):
    fake_mnist(tmp_path, test_labels=8)
    with pytest.raises(Error, match=r"MNIST test images \[7, 2, 2\] and labels \[8\] do not"):
        load_mnist(str(tmp_path))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(Error, match="MNIST file t10k-labels-idx1-ubyte\\[.gz\\] not found"):
        load_mnist(str(tmp_path))


def test_the_shipped_mnist():
    data = load_dataset("mnist")
    assert [len(s) for s in data.splits().values()] == [55000, 5000, 10000]
    assert data.features == 784 and data.classes == 10
    assert data.train.images.min() == 0 and data.train.images.max() == 1
    # The first labels of the standard files.
    assert data.train.labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert data.test.labels[:5].tolist() == [7, 2, 1, 0, 4]


# -- .npz ----------------------------------------------------------------------------------------

def test_npz_datasets_in_either_spelling(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.normal(size=(6, 2, 3))
    labels = np.array([0, 2, 1, 2, 0, 1])
    slashed = tmp_path / "slashed.npz"
    np.savez(slashed, **{"train/images": images, "train/labels": labels,
                         "test/images": images[:2], "test/labels": np.eye(3)[labels[:2]]})
    underscored = tmp_path / "underscored.npz"
    np.savez(underscored, train_images=images, train_labels=labels)
    for path, has_test in ((slashed, True), (underscored, False)):
        data = load_dataset(str(path))
        np.testing.assert_array_equal(data.train.images, images.reshape(6, 6).astype(np.float32))
        np.testing.assert_array_equal(data.train.labels, labels)
        assert data.validation is None and (data.test is not None) == has_test
    assert load_dataset(str(slashed)).test.labels.tolist() == [0, 2]  # from one-hot rows


def npz(tmp_path, **arrays):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize("arrays, message", [
    ({"test_images": np.ones((2, 3)), "test_labels": [0, 1]}, "has no train/images"),
    ({"train_images": np.ones((2, 3))}, "has train images but no train labels"),
    ({"train_images": np.ones((2, 3)), "train_labels": [0, 1, 1]}, "2 images but 3 labels"),
    ({"train_images": np.ones(3), "train_labels": [0, 1, 1]}, "images must be numbers of shape"),
    ({"train_images": np.ones((0, 3)), "train_labels": np.zeros(0)}, "n > 0"),
    ({"train_images": np.array([["a"]]), "train_labels": [0]}, "images must be numbers"),
    ({"train_images": np.ones((2, 3)), "train_labels": [0.5, 1]}, "whole numbers >= 0"),
    ({"train_images": np.ones((2, 3)), "train_labels": [-1, 1]}, "whole numbers >= 0"),
    ({"train_images": np.ones((2, 3)), "train_labels": np.ones((2, 2, 2))},
     "class indices [n] or one-hot rows [n, C]"),
    ({"train_images": np.ones((2, 3)), "train_labels": [0, 1],
      "validation_images": np.ones((2, 4)), "validation_labels": [0, 1]},
     "validation images have 4 features per example, train images 3"),
])
def test_malformed_npz_datasets(tmp_path, arrays, message):
    path = npz(tmp_path, **arrays)
    with pytest.raises(Error) as error:
        load_npz(path)
    assert path in error.value.message and message in error.value.message


def test_files_that_are_not_npz_datasets(tmp_path):
    with pytest.raises(Error, match="no dataset 'nowhere.npz': give `mnist` or the path"):
        load_dataset("nowhere.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(Error, match="cannot read dataset .*garbage.npz"):
        load_dataset(str(garbage))
    single = tmp_path / "single.npy"
    np.save(single, np.ones(3))
    with pytest.raises(Error, match="single array"):
        load_dataset(str(single))
    truncated = tmp_path / "truncated.npz"
    np.savez(truncated, train_images=np.ones((50, 50)), train_labels=np.zeros(50))
    truncated.write_bytes(truncated.read_bytes()[:-200])
    with pytest.raises(Error, match="truncated.npz"):
        load_dataset(str(truncated))
