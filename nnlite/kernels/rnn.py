"""The recurrent family (csrc/nnlite/rnn.cuh): one time step of an LSTM or GRU
over all N rows, written into arrays the caller provides (the sequence
Functions allocate every buffer once per call). gx becomes the gate
activations; dh_prev may alias dh and dc_prev may alias dc (see rnn.cuh).

Entry points, the same in both builds (csrc/cuda/rnn.cu, csrc/host/rnn.cpp),
all ending in ``units, hidden, hard_sigmoid[, reset_after]`` with units = N * H:
    lstm_cell_forward(gx, gh, c_prev, h_prev, c, h, lengths, t, ...)
    lstm_cell_backward(gates, c_prev, c, dh, dc, d_gates, dc_prev, dh_prev, lengths, t, ...)
    gru_reset_gate_forward(gx, gh_rz, h_prev, rh, ...)        # reset before the matmul
    gru_cell_forward(gx, gh, b_hn, h_prev, h, lengths, t, ...)
    gru_cell_backward(gates, gh, b_hn, h_prev, dh, d_gx, d_gh, dh_prev, lengths, t, ...)
    gru_reset_gate_backward(gates, h_prev, d_rh, d_gx, dh_prev, lengths, t, ...)
One GPU thread per hidden unit (n, j).
"""
from nnlite.kernels import checks
from nnlite.kernels.launch import Grid, array_module, launch


def _step(op, state, arrays, lengths=None):
    """(N, H) of a step after checking its arrays (see checks.step_arrays)."""
    n, hidden = checks.rows_hidden(op, state)
    checks.step_arrays(op, array_module(state), n, hidden, arrays, lengths)
    return n, hidden


def _launch(op, dtype, n, hidden, args, *flags):
    if n * hidden:
        launch(op, dtype, Grid(n * hidden), args + (n * hidden, hidden)
               + tuple(int(bool(f)) for f in flags))


def lstm_cell_forward(gx, gh, c_prev, h_prev, c, h, lengths, t, hard_sigmoid=False):
    op = "lstm_cell_forward"
    n, hidden = _step(op, h_prev, (("gx", gx, 4), ("gh", gh, 4), ("c_prev", c_prev, 1),
                                   ("h_prev", h_prev, 1), ("c", c, 1), ("h", h, 1)), lengths)
    _launch(op, gx.dtype, n, hidden, (gx, gh, c_prev, h_prev, c, h, lengths, int(t)),
            hard_sigmoid)


def lstm_cell_backward(gates, c_prev, c, dh, dc, d_gates, dc_prev, dh_prev, lengths, t,
                       hard_sigmoid=False):
    op = "lstm_cell_backward"
    n, hidden = _step(op, c, (("gates", gates, 4), ("c_prev", c_prev, 1), ("c", c, 1),
                              ("dh", dh, 1), ("dc", dc, 1), ("d_gates", d_gates, 4),
                              ("dc_prev", dc_prev, 1), ("dh_prev", dh_prev, 1)), lengths)
    _launch(op, gates.dtype, n, hidden,
            (gates, c_prev, c, dh, dc, d_gates, dc_prev, dh_prev, lengths, int(t)), hard_sigmoid)


def gru_reset_gate_forward(gx, gh_rz, h_prev, rh, hard_sigmoid=False):
    op = "gru_reset_gate_forward"
    n, hidden = _step(op, h_prev, (("gx", gx, 3), ("gh_rz", gh_rz, 2), ("h_prev", h_prev, 1),
                                   ("rh", rh, 1)))
    _launch(op, gx.dtype, n, hidden, (gx, gh_rz, h_prev, rh), hard_sigmoid)


def gru_cell_forward(gx, gh, b_hn, h_prev, h, lengths, t, hard_sigmoid=False, reset_after=True):
    op = "gru_cell_forward"
    n, hidden = _step(op, h_prev, (("gx", gx, 3), ("gh", gh, 3 if reset_after else 1),
                                   ("b_hn", b_hn, 0), ("h_prev", h_prev, 1), ("h", h, 1)),
                      lengths)
    _launch(op, gx.dtype, n, hidden, (gx, gh, b_hn, h_prev, h, lengths, int(t)), hard_sigmoid,
            reset_after)


def gru_cell_backward(gates, gh, b_hn, h_prev, dh, d_gx, d_gh, dh_prev, lengths, t,
                      hard_sigmoid=False, reset_after=True):
    """With reset_after=False, gh and d_gh are not used and may be None."""
    op = "gru_cell_backward"
    arrays = [("gates", gates, 3), ("b_hn", b_hn, 0), ("h_prev", h_prev, 1), ("dh", dh, 1),
              ("d_gx", d_gx, 3), ("dh_prev", dh_prev, 1)]
    if reset_after:
        arrays += [("gh", gh, 3), ("d_gh", d_gh, 3)]
    else:
        gh, d_gh = gates, d_gx  # never read or written: reset_after=0 skips them
    n, hidden = _step(op, h_prev, arrays, lengths)
    _launch(op, gates.dtype, n, hidden,
            (gates, gh, b_hn, h_prev, dh, d_gx, d_gh, dh_prev, lengths, int(t)), hard_sigmoid,
            reset_after)


def gru_reset_gate_backward(gates, h_prev, d_rh, d_gx, dh_prev, lengths, t, hard_sigmoid=False):
    op = "gru_reset_gate_backward"
    n, hidden = _step(op, h_prev, (("gates", gates, 3), ("h_prev", h_prev, 1), ("d_rh", d_rh, 1),
                                   ("d_gx", d_gx, 3), ("dh_prev", dh_prev, 1)), lengths)
    _launch(op, gates.dtype, n, hidden, (gates, h_prev, d_rh, d_gx, dh_prev, lengths, int(t)),
            hard_sigmoid)
