"""The CTC family's GPU path (nnlite/kernels/ctc.py through nvrtc.py, and the device code of
csrc/cuda/ctc.cu) without a GPU.

tests/cuda_emulation.py compiles the source NVRTC would get with g++ and runs
each launch on the CPU; see its docstring for what that does and does not
prove. ctc_alpha and ctc_beta are cooperative: one block per sequence, its
threads striding over the extended label with a __syncthreads between time
steps. The emulator runs each CUDA thread of a block up to its next barrier
before the next one starts, in ascending and then descending thread order, and
both results must agree: a missing barrier between two time steps would let a
thread read a neighbour's position of the wrong step in one of the two
orders. As the kernels stride over the label for any block size, they are
emulated with 7 threads per block (so 2L + 1 > 7 makes every thread own
several positions) and once with the block the launcher asks for
(1024 threads for 2L + 1 = 1201). ctc_grad is a grid-stride loop over
(t, n, c): the launch is checked, then emulated on a small grid (3 blocks of 5
threads) so the loop wraps.

Results are compared with the host build (nnlite.kernels.host) bit for bit:
alpha, beta and the gradient come from the same csrc/nnlite/ctc.cuh functions
per position, and the host's gradient gathers the occupancy of each class in
the same increasing-s order (skipping only -inf terms, which leave a
log-sum-exp bit-identical), all compiled by g++ without FMA contraction."""
import numpy as np
import pytest

from cuda_emulation import entry_parameters, family_source, host_build, install_fake_cupy
from nnlite.kernels import ctc as ctc_kernels
from nnlite.kernels import nvrtc

EMULATION = {"recursion_threads": 7}  # None: the block the launcher asks for
EMULATED_GRAD_GRID = (3, 5)  # blocks, threads: small, so the grid-stride loop wraps


def ctc_launch(launch):
    """The launch rules of the CTC kernels and the geometry of their arguments;
    returns the (blocks, threads) to emulate."""
    a = launch.bound
    batch, classes, max_time, max_length = (int(a[k]) for k in ("batch", "classes", "max_time",
                                                                 "max_length"))
    assert a["log_probs"].shape == (max_time, batch, classes)
    assert a["targets"].shape == (batch, max_length) and a["targets"].dtype == np.int32
    for name in ("input_lengths", "target_lengths"):
        assert a[name].shape == (batch,) and a[name].dtype == np.int32
    workspace = (batch, max_time, 2 * max_length + 1)
    for name in ("alpha", "beta"):
        if name in a:
            assert a[name].shape == workspace, f"{launch.name}: {name} {a[name].shape}"
    for name in ("nll", "grad_scale"):
        if name in a:
            assert a[name].shape == (batch,), f"{launch.name}: {name} {a[name].shape}"
    assert 0 <= int(a["blank"]) < classes and launch.shared_mem == 0
    if launch.name.startswith("ctc_grad"):
        assert a["grad"].shape == a["log_probs"].shape
        assert launch.block == (nvrtc.GRID_THREADS,)
        blocks = -(-a["grad"].size // nvrtc.GRID_THREADS)
        assert launch.grid == (min(blocks, nvrtc.MAX_GRID_BLOCKS),)
        return EMULATED_GRAD_GRID
    assert launch.grid == (batch,)  # one block per sequence
    threads = launch.block[0]
    assert threads % 32 == 0 and threads <= 1024
    assert threads >= min(2 * max_length + 1, 1024), "a block shorter than the label"
    return batch, EMULATION["recursion_threads"] or threads


@pytest.fixture
def launches(monkeypatch):
    return install_fake_cupy(monkeypatch, ctc_launch)


def test_entry_parameters_are_parsed():
    params = entry_parameters(family_source("ctc"), "ctc_beta_f32")
    assert params[:5] == [("const float*", "log_probs"), ("const int*", "targets"),
                          ("const int*", "input_lengths"), ("const int*", "target_lengths"),
                          ("float*", "beta")]
    assert [n for _, n in params[5:]] == ["batch", "classes", "max_time", "max_length", "blank"]


def make_case(rng, dtype, max_time, classes, targets, input_lengths, blank):
    logits = rng.standard_normal((max_time, len(targets), classes))
    log_probs = logits - np.log(np.exp(logits).sum(axis=2, keepdims=True))
    max_length = max([len(t) for t in targets], default=0)
    padded = np.full((len(targets), max_length), blank, dtype=np.int32)  # padding: any label
    for n, target in enumerate(targets):
        padded[n, :len(target)] = target
    return (log_probs.astype(dtype), padded, np.asarray(input_lengths, dtype=np.int32),
            np.asarray([len(t) for t in targets], dtype=np.int32))


CASES = {  # max_time, classes, targets, input_lengths, blank, feasible per sample
    "empty targets": (4, 3, [[], []], [4, 2], 0, [True, True]),
    "empty and not": (5, 4, [[], [1, 2], [3]], [3, 5, 0], 0, [True, True, False]),
    "repeats": (7, 3, [[1, 1, 2, 2], [2, 2, 2]], [7, 6], 0, [True, True]),
    "infeasible": (4, 3, [[1, 1, 1], [2, 1]], [4, 1], 0, [False, False]),  # needs 5, 2 frames
    "blank last": (6, 4, [[0, 2, 1], [1, 1]], [6, 5], 3, [True, True]),
    "long label": (16, 5, [[1, 2, 3, 4, 1, 2, 3], [4, 4, 1]], [16, 9], 0,
                   [True, True]),  # 2L+1 = 15 > 7 emulated threads
    "no frames": (0, 3, [[], [1]], [0, 0], 0, [True, False]),  # nothing to differentiate
}


def assert_written_alpha_equal(alpha, host_alpha, input_lengths, target_lengths):
    """Only t < input_length, s < 2 L_n + 1 are written (by either build)."""
    for n, (frames, length) in enumerate(zip(input_lengths, target_lengths)):
        on_device = alpha[n, :frames, :2 * length + 1]
        assert on_device.tobytes() == host_alpha[n, :frames, :2 * length + 1].tobytes(), \
            f"alpha of sample {n} differs from the host build"


def check_against_host(launches, dtype, log_probs, targets, input_lengths, target_lengths,
                       blank):
    nll, alpha = ctc_kernels.ctc_alpha(log_probs, targets, input_lengths, target_lengths, blank)
    with host_build():
        host_nll, host_alpha = ctc_kernels.ctc_alpha(log_probs, targets, input_lengths,
                                                     target_lengths, blank)
    assert nll.dtype == alpha.dtype == dtype
    assert nll.tobytes() == host_nll.tobytes(), (nll, host_nll)
    assert_written_alpha_equal(alpha, host_alpha, input_lengths, target_lengths)
    grad_scale = np.linspace(0.5, 2.0, len(nll)).astype(dtype)
    grad = ctc_kernels.ctc_backward(log_probs, targets, input_lengths, target_lengths, alpha,
                                    nll, grad_scale, blank)
    with host_build():
        host_grad = ctc_kernels.ctc_backward(log_probs, targets, input_lengths, target_lengths,
                                             host_alpha, host_nll, grad_scale, blank)
    assert grad.tobytes() == host_grad.tobytes(), np.abs(grad - host_grad).max()
    expected = ["ctc_alpha", "ctc_beta", "ctc_grad"] if log_probs.size else ["ctc_alpha"]
    assert [launch.name[:-4] for launch in launches] == expected
    return nll, grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", list(CASES))
def test_ctc_matches_the_host_build_bit_for_bit(launches, dtype, case):
    max_time, classes, targets, input_lengths, blank, feasible = CASES[case]
    rng = np.random.default_rng(len(case))
    arrays = make_case(rng, dtype, max_time, classes, targets, input_lengths, blank)
    nll, grad = check_against_host(launches, dtype, *arrays, blank)
    assert np.isfinite(nll).tolist() == feasible
    # An infeasible sample gets exactly 0; a feasible one a gradient to compare.
    for n, possible in enumerate(feasible):
        assert grad[:, n].any() == (possible and input_lengths[n] > 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ctc_with_the_launched_block_of_1024_threads(launches, monkeypatch, dtype):
    """2L + 1 = 1201 > 1024: the launcher's own block strides too."""
    monkeypatch.setitem(EMULATION, "recursion_threads", None)
    rng = np.random.default_rng(5)
    targets = [list(rng.integers(1, 4, size=600)), [2, 3]]
    arrays = make_case(rng, dtype, 3, 4, targets, [3, 3], 0)
    check_against_host(launches, dtype, *arrays, 0)
    assert launches[0].block == (1024,) and launches[1].block == (1024,)


def test_a_wrong_workspace_is_refused_before_any_launch(launches):
    """ctc_backward checks alpha, nll and grad_scale against log_probs before
    launching (one check for both builds): the kernels would index past them."""
    rng = np.random.default_rng(3)
    log_probs, targets, input_lengths, target_lengths = make_case(
        rng, np.float64, 4, 3, [[1, 2], [2]], [4, 3], 0)
    nll, alpha = ctc_kernels.ctc_alpha(log_probs, targets, input_lengths, target_lengths)
    scale = np.ones(2)
    with pytest.raises(ValueError, match=r"ctc_backward: alpha has shape \(2, 3, 5\); "
                                         r"expected \(2, 4, 5\) \(N, T, 2 L_max \+ 1\)"):
        ctc_kernels.ctc_backward(log_probs, targets, input_lengths, target_lengths,
                                 alpha[:, :3], nll, scale)
    with pytest.raises(ValueError, match=r"ctc_backward: nll has shape \(1,\); expected "
                                         r"\(2,\)"):
        ctc_kernels.ctc_backward(log_probs, targets, input_lengths, target_lengths, alpha,
                                 nll[:1], scale[:1])
    assert [launch.name for launch in launches] == ["ctc_alpha_f64"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_reaches_the_same_outputs_on_both_builds(launches, dtype):
    """A NaN on sample 0's path makes its loss and every frame of its gradient
    NaN. Sample 1 (labels 2 3 3 in 4 frames) gets one at (t=1, class 2), in the
    frame's window but unable to reach the end (3 3 needs a blank between):
    its loss stays finite, and the NaN reaches only the gradient entries whose
    positions alpha carries it to (t=2: class 3) or beta back from (t=0: blank,
    class 2). Both builds agree bit for bit, NaNs included."""
    rng = np.random.default_rng(11)
    log_probs, targets, input_lengths, target_lengths = make_case(
        rng, dtype, 6, 5, [[1, 2, 3], [2, 3, 3]], [6, 4], 0)
    log_probs[2, 0, 2] = np.nan
    log_probs[1, 1, 2] = np.nan
    nll, grad = check_against_host(launches, dtype, log_probs, targets, input_lengths,
                                   target_lengths, 0)
    assert np.isnan(nll[0]) and np.isfinite(nll[1])
    assert np.isnan(grad[:, 0]).all()
    assert np.argwhere(np.isnan(grad[:, 1])).tolist() == [[0, 0], [0, 2], [1, 2], [2, 3]]
    assert not grad[4:, 1].any()
