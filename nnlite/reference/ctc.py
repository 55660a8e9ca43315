"""Reference CTC loss and its true gradient with respect to log_probs, in log
space (the test oracle of csrc/nnlite/ctc.cuh; never called by the library).

`ctc_loss_grad` is the plain alpha/beta recursion written as loops over
(t, s); `ctc_loss_grad_vectorized` is the same recursion with each time step
vectorised over s, for the long cases (T = 1000, L = 400) where Python loops
would take minutes. Both return, per sample n, nll[n] = -log p(target_n) and
grad[:, n, :] = d nll[n] / d log_probs[:, n, :] (zero on padded frames and for
samples with p = 0).
"""
import numpy as np

NEG_INF = -np.inf


def extended_label(target, blank):
    """(blank, l_1, blank, l_2, ..., l_L, blank)."""
    ext = np.full(2 * len(target) + 1, blank, dtype=np.int64)
    ext[1::2] = target
    return ext


def _can_skip(ext, s, blank):
    return s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]


def _targets_of(targets, target_lengths):
    """Per-sample label arrays from padded (N, S), concatenated 1-D, or a list of lists."""
    if isinstance(targets, (list, tuple)) and all(np.ndim(t) == 1 for t in targets):
        return [np.asarray(t, dtype=np.int64)[:target_lengths[n]] for n, t in enumerate(targets)]
    targets = np.asarray(targets)
    if targets.ndim == 1:  # concatenated
        offsets = np.concatenate([[0], np.cumsum(target_lengths)])
        return [targets[offsets[n]:offsets[n + 1]] for n in range(len(target_lengths))]
    return [targets[n, :target_lengths[n]] for n in range(len(target_lengths))]


def ctc_loss_grad(log_probs, targets, input_lengths, target_lengths, blank=0):
    """Loops over (t, s): alpha_t(s) = lp[t, l'_s] + logsumexp of the allowed
    predecessors; beta mirrored; grad[t, c] = -exp(logsumexp_{s: l'_s = c}
    (alpha_t(s) + beta_t(s)) - lp[t, c] + nll)."""
    lp_all = np.asarray(log_probs, dtype=np.float64)
    max_time, batch, classes = lp_all.shape
    nll = np.zeros(batch)
    grad = np.zeros_like(lp_all)
    for n, target in enumerate(_targets_of(targets, target_lengths)):
        frames = int(input_lengths[n])
        lp = lp_all[:frames, n, :]
        ext = extended_label(target, blank)
        size = len(ext)
        if frames == 0:
            nll[n] = 0.0 if len(target) == 0 else np.inf
            continue
        alpha = np.full((frames, size), NEG_INF)
        alpha[0, 0] = lp[0, ext[0]]
        if size > 1:
            alpha[0, 1] = lp[0, ext[1]]
        for t in range(1, frames):
            for s in range(size):
                total = alpha[t - 1, s]
                if s >= 1:
                    total = np.logaddexp(total, alpha[t - 1, s - 1])
                if _can_skip(ext, s, blank):
                    total = np.logaddexp(total, alpha[t - 1, s - 2])
                alpha[t, s] = lp[t, ext[s]] + total
        beta = np.full((frames, size), NEG_INF)
        beta[-1, -1] = lp[-1, ext[-1]]
        if size > 1:
            beta[-1, -2] = lp[-1, ext[-2]]
        for t in range(frames - 2, -1, -1):
            for s in range(size):
                total = beta[t + 1, s]
                if s + 1 < size:
                    total = np.logaddexp(total, beta[t + 1, s + 1])
                if s + 2 < size and _can_skip(ext, s + 2, blank):
                    total = np.logaddexp(total, beta[t + 1, s + 2])
                beta[t, s] = lp[t, ext[s]] + total
        log_p = np.logaddexp(alpha[-1, -1], alpha[-1, -2] if size > 1 else NEG_INF)
        nll[n] = -log_p
        if log_p == NEG_INF:
            continue
        for t in range(frames):
            for c in range(classes):
                occupancy = NEG_INF
                for s in range(size):
                    if ext[s] == c:
                        occupancy = np.logaddexp(occupancy, alpha[t, s] + beta[t, s])
                if occupancy > NEG_INF:
                    grad[t, n, c] = -np.exp(occupancy - lp[t, c] - log_p)
    return nll, grad


def _shift(row, k):
    out = np.full_like(row, NEG_INF)
    out[k:] = row[:-k] if k < len(row) else out[k:]
    return out


def ctc_loss_grad_vectorized(log_probs, targets, input_lengths, target_lengths, blank=0):
    """The same recursion with each time step vectorised over s."""
    lp_all = np.asarray(log_probs, dtype=np.float64)
    max_time, batch, classes = lp_all.shape
    nll = np.zeros(batch)
    grad = np.zeros_like(lp_all)
    for n, target in enumerate(_targets_of(targets, target_lengths)):
        frames = int(input_lengths[n])
        ext = extended_label(target, blank)
        size = len(ext)
        if frames == 0:
            nll[n] = 0.0 if len(target) == 0 else np.inf
            continue
        emit = lp_all[:frames, n, :][:, ext]  # (frames, size): lp[t, l'_s]
        skip = np.zeros(size, dtype=bool)
        skip[2:] = (ext[2:] != blank) & (ext[2:] != ext[:-2])
        with np.errstate(invalid="ignore"):
            alpha = np.full((frames, size), NEG_INF)
            alpha[0, :2] = emit[0, :2]
            for t in range(1, frames):
                prev = alpha[t - 1]
                total = np.logaddexp(prev, _shift(prev, 1))
                total = np.where(skip, np.logaddexp(total, _shift(prev, 2)), total)
                alpha[t] = emit[t] + total
            beta = np.full((frames, size), NEG_INF)
            beta[-1, -2:] = emit[-1, -2:]
            skip_from = np.zeros(size, dtype=bool)
            skip_from[:-2] = skip[2:]
            for t in range(frames - 2, -1, -1):
                nxt = beta[t + 1]
                total = np.logaddexp(nxt, _shift(nxt[::-1], 1)[::-1])
                total = np.where(skip_from, np.logaddexp(total, _shift(nxt[::-1], 2)[::-1]),
                                 total)
                beta[t] = emit[t] + total
        log_p = np.logaddexp(alpha[-1, -1], alpha[-1, -2] if size > 1 else NEG_INF)
        nll[n] = -log_p
        if log_p == NEG_INF:
            continue
        through = alpha + beta
        occupancy = np.full((frames, classes), NEG_INF)
        for s in range(size):
            occupancy[:, ext[s]] = np.logaddexp(occupancy[:, ext[s]], through[:, s])
        with np.errstate(invalid="ignore"):
            g = -np.exp(occupancy - lp_all[:frames, n, :] - log_p)
        grad[:frames, n, :] = np.where(occupancy > NEG_INF, g, 0.0)
    return nll, grad


def frames_required(target):
    """Fewest frames that can emit `target`: one per label, plus a blank between
    equal neighbours."""
    target = np.asarray(target)
    return len(target) + int((target[1:] == target[:-1]).sum())
