"""Datasets for `tflc train`: MNIST from its IDX files, split as the TensorFlow tutorials split it,
or any classification data in an `.npz` file.

    data = load_dataset("mnist")            # or "path/to/data.npz"
    data.train.images                       # f32[55000, 784], pixels in [0, 1]
    data.train.labels                       # i64[55000], class indices
    data.train.one_hot()                    # f32[55000, 10]

An `.npz` dataset holds `train/images` and `train/labels` (or `train_images`, `train_labels`, as
`np.savez(path, train_images=..., ...)` writes them), and optionally the same for `validation`
and `test`. Images are any numbers of shape [n, ...], taken as float32 and flattened to [n, D]
(not rescaled); labels are class indices [n] (integers >= 0) or one-hot rows [n, C].
"""

from __future__ import annotations

import gzip
import math
import os
import zipfile
import zlib
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
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Split:
    """Images as f32[n, D]; labels as class indices, i64[n]."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def one_hot(self, depth: int = 10) -> np.ndarray:
        return np.eye(depth, dtype=np.float32)[self.labels]


@dataclass(frozen=True)
class Dataset:
    train: Split
    validation: Split | None
    test: Split | None

    @property
    def features(self) -> int:
        return self.train.images.shape[1]

    @property
    def classes(self) -> int:
        """One more than the largest label of any split."""
        return 1 + max(int(split.labels.max(initial=-1)) for split in self.splits().values())

    def splits(self) -> dict[str, Split]:
        """The splits present, by name, in the order train, validation, test."""
        return {name: getattr(self, name) for name in SPLITS if getattr(self, name) is not None}


def load_dataset(spec: str) -> Dataset:
    """`mnist` (the copy shipped in examples/data/mnist), or the path of an `.npz` file."""
    if spec == "mnist":
        return load_mnist()
    if not os.path.exists(spec):
        raise Error(f"no dataset '{spec}': give `mnist` or the path of an .npz file")
    return load_npz(spec)


# -- MNIST ---------------------------------------------------------------------------------------

def read_idx(path: str) -> np.ndarray:
    """Reads an IDX file, gzipped or not (told by its first bytes, not its name)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise Error(f"cannot read {path}: {e.strerror}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise Error(f"{path}: corrupt or truncated gzip data ({e})") from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in IDX_DTYPES:
        raise Error(f"{path}: not an IDX file (bad magic number)")
    dtype, rank = np.dtype(IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * rank
    if len(raw) < header:
        raise Error(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank))
    needed = math.prod(shape) * dtype.itemsize
    if len(raw) - header != needed:
        problem = "truncated" if len(raw) - header < needed else "too long"
        raise Error(f"{path}: IDX data {problem}: {len(raw) - header} bytes, but shape "
                    f"{list(shape)} needs {needed}")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape)


def _find(directory: str, stem: str) -> str:
    for name in (stem + ".gz", stem):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    raise Error(f"MNIST file {stem}[.gz] not found in {directory}")


def _mnist_split(directory: str, which: str) -> Split:
    images_stem, labels_stem = MNIST_FILES[which]
    images = read_idx(_find(directory, images_stem))
    labels = read_idx(_find(directory, labels_stem))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise Error(f"{directory}: MNIST {which} images {list(images.shape)} and labels "
                    f"{list(labels.shape)} do not match")
    flat = images.reshape(len(images), -1).astype(np.float32) / np.float32(255)
    return Split(flat, labels.astype(np.int64))


def load_mnist(directory: str = MNIST_DIR) -> Dataset:
    """55000 train / 5000 validation (the last 5000 training images) / 10000 test, pixels
    scaled to [0, 1], as the tutorials' `input_data.read_data_sets` splits them."""
    full, test = _mnist_split(directory, "train"), _mnist_split(directory, "test")
    cut = len(full) - VALIDATION_SIZE
    return Dataset(Split(full.images[:cut], full.labels[:cut]),
                   Split(full.images[cut:], full.labels[cut:]), test)


# -- .npz ----------------------------------------------------------------------------------------

def load_npz(path: str) -> Dataset:
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise Error(f"cannot read dataset {path}: {getattr(e, 'strerror', None) or e}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise Error(f"dataset {path} is a single array; give an .npz file with train/images "
                    "and train/labels")
    with archive:
        splits = {name: _npz_split(path, archive, name) for name in SPLITS}
    if splits["train"] is None:
        raise Error(f"dataset {path} has no train/images "
                    f"(it holds: {', '.join(archive.files) or 'nothing'})",
                    hint="write it with np.savez(path, train_images=..., train_labels=...)")
    features = splits["train"].images.shape[1]
    for name, split in splits.items():
        if split is not None and split.images.shape[1] != features:
            raise Error(f"dataset {path}: {name} images have {split.images.shape[1]} features "
                        f"per example, train images {features}")
    return Dataset(**splits)


def _npz_split(path: str, archive, name: str) -> Split | None:
    images, labels = (_member(path, archive, name, part) for part in ("images", "labels"))
    if images is None and labels is None:
        return None
    if images is None or labels is None:
        raise Error(f"dataset {path} has {name} {'labels' if images is None else 'images'} "
                    f"but no {name} {'images' if images is None else 'labels'}")
    where = f"dataset {path}: {name}"
    if images.dtype.kind not in "biuf" or images.ndim < 2 or len(images) == 0:
        raise Error(f"{where} images must be numbers of shape [n, ...] with n > 0, got "
                    f"{images.dtype} {list(images.shape)}")
    if len(labels) != len(images):
        raise Error(f"{where} has {len(images)} images but {len(labels)} labels")
    return Split(images.reshape(len(images), -1).astype(np.float32),
                 _class_indices(where, labels))


def _member(path: str, archive, split: str, part: str) -> np.ndarray | None:
    for key in (f"{split}/{part}", f"{split}_{part}"):
        if key in archive.files:
            try:
                return archive[key]
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
                raise Error(f"dataset {path}: cannot read {key}: {e}") from None
    return None


def _class_indices(where: str, labels: np.ndarray) -> np.ndarray:
    """Labels as i64[n] class indices, from indices or from one-hot rows."""
    if labels.dtype.kind not in "biuf" or labels.ndim not in (1, 2):
        raise Error(f"{where} labels must be class indices [n] or one-hot rows [n, C], got "
                    f"{labels.dtype} {list(labels.shape)}")
    if labels.ndim == 2:
        return np.argmax(labels, axis=1).astype(np.int64)
    if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)) \
            or np.any(labels < 0):
        raise Error(f"{where} labels must be whole numbers >= 0 (class indices)")
    return labels.astype(np.int64)
