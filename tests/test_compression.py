"""Compression transforms against the uncompressed model: nn.LowRankLinear
(truncated SVD), nn.QuantizedLinear (float16 / int8 + row scales through the
dequant kernels in a bounded workspace), nnlite.compression (methods, ranks
for a budget, checkpoints) and fine-tuning with the Trainer."""
import copy
import tracemalloc

import numpy as np
import pytest

import nnlite as nl
from nnlite import compression as C
from nnlite import functional as F
from nnlite import nn
from nnlite.nn import compressed


def spectrum_weight(rows, cols, decay=0.97, seed=0, rank=None):
    """(W, U, s, V) with W = U diag(s) V^T of a decaying spectrum (as trained
    weights have), of rank `rank` (default full)."""
    rng = np.random.default_rng(seed)
    k = min(rows, cols) if rank is None else min(rank, rows, cols)
    u, _ = np.linalg.qr(rng.standard_normal((rows, k)))
    v, _ = np.linalg.qr(rng.standard_normal((cols, k)))
    s = decay ** np.arange(k)
    return ((u * s) @ v.T).astype(np.float32), u, s, v


def trained_like_weight(rows, cols, decay=0.97, seed=0):
    return spectrum_weight(rows, cols, decay, seed)[0]


def linear_with(weight, bias=True):
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias)
    layer.weight.data[...] = weight
    if bias:
        layer.bias.data[...] = np.linspace(-1, 1, weight.shape[0])
    return layer


def inputs(shape, seed=1, dtype=np.float32):
    return nl.tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


# ---------------------------------------------------------- LowRankLinear --

@pytest.mark.parametrize("shape", [(30, 50), (5000, 900), (600, 7200)])
def test_low_rank_is_the_truncated_svd(shape):
    """LAPACK's SVD for small weights, the Gram matrix of the smaller side for
    large ones (both orientations), against the known decomposition."""
    weight, u, s, v = spectrum_weight(*shape, rank=40)
    rank = 12
    layer = nn.LowRankLinear.from_linear(linear_with(weight), rank)
    best = (u[:, :rank] * s[:rank]) @ v[:, :rank].T
    np.testing.assert_allclose(layer.dense_weight(), best, atol=1e-5 * s[0])
    tail = np.sqrt((s[rank:] ** 2).sum() / (s ** 2).sum())
    assert abs(C.relative_error(weight, layer) - tail) < 1e-4
    # the square-root split: both factors carry S^1/2
    np.testing.assert_allclose(np.linalg.norm(layer.up.weight.numpy(), axis=0),
                               np.sqrt(s[:rank]), rtol=1e-4)


def test_low_rank_forward_is_two_gemms_and_keeps_the_bias():
    weight = trained_like_weight(40, 60)
    dense = linear_with(weight)
    layer = nn.LowRankLinear.from_linear(dense, 20)
    x = inputs((5, 60))
    expected = x.numpy() @ layer.dense_weight().T + dense.bias.numpy()
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-5, atol=1e-5)
    assert [n for n, _ in layer.named_parameters()] == ["down.weight", "up.weight", "up.bias"]
    assert layer.down.weight.shape == (20, 60) and layer.up.weight.shape == (40, 20)


def test_low_rank_refuses_ranks_that_save_nothing():
    dense = nn.Linear(60, 40)
    assert compressed.max_saving_rank(60, 40) == 23  # 60*40/(60+40) = 24
    nn.LowRankLinear.from_linear(dense, 23)
    with pytest.raises(ValueError, match="rank 24 .* not fewer than the dense 2,400; a "
                                         "saving rank is at most 23"):
        nn.LowRankLinear.from_linear(dense, 24)
    with pytest.raises(ValueError, match="rank 41 exceeds"):
        nn.LowRankLinear(60, 40, 41)


def test_low_rank_gradcheck_float64():
    layer = nn.LowRankLinear(5, 4, 2).double()
    x = inputs((3, 5), dtype=np.float64)
    x.requires_grad_(True)
    assert nl.gradcheck(lambda x, *params: layer(x), [x] + list(layer.parameters()))


# --------------------------------------------------------- QuantizedLinear --

@pytest.mark.parametrize("storage", ["int8", "float16"])
def test_quantized_matches_the_dequantised_dense_layer(storage):
    weight = trained_like_weight(70, 90) * 3
    dense = linear_with(weight)
    layer = nn.QuantizedLinear.from_linear(dense, storage)
    assert layer.weight.dtype == np.dtype(storage) and layer.weight.shape == (70, 90)
    x = inputs((6, 90))
    expected = x.numpy().astype(np.float64) @ layer.dense_weight().T + dense.bias.numpy()
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-5, atol=1e-5)
    err = np.abs(layer.dense_weight() - weight)
    if storage == "int8":
        scale = layer.weight_scale.numpy()
        np.testing.assert_allclose(scale, np.abs(weight).max(axis=1) / 127, rtol=1e-6)
        assert (err <= scale[:, None] / 2 * (1 + 1e-5)).all()  # round to nearest
    else:
        assert (err <= np.abs(weight) * 2.0 ** -11 + 2.0 ** -25).all()
        assert layer.weight_scale is None


def test_quantized_workspace_is_bounded_and_chunking_changes_nothing():
    weight = spectrum_weight(512, 1024, rank=40)[0]
    layer = nn.QuantizedLinear.from_linear(linear_with(weight), "int8")
    x = inputs((4, 1024))
    whole = layer(x).numpy()
    old = F.set_dequant_workspace(64 * 1024)  # 16 rows of 1024 float32
    try:
        assert layer.workspace_bytes() == 64 * 1024
        tracemalloc.start()
        chunked = layer(x).numpy()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        F.set_dequant_workspace(old)
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6)  # BLAS blocking only
    assert peak < 64 * 1024 + 4 * 512 * 4 * 3 + 16 * 1024, peak  # workspace + y, never 2 MiB
    assert layer.workspace_bytes() == min(F.get_dequant_workspace(), 512 * 1024 * 4)
    with pytest.raises(ValueError, match="positive number of bytes"):
        F.set_dequant_workspace(0)


def test_a_row_larger_than_the_workspace_is_one_chunk():
    layer = nn.QuantizedLinear.from_linear(linear_with(trained_like_weight(3, 50)), "float16")
    old = F.set_dequant_workspace(8)
    try:
        y = layer(inputs((2, 50))).numpy()
    finally:
        F.set_dequant_workspace(old)
    np.testing.assert_allclose(y, layer(inputs((2, 50))).numpy(), rtol=1e-6)


@pytest.mark.parametrize("storage", ["int8", "float16"])
def test_quantized_gradcheck_float64(storage):
    layer = nn.QuantizedLinear.from_linear(linear_with(trained_like_weight(4, 6)), storage)
    layer.double()
    assert layer.weight.dtype == np.dtype(storage)  # the stored weight keeps its dtype
    x = inputs((3, 6), dtype=np.float64)
    x.requires_grad_(True)
    params = list(layer.parameters())
    assert {p.dtype for p in params} == {np.dtype(np.float64)}
    assert nl.gradcheck(lambda x, *ps: layer(x), [x] + params)
    x3 = inputs((2, 3, 6), dtype=np.float64)  # leading dimensions
    x3.requires_grad_(True)
    assert nl.gradcheck(lambda x, *ps: layer(x), [x3] + params)


def test_quantized_bad_input_and_weights():
    layer = nn.QuantizedLinear(6, 4, "int8")
    with pytest.raises(ValueError, match=r"quantized_linear: input of shape \(2, 5\)"):
        layer(inputs((2, 5)))
    with pytest.raises(TypeError, match="quantized_linear: input is int64"):
        F.quantized_linear(nl.tensor(np.ones((2, 6), np.int64)), layer.weight,
                           layer.weight_scale, layer.bias)
    with pytest.raises(ValueError, match="storage='int4' is not one of"):
        nn.QuantizedLinear(6, 4, "int4")
    with pytest.raises(ValueError, match="beyond float16's range"):
        nn.QuantizedLinear.from_linear(linear_with(np.full((2, 3), 1e5, np.float32)),
                                       "float16")
    with pytest.raises(ValueError, match="NaN or infinity"):
        nn.QuantizedLinear.from_linear(linear_with(np.full((2, 3), np.nan, np.float32)),
                                       "int8")
    zero = nn.QuantizedLinear.from_linear(linear_with(np.zeros((2, 3), np.float32)), "int8")
    np.testing.assert_array_equal(zero.weight_scale.numpy(), 1.0)  # never a zero scale


# ------------------------------------------------------------ compression --

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc1 = nn.Linear(4 * 8 * 8, 300)
        self.fc2 = nn.Linear(300, 10)

    def forward(self, x):
        x = F.flatten(F.relu(self.conv(x)), 1)
        return self.fc2(F.relu(self.fc1(x)))


def trained_net():
    nl.manual_seed(0)
    net = Net()
    net.fc1.weight.data[...] = trained_like_weight(300, 256, decay=0.9) * 4
    return net.eval()


@pytest.mark.parametrize("method, tolerance", [("fp16", 2e-3), ("int8", 2e-2),
                                               ("svd", 5e-2), ("svd+int8", 6e-2),
                                               ("svd+fp16", 5e-2)])
def test_each_method_against_the_uncompressed_model(method, tolerance):
    net = trained_net()
    x = inputs((5, 1, 8, 8))
    with nl.no_grad():
        expected = net(x).numpy()
    model = copy.deepcopy(net)
    ranks = {"fc1": 40} if method.startswith("svd") else None
    report = C.compress(model, method, ranks=ranks)
    with nl.no_grad():
        got = model(x).numpy()
    assert np.abs(got - expected).max() <= tolerance * np.abs(expected).max()
    assert report["param_bytes_after"] < report["param_bytes_before"]
    layers = {entry["path"]: entry for entry in report["layers"]}
    assert set(layers) == {"fc1", "fc2"}
    kinds = {"lowrank"} if method.startswith("svd") else {"quantized"}
    assert layers["fc1"]["kind"] in kinds
    assert type(model.conv) is nn.Conv2d  # convolutions are not touched


def test_ranks_chosen_for_a_budget_fit_it():
    net = trained_net()
    for method in ("svd", "svd+int8"):
        model = copy.deepcopy(net)
        budget = 120_000
        report = C.compress(model, method, budget=budget, input_shape=(1, 8, 8))
        result = nl.summary(model, (1, 8, 8), memory=budget)
        assert result.fits and result.totals["required_bytes"] <= budget, method
        fc1 = report["layers"][0]
        assert fc1["kind"] == "lowrank" and 1 <= fc1["rank"] <= 137


def test_choose_ranks_follows_the_energy_per_byte():
    steep = linear_with(trained_like_weight(100, 100, decay=0.5))   # energy in few ranks
    flat = linear_with(trained_like_weight(100, 100, decay=0.999))  # spread out
    per_rank = 200 * 4
    fixed = 2 * (100 * 4 + per_rank)  # biases and rank 1 of each
    ranks = C.choose_ranks([("steep", steep), ("flat", flat)], fixed + 20 * per_rank)
    assert ranks["steep"] < 10 < ranks["flat"] and ranks["steep"] + ranks["flat"] == 22
    # A budget past in*out/(in+out) for a layer keeps it dense.
    assert C.choose_ranks([("steep", steep)], 10**9) == {"steep": None}
    with pytest.raises(C.CompressionError, match="budget is too small"):
        C.choose_ranks([("steep", steep)], 100)


def test_compression_errors():
    net = trained_net()
    with pytest.raises(C.CompressionError, match="unknown method 'zip'"):
        C.compress(net, "zip")
    with pytest.raises(C.CompressionError, match="needs ranks or a budget"):
        C.compress(copy.deepcopy(net), "svd")
    with pytest.raises(C.CompressionError, match="rank 200 for fc1 .* saves no memory"):
        C.compress(copy.deepcopy(net), "svd", ranks={"fc1": 200})
    with pytest.raises(C.CompressionError, match="not among the Linear layers fc1, fc2"):
        C.compress(copy.deepcopy(net), "svd", ranks={"conv": 2})
    with pytest.raises(C.CompressionError, match="no Linear layer named fc3"):
        C.compress(copy.deepcopy(net), "int8", layers=["fc3"])
    with pytest.raises(C.CompressionError, match="no nn.Linear layer"):
        C.compress(nn.Sequential(nn.ReLU()), "int8")


def test_compressed_checkpoints_round_trip(tmp_path):
    net = trained_net()
    x = inputs((2, 1, 8, 8))
    for method in ("svd+int8", "fp16", "int8", "svd"):
        model = copy.deepcopy(net)
        C.compress(model, method, ranks={"fc1": 30} if method.startswith("svd") else None)
        path = tmp_path / f"{method}.h5"
        nl.io.save(path, model)
        plan = C.plan_from_checkpoint(path)
        assert plan == C.describe(model)
        with nn.meta():
            fresh = Net()
        C.prepare_for_checkpoint(fresh, path)
        fresh.to_empty(device="cpu")
        nl.io.load(path, fresh)
        fresh.eval()
        with nl.no_grad():
            np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())
        assert C.plan_from_checkpoint(path) == C.describe(fresh)
    assert C.plan_from_checkpoint(tmp_path / "svd+int8.h5") == {
        "fc1": {"kind": "lowrank", "rank": 30, "storage": "int8"},
        "fc2": {"kind": "quantized", "rank": None, "storage": "int8"}}


def test_meta_summary_of_a_compressed_structure():
    with nn.meta():
        net = Net()
    C.restructure(net, {"fc1": {"kind": "lowrank", "rank": 8, "storage": "int8"},
                        "fc2": {"kind": "quantized", "rank": None, "storage": "float16"}})
    result = nl.summary(net, (1, 8, 8))
    assert result.totals["forward"] == "shapes" and result.totals["output_shape"] == "(1, 10)"
    rows = {r.path: r for r in result.rows}
    assert rows["fc1.down"].params == 8 * 256 + 8 and rows["fc1.up"].params == 300 * 8 + 300 \
        + 300  # int8 weights, row scales, bias
    assert result.totals["workspace_bytes"] == max(
        compressed.QuantizedLinear(256, 8).workspace_bytes(),
        compressed.QuantizedLinear(8, 300).workspace_bytes(),
        compressed.QuantizedLinear(300, 10).workspace_bytes())
    assert result.totals["required_bytes"] == result.totals["param_bytes"] + \
        result.totals["buffer_bytes"] + result.totals["input_bytes"] + \
        result.totals["activation_bytes"] + result.totals["workspace_bytes"]


def test_fine_tuning_a_quantised_model_with_the_trainer(tmp_path):
    from nnlite.data import ArrayDataset, DataLoader
    from nnlite.training import ClassificationTask, Trainer
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((64, 1, 8, 8)).astype(np.float32)
    ys = rng.integers(0, 10, 64)
    model = trained_net()
    C.compress(model, "svd+int8", ranks={"fc1": 16})
    trainable = {n: p.numpy().copy() for n, p in model.named_parameters()}
    stored = model.fc1.up.weight.numpy().copy()
    loader = DataLoader(ArrayDataset(xs, ys), batch_size=16, shuffle=True, drop_last=True)
    optimizer = nl.optim.Adam(model.parameters(), lr=1e-2)
    trainer = Trainer(model, optimizer, ClassificationTask(), loader,
                      DataLoader(ArrayDataset(xs, ys), batch_size=64), steps=40,
                      out_dir=tmp_path / "run", eval_every=40, progress=False)
    history = trainer.fit()
    losses = [row["loss"] for row in history["train"]]
    assert losses[-1] < losses[0]
    assert "fc1.up.weight_scale" in trainable and "fc1.up.weight" not in trainable
    changed = [n for n, p in model.named_parameters() if not np.array_equal(p.numpy(),
                                                                            trainable[n])]
    assert "fc1.up.weight_scale" in changed and "fc2.bias" in changed
    np.testing.assert_array_equal(model.fc1.up.weight.numpy(), stored)  # int8 stays
    fresh = trained_net()
    C.prepare_for_checkpoint(fresh, trainer.last_path)  # the Trainer's checkpoint
    nl.io.load(trainer.last_path, fresh)
    assert C.describe(fresh) == C.describe(model)
