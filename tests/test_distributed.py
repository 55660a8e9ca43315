"""nnlite.distributed without MPI: the autograd hook point it rests on, the
DataLoader's sharding, the Reducer's buckets and weights against a loopback
transport, SyncBatchNorm's math, and the fallback to one process. The
multi-process tests are in test_distributed_mpi.py."""
import sys
import types

import numpy as np
import pytest

import nnlite as nl
import nnlite.functional as F
from nnlite import distributed, nn
from nnlite.data import DataLoader
from nnlite.distributed import group as group_module
from nnlite.distributed.sync_batchnorm import SyncBatchNormTrain
from nnlite.tensor import queue_backward_callback


# ------------------------------------------------------------ hook point --

def test_grad_ready_hook_fires_once_with_the_complete_gradient():
    w = nl.tensor(np.arange(3.0), requires_grad=True)
    seen = []
    w.register_grad_ready_hook(lambda t: seen.append(t.grad.numpy().copy()))
    # w reaches the loss through two paths: the hook must wait for both
    loss = (w * 2.0).sum() + (w * w).sum()
    loss.backward()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], 2.0 + 2 * np.arange(3.0))
    np.testing.assert_allclose(w.grad.numpy(), seen[0])


def test_grad_ready_hooks_fire_during_backward_in_reverse_layer_order():
    nl.manual_seed(0)
    first, second = nn.Linear(4, 5), nn.Linear(5, 2)
    order = []
    for name, layer in (("first", first), ("second", second)):
        layer.weight.register_grad_ready_hook(lambda t, name=name: order.append(name))
    handle = first.bias.register_grad_ready_hook(lambda t: order.append("removed"))
    handle.remove()
    second(first(nl.randn(3, 4))).sum().backward()
    assert order == ["second", "first"]


def test_backward_callbacks_run_last_and_only_inside_backward():
    w = nl.tensor([1.0, 2.0], requires_grad=True)
    events = []

    def hook(t):
        events.append("hook")
        queue_backward_callback(lambda: events.append(("callback", t.grad.numpy().tolist())))

    w.register_grad_ready_hook(hook)
    (w * 3.0).sum().backward()
    assert events == ["hook", ("callback", [3.0, 3.0])]
    with pytest.raises(RuntimeError, match="no backward is running"):
        queue_backward_callback(lambda: None)
    with pytest.raises(RuntimeError, match="only leaf tensors"):
        (w * 2.0).register_grad_ready_hook(lambda t: None)


# -------------------------------------------------------------- sharding --

class Items:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        return np.float32(index)


@pytest.mark.parametrize("n, batch, ranks", [(101, 8, 2), (96, 8, 2), (50, 4, 3), (17, 3, 4)])
def test_shards_of_each_step_are_the_one_process_batch(n, batch, ranks):
    """Rank shards of batch b, joined in rank order, are batch b of one
    process at the global batch; an epoch covers the dataset once (less a
    last remainder smaller than the number of ranks)."""
    whole = DataLoader(Items(n), batch_size=batch * ranks, shuffle=True, seed=3)
    shards = [DataLoader(Items(n), batch_size=batch, shuffle=True, seed=3,
                         num_replicas=ranks, rank=r) for r in range(ranks)]
    remainder = n % (batch * ranks)
    assert all(len(s) == len(whole) - (0 < remainder < ranks) for s in shards)
    for epoch in (0, 1):
        served = []
        for b in range(len(shards[0])):
            joined = sum((s.batch_indices(epoch, b) for s in shards), [])
            assert joined == whole.batch_indices(epoch, b)
            served += joined
        assert len(served) == len(set(served)) == n - (remainder if remainder < ranks else 0)


def test_iteration_serves_the_shard_and_its_share_of_the_global_batch():
    loaders = [DataLoader(Items(10), batch_size=3, num_replicas=2, rank=r, prefetch=p)
               for r, p in ((0, 0), (1, 2))]
    batches = [[(b.tolist(), loader.last_shard_fraction) for b in loader] for loader in loaders]
    assert batches[0] == [([0, 1, 2], 0.5), ([6, 7], 0.5)]
    assert batches[1] == [([3, 4, 5], 0.5), ([8, 9], 0.5)]
    odd = [DataLoader(Items(9), batch_size=3, num_replicas=2, rank=r) for r in (0, 1)]
    assert [list(odd[r])[-1].tolist() for r in (0, 1)] == [[6, 7], [8]]
    assert [o.last_shard_fraction for o in odd] == [2 / 3, 1 / 3]


def test_sharding_arguments_are_checked():
    with pytest.raises(ValueError, match="rank 2 is not one of the 2 replicas"):
        DataLoader(Items(4), batch_size=2, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="num_replicas must be an int >= 1"):
        DataLoader(Items(4), batch_size=2, num_replicas=0)


def test_shard_loader_keeps_the_global_batch():
    two = types.SimpleNamespace(size=2, rank=1)
    loader = DataLoader(Items(40), batch_size=8, shuffle=True, seed=1)
    sharded = distributed.shard_loader(loader, two)
    assert (sharded.batch_size, sharded.global_batch_size, sharded.rank) == (4, 8, 1)
    assert loader.num_replicas == 1  # the original is left alone
    assert distributed.shard_loader(loader, two, keep_global_batch=False).batch_size == 8
    with pytest.raises(ValueError, match="global batch of 7 does not divide among 2"):
        distributed.shard_loader(DataLoader(Items(40), batch_size=7), two)
    with pytest.raises(TypeError, match="is not an nnlite.data.DataLoader"):
        distributed.shard_loader([1, 2], two)


# -------------------------------------------------------- process group --

@pytest.fixture
def fresh_group(monkeypatch):
    monkeypatch.setitem(group_module._group, "current", None)
    for variable in group_module.LAUNCH_ENV:
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


def test_without_a_launcher_it_is_one_process(fresh_group):
    group = distributed.init()
    assert (group.rank, group.size, distributed.is_distributed()) == (0, 1, False)
    assert isinstance(group, distributed.SingleProcess)
    assert group.ordered_sum(np.array([1.5])).tolist() == [1.5]
    assert group.bcast_object({"a": 1}) == {"a": 1}
    assert distributed.Reducer(nn.Linear(2, 2).parameters()).describe().startswith("1 process")


def test_launched_as_several_without_mpi4py_is_an_error(fresh_group):
    fresh_group.setenv("PMI_SIZE", "2")
    fresh_group.setitem(sys.modules, "mpi4py", None)  # import mpi4py fails
    with pytest.raises(RuntimeError, match=r"one of 2 \(PMI_SIZE=2\).*nnlite\[mpi\]"):
        distributed.init()


def test_bad_timeout_is_refused(fresh_group):
    fresh_group.setenv(group_module.TIMEOUT_ENV, "soon")
    with pytest.raises(ValueError, match="NNLITE_DIST_TIMEOUT must be a positive number"):
        distributed.init()


# --------------------------------------------------------------- reducer --

class TwoRanks(distributed.SingleProcess):
    """Rank 0 of two whose partner always sends what this rank sends."""
    size = 2

    def allgather_rows(self, row, what="all-gather"):
        return np.stack([row, row])


class Loopback:
    """A transport whose other rank contributes the same bucket."""

    def __init__(self, log):
        self.log = log

    def describe(self):
        return "loopback"

    def start(self, flat, tag, what):
        self.log.append(("start", tag))
        return flat.copy()

    def progress(self):
        pass

    def finish(self, pending):
        self.log.append(("finish",))
        return pending + pending


def test_reducer_starts_buckets_during_backward_and_averages():
    nl.manual_seed(1)
    model = nn.Sequential(nn.Linear(6, 40), nn.ReLU(), nn.Linear(40, 30), nn.ReLU(),
                          nn.Linear(30, 2))
    x = nl.randn(5, 6)
    F.cross_entropy(model(x), np.array([0, 1, 1, 0, 1])).backward()
    expected = [p.grad.numpy().copy() for p in model.parameters()]
    model.zero_grad()
    log = []
    for index, param in enumerate(model.parameters()):
        param.register_grad_ready_hook(lambda t, index=index: log.append(("ready", index)))
    reducer = distributed.Reducer(model.parameters(), TwoRanks(), bucket_cap_mb=4e-3,
                                  transport=Loopback(log), announce=False)
    assert len(reducer.buckets) > 2
    reducer.prepare()  # weight 1/2 each: (g + g) / 2 = g
    F.cross_entropy(model(x), np.array([0, 1, 1, 0, 1])).backward()
    reducer.finish()
    for param, grad in zip(model.parameters(), expected):
        np.testing.assert_array_equal(param.grad.numpy(), grad)
    first_start = log.index(("start", 0))
    last_ready = max(i for i, event in enumerate(log) if event[0] == "ready")
    assert first_start < last_ready, "bucket 0 must leave before backward ends"
    assert [e for e in log if e[0] == "start"] == [("start", i)
                                                   for i in range(len(reducer.buckets))]
    assert reducer.syncs == 1


def test_reducer_weights_shares_and_keeps_unused_gradients_none():
    used, unused = nn.Linear(3, 1), nn.Linear(3, 1)
    reducer = distributed.Reducer(list(used.parameters()) + list(unused.parameters()),
                                  TwoRanks(), transport=Loopback([]), announce=False)
    reducer.prepare(weight=0.25)  # this rank had a quarter of the global batch
    used(nl.ones(2, 3)).sum().backward()
    reducer.finish()
    np.testing.assert_allclose(used.bias.grad.numpy(), [2 * 0.25 * 2.0])
    assert unused.weight.grad is None and unused.bias.grad is None
    with reducer.no_sync():
        used(nl.ones(2, 3)).sum().backward()
    np.testing.assert_allclose(used.bias.grad.numpy(), [1.0 + 2.0])  # accumulated locally
    with pytest.raises(ValueError, match="weight must be in"):
        reducer.prepare(weight=2.0)


# ------------------------------------------------------------ batch norm --

def test_sync_batchnorm_with_one_rank_is_batchnorm():
    nl.manual_seed(2)
    plain = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3))
    x = nl.randn(4, 2, 6, 6)
    expected = plain(x).numpy()
    converted = distributed.convert_sync_batchnorm(plain)
    assert type(converted[1]).__name__ == "SyncBatchNorm"
    np.testing.assert_allclose(converted(x).numpy(), expected, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="expected 4-D"):
        converted[1](nl.randn(4, 3))  # the BatchNorm2d's input check is kept


@pytest.mark.parametrize("group", [distributed.SingleProcess(), TwoRanks()],
                         ids=["one rank", "mirrored rank"])
def test_sync_batchnorm_gradcheck(group):
    """With a mirrored second rank the global statistics equal the local ones
    and the weighting by 1/2 must cancel out: the gradient is BatchNorm's."""
    group.grad_weight = 1.0 / group.size
    rng = np.random.default_rng(0)
    x = nl.tensor(rng.standard_normal((4, 3, 2)), requires_grad=True)
    w = nl.tensor(rng.standard_normal(3) + 1.5, requires_grad=True)
    b = nl.tensor(rng.standard_normal(3), requires_grad=True)
    probe = nl.tensor(rng.standard_normal((4, 3, 2)))

    def fn(x, w, b):
        return (SyncBatchNormTrain.apply(x, w, b, eps=1e-5, group=group) * probe).sum() \
            * group.grad_weight * group.size

    nl.gradcheck(fn, (x, w, b))


def test_sync_batchnorm_running_statistics_use_the_global_count():
    group = TwoRanks()
    x = np.random.default_rng(1).standard_normal((3, 2)).astype(np.float64)
    mean, var = np.zeros(2), np.ones(2)
    SyncBatchNormTrain.apply(nl.tensor(x), eps=1e-5, running=(mean, var, 1.0), group=group)
    both = np.concatenate([x, x])
    np.testing.assert_allclose(mean, both.mean(axis=0))
    np.testing.assert_allclose(var, both.var(axis=0, ddof=1))


# --------------------------------------------------------------- transport --

def test_gpu_gradients_fall_back_to_mpi_without_nccl(monkeypatch):
    from nnlite.distributed import transport
    monkeypatch.setitem(sys.modules, "cupy", None)
    group = types.SimpleNamespace(local_size=2)
    assert transport.nccl_unavailable(group) == "CuPy is not installed"
    with pytest.raises(ValueError, match="reduction must be one of"):
        transport.MPITransport(group, reduction="fastest")
