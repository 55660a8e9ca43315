"""The whole-sequence LSTM and GRU Functions (see nnlite.functional.rnn).

States live in one (T + 1, N, H) buffer per direction, indexed by time: going
forward, step t reads slot t and writes slot t + 1; in reverse it reads t + 1
and writes t. So the output sequence and every step's previous state are
contiguous slices of that buffer (no copy, no reordering for the reverse
direction), and a step that a padded row skips simply copies its state along.
"""
import contextlib

import numpy as np

from nnlite.device import xp_of
from nnlite.functional.gemm import gemm
from nnlite.kernels import rnn as cells
from nnlite.tensor import Function
from nnlite.threads import single_threaded_blas

GATE_ACTIVATIONS = ("sigmoid", "hard_sigmoid")


def gate_flag(op, gate_activation):
    if gate_activation not in GATE_ACTIVATIONS:
        raise ValueError(f"{op}: gate_activation={gate_activation!r} is not one of "
                         f"{GATE_ACTIVATIONS}")
    return gate_activation == "hard_sigmoid"


def lengths_array(op, lengths, like, steps, batch):
    """Validated per-sample lengths as an int32 array on the input's device, or
    None when every sample runs all steps."""
    if lengths is None:
        return None
    from nnlite.device import to_numpy
    from nnlite.tensor import raw
    values = np.asarray(to_numpy(raw(lengths)) if hasattr(raw(lengths), "shape") else lengths)
    if values.ndim != 1 or values.shape[0] != batch:
        raise ValueError(f"{op}: lengths has shape {values.shape}; expected one length per "
                         f"sample, ({batch},)")
    if values.size and values.dtype.kind not in "iu":
        if values.dtype.kind != "f" or not np.all(values == np.round(values)):
            raise TypeError(f"{op}: lengths must be integers; got {values.dtype} values "
                            f"{values.tolist()}")
    if values.size and (values.min() < 0 or values.max() > steps):
        raise ValueError(f"{op}: lengths must lie in [0, T] = [0, {steps}]; got "
                         f"{values.astype(np.int64).tolist()}")
    return xp_of(raw(like)).asarray(values.astype(np.int32))


def _plan(x, w_hh, lengths, reverse):
    """Common set-up: x as (T, N, I), sizes, the lengths array the kernels read
    (all T when not padded), and slot indices (prev, new) per step in order."""
    xp = xp_of(x)
    single_step = x.ndim == 2
    seq = x[None] if single_step else x
    steps, batch = seq.shape[0], seq.shape[1]
    hidden = w_hh.shape[1]
    live = lengths if lengths is not None else xp.full((batch,), steps, dtype=np.int32)
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    slots = [(t, t + 1, t) if reverse else (t, t, t + 1) for t in order]
    return xp, single_step, seq, steps, batch, hidden, live, slots


def _mask_outputs(xp, y, lengths, steps):
    """Zero the outputs of the steps a padded row skips (one op over all T)."""
    if lengths is None:
        return y
    live = xp.arange(steps, dtype=np.int32)[:, None] < lengths[None, :]
    return y * live[:, :, None].astype(y.dtype)


def _step_blas(xp):
    """Where the step loops' small recurrent GEMMs run: at one BLAS thread on
    the host (threads.single_threaded_blas says why), as they are on a GPU."""
    return single_threaded_blas() if xp is np else contextlib.nullcontext()


def _input_projection(xp, seq, w_ih, bias):
    steps, batch, features = seq.shape
    gx = gemm(xp, seq.reshape(steps * batch, features), w_ih.T)
    if bias is not None:
        gx += bias
    return gx.reshape(steps, batch, w_ih.shape[0])  # not -1: batch may be 0


def _input_gradients(ctx, seq, flat_dx, w_ih, w_ih_index):
    """dx, dW_ih over all steps at once from the (T*N, G*H) gate gradients;
    w_ih_index is weight_ih's position among the Function's inputs."""
    needs = ctx.needs_input_grad
    steps, batch, features = seq.shape
    xp = xp_of(seq)
    dx = gemm(xp, flat_dx, w_ih).reshape(seq.shape) if needs[0] else None
    dw_ih = gemm(xp, flat_dx.T, seq.reshape(steps * batch, features)) \
        if needs[w_ih_index] else None
    return dx, dw_ih


class LSTMSequence(Function):
    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths=None, reverse=False,
                hard_sigmoid=False):
        xp, single, seq, steps, batch, hidden, live, slots = _plan(x, w_hh, lengths, reverse)
        bias = None if b_ih is None else b_ih + b_hh
        gx = _input_projection(xp, seq, w_ih, bias)
        hs = xp.empty((steps + 1, batch, hidden), dtype=x.dtype)
        cs = xp.empty_like(hs)
        first = steps if reverse else 0
        hs[first] = 0 if h0 is None else h0
        cs[first] = 0 if c0 is None else c0
        gh = xp.empty((batch, 4 * hidden), dtype=x.dtype)
        w_hh_t = w_hh.T
        with _step_blas(xp):
            for t, prev, new in slots:
                xp.matmul(hs[prev], w_hh_t, out=gh)
                cells.lstm_cell_forward(gx[t], gh, cs[prev], hs[prev], cs[new], hs[new], live,
                                        t, hard_sigmoid)
        ctx.save_for_backward(seq, w_ih, w_hh, gx, hs, cs)
        ctx.meta = (single, live, lengths, slots, reverse, hard_sigmoid, b_ih is not None)
        y = hs[:steps] if reverse else hs[1:]
        last = 0 if reverse else steps
        y = _mask_outputs(xp, y, lengths, steps)
        return (y[0] if single else y), hs[last], cs[last]

    @staticmethod
    def backward(ctx, gy, gh_n, gc_n):
        seq, w_ih, w_hh, gates, hs, cs = ctx.saved_tensors
        single, live, lengths, slots, reverse, hard_sigmoid, has_bias = ctx.meta
        xp = xp_of(gates)
        steps, batch, hidden = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
        gy = _mask_outputs(xp, gy.reshape(steps, batch, hidden), lengths, steps)
        d_gates = xp.empty_like(gates)
        dh = xp.array(gh_n, dtype=gates.dtype, order="C")
        dc = xp.array(gc_n, dtype=gates.dtype, order="C")
        recurrent = xp.empty_like(dh)
        with _step_blas(xp):
            for t, prev, new in reversed(slots):
                dh += gy[t]
                cells.lstm_cell_backward(gates[t], cs[prev], cs[new], dh, dc, d_gates[t], dc,
                                         dh, live, t, hard_sigmoid)
                xp.matmul(d_gates[t], w_hh, out=recurrent)
                dh += recurrent
        flat = d_gates.reshape(steps * batch, 4 * hidden)
        dx, dw_ih = _input_gradients(ctx, seq, flat, w_ih, 3)
        if dx is not None and single:
            dx = dx[0]
        h_prev = hs[1:] if reverse else hs[:steps]
        dw_hh = flat.T @ h_prev.reshape(steps * batch, hidden) if ctx.needs_input_grad[4] \
            else None
        db = flat.sum(axis=0) if has_bias else None
        return dx, dh, dc, dw_ih, dw_hh, db, db


class GRUSequence(Function):
    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, lengths=None, reverse=False,
                hard_sigmoid=False, reset_after=True):
        xp, single, seq, steps, batch, hidden, live, slots = _plan(x, w_hh, lengths, reverse)
        if b_ih is None:
            bias, b_hn = None, xp.zeros((hidden,), dtype=x.dtype)
        else:
            # b_hr and b_hz fold into the input projection; b_hn must stay
            # inside r * (...), so the cell kernel adds it.
            bias = b_ih.copy()
            bias[:2 * hidden] += b_hh[:2 * hidden]
            b_hn = xp.ascontiguousarray(b_hh[2 * hidden:])
        gx = _input_projection(xp, seq, w_ih, bias)
        hs = xp.empty((steps + 1, batch, hidden), dtype=x.dtype)
        hs[steps if reverse else 0] = 0 if h0 is None else h0
        if reset_after:
            recurrent = xp.empty((steps, batch, 3 * hidden), dtype=x.dtype)
            w_hh_t = w_hh.T
            with _step_blas(xp):
                for t, prev, new in slots:
                    xp.matmul(hs[prev], w_hh_t, out=recurrent[t])
                    cells.gru_cell_forward(gx[t], recurrent[t], b_hn, hs[prev], hs[new], live, t,
                                       hard_sigmoid, True)
        else:
            # TensorFlow's order: r first, then the candidate's matmul on r * h.
            recurrent = xp.empty((steps, batch, hidden), dtype=x.dtype)  # r * h per step
            gh_rz = xp.empty((batch, 2 * hidden), dtype=x.dtype)
            gh_n = xp.empty((batch, hidden), dtype=x.dtype)
            w_rz_t, w_n_t = w_hh[:2 * hidden].T, w_hh[2 * hidden:].T
            with _step_blas(xp):
                for t, prev, new in slots:
                    xp.matmul(hs[prev], w_rz_t, out=gh_rz)
                    cells.gru_reset_gate_forward(gx[t], gh_rz, hs[prev], recurrent[t], hard_sigmoid)
                    xp.matmul(recurrent[t], w_n_t, out=gh_n)
                    cells.gru_cell_forward(gx[t], gh_n, b_hn, hs[prev], hs[new], live, t,
                                       hard_sigmoid, False)
        ctx.save_for_backward(seq, w_ih, w_hh, gx, hs, recurrent, b_hn)
        ctx.meta = (single, live, lengths, slots, reverse, hard_sigmoid, reset_after,
                    b_ih is not None)
        y = _mask_outputs(xp, hs[:steps] if reverse else hs[1:], lengths, steps)
        return (y[0] if single else y), hs[0 if reverse else steps]

    @staticmethod
    def backward(ctx, gy, gh_n):
        seq, w_ih, w_hh, gates, hs, recurrent, b_hn = ctx.saved_tensors
        single, live, lengths, slots, reverse, hard_sigmoid, reset_after, has_bias = ctx.meta
        xp = xp_of(gates)
        steps, batch, hidden = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
        gy = _mask_outputs(xp, gy.reshape(steps, batch, hidden), lengths, steps)
        d_gx = xp.empty_like(gates)
        dh = xp.array(gh_n, dtype=gates.dtype, order="C")
        through_w = xp.empty_like(dh)
        h_prev = hs[1:] if reverse else hs[:steps]
        if reset_after:
            d_gh = xp.empty_like(recurrent)
            with _step_blas(xp):
                for t, prev, new in reversed(slots):
                    dh += gy[t]
                    cells.gru_cell_backward(gates[t], recurrent[t], b_hn, hs[prev], dh, d_gx[t],
                                        d_gh[t], dh, live, t, hard_sigmoid, True)
                    xp.matmul(d_gh[t], w_hh, out=through_w)
                    dh += through_w
            flat_h = d_gh.reshape(steps * batch, 3 * hidden)
            dw_hh = flat_h.T @ h_prev.reshape(steps * batch, hidden)
            db_hh = flat_h.sum(axis=0) if has_bias else None
        else:
            d_rh = xp.empty_like(dh)
            w_rz, w_n = w_hh[:2 * hidden], w_hh[2 * hidden:]
            with _step_blas(xp):
                for t, prev, new in reversed(slots):
                    dh += gy[t]
                    cells.gru_cell_backward(gates[t], None, b_hn, hs[prev], dh, d_gx[t], None,
                                            dh, live, t, hard_sigmoid, False)
                    xp.matmul(d_gx[t][:, 2 * hidden:], w_n, out=d_rh)
                    cells.gru_reset_gate_backward(gates[t], hs[prev], d_rh, d_gx[t], dh, live, t,
                                              hard_sigmoid)
                    xp.matmul(d_gx[t][:, :2 * hidden], w_rz, out=through_w)
                    dh += through_w
            flat = d_gx.reshape(steps * batch, 3 * hidden)
            dw_hh = xp.empty_like(w_hh)
            dw_hh[:2 * hidden] = flat[:, :2 * hidden].T @ h_prev.reshape(steps * batch, hidden)
            dw_hh[2 * hidden:] = flat[:, 2 * hidden:].T @ recurrent.reshape(steps * batch,
                                                                              hidden)
            db_hh = flat.sum(axis=0) if has_bias else None
        flat = d_gx.reshape(steps * batch, 3 * hidden)
        dx, dw_ih = _input_gradients(ctx, seq, flat, w_ih, 2)
        if dx is not None and single:
            dx = dx[0]
        db_ih = flat.sum(axis=0) if has_bias else None
        return dx, dh, dw_ih, dw_hh, db_ih, db_hh
