"""SVHN format 1 (full house-number images) with digitStruct.mat.

digitStruct.mat is a MATLAB v7.3 file, i.e. HDF5. Its /digitStruct group has
`name` and `bbox`, each an (N, 1) array of object references. A name is a
uint16 character array. A bbox is a group of label/left/top/width/height
datasets: a (1, 1) number for an image with one digit, else a (k, 1) array of
references to (1, 1) numbers. SVHN's label 10 means the digit 0.
"""
import os

import numpy as np

from nnlite.data.dataset import Dataset
from nnlite.data.images import _check_root, read_image, resize

NO_DIGIT = 10
BOX_KEYS = ("label", "left", "top", "width", "height")


def _numbers(file, dataset):
    import h5py
    if h5py.check_dtype(ref=dataset.dtype) is not None:
        return [float(np.asarray(file[ref][()]).ravel()[0]) for ref in dataset[()].ravel()]
    return [float(v) for v in np.asarray(dataset[()]).ravel()]


def read_digit_struct(path, progress=True):
    """[(file name, {label, left, top, width, height: list of floats})] from
    an SVHN digitStruct.mat; labels stay SVHN's (10 = digit 0)."""
    import h5py
    from tqdm.auto import tqdm
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"SVHN: {path!r} does not exist")
    try:
        file = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"SVHN: {path!r} is not an HDF5 file (digitStruct.mat must be "
                         f"MATLAB v7.3, i.e. HDF5): {error}") from None
    with file:
        if "digitStruct" not in file:
            raise ValueError(f"SVHN: {path!r} has no 'digitStruct' group (top-level "
                             f"entries: {sorted(file.keys())})")
        group = file["digitStruct"]
        for key in ("name", "bbox"):
            if key not in group:
                raise ValueError(f"SVHN: {path!r}: digitStruct has no '{key}' dataset "
                                 f"(has {sorted(group.keys())})")
        names, boxes = group["name"][()].ravel(), group["bbox"][()].ravel()
        if len(names) != len(boxes):
            raise ValueError(f"SVHN: {path!r}: {len(names)} names but {len(boxes)} bboxes")
        entries = []
        try:
            for i in tqdm(range(len(names)), desc="reading digitStruct.mat", unit="image",
                          disable=not progress or len(names) < 1000):
                name = "".join(chr(int(c)) for c in np.asarray(file[names[i]][()]).ravel())
                box_group = file[boxes[i]]
                missing = [k for k in BOX_KEYS if k not in box_group]
                if missing:
                    raise ValueError(f"bbox of image {i} ({name!r}) lacks {missing}")
                box = {key: _numbers(file, box_group[key]) for key in BOX_KEYS}
                if len({len(v) for v in box.values()}) != 1 or not box["label"]:
                    raise ValueError(f"bbox of image {i} ({name!r}) has unequal or empty "
                                     f"fields {[len(v) for v in box.values()]}")
                entries.append((name, box))
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"SVHN: {path!r}: malformed digitStruct: {error}") from None
    return entries


class SVHN(Dataset):
    """SVHN format 1 from `root`/`split` (e.g. "train", "test", "extra"; None
    for `root` itself): its digitStruct.mat and PNG images. Item: (image
    float32 (3, H, W) in [0, 1] resized to `size` (None keeps the original),
    labels int64 (num_positions,) with digits 0-9 padded with 10 = no digit,
    box float32 (4,) = the digits' union box [x_center, y_center, h, w] in the
    returned image's pixels)."""

    def __init__(self, root, split="train", size=(128, 256), num_positions=6, progress=True):
        folder = _check_root("SVHN", root if split is None else os.path.join(root, split))
        self.folder, self.size, self.num_positions = folder, size, int(num_positions)
        self.entries = read_digit_struct(os.path.join(folder, "digitStruct.mat"), progress)
        for name, box in self.entries:
            if len(box["label"]) > self.num_positions:
                raise ValueError(f"SVHN: image {name!r} has {len(box['label'])} digits, more "
                                 f"than num_positions={self.num_positions}")
            bad = [v for v in box["label"] if v not in range(1, 11)]
            if bad:
                raise ValueError(f"SVHN: image {name!r} has labels {bad}; SVHN labels are "
                                 f"1-10 (10 = digit 0)")

    def __len__(self):
        return len(self.entries)

    def digits(self, index):
        """The digits of image `index` as ints 0-9."""
        return [int(v) % 10 for v in self.entries[self._check_index(index)][1]["label"]]

    def __getitem__(self, index):
        index = self._check_index(index)
        name, box = self.entries[index]
        image = read_image(os.path.join(self.folder, name), grey=False)
        height, width = image.shape[:2]
        sy = sx = 1.0
        if self.size is not None:
            sy, sx = self.size[0] / height, self.size[1] / width
            image = resize(image, self.size[0], self.size[1])
        labels = np.full(self.num_positions, NO_DIGIT, dtype=np.int64)
        digits = self.digits(index)
        labels[:len(digits)] = digits
        left, top = min(box["left"]), min(box["top"])
        right = max(l + w for l, w in zip(box["left"], box["width"]))
        bottom = max(t + h for t, h in zip(box["top"], box["height"]))
        union = np.array([(left + right) / 2 * sx, (top + bottom) / 2 * sy,
                          (bottom - top) * sy, (right - left) * sx], dtype=np.float32)
        return np.ascontiguousarray(image.transpose(2, 0, 1)), labels, union
