"""Reference LSTM and GRU sequences: a plain per-step loop in NumPy, forward and
backward (backpropagation through time written out by hand). The test oracle
of csrc/nnlite/rnn.cuh and nnlite.functional.rnn; never called by the library.

Arguments follow PyTorch: x (T, N, I); h0, c0 (N, H); w_ih (G*H, I); w_hh
(G*H, H); b_ih, b_hh (G*H,) with gates LSTM i, f, g, o and GRU r, z, n.
`lengths` (N,) makes steps t >= lengths[n] leave row n unchanged with a zero
output; `reverse` walks t from T-1 down to 0.
"""
import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def hard_sigmoid(x):
    """Keras 2's: clip(0.2 x + 0.5, 0, 1)."""
    return np.clip(0.2 * x + 0.5, 0.0, 1.0)


def _gate(hard):
    """(activation, its derivative as a function of the input)."""
    if hard:
        return hard_sigmoid, lambda x: np.where(np.abs(x) < 2.5, 0.2, 0.0)
    return sigmoid, lambda x: sigmoid(x) * (1 - sigmoid(x))


def _steps(T, reverse):
    return range(T - 1, -1, -1) if reverse else range(T)


def _live(lengths, N, T, t):
    """(N, 1) boolean: does row n take a step at time t."""
    if lengths is None:
        return np.ones((N, 1), dtype=bool)
    return (t < np.asarray(lengths)).reshape(N, 1)


def lstm_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths=None, reverse=False,
                 hard_sigmoid=False):
    """Returns y (T, N, H), h_n, c_n."""
    act, _ = _gate(hard_sigmoid)
    T, N, _ = x.shape
    H = h0.shape[1]
    h, c = h0.copy(), c0.copy()
    y = np.zeros((T, N, H), dtype=x.dtype)
    for t in _steps(T, reverse):
        pre = x[t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        i, f, g, o = (pre[:, k * H:(k + 1) * H] for k in range(4))
        c_new = act(f) * c + act(i) * np.tanh(g)
        h_new = act(o) * np.tanh(c_new)
        live = _live(lengths, N, T, t)
        h, c = np.where(live, h_new, h), np.where(live, c_new, c)
        y[t] = np.where(live, h_new, 0)
    return y, h, c


def lstm_backward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, gy, gh_n, gc_n, lengths=None,
                  reverse=False, hard_sigmoid=False):
    """Gradients of sum(gy*y) + sum(gh_n*h_n) + sum(gc_n*c_n): a dict with x, h0,
    c0, w_ih, w_hh, b_ih, b_hh."""
    act, dact = _gate(hard_sigmoid)
    T, N, _ = x.shape
    H = h0.shape[1]
    # Forward again, keeping every step's inputs.
    h, c = h0.copy(), c0.copy()
    tape = {}
    for t in _steps(T, reverse):
        pre = x[t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        tape[t] = (h, c, pre)
        i, f, g, o = (pre[:, k * H:(k + 1) * H] for k in range(4))
        c_new = act(f) * c + act(i) * np.tanh(g)
        h_new = act(o) * np.tanh(c_new)
        live = _live(lengths, N, T, t)
        h, c = np.where(live, h_new, h), np.where(live, c_new, c)
    grads = {k: np.zeros_like(v) for k, v in
             dict(x=x, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh).items()}
    dh, dc = gh_n.copy(), gc_n.copy()
    for t in reversed(list(_steps(T, reverse))):
        h_prev, c_prev, pre = tape[t]
        live = _live(lengths, N, T, t)
        dh = dh + np.where(live, gy[t], 0)
        i, f, g, o = (pre[:, k * H:(k + 1) * H] for k in range(4))
        c_new = act(f) * c_prev + act(i) * np.tanh(g)
        dc_total = dc + dh * act(o) * (1 - np.tanh(c_new) ** 2)
        d_pre = np.concatenate([dc_total * np.tanh(g) * dact(i),
                                dc_total * c_prev * dact(f),
                                dc_total * act(i) * (1 - np.tanh(g) ** 2),
                                dh * np.tanh(c_new) * dact(o)], axis=1)
        d_pre = np.where(live, d_pre, 0)
        grads["x"][t] = d_pre @ w_ih
        grads["w_ih"] += d_pre.T @ x[t]
        grads["w_hh"] += d_pre.T @ h_prev
        grads["b_ih"] += d_pre.sum(axis=0)
        grads["b_hh"] += d_pre.sum(axis=0)
        dh = np.where(live, d_pre @ w_hh, dh)
        dc = np.where(live, dc_total * act(f), dc)
    grads["h0"], grads["c0"] = dh, dc
    return grads


def _gru_step(x_t, h, w_ih, w_hh, b_ih, b_hh, act, reset_after):
    """Pre-activations and the new state of one GRU step: (a_r, a_z, a_n, gh_n, h')
    where gh_n is the recurrent term of n (before r for reset_after)."""
    H = h.shape[1]
    gx = x_t @ w_ih.T + b_ih
    a_r = gx[:, :H] + h @ w_hh[:H].T + b_hh[:H]
    a_z = gx[:, H:2 * H] + h @ w_hh[H:2 * H].T + b_hh[H:2 * H]
    r, z = act(a_r), act(a_z)
    if reset_after:
        gh_n = h @ w_hh[2 * H:].T + b_hh[2 * H:]
        a_n = gx[:, 2 * H:] + r * gh_n
    else:
        gh_n = (r * h) @ w_hh[2 * H:].T + b_hh[2 * H:]
        a_n = gx[:, 2 * H:] + gh_n
    n = np.tanh(a_n)
    return a_r, a_z, a_n, gh_n, (1 - z) * n + z * h


def gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, lengths=None, reverse=False,
                hard_sigmoid=False, reset_after=True):
    """Returns y (T, N, H), h_n."""
    act, _ = _gate(hard_sigmoid)
    T, N, _ = x.shape
    h = h0.copy()
    y = np.zeros((T, N, h0.shape[1]), dtype=x.dtype)
    for t in _steps(T, reverse):
        h_new = _gru_step(x[t], h, w_ih, w_hh, b_ih, b_hh, act, reset_after)[-1]
        live = _live(lengths, N, T, t)
        h = np.where(live, h_new, h)
        y[t] = np.where(live, h_new, 0)
    return y, h


def gru_backward(x, h0, w_ih, w_hh, b_ih, b_hh, gy, gh_n, lengths=None, reverse=False,
                 hard_sigmoid=False, reset_after=True):
    """Gradients of sum(gy*y) + sum(gh_n*h_n): a dict with x, h0, w_ih, w_hh, b_ih, b_hh."""
    act, dact = _gate(hard_sigmoid)
    T, N, _ = x.shape
    H = h0.shape[1]
    h = h0.copy()
    tape = {}
    for t in _steps(T, reverse):
        tape[t] = h
        h_new = _gru_step(x[t], h, w_ih, w_hh, b_ih, b_hh, act, reset_after)[-1]
        h = np.where(_live(lengths, N, T, t), h_new, h)
    grads = {k: np.zeros_like(v) for k, v in
             dict(x=x, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh).items()}
    dh = gh_n.copy()
    for t in reversed(list(_steps(T, reverse))):
        h_prev = tape[t]
        live = _live(lengths, N, T, t)
        dh = dh + np.where(live, gy[t], 0)
        a_r, a_z, a_n, gh_n_t, _ = _gru_step(x[t], h_prev, w_ih, w_hh, b_ih, b_hh, act,
                                             reset_after)
        r, z, n = act(a_r), act(a_z), np.tanh(a_n)
        d_an = np.where(live, dh * (1 - z) * (1 - n ** 2), 0)
        d_az = np.where(live, dh * (h_prev - n) * dact(a_z), 0)
        dh_prev = np.where(live, dh * z, dh)
        if reset_after:
            d_ar = d_an * gh_n_t * dact(a_r)
            d_ghn = d_an * r                       # w.r.t. h W_hn^T + b_hn
            dh_prev = dh_prev + d_ghn @ w_hh[2 * H:]
            grads["w_hh"][2 * H:] += d_ghn.T @ h_prev
            grads["b_hh"][2 * H:] += d_ghn.sum(axis=0)
        else:
            d_rh = d_an @ w_hh[2 * H:]             # w.r.t. r * h
            d_ar = d_rh * h_prev * dact(a_r)
            dh_prev = dh_prev + d_rh * r
            grads["w_hh"][2 * H:] += d_an.T @ (r * h_prev)
            grads["b_hh"][2 * H:] += d_an.sum(axis=0)
        d_ar = np.where(live, d_ar, 0)
        d_rz = np.concatenate([d_ar, d_az], axis=1)
        d_gx = np.concatenate([d_ar, d_az, d_an], axis=1)
        dh_prev = dh_prev + d_rz @ w_hh[:2 * H]
        grads["w_hh"][:2 * H] += d_rz.T @ h_prev
        grads["b_hh"][:2 * H] += d_rz.sum(axis=0)
        grads["x"][t] = d_gx @ w_ih
        grads["w_ih"] += d_gx.T @ x[t]
        grads["b_ih"] += d_gx.sum(axis=0)
        dh = dh_prev
    grads["h0"] = dh
    return grads
