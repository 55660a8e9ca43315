"""The recurrent entry points of nnlite._C (csrc/host/rnn.cpp), called directly.

Each host entry point <name>_f32 / _f64 takes exactly the arguments of the CUDA
entry point of the same name in csrc/cuda/rnn.cu: the step's arrays as flat
buffers, then t, units = N * H, hidden = H and the flags. nnlite._C is
importable, so every entry point checks all of its arguments itself.

- the argument lists agree with rnn.cu, name for name, array for pointer;
- each entry point, float32 and float64, matches nnlite.reference.rnn on a
  small padded batch (the reference's W_ih = identity makes its input the gate
  pre-activations, as in tests/test_kernel_rnn.py);
- bad arguments raise ValueError (TypeError where pybind11 rejects an array's
  dtype or layout) naming the entry point. The ValueError cases are ones a
  missing check would turn into an out-of-bounds access or a division by zero,
  so they run in one child process: a regression fails these tests instead of
  killing the test session.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cuda_emulation import entry_parameters
import nnlite.kernels  # noqa: F401  (loads nnlite._C as the library does)
from nnlite import _C
from nnlite.reference import rnn as ref

RNN_CU = Path(__file__).resolve().parents[1] / "csrc" / "cuda" / "rnn.cu"
OPS = ["lstm_cell_forward", "lstm_cell_backward", "gru_reset_gate_forward", "gru_cell_forward",
       "gru_cell_backward", "gru_reset_gate_backward"]
DTYPES = {"f32": np.float32, "f64": np.float64}
TOLERANCE = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}

# Width of each array parameter in units of H: an (N, width * H) array; 0: (H,).
# gh of gru_cell_forward is (N, 3H) with reset_after, (N, H) without.
WIDTHS = {
    "lstm_cell_forward": dict(gx=4, gh=4, c_prev=1, h_prev=1, c=1, h=1),
    "lstm_cell_backward": dict(gates=4, c_prev=1, c=1, dh=1, dc=1, d_gates=4, dc_prev=1,
                               dh_prev=1),
    "gru_reset_gate_forward": dict(gx=3, gh_rz=2, h_prev=1, rh=1),
    "gru_cell_forward": dict(gx=3, gh=3, b_hn=0, h_prev=1, h=1),
    "gru_cell_backward": dict(gates=3, gh=3, b_hn=0, h_prev=1, dh=1, d_gx=3, d_gh=3, dh_prev=1),
    "gru_reset_gate_backward": dict(gates=3, h_prev=1, d_rh=1, d_gx=3, dh_prev=1),
}
# The arrays each entry point writes.
OUTPUTS = {
    "lstm_cell_forward": ["gx", "c", "h"],
    "lstm_cell_backward": ["d_gates", "dc_prev", "dh_prev"],
    "gru_reset_gate_forward": ["gx", "rh"],
    "gru_cell_forward": ["gx", "h"],
    "gru_cell_backward": ["d_gx", "d_gh", "dh_prev"],
    "gru_reset_gate_backward": ["d_gx", "dh_prev"],
}
_CU_ARRAY = {"float*": "float32", "double*": "float64", "int*": "int32"}


def entry(op, suffix):
    return getattr(_C, f"{op}_{suffix}")


def cuda_parameters(op, suffix):
    """[(name, "float32" | "float64" | "int32" | "scalar"), ...] of rnn.cu's entry point."""
    return [(name, _CU_ARRAY.get(ctype.replace("const", "").strip(), "scalar"))
            for ctype, name in entry_parameters(RNN_CU.read_text(), f"{op}_{suffix}")]


def host_parameters(op, suffix):
    """The same list, read from the pybind11 signature of nnlite._C's entry point."""
    name = f"{op}_{suffix}"
    first_line = entry(op, suffix).__doc__.splitlines()[0]
    match = re.fullmatch(re.escape(name) + r"\((.*)\) -> None", first_line)
    assert match, first_line
    params = []
    for part in match.group(1).split(", "):
        pname, annotation = part.split(": ", 1)
        array = re.search(r"NDArray\[numpy\.(\w+)\]|numpy\.ndarray\[numpy\.(\w+)", annotation)
        params.append((pname, (array.group(1) or array.group(2)) if array else "scalar"))
    return params


def valid_arguments(op, suffix, rows=2, hidden=3, reset_after=1, rng=None):
    """{name: value} of a valid call: zeros (or random values) of the right sizes,
    lengths all live, t = 0, flags 0 except reset_after."""
    dtype = DTYPES[suffix]
    widths = dict(WIDTHS[op])
    if op == "gru_cell_forward" and not reset_after:
        widths["gh"] = 1
    args = {}
    for name, kind in cuda_parameters(op, suffix):
        if name in widths:
            shape = (hidden,) if widths[name] == 0 else (rows, widths[name] * hidden)
            args[name] = (np.zeros(shape, dtype) if rng is None
                          else rng.uniform(-2, 2, shape).astype(dtype))
        elif name == "lengths":
            args[name] = np.ones(rows, np.int32)
        else:
            args[name] = dict(t=0, units=rows * hidden, hidden=hidden,
                              reset_after=reset_after).get(name, 0)
    return args


def call(op, suffix, args):
    """Positional call, in the order of rnn.cu's parameter list."""
    return entry(op, suffix)(*[args[name] for name, _ in cuda_parameters(op, suffix)])


# ------------------------------------------------------------- signatures --

@pytest.mark.parametrize("suffix", DTYPES)
@pytest.mark.parametrize("op", OPS)
def test_host_arguments_are_the_cuda_arguments(op, suffix):
    assert host_parameters(op, suffix) == cuda_parameters(op, suffix)


def test_every_rnn_kernel_of_rnn_cu_has_a_host_entry_point():
    kernels = re.findall(r'extern\s+"C"\s+__global__\s+void\s+(?:__launch_bounds__\([^)]*\)\s*)?'
                         r"(\w+)\s*\(", RNN_CU.read_text())
    assert sorted(kernels) == sorted(f"{op}_{s}" for op in OPS for s in DTYPES)
    assert all(hasattr(_C, name) for name in kernels)


# ----------------------------------------------------------- correctness --

def _setup(n, hidden, gates, dtype, seed):
    rng = np.random.default_rng(seed)
    a = dict(pre=rng.standard_normal((n, gates * hidden)) * 2,
             w_hh=rng.standard_normal((gates * hidden, hidden)),
             h=rng.standard_normal((n, hidden)), c=rng.standard_normal((n, hidden)),
             dh=rng.standard_normal((n, hidden)), dc=rng.standard_normal((n, hidden)),
             b_hn=rng.standard_normal(hidden))
    a = {k: v.astype(dtype).astype(np.float64) for k, v in a.items()}
    lengths = np.array([1, 1, 0, 1][:n], np.int32)  # row 2 is past its length: skipped
    return a, lengths


def _arr(a, dtype):
    return np.array(a, dtype=dtype, order="C")


@pytest.mark.parametrize("flat", [False, True], ids=["2d", "flat"])
@pytest.mark.parametrize("hard", [0, 1], ids=["sigmoid", "hard_sigmoid"])
@pytest.mark.parametrize("suffix", DTYPES)
def test_lstm_entry_points_match_reference(suffix, hard, flat):
    dtype, (n, hidden) = DTYPES[suffix], (4, 3)
    a, lengths = _setup(n, hidden, 4, dtype, seed=1)
    eye, zero = np.eye(4 * hidden), np.zeros(4 * hidden)
    _, h_ref, c_ref = ref.lstm_forward(a["pre"][None], a["h"], a["c"], eye, a["w_hh"], zero,
                                       zero, lengths=lengths, hard_sigmoid=bool(hard))
    grads = ref.lstm_backward(a["pre"][None], a["h"], a["c"], eye, a["w_hh"], zero, zero,
                              np.zeros((1, n, hidden)), a["dh"], a["dc"], lengths=lengths,
                              hard_sigmoid=bool(hard))
    # The host takes flat buffers: only element counts matter, not shapes.
    view = (lambda x: x.reshape(-1)) if flat else (lambda x: x)
    gx, gh = _arr(a["pre"], dtype), _arr(a["h"] @ a["w_hh"].T, dtype)
    c_prev, h_prev = _arr(a["c"], dtype), _arr(a["h"], dtype)
    c, h = np.full_like(c_prev, np.nan), np.full_like(h_prev, np.nan)
    entry("lstm_cell_forward", suffix)(view(gx), view(gh), view(c_prev), view(h_prev), view(c),
                                       view(h), lengths, 0, n * hidden, hidden, hard)
    np.testing.assert_allclose(h, h_ref, **TOLERANCE[dtype])
    np.testing.assert_allclose(c, c_ref, **TOLERANCE[dtype])

    d_gates = np.full_like(gx, np.nan)
    dc_prev, dh_prev = np.full_like(c, np.nan), np.full_like(h, np.nan)
    entry("lstm_cell_backward", suffix)(
        view(gx), view(c_prev), view(c), view(_arr(a["dh"], dtype)), view(_arr(a["dc"], dtype)),
        view(d_gates), view(dc_prev), view(dh_prev), lengths, 0, n * hidden, hidden, hard)
    np.testing.assert_allclose(d_gates, grads["x"][0], **TOLERANCE[dtype])
    np.testing.assert_allclose(dc_prev, grads["c0"], **TOLERANCE[dtype])
    np.testing.assert_allclose(dh_prev + d_gates.astype(np.float64) @ a["w_hh"], grads["h0"],
                               **TOLERANCE[dtype])


@pytest.mark.parametrize("reset_after", [1, 0], ids=["reset_after", "reset_before"])
@pytest.mark.parametrize("hard", [0, 1], ids=["sigmoid", "hard_sigmoid"])
@pytest.mark.parametrize("suffix", DTYPES)
def test_gru_entry_points_match_reference(suffix, hard, reset_after):
    dtype, (n, hidden) = DTYPES[suffix], (4, 3)
    units = n * hidden
    a, lengths = _setup(n, hidden, 3, dtype, seed=2)
    eye, zero = np.eye(3 * hidden), np.zeros(3 * hidden)
    b_hh = np.concatenate([np.zeros(2 * hidden), a["b_hn"]])
    w_hh, h0 = a["w_hh"], a["h"]
    _, h_ref = ref.gru_forward(a["pre"][None], h0, eye, w_hh, zero, b_hh, lengths=lengths,
                               hard_sigmoid=bool(hard), reset_after=bool(reset_after))
    grads = ref.gru_backward(a["pre"][None], h0, eye, w_hh, zero, b_hh,
                             np.zeros((1, n, hidden)), a["dh"], lengths=lengths,
                             hard_sigmoid=bool(hard), reset_after=bool(reset_after))
    gx, h_prev, b_hn = _arr(a["pre"], dtype), _arr(h0, dtype), _arr(a["b_hn"], dtype)
    h = np.full_like(h_prev, np.nan)
    if reset_after:
        gh = _arr(h0 @ w_hh.T, dtype)
    else:
        rh = np.full_like(h_prev, np.nan)
        entry("gru_reset_gate_forward", suffix)(gx, _arr(h0 @ w_hh[:2 * hidden].T, dtype),
                                                h_prev, rh, units, hidden, hard)
        gh = _arr(rh.astype(np.float64) @ w_hh[2 * hidden:].T, dtype)
    entry("gru_cell_forward", suffix)(gx, gh, b_hn, h_prev, h, lengths, 0, units, hidden, hard,
                                      reset_after)
    np.testing.assert_allclose(h, h_ref, **TOLERANCE[dtype])

    d_gx, dh_prev = np.full_like(gx, np.nan), np.full_like(h_prev, np.nan)
    dh = _arr(a["dh"], dtype)
    if reset_after:
        d_gh = np.full_like(gx, np.nan)
        entry("gru_cell_backward", suffix)(gx, gh, b_hn, h_prev, dh, d_gx, d_gh, dh_prev,
                                           lengths, 0, units, hidden, hard, 1)
        through_w = d_gh.astype(np.float64) @ w_hh
        np.testing.assert_allclose(d_gh.sum(axis=0), grads["b_hh"], **TOLERANCE[dtype])
    else:
        # gh and d_gh are neither read nor written: an empty array will do.
        unused = np.zeros(0, dtype)
        entry("gru_cell_backward", suffix)(gx, unused, b_hn, h_prev, dh, d_gx, unused, dh_prev,
                                           lengths, 0, units, hidden, hard, 0)
        d_rh = _arr(d_gx[:, 2 * hidden:].astype(np.float64) @ w_hh[2 * hidden:], dtype)
        entry("gru_reset_gate_backward", suffix)(gx, h_prev, d_rh, d_gx, dh_prev, lengths, 0,
                                                 units, hidden, hard)
        through_w = d_gx[:, :2 * hidden].astype(np.float64) @ w_hh[:2 * hidden]
    np.testing.assert_allclose(d_gx, grads["x"][0], **TOLERANCE[dtype])
    np.testing.assert_allclose(dh_prev + through_w, grads["h0"], **TOLERANCE[dtype])


@pytest.mark.parametrize("suffix", DTYPES)
@pytest.mark.parametrize("op", OPS)
def test_a_step_past_every_length_passes_state_through(op, suffix):
    """t >= lengths[n] for every row: forward copies the state, backward passes
    the gradient; run through the positional argument order of rnn.cu."""
    if "lengths" not in dict(cuda_parameters(op, suffix)):
        pytest.skip(f"{op} has no lengths")
    args = valid_arguments(op, suffix, rng=np.random.default_rng(3))
    args["t"] = 5
    before = {k: v.copy() for k, v in args.items() if isinstance(v, np.ndarray)}
    call(op, suffix, args)
    if op == "lstm_cell_forward":
        np.testing.assert_array_equal(args["c"], before["c_prev"])
        np.testing.assert_array_equal(args["h"], before["h_prev"])
    elif op == "gru_cell_forward":
        np.testing.assert_array_equal(args["h"], before["h_prev"])
    elif op == "lstm_cell_backward":
        np.testing.assert_array_equal(args["d_gates"], 0)
        np.testing.assert_array_equal(args["dc_prev"], before["dc"])
        np.testing.assert_array_equal(args["dh_prev"], before["dh"])
    elif op == "gru_cell_backward":
        np.testing.assert_array_equal(args["d_gx"], 0)
        np.testing.assert_array_equal(args["d_gh"], 0)
        np.testing.assert_array_equal(args["dh_prev"], before["dh"])
    else:  # gru_reset_gate_backward: the r block of d_gx is zeroed, dh_prev untouched
        np.testing.assert_array_equal(args["d_gx"][:, :3], 0)
        np.testing.assert_array_equal(args["d_gx"][:, 3:], before["d_gx"][:, 3:])
        np.testing.assert_array_equal(args["dh_prev"], before["dh_prev"])


@pytest.mark.parametrize("hidden", [0, 3])
@pytest.mark.parametrize("op", OPS)
def test_zero_units_is_a_no_op(op, hidden):
    args = valid_arguments(op, "f32", rows=0, hidden=hidden)
    assert args["units"] == 0
    call(op, "f32", args)


# ------------------------------------------------------------ bad inputs --

def _hostile_cases():
    """(id, op, suffix, change, message pattern): `change` turns the valid
    arguments of valid_arguments(op, suffix) into bad ones. Every one must
    raise ValueError naming the entry point."""
    cases = []
    for op in OPS:
        name = f"{op}_f32"
        params = dict(cuda_parameters(op, "f32"))
        arrays = [p for p, kind in params.items() if kind != "scalar"]
        for array in arrays:
            for delta in (-1, 1):
                cases.append((f"{op}-{array}-size{delta:+d}", op, "f32",
                              {"resize": (array, delta)},
                              rf"{name}: {array} has shape .* elements\); expected"))
        cases += [
            (f"{op}-units-not-multiple", op, "f32", {"units": 7},
             rf"{name}: units = 7 is not a multiple of hidden = 3"),
            (f"{op}-units-negative", op, "f32", {"units": -6}, rf"{name}: units = -6"),
            (f"{op}-hidden-0", op, "f32", {"hidden": 0}, rf"{name}: hidden = 0"),
            (f"{op}-hidden-negative", op, "f32", {"hidden": -3}, rf"{name}: hidden = -3"),
            (f"{op}-hidden-past-int-columns", op, "f32", {"units": 0, "hidden": 2**30},
             rf"{name}: hidden = {2**30}"),
            (f"{op}-units-2**62", op, "f32", {"units": 2**62, "hidden": 2},
             rf"{name}: (width \* units = \d \* {2**62} overflows|\w+ has shape)"),
            (f"{op}-units-2**62-hidden-1", op, "f32", {"units": 2**62, "hidden": 1},
             rf"{name}: (width \* units = \d \* {2**62} overflows|\w+ has shape)"),
            (f"{op}-units-2**40", op, "f32", {"units": 2**40, "hidden": 2**20},
             rf"{name}: \w+ has shape .* expected \d+ elements"),
            (f"{op}-hard_sigmoid-2", op, "f32", {"hard_sigmoid": 2}, rf"{name}: hard_sigmoid = 2"),
            (f"{op}-hard_sigmoid-negative", op, "f32", {"hard_sigmoid": -1},
             rf"{name}: hard_sigmoid = -1"),
            (f"{op}-float64-hidden-0", op, "f64", {"hidden": 0},
             rf"{op}_f64: hidden = 0"),
        ]
        if "t" in params:
            cases += [
                (f"{op}-t-negative", op, "f32", {"t": -1}, rf"{name}: t = -1"),
                (f"{op}-t-past-int", op, "f32", {"t": 2**31}, rf"{name}: t = {2**31}"),
            ]
        if "reset_after" in params:
            cases.append((f"{op}-reset_after-2", op, "f32", {"reset_after": 2},
                          rf"{name}: reset_after = 2"))
        for array in OUTPUTS[op]:
            cases.append((f"{op}-{array}-read-only", op, "f32", {"read_only": array},
                          rf"{name}: {array} is read-only"))
    # gh sized for the other gru_cell_forward variant.
    cases.append(("gru_cell_forward-gh-width-of-reset-before", "gru_cell_forward", "f32",
                  {"resize": ("gh", -12)}, r"gru_cell_forward_f32: gh has shape"))
    cases.append(("gru_cell_forward-reset-before-gh-3H", "gru_cell_forward", "f32",
                  {"reset_after": 0}, r"gru_cell_forward_f32: gh has shape \(2, 9\)"))
    # No rows and hidden = 0, but b_hn still holds 3 elements.
    cases.append(("gru_cell_forward-zero-units-b_hn-nonempty", "gru_cell_forward", "f32",
                  {"rows": 0, "hidden": 0}, r"gru_cell_forward_f32: b_hn has shape \(3,\)"))
    return cases


HOSTILE = _hostile_cases()


def hostile_arguments(op, suffix, change):
    args = valid_arguments(op, suffix, rows=change.get("rows", 2))
    for key, value in change.items():
        if key == "rows":
            continue
        if key == "resize":
            array, delta = value
            old = args[array]
            args[array] = np.zeros(old.size + delta, old.dtype)
        elif key == "read_only":
            args[value].flags.writeable = False
        else:
            args[key] = value
    return args


def run_hostile_cases():
    """Child process: run every case, one JSON line each (the case about to run
    is announced first, so a crash names it)."""
    for case_id, op, suffix, change, _ in HOSTILE:
        print(json.dumps({"start": case_id}), flush=True)
        try:
            call(op, suffix, hostile_arguments(op, suffix, change))
            result = {"id": case_id, "raised": None}
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            result = {"id": case_id, "raised": type(exc).__name__, "message": str(exc)}
        print(json.dumps(result), flush=True)


@pytest.fixture(scope="module")
def hostile_results():
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "import test_rnn_entry_points as t; t.run_hostile_cases()")
    done = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent)],
                          capture_output=True, text=True, timeout=300)
    results, started = {}, None
    for line in done.stdout.splitlines():
        record = json.loads(line)
        if "start" in record:
            started = record["start"]
        else:
            results[record["id"]] = record
    return dict(results=results, returncode=done.returncode, last_started=started,
                stderr=done.stderr[-2000:])


@pytest.mark.parametrize("case_id, op, suffix, change, pattern", HOSTILE,
                         ids=[case[0] for case in HOSTILE])
def test_bad_arguments_raise_value_error_without_crashing(hostile_results, case_id, op, suffix,
                                                          change, pattern):
    outcome = hostile_results["results"].get(case_id)
    assert outcome is not None, (
        f"the child process died (exit {hostile_results['returncode']}) running "
        f"{hostile_results['last_started']}:\n{hostile_results['stderr']}")
    assert outcome["raised"] == "ValueError", outcome
    assert re.search(pattern, outcome["message"]), outcome["message"]


def test_hostile_cases_start_from_valid_calls():
    """Each bad case is one change away from a call that succeeds."""
    for op in OPS:
        for suffix in DTYPES:
            for reset_after in (0, 1):
                call(op, suffix, valid_arguments(op, suffix, reset_after=reset_after))


def test_read_only_inputs_are_accepted():
    args = valid_arguments("lstm_cell_forward", "f32")
    for name in ("gh", "c_prev", "h_prev", "lengths"):
        args[name].flags.writeable = False
    call("lstm_cell_forward", "f32", args)


def _type_error_cases():
    cases = []
    for op in OPS:
        params = dict(cuda_parameters(op, "f32"))
        arrays = [p for p, kind in params.items() if kind != "scalar"]
        first, last = arrays[0], arrays[-1]
        cases += [
            (f"{op}-{first}-float64", op, {first: "float64"}),
            (f"{op}-{last}-float64", op, {last: "float64"}),
            (f"{op}-{first}-strided", op, {first: "strided"}),
            (f"{op}-{first}-fortran", op, {first: "fortran"}),
            (f"{op}-{first}-list", op, {first: "list"}),
            (f"{op}-units-float", op, {"units": 6.0}),
            (f"{op}-hidden-none", op, {"hidden": None}),
            (f"{op}-units-2**64", op, {"units": 2**64}),
            (f"{op}-missing-argument", op, {"drop": "hard_sigmoid"}),
        ]
        if "lengths" in params:
            cases += [(f"{op}-lengths-int64", op, {"lengths": "int64"}),
                      (f"{op}-lengths-float32", op, {"lengths": "float32"})]
    return cases


@pytest.mark.parametrize("case_id, op, change", _type_error_cases(),
                         ids=[case[0] for case in _type_error_cases()])
def test_wrong_dtype_or_layout_raises_type_error(case_id, op, change):
    """pybind11 refuses these before the entry point runs (exact dtype, C order,
    no conversion), naming the entry point."""
    args = valid_arguments(op, "f32")
    for key, how in change.items():
        if key == "drop":
            del args[how]
            continue
        value = args[key]
        if how == "float64" or how == "int64" or how == "float32":
            args[key] = value.astype(how)
        elif how == "strided":
            args[key] = np.zeros(2 * value.size, value.dtype)[::2]
        elif how == "fortran":
            args[key] = np.asfortranarray(np.zeros((value.size // 2, 2), value.dtype))
        elif how == "list":
            args[key] = value.tolist()
        else:
            args[key] = how
    ordered = [args[name] for name, _ in cuda_parameters(op, "f32") if name in args]
    with pytest.raises(TypeError, match=rf"{op}_f32\(\): incompatible function arguments"):
        entry(op, "f32")(*ordered)


def test_old_argument_lists_are_refused():
    z = np.zeros((2, 3), np.float32)
    g = np.zeros((2, 12), np.float32)
    with pytest.raises(TypeError, match=r"lstm_cell_forward_f32\(\)"):
        _C.lstm_cell_forward_f32(g, g, z, z, z, z, np.ones(2, np.int32), 0, 0)
