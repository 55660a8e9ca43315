"""Map-style datasets: an object with ``__len__`` and ``__getitem__(index)``.

Synthetic datasets are pure functions of (seed, index), so nothing is stored
and any order (shuffled, resumed mid-epoch) gives the same items. Fixed sets
that are read many times (a validation set) can be computed once with
``materialize``.
"""
import numpy as np


class Dataset:
    """Base class (PyTorch spelling): subclasses define __len__ and __getitem__."""

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def _check_index(self, index):
        """Python int index in [0, len); negative indices count from the end."""
        length = len(self)
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"{type(self).__name__}: index must be an int, got "
                            f"{type(index).__name__}")
        index = int(index)
        if index < 0:
            index += length
        if not 0 <= index < length:
            raise IndexError(f"{type(self).__name__}: index {index} out of range for "
                             f"{length} items")
        return index


class ArrayDataset(Dataset):
    """Items are rows of equally long arrays: item i = (arrays[0][i], arrays[1][i], ...)."""

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("ArrayDataset: needs at least one array")
        lengths = {len(a) for a in arrays}
        if len(lengths) != 1:
            raise ValueError(f"ArrayDataset: arrays have different lengths "
                             f"{[len(a) for a in arrays]}")
        self.arrays = arrays

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, index):
        index = self._check_index(index)
        return tuple(a[index] for a in self.arrays)


TensorDataset = ArrayDataset  # PyTorch's name for the same thing


class Subset(Dataset):
    """The items of `dataset` at `indices`, in that order."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = [int(i) for i in indices]
        for i in self.indices:
            if not 0 <= i < len(dataset):
                raise IndexError(f"Subset: index {i} out of range for a dataset of "
                                 f"{len(dataset)} items")

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        return self.dataset[self.indices[self._check_index(index)]]


def random_split(dataset, lengths, seed=0):
    """Disjoint Subsets of the given lengths (summing to len(dataset)), from a
    permutation drawn from `seed` only."""
    lengths = [int(n) for n in lengths]
    if any(n < 0 for n in lengths) or sum(lengths) != len(dataset):
        raise ValueError(f"random_split: lengths {lengths} must be non-negative and sum to "
                         f"the dataset's {len(dataset)} items")
    order = np.random.default_rng(seed).permutation(len(dataset))
    splits, start = [], 0
    for n in lengths:
        splits.append(Subset(dataset, order[start:start + n]))
        start += n
    return splits


class MaterializedDataset(Dataset):
    """Items computed once and kept in memory (see ``materialize``)."""

    def __init__(self, items):
        self.items = list(items)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[self._check_index(index)]


def materialize(dataset, progress=True, desc=None):
    """Compute every item of `dataset` once (a tqdm bar shows progress) and
    return them as a MaterializedDataset, e.g. for a fixed validation set."""
    from tqdm.auto import tqdm
    desc = desc or f"generating {type(dataset).__name__}"
    items = [dataset[i] for i in tqdm(range(len(dataset)), desc=desc, disable=not progress,
                                       unit="item")]
    return MaterializedDataset(items)
