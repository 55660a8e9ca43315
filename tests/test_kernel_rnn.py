"""The recurrent step kernels (nnlite.kernels lstm_cell_* / gru_*) against the
NumPy per-step reference, on every device present.

A step kernel takes gate pre-activations, not inputs; the reference takes
inputs and weights. Giving the reference W_ih = identity makes its input x the
pre-activation itself, so its gradient w.r.t. x is exactly the kernel's
gradient w.r.t. the gate pre-activations.
"""
import numpy as np
import pytest

from nnlite.device import to_numpy
from nnlite.kernels import rnn as cells
from nnlite.reference import rnn as ref

from kernel_testing import each_dtype, tolerance

SHAPES = [(1, 1), (3, 5), (7, 33)]  # (N, H)


def _setup(n, hidden, gates, dtype, seed):
    rng = np.random.default_rng(seed)
    arrays = dict(pre=rng.standard_normal((n, gates * hidden)) * 2,
                  w_hh=rng.standard_normal((gates * hidden, hidden)),
                  h=rng.standard_normal((n, hidden)), c=rng.standard_normal((n, hidden)),
                  dh=rng.standard_normal((n, hidden)), dc=rng.standard_normal((n, hidden)),
                  b_hn=rng.standard_normal(hidden))
    arrays = {k: v.astype(dtype).astype(np.float64) for k, v in arrays.items()}
    lengths = (np.arange(n) % 3 != 2).astype(np.int32)  # every third row is skipped
    return arrays, lengths


def _dev(xp, a, dtype):
    """A private copy on the device: the kernels write some arguments in place."""
    return xp.array(np.array(a, dtype=dtype, order="C"))


@pytest.mark.parametrize("hard", [False, True], ids=["sigmoid", "hard_sigmoid"])
@each_dtype
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_lstm_step_matches_reference(xp, shape, dtype, hard):
    n, hidden = shape
    a, lengths = _setup(n, hidden, 4, dtype, seed=hidden)
    eye, zero = np.eye(4 * hidden), np.zeros(4 * hidden)
    gh = a["h"] @ a["w_hh"].T
    # Reference: x = the input pre-activations, one step, biases zero.
    y, h_ref, c_ref = ref.lstm_forward(a["pre"][None], a["h"], a["c"], eye, a["w_hh"], zero,
                                       zero, lengths=lengths, hard_sigmoid=hard)
    gx, dev_gh = _dev(xp, a["pre"], dtype), _dev(xp, gh, dtype)
    c_prev, h_prev = _dev(xp, a["c"], dtype), _dev(xp, a["h"], dtype)
    c, h = xp.empty_like(c_prev), xp.empty_like(h_prev)
    live = xp.asarray(lengths)
    cells.lstm_cell_forward(gx, dev_gh, c_prev, h_prev, c, h, live, 0, hard)
    np.testing.assert_allclose(to_numpy(h), h_ref, **tolerance(dtype))
    np.testing.assert_allclose(to_numpy(c), c_ref, **tolerance(dtype))

    grads = ref.lstm_backward(a["pre"][None], a["h"], a["c"], eye, a["w_hh"], zero, zero,
                              np.zeros((1, n, hidden)), a["dh"], a["dc"], lengths=lengths,
                              hard_sigmoid=hard)
    d_gates = xp.empty_like(gx)
    dc_prev, dh_prev = xp.empty_like(c), xp.empty_like(h)
    cells.lstm_cell_backward(gx, c_prev, c, _dev(xp, a["dh"], dtype), _dev(xp, a["dc"], dtype),
                         d_gates, dc_prev, dh_prev, live, 0, hard)
    d_gates = to_numpy(d_gates)
    np.testing.assert_allclose(d_gates, grads["x"][0], **tolerance(dtype))
    np.testing.assert_allclose(to_numpy(dc_prev), grads["c0"], **tolerance(dtype))
    # The kernel leaves the W_hh term of dh_prev to the caller's GEMM.
    np.testing.assert_allclose(to_numpy(dh_prev) + d_gates.astype(np.float64) @ a["w_hh"],
                               grads["h0"], **tolerance(dtype))


@pytest.mark.parametrize("reset_after", [True, False], ids=["reset_after", "reset_before"])
@pytest.mark.parametrize("hard", [False, True], ids=["sigmoid", "hard_sigmoid"])
@each_dtype
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_gru_step_matches_reference(xp, shape, dtype, hard, reset_after):
    n, hidden = shape
    a, lengths = _setup(n, hidden, 3, dtype, seed=10 + hidden)
    eye, zero = np.eye(3 * hidden), np.zeros(3 * hidden)
    b_hh = np.concatenate([np.zeros(2 * hidden), a["b_hn"]])
    w_hh, h0 = a["w_hh"], a["h"]
    _, h_ref = ref.gru_forward(a["pre"][None], h0, eye, w_hh, zero, b_hh, lengths=lengths,
                               hard_sigmoid=hard, reset_after=reset_after)
    gx, h_prev, b_hn = (_dev(xp, v, dtype) for v in (a["pre"], h0, a["b_hn"]))
    h = xp.empty_like(h_prev)
    live = xp.asarray(lengths)
    if reset_after:
        gh = _dev(xp, h0 @ w_hh.T, dtype)
    else:
        rh = xp.empty_like(h_prev)
        cells.gru_reset_gate_forward(gx, _dev(xp, h0 @ w_hh[:2 * hidden].T, dtype), h_prev, rh,
                                 hard)
        gh = _dev(xp, to_numpy(rh).astype(np.float64) @ w_hh[2 * hidden:].T, dtype)
    cells.gru_cell_forward(gx, gh, b_hn, h_prev, h, live, 0, hard, reset_after)
    np.testing.assert_allclose(to_numpy(h), h_ref, **tolerance(dtype))

    grads = ref.gru_backward(a["pre"][None], h0, eye, w_hh, zero, b_hh,
                             np.zeros((1, n, hidden)), a["dh"], lengths=lengths,
                             hard_sigmoid=hard, reset_after=reset_after)
    d_gx, dh_prev = xp.empty_like(gx), xp.empty_like(h_prev)
    dh = _dev(xp, a["dh"], dtype)
    if reset_after:
        d_gh = xp.empty_like(gx)
        cells.gru_cell_backward(gx, gh, b_hn, h_prev, dh, d_gx, d_gh, dh_prev, live, 0, hard, True)
        through_w = to_numpy(d_gh).astype(np.float64) @ w_hh
        np.testing.assert_allclose(to_numpy(d_gh).sum(axis=0), grads["b_hh"],
                                   **tolerance(dtype))
    else:
        cells.gru_cell_backward(gx, None, b_hn, h_prev, dh, d_gx, None, dh_prev, live, 0, hard,
                            False)
        d_n = to_numpy(d_gx)[:, 2 * hidden:].astype(np.float64)
        d_rh = _dev(xp, d_n @ w_hh[2 * hidden:], dtype)
        cells.gru_reset_gate_backward(gx, h_prev, d_rh, d_gx, dh_prev, live, 0, hard)
        through_w = to_numpy(d_gx)[:, :2 * hidden].astype(np.float64) @ w_hh[:2 * hidden]
    np.testing.assert_allclose(to_numpy(d_gx), grads["x"][0], **tolerance(dtype))
    np.testing.assert_allclose(to_numpy(dh_prev) + through_w, grads["h0"], **tolerance(dtype))


def test_hard_sigmoid_derivative_is_zero_on_and_outside_the_clip_boundary(xp):
    """Gate pre-activation x: derivative 0.2 inside (-2.5, 2.5), 0 at +-2.5 and beyond.
    Probed through the LSTM's output gate: d(pre_o) = dh * tanh(c') * act'(pre_o)."""
    probes = np.array([-3.0, -2.5, -2.4, 0.0, 2.4, 2.5, 3.0])
    n, hidden = probes.size, 1
    pre = np.zeros((n, 4)); pre[:, 3] = probes
    gx = xp.asarray(pre)
    c_prev = xp.asarray(np.full((n, 1), 0.5))
    zeros = xp.zeros((n, 1))
    c, h = xp.empty_like(c_prev), xp.empty_like(c_prev)
    live = xp.ones((n,), dtype=np.int32)
    cells.lstm_cell_forward(gx, xp.zeros((n, 4)), c_prev, zeros, c, h, live, 0, True)
    np.testing.assert_allclose(to_numpy(gx)[:, 3], [0, 0, 0.02, 0.5, 0.98, 1, 1], atol=1e-15)
    d_gates = xp.empty_like(gx)
    cells.lstm_cell_backward(gx, c_prev, c, xp.ones((n, 1)), zeros, d_gates, xp.empty_like(c),
                         xp.empty_like(c), live, 0, True)
    slope = to_numpy(d_gates)[:, 3] / np.tanh(to_numpy(c)[:, 0])
    np.testing.assert_allclose(slope, [0, 0, 0.2, 0.2, 0.2, 0, 0], atol=1e-15)


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: cells.lstm_cell_forward(np.zeros((2, 8), np.float32), np.zeros((2, 8), np.float32),
                                    *[np.zeros((2, 2), np.float32)] * 4,
                                    np.ones(2, np.int32), 0), None, None),
    (lambda: cells.lstm_cell_forward(np.zeros((2, 6), np.float32), np.zeros((2, 8), np.float32),
                                    *[np.zeros((2, 2), np.float32)] * 4,
                                    np.ones(2, np.int32), 0), ValueError,
     r"lstm_cell_forward: gx has shape \(2, 6\); expected \(2, 8\)"),
    (lambda: cells.lstm_cell_forward(np.zeros((2, 8), np.float32), np.zeros((2, 8), np.float64),
                                    *[np.zeros((2, 2), np.float32)] * 4,
                                    np.ones(2, np.int32), 0), TypeError,
     r"lstm_cell_forward: gh has dtype float64; expected float32"),
    (lambda: cells.gru_cell_forward(np.zeros((2, 6)), np.zeros((2, 6)), np.zeros(3),
                                   np.zeros((2, 2)), np.zeros((2, 2)), np.ones(2, np.int32), 0),
     ValueError, r"gru_cell_forward: b_hn has shape \(3,\); expected \(2,\)"),
    (lambda: cells.gru_cell_forward(np.zeros((2, 6)), np.zeros((2, 6)), np.zeros(2),
                                   np.zeros((2, 2)), np.zeros((2, 2)), np.ones(3, np.int32), 0),
     ValueError, r"gru_cell_forward: lengths must be a contiguous int32 numpy.ndarray of "
                 r"shape \(2,\); got int32 array of shape \(3,\)"),
    (lambda: cells.gru_cell_backward(np.zeros((2, 6)), None, np.zeros(2), np.zeros((2, 2)),
                                    np.zeros((2, 2)), np.zeros((2, 6)),
                                    None, np.zeros((4, 2))[::2], np.ones(2, np.int32), 0,
                                    reset_after=False),
     ValueError, r"gru_cell_backward: dh_prev must be C-contiguous"),
    (lambda: cells.lstm_cell_forward(*[np.zeros((2, 8))] * 2, *[np.zeros((2, 2))] * 4,
                                    [1, 1], 0), ValueError, r"lengths must be a contiguous"),
    (lambda: cells.gru_reset_gate_forward(np.zeros((2, 6)), np.zeros((2, 6)), np.zeros((2, 2)),
                                         np.zeros((2, 2))), ValueError,
     r"gru_reset_gate_forward: gh_rz has shape \(2, 6\); expected \(2, 4\)"),
    (lambda: cells.lstm_cell_backward(*[np.zeros((2, 8))], *[np.zeros(2)] * 5,
                                     np.zeros((2, 2)), np.zeros((2, 2)), np.ones(2, np.int32),
                                     0), ValueError,
     r"lstm_cell_backward: the state must be 2-D \(N, H\); got float64 array of shape \(2,\)"),
], ids=["valid", "gx-width", "dtype-mix", "b_hn", "lengths-size", "non-contiguous",
        "lengths-list", "gh_rz-width", "state-1d"])
def test_bad_inputs_name_the_kernel(call, error, pattern):
    if error is None:
        call()  # the valid call the others are variations of
        return
    with pytest.raises(error, match=pattern):
        call()


def test_raw_binding_refuses_wrong_shape():
    """nnlite._C is a memory-safety boundary even when called around the facade
    (tests/test_rnn_entry_points.py checks every argument of every entry point)."""
    from nnlite import _C
    z = np.zeros((2, 2), np.float32)
    with pytest.raises(ValueError, match=r"lstm_cell_forward_f32: gx has shape \(2, 4\) "
                                         r"\(8 elements\); expected 16"):
        _C.lstm_cell_forward_f32(np.zeros((2, 4), np.float32), np.zeros((2, 8), np.float32),
                                 z, z, z, z, np.ones(2, np.int32), 0, 4, 2, 0)
    with pytest.raises(ValueError, match=r"gru_cell_backward_f32: lengths has shape \(1,\)"):
        _C.gru_cell_backward_f32(np.zeros((2, 6), np.float32), np.zeros((2, 6), np.float32),
                                 np.zeros(2, np.float32), z, z, np.zeros((2, 6), np.float32),
                                 np.zeros((2, 6), np.float32), z, np.ones(1, np.int32), 0, 4, 2,
                                 0, 1)
    with pytest.raises(TypeError):
        _C.lstm_cell_forward_f32(np.zeros((2, 8)), np.zeros((2, 8), np.float32), z, z, z, z,
                                 np.ones(2, np.int32), 0, 4, 2, 0)


@pytest.mark.cuda
def test_cuda_steps_are_bitwise_deterministic():
    import cupy
    a, lengths = _setup(64, 256, 4, np.float32, seed=3)
    runs = []
    for _ in range(2):
        gx = cupy.asarray(a["pre"], dtype=np.float32)
        c_prev = cupy.asarray(a["c"], dtype=np.float32)
        h_prev = cupy.asarray(a["h"], dtype=np.float32)
        gh = cupy.asarray(a["h"] @ a["w_hh"].T, dtype=np.float32)
        c, h = cupy.empty_like(c_prev), cupy.empty_like(h_prev)
        live = cupy.asarray(lengths)
        cells.lstm_cell_forward(gx, gh, c_prev, h_prev, c, h, live, 0)
        d_gates, dc_prev, dh_prev = cupy.empty_like(gx), cupy.empty_like(c), cupy.empty_like(h)
        cells.lstm_cell_backward(gx, c_prev, c, cupy.asarray(a["dh"], dtype=np.float32),
                                cupy.asarray(a["dc"], dtype=np.float32), d_gates, dc_prev,
                                dh_prev, live, 0)
        runs.append((h, c, d_gates, dc_prev))
    for first, second in zip(*runs):
        assert (first.view(cupy.uint32) == second.view(cupy.uint32)).all()


def test_gate_columns_beyond_int_are_refused_before_any_launch():
    """rnn.cuh indexes a row's 4H gate columns with int: the kernel module
    refuses a hidden size whose gates would pass 2**31 - 1 (both devices)."""
    hidden = 2**29  # 4 * hidden = 2**31
    with pytest.raises(ValueError, match=r"lstm_cell_forward: gx would have 4 x 536870912 "
                                         r"columns; at most 2147483647"):
        cells.lstm_cell_forward(*[np.zeros((0, 0), np.float32)] * 2,
                                *[np.zeros((0, hidden), np.float32)] * 4,
                                np.zeros(0, np.int32), 0)
