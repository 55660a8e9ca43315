"""MNIST from its idx files (LeCun's format), raw or gzipped.

idx: two zero bytes, a type code (0x08 = unsigned byte), the number of
dimensions, each dimension as a big-endian uint32, then the data, row-major.
"""
import gzip
import math
import os

import numpy as np

from nnlite.data.dataset import Dataset
from nnlite.data.images import _check_root

IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    """The array stored in an idx file (gzipped if the name ends in .gz)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"idx file {path!r} does not exist")
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as error:
        raise ValueError(f"idx file {path!r} cannot be read: {error}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"idx file {path!r} does not start with an idx header (two zero "
                         f"bytes, a type code, a dimension count)")
    if data[2] not in IDX_TYPES:
        raise ValueError(f"idx file {path!r} has unknown type code 0x{data[2]:02x}")
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim < 1 or len(data) < header:
        raise ValueError(f"idx file {path!r} is truncated inside its header ({ndim} "
                         f"dimensions need {header} bytes, the file has {len(data)})")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_TYPES[data[2]])
    # math.prod of Python ints: np.prod wraps past int64 (65536**4 -> 0) and let
    # a header claiming more data than the file holds through to reshape
    expected = math.prod(shape) * dtype.itemsize
    if len(data) - header != expected:
        problem = "truncated" if len(data) - header < expected else "too long"
        raise ValueError(f"idx file {path!r} is {problem}: shape {shape} needs {expected} "
                         f"bytes of data, found {len(data) - header}")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find(root, prefix, kind, rank):
    candidates = [f"{prefix}-{kind}-idx{rank}-ubyte", f"{prefix}-{kind}.idx{rank}-ubyte"]
    for name in candidates:
        for suffix in ("", ".gz"):
            path = os.path.join(root, name + suffix)
            if os.path.isfile(path):
                return path
    raise FileNotFoundError(f"MNIST: none of {[c + '[.gz]' for c in candidates]} in {root!r}")


class MNIST(Dataset):
    """MNIST from a folder holding train-images-idx3-ubyte(.gz),
    train-labels-idx1-ubyte(.gz), t10k-images-idx3-ubyte(.gz) and
    t10k-labels-idx1-ubyte(.gz). Item: (image float32 (1, 28, 28) in [0, 1],
    label int). `images` (uint8 (N, 28, 28)) and `labels` (int64 (N,)) hold
    the whole split."""

    def __init__(self, root, train=True):
        root = _check_root("MNIST", root)
        prefix = "train" if train else "t10k"
        images_path, labels_path = _find(root, prefix, "images", 3), _find(root, prefix,
                                                                          "labels", 1)
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"MNIST: {images_path!r} holds {images.dtype} of shape "
                             f"{images.shape}; expected uint8 (N, rows, cols)")
        if labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(f"MNIST: {labels_path!r} holds shape {labels.shape}; expected "
                             f"({len(images)},) labels for the {len(images)} images")
        if labels.dtype != np.uint8:
            # signed types let -1 through, float ones were truncated to ints
            raise ValueError(f"MNIST: {labels_path!r} holds {labels.dtype} labels; expected "
                             f"unsigned bytes (idx type 0x08)")
        wrong = np.flatnonzero(labels > 9)
        if wrong.size:
            raise ValueError(f"MNIST: {labels_path!r} has labels "
                             f"{', '.join(str(labels[i]) for i in wrong[:5])} at "
                             f"{', '.join(str(i) for i in wrong[:5])}"
                             f"{' ...' if wrong.size > 5 else ''}; digits are 0-9")
        self.images, self.labels = images, labels.astype(np.int64)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        index = self._check_index(index)
        return self.images[index][None].astype(np.float32) / 255.0, int(self.labels[index])
