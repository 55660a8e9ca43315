"""nl.summary: figures checked against hand-derived formulas and against
memory measured independently (tracemalloc's NumPy domain on the CPU, CuPy's
pool on a GPU), the budget verdict, and leaving the model as it was."""
import gc
import tracemalloc

import numpy as np
import pytest

import nnlite as nl
from nnlite import functional as F
from nnlite import nn

from small_models import INPUT_SHAPE, ConvLSTMNet

NUMPY_TRACEMALLOC_DOMAIN = 389047  # numpy reports its data buffers to tracemalloc here


def numpy_bytes_alive():
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.DomainFilter(True, NUMPY_TRACEMALLOC_DOMAIN)])
    return sum(stat.size for stat in snapshot.statistics("filename"))


def measure_forward_allocation(model, x, train):
    """NumPy bytes still allocated after a forward: with no_grad and every leaf
    layer's output held by our own hook (inference), or with the graph alive
    (training)."""
    model.train(train)
    outputs = []
    handles = [] if train else [
        m.register_forward_hook(lambda m, i, o: outputs.append(o))
        for m in model.modules() if not list(m.children())]
    gc.collect()
    tracemalloc.start()
    try:
        before = numpy_bytes_alive()
        if train:
            y = model(x)
        else:
            with nl.no_grad():
                y = model(x)
        gc.collect()
        allocated = numpy_bytes_alive() - before
    finally:
        tracemalloc.stop()
        for handle in handles:
            handle.remove()
    del y, outputs
    return allocated


class UnrolledCell(nn.Module):
    """One LSTMCell applied three times (as the attention reader unrolls its cell)."""

    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(4, 6)
        self.out = nn.Linear(6, 2)

    def forward(self, x):
        state = None
        for _ in range(3):
            state = self.cell(x, state)
        return self.out(state[0])


class MustNotRun(nn.Module):
    def __init__(self):
        super().__init__()
        self.big = nn.Linear(1000, 500)  # 2,002,000 bytes of weights and bias

    def forward(self, x):
        raise AssertionError("the summary ran a forward it should have skipped")


def test_rows_shapes_parameters_and_flops_by_hand():
    nl.manual_seed(0)
    result = nl.summary(ConvLSTMNet(), INPUT_SHAPE, batch=2)
    rows = {r.path: r for r in result.rows}
    assert list(rows) == ["features.0", "features.1", "features.2", "features.3", "rnn",
                          "head"]
    assert rows["features.0"].output_shape == "(2, 4, 8, 12)"
    assert rows["features.3"].output_shape == "(2, 4, 4, 6)"
    assert rows["rnn"].output_shape == "[(2, 6, 16), (2, 2, 8), (2, 2, 8)]"
    assert rows["head"].output_shape == "(2, 6, 5)" == result.totals["output_shape"]
    # 4*1*3*3 + 4; BN 4 + 4; 2 directions * (32*16 + 32*8 + 32 + 32); 16*5 + 5
    assert [r.params for r in result.rows] == [40, 8, 0, 0, 1664, 85]
    assert result.totals["params"] == 1797 == sum(r.params for r in result.rows)
    assert rows["features.0"].flops == 2 * 2 * 4 * 8 * 12 * 1 * 9     # N Co Ho Wo Ci kh kw
    assert rows["rnn"].flops == 2 * 2 * 2 * 6 * 4 * 8 * (16 + 8)      # D 2 N T gates H (I+H)
    assert rows["head"].flops == 2 * (2 * 6) * 16 * 5
    assert rows["features.1"].flops is None and rows["features.3"].flops is None
    assert result.totals["flops"] == 13824 + 36864 + 1920


def test_parameter_bytes_equal_the_parameter_arrays():
    model = ConvLSTMNet()
    result = nl.summary(model, INPUT_SHAPE)
    assert result.totals["param_bytes"] == sum(p.data.nbytes for p in model.parameters())
    assert result.totals["param_bytes"] == 4 * 1797
    assert result.totals["buffer_bytes"] == 4 * 4 + 4 * 4 + 8  # running mean/var, int64 count


@pytest.mark.parametrize("batch", [1, 3])
def test_forward_activations_equal_the_outputs_the_hooks_saw(batch):
    model = ConvLSTMNet()
    result = nl.summary(model, INPUT_SHAPE, batch=batch)
    seen = []
    handles = [m.register_forward_hook(lambda m, i, o: seen.extend(
        o if isinstance(o, tuple) and not isinstance(o[1], tuple) else
        (o[0], *o[1]) if isinstance(o, tuple) else (o,)))
        for m in model.modules() if not list(m.children())]
    with nl.no_grad():
        model.eval()(nl.randn(batch, *INPUT_SHAPE))
    for handle in handles:
        handle.remove()
    distinct = []
    for tensor in seen:  # an output sharing memory with an earlier one is not new memory
        if not any(np.shares_memory(tensor.data, other) for other in distinct):
            distinct.append(tensor.data)
    assert len(seen) == 8  # conv, bn, relu, pool, lstm (output, h_n, c_n), linear
    assert result.totals["activation_bytes"] == sum(a.nbytes for a in distinct)
    assert result.totals["input_bytes"] == batch * 1 * 8 * 12 * 4


@pytest.mark.parametrize("model_class,batch", [(ConvLSTMNet, 1), (ConvLSTMNet, 4),
                                               (UnrolledCell, 5)])
def test_inference_figures_match_numpy_allocation(model_class, batch):
    model = model_class()
    shape = INPUT_SHAPE if model_class is ConvLSTMNet else (4,)
    result = nl.summary(model, shape, batch=batch)
    x = nl.randn(batch, *shape)
    assert measure_forward_allocation(model, x, train=False) == \
        result.totals["activation_bytes"]


@pytest.mark.parametrize("model_class", [ConvLSTMNet, UnrolledCell])
def test_training_figures_match_numpy_allocation(model_class):
    model = model_class()
    shape = INPUT_SHAPE if model_class is ConvLSTMNet else (4,)
    result = nl.summary(model, shape, batch=3, train=True)
    x = nl.randn(3, *shape)
    # The graph keeps the input too; it was allocated before the measurement.
    assert measure_forward_allocation(model, x, train=True) + x.data.nbytes == \
        result.totals["kept_for_backward_bytes"]
    totals = result.totals
    assert totals["gradient_bytes"] == totals["param_bytes"]
    # The measured forward + backward peak (tracemalloc: Python's own objects
    # too, which dominate a model this small), never less than kept + gradients.
    assert totals["training_peak_bytes"] > totals["gradient_bytes"]
    assert totals["required_bytes"] == totals["param_bytes"] + totals["buffer_bytes"] + max(
        totals["gradient_bytes"] + totals["kept_for_backward_bytes"],
        totals["training_peak_bytes"])
    assert all(p.grad is None for p in model.parameters())  # put back as they were


def test_unrolled_cell_is_one_row_with_summed_calls():
    result = nl.summary(UnrolledCell(), (4,), batch=5)
    cell = result.rows[0]
    assert (cell.path, cell.calls, cell.output_shape) == ("cell", 3, "[(5, 6), (5, 6)]")
    assert cell.flops == 3 * 2 * 5 * 4 * 6 * (4 + 6)
    # At least h and c per call; the exact figure (the arrays h and c are views
    # of) is checked against the allocation in test_inference_figures_match...
    assert cell.activation_bytes >= 3 * 2 * 5 * 6 * 4
    assert "LSTMCell x3" in str(result)


def test_summary_leaves_the_model_as_it_was():
    model = ConvLSTMNet().eval()
    bn = model.features[1]
    bn.running_mean.data[...] = [1, 2, 3, 4]
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    nl.manual_seed(5)
    nl.summary(model, INPUT_SHAPE, batch=2, train=True)  # BatchNorm in training mode
    after_summary = nl.randn(3).numpy()
    nl.manual_seed(5)
    assert np.array_equal(after_summary, nl.randn(3).numpy())  # random state untouched
    assert not any(m.training for m in model.modules())
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[key], err_msg=key)
    assert all(not m._forward_hooks for m in model.modules())
    assert all(p.grad is None for p in model.parameters())


def test_budget_verdicts():
    model = ConvLSTMNet()
    default = nl.summary(model, INPUT_SHAPE)
    assert default.totals["budget"] == nl.cuda.TK1_MEMORY_BUDGET == int(1.5 * 2**30)
    assert default.fits is True and default.totals["params_fit"] is True
    totals = default.totals
    resident = totals["param_bytes"] + totals["buffer_bytes"]
    assert totals["required_bytes"] == resident + totals["input_bytes"] + \
        totals["activation_bytes"]
    # Parameters fit, activations do not.
    tight = nl.summary(model, INPUT_SHAPE, memory=resident + 1)
    assert tight.totals["params_fit"] is True and tight.fits is False
    exact = nl.summary(model, INPUT_SHAPE, memory=totals["required_bytes"])
    assert exact.fits is True
    assert nl.summary(model, INPUT_SHAPE, memory="1.5GiB").totals["budget"] == 1610612736


class BigLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.big = nn.Linear(1000, 500)  # 2,002,000 bytes of weights and bias

    def forward(self, x):
        return self.big(x)


def test_parameters_over_budget_run_a_shapes_only_forward(monkeypatch):
    """Over budget, the Linear is replaced by its shape rule: its GEMM never
    runs, yet shapes, FLOPs and memory are those of a real forward."""
    model = BigLinear()
    real = nl.summary(model, (1000,), memory="1GiB")
    calls = []
    monkeypatch.setattr(F, "linear", lambda *args: calls.append(args) or 1 / 0)
    result = nl.summary(model, (1000,), memory="1MiB")
    assert calls == [] and result.totals["forward"] == "shapes" and real.totals["forward"] == \
        "real"
    assert result.totals["param_bytes"] == 2_002_000
    assert result.fits is False and result.totals["params_fit"] is False
    assert result.rows[0].output_shape == "(1, 500)" == real.rows[0].output_shape
    assert result.rows[0].flops == 2 * 1000 * 500 == real.rows[0].flops
    for key in ("required_bytes", "activation_bytes", "input_bytes", "flops"):
        assert result.totals[key] == real.totals[key], key
    text = str(result)
    assert "Total params: 500,500" in text and "DO NOT FIT" in text
    assert "Forward: shapes only" in text
    with pytest.raises(ZeroDivisionError):
        nl.summary(model, (1000,), memory="1MiB", run=True)  # forced: a real forward


def test_over_budget_without_a_shape_rule_skips_the_forward():
    model = MustNotRun()
    model.cell = nn.LSTMCell(3, 4)  # weights and no shape rule
    result = nl.summary(model, (1000,), memory="1MiB")
    assert result.totals["ran_forward"] is False and result.totals["forward"] is None
    assert result.totals["required_bytes"] is None and result.fits is False
    assert all(r.output_shape is None and r.flops is None for r in result.rows)
    assert "Forward not run" in str(result)
    with pytest.raises(AssertionError, match="should have skipped"):
        nl.summary(model, (1000,), memory="1MiB", run=True)  # forced


def test_run_false_without_a_verdict_on_activations():
    result = nl.summary(ConvLSTMNet(), INPUT_SHAPE, run=False)
    assert result.totals["params_fit"] is True and result.fits is None
    assert "unknown (forward not run)" in str(result)
    forced = nl.summary(ConvLSTMNet(), INPUT_SHAPE, memory="1KiB", run=True)
    assert forced.totals["ran_forward"] and forced.fits is False


def test_table_text():
    text = str(nl.summary(ConvLSTMNet(), INPUT_SHAPE, batch=2, train=True))
    lines = text.splitlines()
    assert lines[0] == "Model: ConvLSTMNet, input (2, 1, 8, 12), training"
    header = next(line for line in lines if line.startswith("Layer"))
    for column in ("Type", "Output shape", "Param #", "FLOPs", "Activations"):
        assert column in header
    row = next(line for line in lines if line.startswith("rnn "))
    assert "LSTM" in row and "1,664" in row and "36.86K" in row
    for label in ("Total params: 1,797 (7.02 KiB)", "Gradients: 7.02 KiB",
                  "Kept for backward", "Required for training (no optimiser state)",
                  "Verdict for budget 1.50 GiB: fits"):
        assert label in text, label


def test_float64_input_dtype():
    result = nl.summary(ConvLSTMNet().double(), INPUT_SHAPE, batch=2, dtype=np.float64)
    assert result.totals["input_bytes"] == 2 * 96 * 8
    assert result.totals["param_bytes"] == 8 * 1797


def test_bad_arguments():
    with pytest.raises(ValueError, match="summary: batch must be a positive int, got 0"):
        nl.summary(ConvLSTMNet(), INPUT_SHAPE, batch=0)
    with pytest.raises(TypeError, match="summary: input_shape must be a tuple of ints"):
        nl.summary(ConvLSTMNet(), None)
    with pytest.raises(ValueError, match="parse_bytes: cannot read 'lots'"):
        nl.summary(ConvLSTMNet(), INPUT_SHAPE, memory="lots")


@pytest.mark.cuda
def test_gpu_activations_match_cupy_pool():
    import cupy
    model = ConvLSTMNet().cuda()
    result = nl.summary(model, INPUT_SHAPE, batch=8)  # also warms up kernels and handles
    assert result.totals["param_bytes"] == sum(p.data.nbytes for p in model.parameters())
    pool = cupy.get_default_memory_pool()
    x = nl.randn(8, *INPUT_SHAPE, device="cuda")
    outputs = []
    handles = [m.register_forward_hook(lambda m, i, o: outputs.append(o))
               for m in model.modules() if not list(m.children())]
    cupy.cuda.Device().synchronize()
    before = pool.used_bytes()
    with nl.no_grad():
        model.eval()(x)
    cupy.cuda.Device().synchronize()
    used = pool.used_bytes() - before
    for handle in handles:
        handle.remove()
    activations = result.totals["activation_bytes"]
    # The pool hands out 512-byte blocks: at most 511 bytes more per array (8 arrays).
    assert activations <= used <= activations + 8 * 511, (used, activations)


def test_a_single_layer_model_is_its_own_row():
    result = nl.summary(nn.Linear(3, 2), (3,), batch=4)
    assert [(r.path, r.type, r.output_shape, r.params) for r in result.rows] == \
        [("(model)", "Linear", "(4, 2)", 8)]
    assert result.rows[0].flops == 2 * 4 * 3 * 2
    assert result.totals["activation_bytes"] == 4 * 2 * 4


def test_rows_follow_execution_order_not_registration_order():
    class Backwards(nn.Module):
        def __init__(self):
            super().__init__()
            self.second = nn.Linear(4, 2)
            self.first = nn.Linear(3, 4)
            self.unused = nn.Linear(2, 2)

        def forward(self, x):
            return self.second(self.first(x))

    result = nl.summary(Backwards(), (3,))
    assert [row.path for row in result.rows] == ["first", "second", "unused"]
    assert result.rows[2].calls == 0
