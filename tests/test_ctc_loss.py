"""F.ctc_loss / nn.CTCLoss: PyTorch's signature and semantics, the true gradient,
infeasible targets and malformed input."""
import warnings

import numpy as np
import pytest

import nnlite as nl
import nnlite.functional as F
from nnlite.device import to_numpy
from nnlite.reference import ctc as ref

try:
    import torch
except ImportError:  # the comparisons with PyTorch need it; nothing else does
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")


def log_softmax(x):
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def crnn_like_batch(seed=0, max_time=31, batch=8, classes=12, blank=None):
    """Labels avoid `blank` (default: last class, as in the CRNN seed)."""
    rng = np.random.default_rng(seed)
    blank = classes - 1 if blank is None else blank
    lp = log_softmax(rng.standard_normal((max_time, batch, classes)) * 2)
    labels = np.array([c for c in range(classes) if c != blank])
    target_lengths = rng.integers(0, 8, size=batch)
    targets = rng.choice(labels, size=(batch, 8))
    targets[0, 1] = targets[0, 0]  # a repeat
    input_lengths = rng.integers(20, max_time + 1, size=batch)
    input_lengths[0] = max_time
    return lp, targets, input_lengths, target_lengths, blank


def concatenated(targets, target_lengths):
    return np.concatenate([targets[n, :target_lengths[n]] for n in range(len(targets))])


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("layout", ["padded", "concatenated"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_loss_matches_torch(device, reduction, layout, dtype):
    lp, targets, input_lengths, target_lengths, blank = crnn_like_batch()
    lp = lp.astype(dtype)
    tg = targets if layout == "padded" else concatenated(targets, target_lengths)
    ours = F.ctc_loss(nl.tensor(lp, device=device), tg, input_lengths, target_lengths,
                      blank=blank, reduction=reduction)
    expected = torch.nn.functional.ctc_loss(
        torch.from_numpy(lp), torch.from_numpy(tg), torch.from_numpy(input_lengths),
        torch.from_numpy(target_lengths), blank=blank, reduction=reduction)
    assert ours.dtype == dtype
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(to_numpy(ours.data), expected.numpy(), rtol=rtol)


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gradient_is_torch_gradient_without_the_folded_softmax(device, reduction):
    """PyTorch returns exp(lp) * g + d loss / d lp on frames t < input_length (it
    assumes a log_softmax it folds in); the true gradient is the second term."""
    lp, targets, input_lengths, target_lengths, blank = crnn_like_batch(seed=1)
    x = nl.tensor(lp, device=device, requires_grad=True)
    loss = F.ctc_loss(x, targets, input_lengths, target_lengths, blank=blank,
                      reduction=reduction)
    upstream = np.random.default_rng(2).standard_normal(loss.shape)
    loss.backward(nl.tensor(upstream, device=device))

    xt = torch.from_numpy(lp).requires_grad_(True)
    torch_loss = torch.nn.functional.ctc_loss(
        xt, torch.from_numpy(targets), torch.from_numpy(input_lengths),
        torch.from_numpy(target_lengths), blank=blank, reduction=reduction)
    torch_loss.backward(torch.from_numpy(upstream))
    max_time, batch, _ = lp.shape
    if reduction == "none":
        per_sample = upstream
    elif reduction == "sum":
        per_sample = np.full(batch, float(upstream))
    else:
        per_sample = float(upstream) / (np.maximum(target_lengths, 1) * batch)
    live = np.arange(max_time)[:, None] < input_lengths[None, :]
    folded = np.exp(lp) * (per_sample * live)[:, :, None]
    np.testing.assert_allclose(to_numpy(x.grad.data), xt.grad.numpy() - folded, atol=1e-12)


def test_gradcheck_on_log_probs_directly(device):
    """Unnormalised inputs: the gradient is the true derivative, not a softmax-folded one."""
    rng = np.random.default_rng(3)
    x = nl.tensor(rng.standard_normal((6, 3, 4)), device=device, requires_grad=True)
    targets = np.array([[1, 1, 2], [3, 0, 0], [2, 3, 1]])
    assert nl.gradcheck(lambda a: F.ctc_loss(a, targets, [6, 4, 5], [2, 1, 3], blank=0,
                                             reduction="none"), [x])
    assert nl.gradcheck(lambda a: F.ctc_loss(a, targets, [6, 4, 5], [2, 1, 3], blank=0), [x])


def test_gradcheck_through_log_softmax(device):
    rng = np.random.default_rng(4)
    x = nl.tensor(rng.standard_normal((5, 2, 4)), device=device, requires_grad=True)
    targets = np.array([[0, 2], [1, 1]])

    def fn(a):
        return F.ctc_loss(F.log_softmax(a, dim=2), targets, [5, 5], [2, 2], blank=3,
                          reduction="sum")
    assert nl.gradcheck(fn, [x])


def test_matches_reference_with_blank_in_the_middle(device):
    lp, targets, input_lengths, target_lengths, _ = crnn_like_batch(seed=5, blank=4)
    x = nl.tensor(lp, device=device, requires_grad=True)
    F.ctc_loss(x, targets, input_lengths, target_lengths, blank=4, reduction="sum").backward()
    expected_nll, expected_grad = ref.ctc_loss_grad(lp, targets, input_lengths,
                                                    target_lengths, blank=4)
    np.testing.assert_allclose(to_numpy(x.grad.data), expected_grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("zero_infinity", [False, True])
def test_infeasible_targets_warn_and_never_give_nan(device, zero_infinity):
    rng = np.random.default_rng(6)
    lp = log_softmax(rng.standard_normal((6, 3, 5)))
    x = nl.tensor(lp, device=device, requires_grad=True)
    targets = np.array([[1, 1, 1, 1], [1, 2, 3, 4], [1, 2, 0, 0]])
    input_lengths, target_lengths = [6, 3, 6], [4, 4, 2]
    with pytest.warns(RuntimeWarning) as record:
        losses = F.ctc_loss(x, targets, input_lengths, target_lengths, reduction="none",
                            zero_infinity=zero_infinity)
    message = str(record[0].message)
    assert "2 of 3 samples" in message
    assert "sample 0 needs 7 time steps (4 labels + 3 blanks between repeated labels) " \
           "but has input_length 6" in message
    assert "sample 1 needs 4 time steps" in message and "input_length 3" in message
    assert "sample 2" not in message
    values = to_numpy(losses.data)
    if zero_infinity:
        assert "zero_infinity=True" in message
        np.testing.assert_array_equal(values[:2], 0)
    else:
        assert "pass zero_infinity=True" in message
        assert np.isinf(values[:2]).all()
    assert np.isfinite(values[2])
    losses.sum().backward() if zero_infinity else losses[2].backward()
    grad = to_numpy(x.grad.data)
    assert np.isfinite(grad).all()
    np.testing.assert_array_equal(grad[:, :2, :], 0)
    assert (grad[:, 2, :] != 0).any()


def test_mean_with_zero_infinity_ignores_infeasible_samples(device):
    lp = log_softmax(np.random.default_rng(7).standard_normal((4, 2, 3)))
    x = nl.tensor(lp, device=device, requires_grad=True)
    with pytest.warns(RuntimeWarning, match="1 of 2 samples"):
        loss = F.ctc_loss(x, [[1, 1, 1], [1, 2, 0]], [4, 4], [3, 2], zero_infinity=True)
    nll, _ = ref.ctc_loss_grad(lp, [[1, 1, 1], [1, 2, 0]], [4, 4], [3, 2])
    np.testing.assert_allclose(float(loss.item()), (0 + nll[1] / 2) / 2, rtol=1e-12)
    loss.backward()
    assert np.isfinite(to_numpy(x.grad.data)).all()


def test_feasible_batches_do_not_warn(device):
    lp, targets, input_lengths, target_lengths, blank = crnn_like_batch(seed=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.ctc_loss(nl.tensor(lp, device=device), targets, input_lengths, target_lengths,
                   blank=blank)


def test_nn_ctc_loss_module(device):
    lp, targets, input_lengths, target_lengths, blank = crnn_like_batch(seed=9)
    module = nl.nn.CTCLoss(blank=blank, reduction="sum", zero_infinity=True)
    x = nl.tensor(lp, device=device)
    np.testing.assert_array_equal(
        to_numpy(module(x, targets, input_lengths, target_lengths).data),
        to_numpy(F.ctc_loss(x, targets, input_lengths, target_lengths, blank, "sum",
                            True).data))
    assert "blank=11" in repr(module) and "zero_infinity=True" in repr(module)


def test_lengths_as_tensors_and_tuples(device):
    lp, targets, input_lengths, target_lengths, blank = crnn_like_batch(seed=10)
    x = nl.tensor(lp, device=device)
    a = F.ctc_loss(x, nl.tensor(targets, device=device), nl.tensor(input_lengths),
                   tuple(int(v) for v in target_lengths), blank=blank)
    b = F.ctc_loss(x, targets, input_lengths, target_lengths, blank=blank)
    assert float(a.item()) == float(b.item())


GOOD = dict(targets=[[1, 2], [2, 0]], input_lengths=[4, 4], target_lengths=[2, 1])


@pytest.mark.parametrize("change, error, pattern", [
    (dict(targets=[[1, 5], [2, 0]]), ValueError,
     r"ctc_loss: targets of sample 0 hold label 5 at position 1, outside \[0, 3\)"),
    (dict(targets=[[1, -1], [2, 0]]), ValueError, r"label -1 at position 1, outside"),
    (dict(targets=[[1, 2], [0, 0]]), ValueError,
     r"ctc_loss: targets of sample 1 hold label 0 at position 0, equal to blank=0"),
    (dict(target_lengths=[3, 1]), ValueError,
     r"ctc_loss: target_lengths\[0\] = 3 exceeds the padded target width S = 2"),
    (dict(targets=[1, 2], target_lengths=[2, 1]), ValueError,
     r"ctc_loss: target_lengths sum to 3 but the concatenated 1-D targets hold only 2"),
    (dict(input_lengths=[5, 4]), ValueError,
     r"ctc_loss: input_lengths\[0\] = 5 exceeds the 4 time steps of log_probs"),
    (dict(input_lengths=[4, -1]), ValueError, r"ctc_loss: input_lengths\[1\] = -1 is negative"),
    (dict(input_lengths=[4, 4, 4]), ValueError,
     r"ctc_loss: input_lengths has 3 entries but log_probs has batch size 2"),
    (dict(target_lengths=[2]), ValueError,
     r"ctc_loss: target_lengths has 1 entries but log_probs has batch size 2"),
    (dict(targets=[[1, 2], [2, 0], [1, 1]]), ValueError,
     r"ctc_loss: targets has 3 rows but log_probs has batch size 2"),
    (dict(input_lengths=[4.0, 4.0]), TypeError,
     r"ctc_loss: input_lengths must hold integers; got dtype float64"),
    (dict(log_probs=np.zeros((4, 3))), ValueError,
     r"ctc_loss: log_probs must be 3-D \(T, N, C\); got shape \(4, 3\)"),
    (dict(log_probs=np.zeros((4, 2, 3), np.int32)), TypeError,
     r"ctc_loss: log_probs must be float32 or float64; got int32"),
    (dict(blank=3), ValueError, r"ctc_loss: blank=3 is outside \[0, 3\)"),
    (dict(reduction="avg"), ValueError, r"ctc_loss: reduction='avg' is not one of"),
])
def test_malformed_input_raises_naming_the_op(change, error, pattern):
    kwargs = dict(log_probs=np.log(np.full((4, 2, 3), 1 / 3)), blank=0, **GOOD)
    kwargs.update(change)
    log_probs = kwargs.pop("log_probs")
    with pytest.raises(error, match=pattern):
        F.ctc_loss(nl.tensor(log_probs), **kwargs)
