"""CPU backend of the recurrent step kernels (csrc/host/rnn.cpp).

Every function runs one time step over all N rows and writes into the arrays
it is given; see csrc/nnlite/rnn.cuh for the math and the in-place contract
(gx becomes the gate activations; dh_prev may alias dh, dc_prev may alias dc).
"""
import numpy as np

from nnlite.kernels import rnn_checks


def _entry(op, dtype):
    # Imported here: nnlite.kernels.host re-exports this module at its end.
    from nnlite.kernels import host
    return host._entry(op, dtype)


def lstm_cell_forward(gx, gh, c_prev, h_prev, c, h, lengths, t, hard_sigmoid=False):
    op = "lstm_cell_forward"
    n, hidden = rnn_checks.rows_hidden(op, h_prev)
    rnn_checks.step_arrays(op, np, n, hidden, (("gx", gx, 4), ("gh", gh, 4),
                           ("c_prev", c_prev, 1), ("h_prev", h_prev, 1), ("c", c, 1),
                           ("h", h, 1)), lengths)
    _entry(op, gx.dtype)(gx, gh, c_prev, h_prev, c, h, lengths, int(t), n * hidden, hidden,
                         int(bool(hard_sigmoid)))


def lstm_cell_backward(gates, c_prev, c, dh, dc, d_gates, dc_prev, dh_prev, lengths, t,
                       hard_sigmoid=False):
    op = "lstm_cell_backward"
    n, hidden = rnn_checks.rows_hidden(op, c)
    rnn_checks.step_arrays(op, np, n, hidden, (("gates", gates, 4), ("c_prev", c_prev, 1),
                           ("c", c, 1), ("dh", dh, 1), ("dc", dc, 1), ("d_gates", d_gates, 4),
                           ("dc_prev", dc_prev, 1), ("dh_prev", dh_prev, 1)), lengths)
    _entry(op, gates.dtype)(gates, c_prev, c, dh, dc, d_gates, dc_prev, dh_prev, lengths,
                            int(t), n * hidden, hidden, int(bool(hard_sigmoid)))


def gru_reset_gate_forward(gx, gh_rz, h_prev, rh, hard_sigmoid=False):
    op = "gru_reset_gate_forward"
    n, hidden = rnn_checks.rows_hidden(op, h_prev)
    rnn_checks.step_arrays(op, np, n, hidden, (("gx", gx, 3), ("gh_rz", gh_rz, 2),
                           ("h_prev", h_prev, 1), ("rh", rh, 1)))
    _entry(op, gx.dtype)(gx, gh_rz, h_prev, rh, n * hidden, hidden, int(bool(hard_sigmoid)))


def gru_cell_forward(gx, gh, b_hn, h_prev, h, lengths, t, hard_sigmoid=False, reset_after=True):
    op = "gru_cell_forward"
    n, hidden = rnn_checks.rows_hidden(op, h_prev)
    rnn_checks.step_arrays(op, np, n, hidden, (("gx", gx, 3), ("gh", gh, 3 if reset_after else 1),
                           ("b_hn", b_hn, 0), ("h_prev", h_prev, 1), ("h", h, 1)), lengths)
    _entry(op, gx.dtype)(gx, gh, b_hn, h_prev, h, lengths, int(t), n * hidden, hidden,
                         int(bool(hard_sigmoid)), int(bool(reset_after)))


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
    rnn_checks.step_arrays(op, np, n, hidden, arrays, lengths)
    _entry(op, gates.dtype)(gates, gh, b_hn, h_prev, dh, d_gx, d_gh, dh_prev, lengths, int(t),
                            n * hidden, hidden, int(bool(hard_sigmoid)), int(bool(reset_after)))


def gru_reset_gate_backward(gates, h_prev, d_rh, d_gx, dh_prev, lengths, t, hard_sigmoid=False):
    op = "gru_reset_gate_backward"
    n, hidden = rnn_checks.rows_hidden(op, h_prev)
    rnn_checks.step_arrays(op, np, n, hidden, (("gates", gates, 3), ("h_prev", h_prev, 1),
                           ("d_rh", d_rh, 1), ("d_gx", d_gx, 3), ("dh_prev", dh_prev, 1)),
                           lengths)
    _entry(op, gates.dtype)(gates, h_prev, d_rh, d_gx, dh_prev, lengths, int(t), n * hidden,
                            hidden, int(bool(hard_sigmoid)))
