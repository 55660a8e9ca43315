"""Recurrent layers as whole-sequence Functions over the fused step kernels.

One Function call runs one direction of one layer over all T steps: a single
GEMM projects the input of every step, then each step is one recurrent GEMM
(BLAS / cuBLAS through xp.matmul, into a preallocated buffer) and one fused
cell kernel (csrc/nnlite/rnn.cuh). Backward walks the steps in reverse with the
fused backward kernel and forms the weight gradients with GEMMs over all steps
at once (dW_ih = dGates^T X). The autograd graph gets one node per layer and
direction, not one per step.

Layouts are PyTorch's (LSTM gates i, f, g, o; GRU r, z, n with the reset
applied after the recurrent matmul); ``reset_after=False`` gives TensorFlow's
GRUCell (reset before the matmul), which costs a second GEMM per step.
``gate_activation="hard_sigmoid"`` is Keras 2's clip(0.2 x + 0.5, 0, 1).

``lengths`` (N,) runs a padded batch: row n takes steps t < lengths[n] only;
later steps keep its state and output zeros, and the reverse direction starts
at t = lengths[n] - 1. Lengths must be integers in [0, T] (0 leaves the state
at its initial value).
"""
from nnlite.functional.rnn_sequence import GRUSequence, LSTMSequence, gate_flag, lengths_array


def _check_layer(op, x, h0, w_ih, w_hh, gates):
    if x.ndim not in (2, 3):
        raise ValueError(f"{op}: input must be (T, N, input_size) or, for one step, "
                         f"(N, input_size); got shape {tuple(x.shape)}")
    if x.ndim == 3 and x.shape[0] == 0:  # PyTorch refuses it too
        raise ValueError(f"{op}: the input sequence is empty (T = 0, shape "
                         f"{tuple(x.shape)}); expected at least one step")
    if tuple(w_ih.shape[:1]) != (gates * w_hh.shape[1],) or w_hh.ndim != 2 or \
            w_hh.shape[0] != gates * w_hh.shape[1]:
        raise ValueError(f"{op}: weight_hh has shape {tuple(w_hh.shape)} and weight_ih "
                         f"{tuple(w_ih.shape)}; expected ({gates}*H, H) and ({gates}*H, I)")
    hidden = w_hh.shape[1]
    if x.shape[-1] != w_ih.shape[1]:
        raise ValueError(f"{op}: input has {x.shape[-1]} features (shape {tuple(x.shape)}); "
                         f"expected input_size {w_ih.shape[1]} (weight_ih shape "
                         f"{tuple(w_ih.shape)})")
    batch = x.shape[-2]
    for name, state in h0:
        if state is not None and tuple(state.shape) != (batch, hidden):
            raise ValueError(f"{op}: {name} has shape {tuple(state.shape)}; expected "
                             f"(N, hidden_size) = ({batch}, {hidden})")


def lstm_layer(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, lengths=None, reverse=False,
               gate_activation="sigmoid"):
    """One direction of one LSTM layer: x (T, N, I) -> (y (T, N, H), h_n, c_n)."""
    _check_layer("lstm", x, (("h0", h0), ("c0", c0)), w_ih, w_hh, 4)
    flag = gate_flag("lstm", gate_activation)
    lengths = lengths_array("lstm", lengths, x, x.shape[0], x.shape[1])
    return LSTMSequence.apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths=lengths,
                              reverse=bool(reverse), hard_sigmoid=flag)


def gru_layer(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, lengths=None, reverse=False,
              gate_activation="sigmoid", reset_after=True):
    """One direction of one GRU layer: x (T, N, I) -> (y (T, N, H), h_n)."""
    _check_layer("gru", x, (("h0", h0),), w_ih, w_hh, 3)
    flag = gate_flag("gru", gate_activation)
    lengths = lengths_array("gru", lengths, x, x.shape[0], x.shape[1])
    return GRUSequence.apply(x, h0, w_ih, w_hh, b_ih, b_hh, lengths=lengths,
                             reverse=bool(reverse), hard_sigmoid=flag,
                             reset_after=bool(reset_after))


def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, gate_activation="sigmoid"):
    """One LSTM step: x (N, I), h, c (N, H) -> (h', c')."""
    if getattr(x, "ndim", None) != 2:
        raise ValueError(f"lstm_cell: input must be (N, input_size); got shape "
                         f"{tuple(x.shape)}")
    _, h_new, c_new = lstm_layer(x, h, c, w_ih, w_hh, b_ih, b_hh,
                                 gate_activation=gate_activation)
    return h_new, c_new


def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None, gate_activation="sigmoid",
             reset_after=True):
    """One GRU step: x (N, I), h (N, H) -> h'."""
    if getattr(x, "ndim", None) != 2:
        raise ValueError(f"gru_cell: input must be (N, input_size); got shape "
                         f"{tuple(x.shape)}")
    return gru_layer(x, h, w_ih, w_hh, b_ih, b_hh, gate_activation=gate_activation,
                     reset_after=reset_after)[1]


__all__ = ["gru_cell", "gru_layer", "lstm_cell", "lstm_layer"]
