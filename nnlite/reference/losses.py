"""NumPy references for the losses and batch normalisation: per-sample
loops written for clarity, the oracles of tests/test_losses.py."""
import numpy as np


def log_softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def cross_entropy(logits, target, weight=None, ignore_index=-100, reduction="mean"):
    """logits (N, C, d...) or (C,), integer target (N, d...) or ()."""
    if logits.ndim == 1:
        logits, target = logits[None], np.asarray(target)[None]
    log_probs = log_softmax(logits, axis=1)
    # Walk every (sample, position) explicitly.
    positions = list(np.ndindex(target.shape))
    losses = np.zeros(target.shape, dtype=logits.dtype)
    total_weight = 0.0
    for pos in positions:
        cls = int(target[pos])
        if cls == ignore_index:
            continue
        w = 1.0 if weight is None else weight[cls]
        index = (pos[0], cls) + tuple(pos[1:])
        losses[pos] = -w * log_probs[index]
        total_weight += w
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / total_weight


def binary_cross_entropy_with_logits(x, t, pos_weight=None):
    """Element-wise -[pw t log s + (1 - t) log(1 - s)] with s = sigmoid(x),
    using -log s = log(1 + e^-x) and -log(1 - s) = log(1 + e^x), in float64."""
    x64, t64 = x.astype(np.float64), t.astype(np.float64)
    pw = 1.0 if pos_weight is None else pos_weight
    return pw * t64 * np.logaddexp(0, -x64) + (1 - t64) * np.logaddexp(0, x64)


def batch_norm_train(x, weight, bias, eps):
    """Normalise each channel of (N, C, ...) with its batch mean and biased variance."""
    y = np.empty_like(x)
    for c in range(x.shape[1]):
        values = x[:, c]
        mean = values.mean()
        var = ((values - mean) ** 2).mean()
        y[:, c] = (values - mean) / np.sqrt(var + eps) * weight[c] + bias[c]
    return y
