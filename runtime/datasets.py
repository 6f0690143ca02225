"""Datasets for `tflc train`: the MNIST IDX files, split as the TensorFlow tutorials split them."""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass

import numpy as np

from ..ir.errors import Error

MNIST_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "examples", "data", "mnist")
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
VALIDATION_SIZE = 5000
IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


@dataclass(frozen=True)
class Split:
    """Images as f32[n, 784] scaled to [0, 1]; labels as class indices (int64)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def one_hot(self, depth: int = 10) -> np.ndarray:
        return np.eye(depth, dtype=np.float32)[self.labels]


@dataclass(frozen=True)
class Mnist:
    train: Split
    validation: Split
    test: Split


def read_idx(path: str) -> np.ndarray:
    """Reads an IDX file, gzipped or not (by its magic bytes, not its name)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise Error(f"cannot read {path}: {e.strerror}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise Error(f"{path}: corrupt gzip data ({e})") from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in IDX_DTYPES:
        raise Error(f"{path}: not an IDX file (bad magic number)")
    dtype, rank = np.dtype(IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * rank
    if len(raw) < header:
        raise Error(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise Error(f"{path}: IDX data has {len(raw) - header} bytes, shape {shape} needs "
                    f"{expected - header}")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape)


def _find(directory: str, stem: str) -> str:
    for name in (stem + ".gz", stem):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    raise Error(f"MNIST file {stem}[.gz] not found in {directory}")


def _split(directory: str, which: str) -> Split:
    images_stem, labels_stem = MNIST_FILES[which]
    images = read_idx(_find(directory, images_stem))
    labels = read_idx(_find(directory, labels_stem))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise Error(f"{directory}: MNIST {which} images {images.shape} and labels "
                    f"{labels.shape} do not match")
    flat = images.reshape(len(images), -1).astype(np.float32) / np.float32(255)
    return Split(flat, labels.astype(np.int64))


def load_mnist(directory: str = MNIST_DIR) -> Mnist:
    """55000 train / 5000 validation (the last 5000 training images) / 10000 test."""
    full, test = _split(directory, "train"), _split(directory, "test")
    cut = len(full) - VALIDATION_SIZE
    return Mnist(Split(full.images[:cut], full.labels[:cut]),
                 Split(full.images[cut:], full.labels[cut:]), test)
