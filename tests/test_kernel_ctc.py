"""The CTC kernel family (nnlite.kernels ctc_alpha / ctc_backward) against a
brute-force enumeration of alignments and the NumPy reference, on every device."""
import itertools

import numpy as np
import pytest

from nnlite.device import to_numpy
from nnlite.kernels import ctc as ctc_kernels
from nnlite.reference import ctc as ref

from kernel_testing import assert_close, each_dtype



def log_softmax(x):
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def pad(targets):
    width = max([len(t) for t in targets] + [0])
    padded = np.zeros((len(targets), width), dtype=np.int32)
    for n, t in enumerate(targets):
        padded[n, :len(t)] = t
    return padded, np.array([len(t) for t in targets], dtype=np.int32)


def run_kernels(xp, log_probs, targets, input_lengths, blank=0, scale=None):
    """(nll, grad) on the host, from the device's kernels, with grad_scale 1."""
    padded, target_lengths = pad(targets)
    lp = xp.asarray(log_probs)
    args = (lp, xp.asarray(padded), xp.asarray(np.asarray(input_lengths, np.int32)),
            xp.asarray(target_lengths))
    nll, alpha = ctc_kernels.ctc_alpha(*args, blank=blank)
    if scale is None:
        scale = np.ones(log_probs.shape[1])
    grad = ctc_kernels.ctc_backward(*args, alpha, nll, xp.asarray(scale.astype(log_probs.dtype)),
                                blank=blank)
    return to_numpy(nll), to_numpy(grad)


def brute_force(log_probs, target, frames, blank):
    """-log p(target) and its gradient by summing over every path of `frames` steps."""
    classes = log_probs.shape[1]
    total = 0.0
    d_total = np.zeros_like(log_probs)
    for path in itertools.product(range(classes), repeat=frames):
        collapsed = [c for i, c in enumerate(path) if c != blank and (i == 0 or c != path[i - 1])]
        if collapsed != list(target):
            continue
        p = np.exp(sum(log_probs[t, c] for t, c in enumerate(path)))
        total += p
        for t, c in enumerate(path):
            d_total[t, c] += p
    if total == 0:
        return np.inf, np.zeros_like(log_probs)
    return -np.log(total), -d_total / total


CASES = [  # (T, C, target, blank)
    (1, 2, [], 0), (1, 2, [1], 0), (2, 2, [1, 1], 0), (3, 2, [1, 1], 0), (4, 3, [1, 2], 0),
    (5, 3, [2, 2, 1], 0), (6, 3, [1, 2, 1], 0), (6, 3, [1], 2), (5, 3, [0, 1, 0], 2),
    (6, 2, [], 1), (6, 3, [1, 1, 1], 0), (4, 3, [0, 0], 1),
]


@each_dtype
@pytest.mark.parametrize("normalised", [True, False], ids=["log_softmax", "raw"])
def test_matches_brute_force_enumeration(xp, dtype, normalised):
    rng = np.random.default_rng(0)
    for frames, classes, target, blank in CASES:
        x = rng.standard_normal((frames, 1, classes))
        lp = log_softmax(x) if normalised else x
        nll, grad = run_kernels(xp, lp.astype(dtype), [target], [frames], blank)
        expected_nll, expected_grad = brute_force(lp[:, 0, :], target, frames, blank)
        case = f"T={frames} C={classes} target={target} blank={blank}"
        assert_close(nll[0], expected_nll, dtype, accumulates=True, err_msg=case)
        assert_close(grad[:, 0, :], expected_grad, dtype, accumulates=True,
                                   err_msg=case)


def random_batch(rng, max_time, batch, classes, max_length, blank=0, repeats=False):
    lp = log_softmax(rng.standard_normal((max_time, batch, classes)) * 2)
    labels = [c for c in range(classes) if c != blank]
    targets, input_lengths = [], []
    for _ in range(batch):
        length = int(rng.integers(0, max_length + 1))
        target = list(rng.choice(labels, size=length))
        if repeats and length >= 2:
            target[1] = target[0]
        need = ref.frames_required(np.array(target, dtype=int))
        input_lengths.append(int(rng.integers(max(need, 1), max_time + 1)))
        targets.append(target)
    return lp, targets, input_lengths


@each_dtype
@pytest.mark.parametrize("seed", range(4))
def test_random_batches_match_reference(xp, dtype, seed):
    rng = np.random.default_rng(seed)
    blank = [0, 4, 2, 0][seed]
    lp, targets, input_lengths = random_batch(rng, 15, 5, 5, 6, blank=blank, repeats=seed % 2)
    nll, grad = run_kernels(xp, lp.astype(dtype), targets, input_lengths, blank)
    padded, target_lengths = pad(targets)
    expected_nll, expected_grad = ref.ctc_loss_grad(lp, padded, input_lengths, target_lengths,
                                                    blank)
    assert_close(nll, expected_nll, dtype, accumulates=True)
    assert_close(grad, expected_grad, dtype, accumulates=True)


def test_vectorised_reference_matches_loop_reference():
    rng = np.random.default_rng(5)
    lp, targets, input_lengths = random_batch(rng, 12, 6, 4, 5, repeats=True)
    padded, lengths = pad(targets)
    loops = ref.ctc_loss_grad(lp, padded, input_lengths, lengths)
    vectorised = ref.ctc_loss_grad_vectorized(lp, padded, input_lengths, lengths)
    np.testing.assert_allclose(vectorised[0], loops[0], rtol=1e-12)
    np.testing.assert_allclose(vectorised[1], loops[1], rtol=1e-12, atol=1e-15)


@each_dtype
def test_empty_targets_cost_the_blank_path(xp, dtype):
    rng = np.random.default_rng(6)
    lp = log_softmax(rng.standard_normal((7, 3, 4)))
    input_lengths = [7, 3, 0]
    nll, grad = run_kernels(xp, lp.astype(dtype), [[], [], []], input_lengths, blank=2)
    expected = [-lp[:n, i, 2].sum() for i, n in enumerate(input_lengths)]
    assert_close(nll, expected, dtype, accumulates=True)
    # Only the blank path exists: d(-sum lp[t, blank]) = -1 on blank, 0 elsewhere.
    expected_grad = np.zeros_like(lp)
    for i, n in enumerate(input_lengths):
        expected_grad[:n, i, 2] = -1
    assert_close(grad, expected_grad, dtype, accumulates=True)
    assert (grad[:, :, [0, 1, 3]] == 0).all()


@each_dtype
def test_label_with_zero_probability_gives_inf_and_no_nan(xp, dtype):
    rng = np.random.default_rng(7)
    lp = log_softmax(rng.standard_normal((6, 2, 4)))
    lp[:, :, 3] = -np.inf  # class 3 is never emitted
    nll, grad = run_kernels(xp, lp.astype(dtype), [[1, 3], [1, 2]], [6, 6])
    assert nll[0] == np.inf and np.isfinite(nll[1])
    assert not np.isnan(grad).any()
    np.testing.assert_array_equal(grad[:, 0, :], 0)
    _, expected_grad = ref.ctc_loss_grad(lp, *pad([[1, 3], [1, 2]])[:1], [6, 6], [2, 2])
    assert_close(grad[:, 1, :], expected_grad[:, 1, :], dtype, accumulates=True)


@each_dtype
def test_infeasible_targets_give_inf_and_zero_gradient(xp, dtype):
    rng = np.random.default_rng(8)
    lp = log_softmax(rng.standard_normal((4, 3, 3)))
    # [1, 1, 1] needs 5 frames; [1, 2, 1, 2, 1] needs 5; [2, 2] needs 3 and gets 3.
    nll, grad = run_kernels(xp, lp.astype(dtype), [[1, 1, 1], [1, 2, 1, 2, 1], [2, 2]],
                            [4, 4, 3])
    assert nll[0] == np.inf and nll[1] == np.inf and np.isfinite(nll[2])
    np.testing.assert_array_equal(grad[:, :2, :], 0)
    assert np.isfinite(grad).all()


@each_dtype
def test_padded_frames_get_exactly_zero_gradient(xp, dtype):
    rng = np.random.default_rng(9)
    lp, targets, _ = random_batch(rng, 20, 4, 6, 4)
    input_lengths = [20, 11, 4, 17]
    targets = [t[:2] for t in targets]
    _, grad = run_kernels(xp, lp.astype(dtype), targets, input_lengths)
    for n, frames in enumerate(input_lengths):
        assert (grad[frames:, n, :] == 0).all()
        assert (grad[:frames, n, :] != 0).any()


@each_dtype
def test_grad_scale_multiplies_each_sample(xp, dtype):
    rng = np.random.default_rng(10)
    lp, targets, input_lengths = random_batch(rng, 10, 3, 5, 3)
    _, unit = run_kernels(xp, lp.astype(dtype), targets, input_lengths)
    scale = np.array([0.5, -2.0, 0.0])
    _, scaled = run_kernels(xp, lp.astype(dtype), targets, input_lengths, scale=scale)
    assert_close(scaled, unit * scale[None, :, None], dtype, accumulates=True)


@each_dtype
def test_long_sequence_t1000_l400(xp, dtype):
    rng = np.random.default_rng(11)
    classes = 20
    lp = log_softmax(rng.standard_normal((1000, 2, classes)))
    targets = [list(rng.integers(1, classes, size=400)), list(rng.integers(1, classes, size=350))]
    nll, grad = run_kernels(xp, lp.astype(dtype), targets, [1000, 900])
    padded, lengths = pad(targets)
    expected_nll, expected_grad = ref.ctc_loss_grad_vectorized(lp, padded, [1000, 900], lengths)
    assert np.isfinite(nll).all() and np.isfinite(grad).all()
    if dtype == np.float64:
        np.testing.assert_allclose(nll, expected_nll, rtol=1e-9)
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-9, atol=1e-10)
    else:
        # alpha and beta reach about -3000 here, where a float32 ulp is 2.4e-4, and the
        # gradient exponentiates their sum minus nll: ~1e-3 absolute error in a value in
        # [-1, 0]. torch.nn.functional.ctc_loss in float32 errs by 1.4e-3 on this case.
        np.testing.assert_allclose(nll, expected_nll, rtol=1e-6)
        np.testing.assert_allclose(grad, expected_grad, rtol=0, atol=3e-3)


def test_labels_beyond_warp_ctc_cap_l1100(xp):
    """warp-ctc caps GPU labels at 639; the block here strides over any 2L + 1."""
    rng = np.random.default_rng(12)
    classes = 30
    lp = log_softmax(rng.standard_normal((1250, 1, classes)))
    target = list(rng.integers(1, classes, size=1100))
    frames = max(ref.frames_required(np.array(target)) + 50, 1200)
    nll, grad = run_kernels(xp, lp[:frames], [target], [frames])
    padded, lengths = pad([target])
    expected_nll, expected_grad = ref.ctc_loss_grad_vectorized(lp[:frames], padded, [frames],
                                                               lengths)
    assert np.isfinite(nll).all()
    np.testing.assert_allclose(nll, expected_nll, rtol=1e-10)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-8, atol=1e-10)


@each_dtype
def test_gradient_is_bit_identical_run_to_run(xp, dtype):
    rng = np.random.default_rng(13)
    lp, targets, input_lengths = random_batch(rng, 31, 16, 63, 16, repeats=True)
    first = run_kernels(xp, lp.astype(dtype), targets, input_lengths)
    second = run_kernels(xp, lp.astype(dtype), targets, input_lengths)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_empty_batch_and_no_time_steps(xp):
    nll, grad = run_kernels(xp, np.zeros((5, 0, 3)), [], [])
    assert nll.shape == (0,) and grad.shape == (5, 0, 3)
    nll, grad = run_kernels(xp, np.zeros((0, 2, 3)), [[], [1]], [0, 0])
    np.testing.assert_array_equal(nll, [0.0, np.inf])
    assert grad.shape == (0, 2, 3)


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: ctc_kernels.ctc_alpha(np.zeros((3, 2, 4), np.int32), np.zeros((2, 1), np.int32),
                            np.ones(2, np.int32), np.ones(2, np.int32)), TypeError,
     r"ctc_alpha: log_probs has dtype int32; expected float32 or float64"),
    (lambda: ctc_kernels.ctc_alpha(np.zeros((3, 2, 4)), np.zeros((3, 1), np.int32),
                            np.ones(2, np.int32), np.ones(2, np.int32)), ValueError,
     r"ctc_alpha: targets has shape \(3, 1\); expected \(N, L_max\) with N = 2"),
    (lambda: ctc_kernels.ctc_alpha(np.zeros((3, 2, 4)), np.zeros((2, 1), np.int64),
                            np.ones(2, np.int32), np.ones(2, np.int32)), TypeError,
     r"ctc_alpha: targets must be an int32 numpy.ndarray"),
    (lambda: ctc_kernels.ctc_alpha(np.zeros((3, 2)), np.zeros((2, 1), np.int32),
                            np.ones(2, np.int32), np.ones(2, np.int32)), ValueError,
     r"ctc_alpha: log_probs must be 3-D \(T, N, C\)"),
])
def test_bad_inputs_name_the_kernel(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_raw_binding_checks_lengths_and_labels():
    """nnlite._C is a memory-safety boundary even when called around the facade
    (tests/test_ctc_entry_points.py covers every argument)."""
    from nnlite import _C
    lp = np.zeros((3, 1, 4))
    alpha = np.empty((1, 3, 3))
    dims = (1, 4, 3, 1, 0)  # batch, classes, max_time, max_length, blank
    with pytest.raises(ValueError, match=r"ctc_alpha_f64: targets\[0\]\[0\] = 7; expected"):
        _C.ctc_alpha_f64(lp, np.array([[7]], np.int32), np.array([3], np.int32),
                         np.array([1], np.int32), alpha, np.empty(1), *dims)
    with pytest.raises(ValueError, match=r"ctc_alpha_f64: input_lengths\[0\] = 4; expected"):
        _C.ctc_alpha_f64(lp, np.array([[1]], np.int32), np.array([4], np.int32),
                         np.array([1], np.int32), alpha, np.empty(1), *dims)
    with pytest.raises(ValueError, match=r"ctc_alpha_f64: alpha has shape \(1, 3, 2\)"):
        _C.ctc_alpha_f64(lp, np.array([[1]], np.int32), np.array([3], np.int32),
                         np.array([1], np.int32), np.empty((1, 3, 2)), np.empty(1), *dims)
