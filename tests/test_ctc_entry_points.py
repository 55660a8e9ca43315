"""The host CTC entry points of nnlite._C called directly: ctc_alpha_<f32|f64>,
ctc_beta_<...> and ctc_grad_<...> take exactly the arguments of the CUDA entry
points of the same names (csrc/cuda/ctc.cu), compute what nnlite.reference.ctc
computes, refuse every hostile argument with an error naming the entry point
(nnlite._C is importable: it must never crash the process), and let a NaN in
log_probs through to the loss wherever PyTorch does."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nnlite as nl
import nnlite.functional as F
from cuda_emulation import entry_parameters, family_source
from nnlite import _C
from nnlite.errors import AnomalyError
from nnlite.reference import ctc as reference
from nnlite.tensor import set_detect_anomaly

DTYPES = {"f32": np.float32, "f64": np.float64}
TOLERANCE = {"f32": dict(rtol=2e-4, atol=2e-5), "f64": dict(rtol=1e-10, atol=1e-12)}
ENTRY_POINTS = ("ctc_alpha", "ctc_beta", "ctc_grad")


# ------------------------------------------------------------ signatures --

def binding_parameters(function):
    """Parameter names of a pybind11 function, from its docstring signature."""
    signature = function.__doc__.splitlines()[0]
    inside = signature[signature.index("(") + 1:signature.rindex(")")]
    return re.findall(r"(\w+):", inside)


@pytest.mark.parametrize("suffix", DTYPES)
@pytest.mark.parametrize("op", ENTRY_POINTS)
def test_host_entry_point_takes_the_cuda_arguments(op, suffix):
    name = f"{op}_{suffix}"
    cuda = [param for _, param in entry_parameters(family_source("ctc"), name)]
    assert binding_parameters(getattr(_C, name)) == cuda


def test_the_fused_host_backward_is_gone():
    assert not hasattr(_C, "ctc_backward_f32") and not hasattr(_C, "ctc_backward_f64")


# ------------------------------------------------------------- the math --

def make_case(rng, dtype, max_time, classes, targets, input_lengths, blank):
    """Arrays in the layouts of the entry points; padding holds a valid label."""
    logits = rng.standard_normal((max_time, len(targets), classes))
    log_probs = logits - np.log(np.exp(logits).sum(axis=2, keepdims=True))
    max_length = max([len(t) for t in targets], default=0)
    padded = np.full((len(targets), max_length), (blank + 1) % classes, dtype=np.int32)
    for n, target in enumerate(targets):
        padded[n, :len(target)] = target
    return (np.ascontiguousarray(log_probs, dtype=dtype), padded,
            np.asarray(input_lengths, dtype=np.int32),
            np.asarray([len(t) for t in targets], dtype=np.int32))


def dims_of(log_probs, targets, blank):
    max_time, batch, classes = log_probs.shape
    return batch, classes, max_time, targets.shape[1], blank


def run_entry_points(suffix, log_probs, targets, input_lengths, target_lengths, blank,
                     grad_scale):
    """nll, alpha, beta, grad from the three entry points, as a launcher calls them."""
    dtype = DTYPES[suffix]
    dims = dims_of(log_probs, targets, blank)
    batch, _, max_time, max_length, _ = dims
    alpha = np.full((batch, max_time, 2 * max_length + 1), np.nan, dtype)
    beta = np.full_like(alpha, np.nan)
    nll = np.full(batch, np.nan, dtype)
    grad = np.full_like(log_probs, np.nan)  # every element must be written
    inputs = (log_probs, targets, input_lengths, target_lengths)
    getattr(_C, f"ctc_alpha_{suffix}")(*inputs, alpha, nll, *dims)
    getattr(_C, f"ctc_beta_{suffix}")(*inputs, beta, *dims)
    getattr(_C, f"ctc_grad_{suffix}")(*inputs, alpha, beta, nll, grad_scale.astype(dtype), grad,
                                      *dims)
    return nll, alpha, beta, grad


CASES = {  # max_time, classes, targets, input_lengths
    "plain": (6, 5, [[1, 2, 3], [3, 3]], [6, 5]),
    "repeats and padding": (7, 4, [[1, 1, 2, 2], [2], []], [7, 4, 3]),
    "infeasible and empty input": (4, 3, [[1, 1, 1], [2], []], [4, 0, 0]),
    "one frame": (1, 3, [[1], []], [1, 1]),
}


@pytest.mark.parametrize("suffix", DTYPES)
@pytest.mark.parametrize("blank_at", ["first", "last"])
@pytest.mark.parametrize("case", CASES)
def test_entry_points_match_the_reference(case, blank_at, suffix):
    max_time, classes, targets, input_lengths = CASES[case]
    blank = 0 if blank_at == "first" else classes - 1
    if blank:  # move the labels off the last class
        targets = [[label - 1 for label in target] for target in targets]
    rng = np.random.default_rng(len(case) + blank)
    arrays = make_case(rng, DTYPES[suffix], max_time, classes, targets, input_lengths, blank)
    grad_scale = np.linspace(0.5, 2.0, len(targets))
    nll, alpha, beta, grad = run_entry_points(suffix, *arrays, blank, grad_scale)
    ref_nll, ref_grad = reference.ctc_loss_grad(arrays[0], targets, input_lengths,
                                                [len(t) for t in targets], blank)
    np.testing.assert_allclose(nll, ref_nll, **TOLERANCE[suffix])
    np.testing.assert_allclose(grad, ref_grad * grad_scale[None, :, None], **TOLERANCE[suffix])
    for n, (frames, target) in enumerate(zip(input_lengths, targets)):
        written = (slice(n, n + 1), slice(0, frames), slice(0, 2 * len(target) + 1))
        assert not np.isnan(alpha[written]).any() and not np.isnan(beta[written]).any()


@pytest.mark.parametrize("suffix", DTYPES)
def test_an_empty_batch_is_a_no_op(suffix):
    dtype = DTYPES[suffix]
    lp = np.zeros((3, 0, 4), dtype)
    targets, lengths = np.zeros((0, 2), np.int32), np.zeros(0, np.int32)
    alpha, nll = np.zeros((0, 3, 5), dtype), np.zeros(0, dtype)
    getattr(_C, f"ctc_alpha_{suffix}")(lp, targets, lengths, lengths, alpha, nll, 0, 4, 3, 2, 0)
    getattr(_C, f"ctc_beta_{suffix}")(lp, targets, lengths, lengths, alpha, 0, 4, 3, 2, 0)
    getattr(_C, f"ctc_grad_{suffix}")(lp, targets, lengths, lengths, alpha, alpha.copy(), nll,
                                      nll.copy(), lp.copy(), 0, 4, 3, 2, 0)


# ---------------------------------------------------- hostile arguments --
#
# Each case changes one argument of a valid call (T = 4, N = 2, C = 5, L_max = 3,
# blank = 0). They run in a child process: an argument that slips past the
# checks could crash it, and a crash must fail these tests, not end pytest.

HOSTILE = {  # name: (entry point, change, error, pattern after "<entry>_f64")
    **{f"{op} blank={blank}": (op, {"blank": blank}, "ValueError",
                               rf": blank = {blank}; expected a value in \[0, 4\]")
       for op in ENTRY_POINTS for blank in (5, -1, 50_000_000)},
    "blank=5e7 as a float": ("ctc_alpha", {"blank": 5e7}, "TypeError",
                             r"\(\): incompatible function arguments"),
    "batch beyond int": ("ctc_alpha", {"batch": 2**40}, "TypeError",
                         r"\(\): incompatible function arguments"),
    "negative batch": ("ctc_beta", {"batch": -1}, "ValueError", r": batch = -1; expected"),
    "no classes": ("ctc_alpha", {"classes": 0}, "ValueError", r": classes = 0; expected"),
    "max_time past the int arithmetic": ("ctc_grad", {"max_time": 2**30}, "ValueError",
                                         r": max_time = 1073741824; expected a value in "
                                         r"\[0, 1073741823\]"),
    "negative max_length": ("ctc_alpha", {"max_length": -1}, "ValueError",
                            r": max_length = -1; expected"),
    "input length past T": ("ctc_alpha", {"input_lengths": [5, 4]}, "ValueError",
                            r": input_lengths\[0\] = 5; expected a value in \[0, 4\]"),
    "negative input length": ("ctc_grad", {"input_lengths": [4, -1]}, "ValueError",
                              r": input_lengths\[1\] = -1; expected"),
    "target length past L_max": ("ctc_beta", {"target_lengths": [3, 4]}, "ValueError",
                                 r": target_lengths\[1\] = 4; expected a value in \[0, 3\]"),
    "negative target length": ("ctc_alpha", {"target_lengths": [-2, 1]}, "ValueError",
                               r": target_lengths\[0\] = -2; expected"),
    "label = C": ("ctc_alpha", {"label": 5}, "ValueError",
                  r": targets\[1\]\[0\] = 5; expected a value in \[0, 4\]"),
    "label = -1": ("ctc_grad", {"label": -1}, "ValueError", r": targets\[1\]\[0\] = -1"),
    "label = 2**31 - 1": ("ctc_beta", {"label": 2**31 - 1}, "ValueError",
                          r": targets\[1\]\[0\] = 2147483647"),
    "label = blank": ("ctc_alpha", {"label": 0}, "ValueError",
                      r": targets\[1\]\[0\] = 0 = blank; expected a label other than the blank"),
    "log_probs one short": ("ctc_alpha", {"log_probs": "short"}, "ValueError",
                            r": log_probs has shape \(39,\) \(39 elements\); expected 40 "
                            r"elements, \(max_time, batch, classes\) = \(4, 2, 5\)"),
    "targets too small": ("ctc_grad", {"targets": "short"}, "ValueError",
                          r": targets has shape \(5,\) \(5 elements\); expected 6"),
    "input_lengths too long": ("ctc_beta", {"input_lengths": [4, 4, 4]}, "ValueError",
                               r": input_lengths has shape \(3,\) \(3 elements\); expected 2"),
    "alpha too small": ("ctc_alpha", {"alpha": "short"}, "ValueError",
                        r": alpha has shape \(55,\) \(55 elements\); expected 56 elements, "
                        r"\(batch, max_time, 2 max_length \+ 1\) = \(2, 4, 7\)"),
    "beta too small": ("ctc_grad", {"beta": "short"}, "ValueError", r": beta has shape \(55,\)"),
    "nll too small": ("ctc_alpha", {"nll": "short"}, "ValueError", r": nll has shape \(1,\)"),
    "grad_scale too small": ("ctc_grad", {"grad_scale": "short"}, "ValueError",
                             r": grad_scale has shape \(1,\)"),
    "grad too small": ("ctc_grad", {"grad": "short"}, "ValueError", r": grad has shape \(39,\)"),
    "huge batch, small arrays": ("ctc_alpha", {"batch": 2**31 - 1}, "ValueError",
                                 r": log_probs has shape \(4, 2, 5\) \(40 elements\); expected "
                                 r"42949672940 elements"),
    "huge dims overflow 64 bits": ("ctc_grad", {"batch": 2**31 - 1, "classes": 2**31 - 1,
                                                "max_time": 2**30 - 1}, "ValueError",
                                   r": max_time \* batch \* classes = 1073741823 \* "
                                   r"4611686014132420609 overflows 64 bits"),
    "huge max_length, small arrays": ("ctc_beta", {"max_length": 2**30 - 1, "targets": "huge"},
                                         "ValueError", r": targets has shape"),
    "wrong dtype": ("ctc_alpha", {"log_probs": "float32"}, "TypeError",
                    r"\(\): incompatible function arguments"),
    "int64 targets": ("ctc_grad", {"targets": "int64"}, "TypeError",
                      r"\(\): incompatible function arguments"),
    "non-contiguous log_probs": ("ctc_beta", {"log_probs": "strided"}, "TypeError",
                                 r"\(\): incompatible function arguments"),
    "non-contiguous alpha": ("ctc_alpha", {"alpha": "strided"}, "TypeError",
                             r"\(\): incompatible function arguments"),
    "read-only output": ("ctc_alpha", {"alpha": "read-only"}, "ValueError",
                         r": alpha is read-only; expected a writable array"),
    "output inside an input": ("ctc_grad", {"grad": "aliases log_probs"}, "ValueError",
                               r": grad shares memory with log_probs"),
    "output over the targets": ("ctc_alpha", {"targets": "inside alpha"}, "ValueError",
                                r": alpha shares memory with targets"),
    "two outputs overlap": ("ctc_alpha", {"nll": "inside alpha"}, "ValueError",
                            r": alpha shares memory with nll"),
}


def hostile_call(case):
    """Build the valid float64 call of the case's entry point, apply its change, call."""
    op, change, _, _ = HOSTILE[case]
    rng = np.random.default_rng(0)
    args = dict(zip(("log_probs", "targets", "input_lengths", "target_lengths"),
                    make_case(rng, np.float64, 4, 5, [[1, 2, 3], [4]], [4, 3], 0)))
    args.update(alpha=np.zeros((2, 4, 7)), beta=np.zeros((2, 4, 7)), nll=np.zeros(2),
                grad_scale=np.ones(2), grad=np.zeros((4, 2, 5)),
                batch=2, classes=5, max_time=4, max_length=3, blank=0)
    for name, value in change.items():
        if name == "label":
            args["targets"][1, 0] = value
        elif value == "short":
            args[name] = args[name].reshape(-1)[:-1].copy()
        elif value == "huge":
            args[name] = np.ones((2, 3), np.int32)
        elif value == "float32":
            args[name] = args[name].astype(np.float32)
        elif value == "int64":
            args[name] = args[name].astype(np.int64)
        elif value == "strided":
            args[name] = np.repeat(args[name], 2, axis=-1)[..., ::2]
        elif value == "read-only":
            args[name].setflags(write=False)
        elif value == "aliases log_probs":
            args[name] = args["log_probs"]
        elif value == "inside alpha":
            if name == "targets":  # valid labels (1) in alpha's bytes, then alpha is written
                args["alpha"].view(np.int32)[:] = 1
                args["targets"] = args["alpha"].reshape(-1).view(np.int32)[:6].reshape(2, 3)
            else:
                args[name] = args["alpha"].reshape(-1)[:2]
        else:
            args[name] = np.asarray(value, dtype=np.int32) if isinstance(value, list) else value
    params = [name for _, name in entry_parameters(family_source("ctc"), f"{op}_f64")]
    getattr(_C, f"{op}_f64")(*(args[name] for name in params))


def run_hostile_cases(start=0):
    """In the child: one JSON line per case from HOSTILE's `start`-th on, each
    flushed before the next case starts."""
    for case in list(HOSTILE)[start:]:
        try:
            hostile_call(case)
            outcome = {"case": case, "error": None, "message": ""}
        except Exception as exc:  # the test judges the type and message
            outcome = {"case": case, "error": type(exc).__name__, "message": str(exc)}
        print(json.dumps(outcome), flush=True)


@pytest.fixture(scope="module")
def hostile_outcomes():
    """{case: outcome}; a case that kills the child is recorded as a crash and
    a new child goes on with the next case."""
    here = Path(__file__).resolve().parent
    names = list(HOSTILE)
    outcomes = {}
    while len(outcomes) < len(names):
        start = len(outcomes)
        code = (f"import sys; sys.path.insert(0, {str(here)!r}); "
                f"import test_ctc_entry_points as t; t.run_hostile_cases({start})")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=300, cwd=here.parent)
        for line in done.stdout.splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                outcomes[entry["case"]] = entry
        if len(outcomes) < len(names):  # the child died in the next case
            outcomes[names[len(outcomes)]] = {
                "error": "crash", "message": f"the process died (exit status "
                                             f"{done.returncode}):\n{done.stderr[-2000:]}"}
    return outcomes


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_argument_raises_naming_the_entry_point(hostile_outcomes, case):
    op, _, error, pattern = HOSTILE[case]
    outcome = hostile_outcomes[case]
    assert outcome["error"] == error, outcome["message"]
    assert re.search(f"{op}_f64" + pattern, outcome["message"]), outcome["message"]


# ------------------------------------------------------ NaN in, NaN out --

T, N, C = 6, 2, 5


def nan_case(blank, dtype):
    """A small batch whose first target repeats a label (fewer skips) and whose
    second sample is shorter than log_probs, and the padded, length arrays."""
    rng = np.random.default_rng(blank)
    x = rng.standard_normal((T, N, C))
    log_probs = (x - np.log(np.exp(x).sum(axis=2, keepdims=True))).astype(dtype)
    labels = [c for c in range(C) if c != blank]
    targets = np.array([[labels[0], labels[1], labels[1]], [labels[2], labels[0], labels[0]]])
    return log_probs, targets, np.array([6, 5]), np.array([3, 2])


def losses(log_probs, targets, input_lengths, target_lengths, blank):
    return F.ctc_loss(nl.tensor(log_probs), targets, input_lengths, target_lengths, blank=blank,
                      reduction="none").numpy()


def single_nans():
    for t in range(T):
        for n in range(N):
            for c in range(C):
                yield t, n, c


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("blank", [0, C - 1])
def test_nan_on_a_feasible_path_gives_nan_loss_and_gradient(blank, dtype):
    log_probs, targets, input_lengths, target_lengths = nan_case(blank, dtype)
    log_probs[2, 0, targets[0, 1]] = np.nan  # sample 0's second label, mid-sequence
    x = nl.tensor(log_probs, requires_grad=True)
    loss = F.ctc_loss(x, targets, input_lengths, target_lengths, blank=blank, reduction="none")
    nll = loss.numpy()
    assert np.isnan(nll[0]) and np.isfinite(nll[1])
    loss.sum().backward()
    grad = x.grad.numpy()
    assert np.isnan(grad[:, 0]).all()  # every frame of the NaN sample
    assert np.isfinite(grad[:, 1]).all()
    assert not grad[input_lengths[1]:, 1].any()  # its padded frame stays exactly 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("blank", [0, C - 1])
def test_single_nan_gives_nan_loss_exactly_where_pytorch_does(blank, dtype):
    torch = pytest.importorskip("torch")
    log_probs, targets, input_lengths, target_lengths = nan_case(blank, dtype)
    clean = losses(log_probs, targets, input_lengths, target_lengths, blank)
    nan_somewhere = 0
    for t, n, c in single_nans():
        poisoned = log_probs.copy()
        poisoned[t, n, c] = np.nan
        ours = losses(poisoned, targets, input_lengths, target_lengths, blank)
        theirs = torch.nn.functional.ctc_loss(
            torch.from_numpy(poisoned), torch.from_numpy(targets),
            torch.from_numpy(input_lengths), torch.from_numpy(target_lengths), blank=blank,
            reduction="none").numpy()
        assert np.isnan(ours).tolist() == np.isnan(theirs).tolist(), (t, n, c, ours, theirs)
        # A NaN that cannot reach the loss changes nothing.
        np.testing.assert_array_equal(ours[~np.isnan(ours)], clean[~np.isnan(ours)])
        nan_somewhere += int(np.isnan(ours).any())
    assert 0 < nan_somewhere < T * N * C  # some positions matter, others do not


def test_nan_ctc_loss_under_detect_anomaly_names_the_op():
    log_probs, targets, input_lengths, target_lengths = nan_case(0, np.float64)
    log_probs[2, 0, targets[0, 1]] = np.nan
    set_detect_anomaly(True)
    try:
        with pytest.raises(AnomalyError, match=r"CTCLoss\.forward produced NaN"):
            F.ctc_loss(nl.tensor(log_probs), targets, input_lengths, target_lengths)
    finally:
        set_detect_anomaly(False)


@pytest.mark.parametrize("suffix", DTYPES)
def test_nan_flows_through_alpha_beta_nll_and_grad(suffix):
    """At the entry points: a NaN at (t, n, blank) on the path reaches alpha and
    beta at that frame, the nll, and the whole gradient of that sample."""
    log_probs, targets, input_lengths, target_lengths = nan_case(0, DTYPES[suffix])
    log_probs[3, 1, 0] = np.nan
    nll, alpha, beta, grad = run_entry_points(
        suffix, log_probs, targets.astype(np.int32), input_lengths.astype(np.int32),
        target_lengths.astype(np.int32), 0, np.ones(N))
    assert np.isnan(alpha[1, 3, 0:5:2]).any() and np.isnan(beta[1, 3, 0:5:2]).any()
    assert np.isfinite(nll[0]) and np.isnan(nll[1])
    assert np.isnan(grad[:5, 1]).all() and not grad[5:, 1].any()
    assert np.isfinite(grad[:, 0]).all()
