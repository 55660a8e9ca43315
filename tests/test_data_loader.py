"""nnlite.data plumbing: datasets, default_collate, and the DataLoader's
order, resume, prefetch threads and error reporting."""
import threading
import time

import numpy as np
import pytest

from nnlite.data import (ArrayDataset, DataLoader, DataLoaderError, Dataset, Subset,
                         default_collate, materialize, random_split)


class Squares(Dataset):
    """Item i = (float array [i, i*i], i, str(i)); raises at the indices in `bad`."""

    def __init__(self, n, bad=(), delay=0.0):
        self.n, self.bad, self.delay = n, set(bad), delay

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        if index in self.bad:
            raise KeyError(f"broken item {index}")
        if self.delay:
            time.sleep(self.delay)
        return np.array([index, index * index], dtype=np.float64), index, str(index)


def ids(batches):
    return [list(b[1]) for b in batches]


def test_default_collate_stacks_arrays_as_float32_and_keeps_strings():
    images, numbers, texts = default_collate([(np.ones((2, 3)), 1, "a"),
                                              (np.zeros((2, 3)), 2, "bc")])
    assert images.shape == (2, 2, 3) and images.dtype == np.float32
    assert numbers.dtype == np.int64 and numbers.tolist() == [1, 2]
    assert texts == ["a", "bc"]
    labels = default_collate([np.array([1, 10], np.int64), np.array([3, 4], np.int64)])
    assert labels.dtype == np.int64 and labels.tolist() == [[1, 10], [3, 4]]
    both = default_collate([{"x": 1.5, "y": "p"}, {"x": 2.0, "y": "q"}])
    assert both["x"].dtype == np.float32 and both["y"] == ["p", "q"]
    with pytest.raises(ValueError, match="different shapes"):
        default_collate([np.ones(2), np.ones(3)])


# (samples, expected dtype, expected values): written by hand from the rule
# "bools stay bool, integers keep numpy's result type, any float makes the
# batch float32 (nnlite's compute type)".
PROMOTION_CASES = [
    ([1, 2.5], np.float32, [1.0, 2.5]),
    ([2.5, 1], np.float32, [2.5, 1.0]),
    ([True, False], np.bool_, [True, False]),
    ([True, 2], np.int64, [1, 2]),
    ([1, 2], np.int64, [1, 2]),
    ([1, np.float32(2.5)], np.float32, [1.0, 2.5]),
    ([np.int32(1), np.float32(2.5)], np.float32, [1.0, 2.5]),
    ([np.int32(1), np.int64(2)], np.int64, [1, 2]),
    ([np.int32(1), 2], np.int64, [1, 2]),
    ([np.int8(1), 300], np.int64, [1, 300]),
    ([np.bool_(True), np.bool_(False)], np.bool_, [True, False]),
    ([np.float64(1.5), 2], np.float32, [1.5, 2.0]),
    ([np.array([1], np.int32), np.array([2.5], np.float32)], np.float32, [[1.0], [2.5]]),
    ([np.array([1], np.uint8), np.array([-2], np.int8)], np.int16, [[1], [-2]]),
    ([np.array([True]), np.array([200], np.uint8)], np.uint8, [[1], [200]]),
    ([np.array([1], np.int64), np.array([2], np.float32)], np.float32, [[1.0], [2.0]]),
]


@pytest.mark.parametrize("samples, dtype, values", PROMOTION_CASES)
def test_default_collate_promotes_mixed_numbers_instead_of_truncating(samples, dtype, values):
    batch = default_collate(samples)
    assert batch.dtype == dtype and batch.tolist() == values


@pytest.mark.parametrize("samples, dtype, values", PROMOTION_CASES)
def test_default_collate_follows_torch_dtype_rules(samples, dtype, values):
    """Same kind (bool / integer / float) and values as PyTorch's
    default_collate, the same integer type; floats are float32 here where
    PyTorch may keep float64 (nnlite's compute type is float32)."""
    torch_data = pytest.importorskip("torch.utils.data")
    ours, theirs = default_collate(samples), torch_data.default_collate(samples)
    theirs_numpy = theirs.numpy()
    assert ours.dtype.kind == theirs_numpy.dtype.kind
    if ours.dtype.kind != "f":
        assert ours.dtype == theirs_numpy.dtype
    assert ours.tolist() == theirs_numpy.astype(ours.dtype).tolist()


def test_default_collate_refuses_what_it_cannot_batch_faithfully():
    with pytest.raises(ValueError, match="outside int64"):
        default_collate([1, 2 ** 63])  # numpy would make both float64 and lose the 1's bits
    with pytest.raises(TypeError, match="mixes numbers and str"):
        default_collate([1, "a"])
    assert default_collate([np.str_("a"), np.str_("b")]) == ["a", "b"]


def test_array_dataset_subset_and_random_split():
    data = ArrayDataset(np.arange(10), np.arange(10) * 2)
    assert len(data) == 10 and data[3] == (3, 6) and data[-1] == (9, 18)
    with pytest.raises(IndexError, match="out of range"):
        data[10]
    with pytest.raises(ValueError, match="different lengths"):
        ArrayDataset(np.arange(3), np.arange(4))
    assert Subset(data, [4, 1])[1] == (1, 2)
    a, b = random_split(data, [7, 3], seed=5)
    seen = sorted([a[i][0] for i in range(7)] + [b[i][0] for i in range(3)])
    assert seen == list(range(10))
    a2, _ = random_split(data, [7, 3], seed=5)
    assert a.indices == a2.indices
    assert a.indices != random_split(data, [7, 3], seed=6)[0].indices
    with pytest.raises(ValueError, match="sum to"):
        random_split(data, [5, 3])


def test_materialize_keeps_items():
    stored = materialize(Squares(5), progress=False)
    assert len(stored) == 5 and stored[2][2] == "2"


def test_len_order_and_drop_last():
    data = Squares(10)
    assert len(DataLoader(data, 3)) == 4 and len(DataLoader(data, 3, drop_last=True)) == 3
    assert ids(DataLoader(data, 3)) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert ids(DataLoader(data, 3, drop_last=True)) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    first = next(iter(DataLoader(data, 4)))
    assert first[0].dtype == np.float32 and first[0].shape == (4, 2)
    assert first[2] == ["0", "1", "2", "3"]


def test_shuffle_is_a_permutation_from_seed_and_epoch():
    data = Squares(20)
    loader = DataLoader(data, 6, shuffle=True, seed=3)
    epoch0 = sum(ids(loader), [])
    epoch1 = sum(ids(loader), [])  # the loader moved on to epoch 1 by itself
    assert sorted(epoch0) == list(range(20)) and sorted(epoch1) == list(range(20))
    assert epoch0 != epoch1 and epoch0 != list(range(20))
    expected = np.random.default_rng([3, 1]).permutation(20).tolist()
    assert epoch1 == expected
    again = DataLoader(data, 6, shuffle=True, seed=3)
    again.set_epoch(1)
    assert sum(ids(again), []) == epoch1
    other = DataLoader(data, 6, shuffle=True, seed=4)
    assert sum(ids(other), []) != epoch0


@pytest.mark.parametrize("prefetch,workers", [(0, 1), (2, 1), (3, 3)])
def test_resume_mid_epoch_gives_the_same_remaining_batches(prefetch, workers):
    data = Squares(23)
    reference = DataLoader(data, 4, shuffle=True, seed=11)
    uninterrupted = ids(reference) + ids(reference)  # epochs 0 and 1: 6 batches each

    interrupted = DataLoader(data, 4, shuffle=True, seed=11, prefetch=prefetch,
                             workers=workers)
    served = ids(interrupted)  # epoch 0
    iterator = iter(interrupted)
    served += ids([next(iterator), next(iterator)])  # two batches of epoch 1
    state = interrupted.state_dict()
    assert state == {"seed": 11, "epoch": 1, "batch": 2}
    del iterator

    fresh = DataLoader(data, 4, shuffle=True, seed=0, prefetch=prefetch, workers=workers)
    fresh.load_state_dict(state)
    assert fresh.state_dict() == state
    rest = ids(fresh)
    assert served + rest == uninterrupted
    assert fresh.state_dict() == {"seed": 11, "epoch": 2, "batch": 0}


def test_state_after_the_last_batch_points_at_the_next_epoch():
    loader = DataLoader(Squares(8), 4, shuffle=True)
    iterator = iter(loader)
    next(iterator)
    next(iterator)
    assert loader.state_dict() == {"seed": 0, "epoch": 1, "batch": 0}
    with pytest.raises(ValueError, match="not a position"):
        loader.load_state_dict({"seed": 0, "epoch": 0, "batch": 3})
    with pytest.raises(KeyError, match="lacks"):
        loader.load_state_dict({"epoch": 0})


def test_breaking_early_continues_and_prefetch_does_not_skip():
    loader = DataLoader(Squares(12), 2, prefetch=3)
    for batch in loader:
        break
    assert loader.state_dict()["batch"] == 1
    assert ids(loader) == [[2, 3], [4, 5], [6, 7], [8, 9], [10, 11]]


def test_worker_exception_names_the_sample_index():
    loader = DataLoader(Squares(10, bad={7}), 3, prefetch=2, workers=2)
    with pytest.raises(DataLoaderError, match=r"dataset\[7\].*KeyError.*broken item 7") as info:
        list(loader)
    assert info.value.index == 7 and isinstance(info.value.__cause__, KeyError)
    # the failing batch was not handed out: the state still points at it
    assert loader.state_dict()["batch"] == 2


def test_collate_errors_are_reported():
    def bad_collate(samples):
        raise TypeError("cannot collate these")
    with pytest.raises(DataLoaderError, match="collating batch 0 of epoch 0.*cannot collate"):
        next(iter(DataLoader(Squares(4), 2, collate=bad_collate)))


def _data_threads():
    return {t for t in threading.enumerate() if t.name.startswith("nnlite-data")}


def test_threads_shut_down_when_the_iterator_is_dropped():
    before = _data_threads()
    loader = DataLoader(Squares(100, delay=0.002), 2, prefetch=4, workers=2)
    iterator = iter(loader)
    next(iterator)
    ours = _data_threads() - before
    assert ours  # this iterator's prefetch threads
    del iterator
    deadline = time.time() + 5
    while any(t.is_alive() for t in ours) and time.time() < deadline:
        time.sleep(0.01)
    assert not any(t.is_alive() for t in ours)


def test_threads_are_joined_at_the_end_of_an_epoch():
    before = _data_threads()
    loader = DataLoader(Squares(10), 3, prefetch=2, workers=2)
    assert len(list(loader)) == 4
    assert not any(t.is_alive() for t in _data_threads() - before)


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(Squares(3), 0)
    with pytest.raises(ValueError, match="workers"):
        DataLoader(Squares(3), 1, workers=0)


def test_render_workers_leave_ctrl_c_to_the_training_process():
    # Ctrl-C goes to the whole process group; a worker that took it printed a
    # KeyboardInterrupt traceback over the trainer's "saved last.h5" message.
    import subprocess
    import sys
    code = ("import signal; from nnlite.data import loader; loader._start_worker(None, None); "
            "print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == "True", done.stderr
