"""GPU backend of the recurrent step kernels (csrc/cuda/rnn.cu), with the
signatures of nnlite.kernels.host_rnn: one thread per hidden unit (n, j),
grid-stride loops, outputs written into the caller's arrays."""
import numpy as np

from nnlite.kernels import _checks, rnn_checks

THREADS = 256  # NNL_GRID_THREADS in csrc/nnlite/portable.cuh (rnn.cu's __launch_bounds__)
MAX_BLOCKS = 4096  # beyond this the grid-stride loop takes over


def _launch(op, dtype, units, args):
    from nnlite.kernels.cuda import _function
    blocks = max(1, min(MAX_BLOCKS, (units + THREADS - 1) // THREADS))
    _function("rnn", f"{op}_{_checks.dtype_suffix(dtype)}")((blocks,), (THREADS,), args)


def _cupy():
    from nnlite.kernels.cuda import _cupy
    return _cupy()


def lstm_cell_forward(gx, gh, c_prev, h_prev, c, h, lengths, t, hard_sigmoid=False):
    op = "lstm_cell_forward"
    n, hidden = rnn_checks.rows_hidden(op, h_prev)
    rnn_checks.step_arrays(op, _cupy(), n, hidden, (("gx", gx, 4), ("gh", gh, 4),
                           ("c_prev", c_prev, 1), ("h_prev", h_prev, 1), ("c", c, 1),
                           ("h", h, 1)), lengths)
    if n * hidden:
        _launch(op, gx.dtype, n * hidden, (gx, gh, c_prev, h_prev, c, h, lengths, np.int32(t),
                np.int64(n * hidden), np.int32(hidden), np.int32(bool(hard_sigmoid))))


def lstm_cell_backward(gates, c_prev, c, dh, dc, d_gates, dc_prev, dh_prev, lengths, t,
                       hard_sigmoid=False):
    op = "lstm_cell_backward"
    n, hidden = rnn_checks.rows_hidden(op, c)
    rnn_checks.step_arrays(op, _cupy(), n, hidden, (("gates", gates, 4), ("c_prev", c_prev, 1),
                           ("c", c, 1), ("dh", dh, 1), ("dc", dc, 1), ("d_gates", d_gates, 4),
                           ("dc_prev", dc_prev, 1), ("dh_prev", dh_prev, 1)), lengths)
    if n * hidden:
        _launch(op, gates.dtype, n * hidden, (gates, c_prev, c, dh, dc, d_gates, dc_prev, dh_prev,
                lengths, np.int32(t), np.int64(n * hidden), np.int32(hidden),
                np.int32(bool(hard_sigmoid))))


def gru_reset_gate_forward(gx, gh_rz, h_prev, rh, hard_sigmoid=False):
    op = "gru_reset_gate_forward"
    n, hidden = rnn_checks.rows_hidden(op, h_prev)
    rnn_checks.step_arrays(op, _cupy(), n, hidden, (("gx", gx, 3), ("gh_rz", gh_rz, 2),
                           ("h_prev", h_prev, 1), ("rh", rh, 1)))
    if n * hidden:
        _launch(op, gx.dtype, n * hidden, (gx, gh_rz, h_prev, rh, np.int64(n * hidden),
                np.int32(hidden), np.int32(bool(hard_sigmoid))))


def gru_cell_forward(gx, gh, b_hn, h_prev, h, lengths, t, hard_sigmoid=False, reset_after=True):
    op = "gru_cell_forward"
    n, hidden = rnn_checks.rows_hidden(op, h_prev)
    rnn_checks.step_arrays(op, _cupy(), n, hidden, (("gx", gx, 3),
                           ("gh", gh, 3 if reset_after else 1), ("b_hn", b_hn, 0),
                           ("h_prev", h_prev, 1), ("h", h, 1)), lengths)
    if n * hidden:
        _launch(op, gx.dtype, n * hidden, (gx, gh, b_hn, h_prev, h, lengths, np.int32(t),
                np.int64(n * hidden), np.int32(hidden), np.int32(bool(hard_sigmoid)),
                np.int32(bool(reset_after))))


def gru_cell_backward(gates, gh, b_hn, h_prev, dh, d_gx, d_gh, dh_prev, lengths, t,
                      hard_sigmoid=False, reset_after=True):
    """With reset_after=False, gh and d_gh are not used and may be None."""
    op = "gru_cell_backward"
    n, hidden = rnn_checks.rows_hidden(op, h_prev)
    arrays = [("gates", gates, 3), ("b_hn", b_hn, 0), ("h_prev", h_prev, 1), ("dh", dh, 1),
              ("d_gx", d_gx, 3), ("dh_prev", dh_prev, 1)]
    if reset_after:
        arrays += [("gh", gh, 3), ("d_gh", d_gh, 3)]
    else:
        gh, d_gh = gates, d_gx  # never read or written: reset_after=0 skips them
    rnn_checks.step_arrays(op, _cupy(), n, hidden, arrays, lengths)
    if n * hidden:
        _launch(op, gates.dtype, n * hidden, (gates, gh, b_hn, h_prev, dh, d_gx, d_gh, dh_prev,
                lengths, np.int32(t), np.int64(n * hidden), np.int32(hidden),
                np.int32(bool(hard_sigmoid)), np.int32(bool(reset_after))))


def gru_reset_gate_backward(gates, h_prev, d_rh, d_gx, dh_prev, lengths, t, hard_sigmoid=False):
    op = "gru_reset_gate_backward"
    n, hidden = rnn_checks.rows_hidden(op, h_prev)
    rnn_checks.step_arrays(op, _cupy(), n, hidden, (("gates", gates, 3), ("h_prev", h_prev, 1),
                           ("d_rh", d_rh, 1), ("d_gx", d_gx, 3), ("dh_prev", dh_prev, 1)),
                           lengths)
    if n * hidden:
        _launch(op, gates.dtype, n * hidden, (gates, h_prev, d_rh, d_gx, dh_prev, lengths,
                np.int32(t), np.int64(n * hidden), np.int32(hidden),
                np.int32(bool(hard_sigmoid))))
