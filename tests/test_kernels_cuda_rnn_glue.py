"""The recurrent family's GPU path (nnlite/kernels/rnn.py through
nnlite/kernels/nvrtc.py, and the device code of csrc/cuda/rnn.cu) without a GPU.

tests/cuda_emulation.py compiles the source NVRTC would get with g++ and runs
each launch on the CPU (see its docstring for what that does and does not
prove). Every rnn.cu kernel is a grid-stride loop over the N * H hidden units
with no cooperation inside a block, so each launch is emulated on a small grid
(3 blocks of 5 threads) on which the loop wraps; the launch the Python side
asked for is checked separately against the TK1 limits and the arrays.

The emulated kernels are compared with the host build (nnlite._C)
bit for bit: both call the same csrc/nnlite/rnn.cuh element functions with the
same (n, j), compiled by g++ without FMA contraction (the host's AVX2 clones
enable no FMA either), so nothing may differ."""
import numpy as np
import pytest

from cuda_emulation import entry_parameters, family_source, host_build, install_fake_cupy
from nnlite.kernels import launch as kernel_launch
from nnlite.kernels import nvrtc
from nnlite.kernels import rnn as cells

EMULATED_GRID = (3, 5)  # blocks, threads

# Width of each array parameter in units of H ((N, width * H)); 0: a (H,) vector.
WIDTHS = {
    "lstm_cell_forward": dict(gx=4, gh=4, c_prev=1, h_prev=1, c=1, h=1),
    "lstm_cell_backward": dict(gates=4, c_prev=1, c=1, dh=1, dc=1, d_gates=4, dc_prev=1,
                               dh_prev=1),
    "gru_reset_gate_forward": dict(gx=3, gh_rz=2, h_prev=1, rh=1),
    "gru_cell_forward": dict(gx=3, gh=(3, 1), b_hn=0, h_prev=1, h=1),
    "gru_cell_backward": dict(gates=3, gh=3, b_hn=0, h_prev=1, dh=1, d_gx=3, d_gh=3, dh_prev=1),
    "gru_reset_gate_backward": dict(gates=3, h_prev=1, d_rh=1, d_gx=3, dh_prev=1),
}


def rnn_launch(launch):
    """The launch rules of a grid-stride kernel and the geometry of its arguments."""
    a = launch.bound
    op = launch.name.rsplit("_", 1)[0]
    hidden, units = int(a["hidden"]), int(a["units"])
    assert hidden >= 1 and units % hidden == 0, (hidden, units)
    rows = units // hidden
    assert launch.block == (nvrtc.GRID_THREADS,) and nvrtc.GRID_THREADS <= 1024
    expected_blocks = min(nvrtc.MAX_GRID_BLOCKS, -(-units // nvrtc.GRID_THREADS))
    assert launch.grid == (expected_blocks,) and launch.shared_mem == 0
    pointers = {name: value for name, value in a.items() if isinstance(value, np.ndarray)}
    assert set(pointers) == set(WIDTHS[op]) | ({"lengths"} if "t" in a else set())
    for name, array in pointers.items():
        if name == "lengths":
            assert array.shape == (rows,) and array.dtype == np.int32
            continue
        widths = WIDTHS[op][name]
        widths = widths if isinstance(widths, tuple) else (widths,)
        shapes = [(hidden,) if w == 0 else (rows, w * hidden) for w in widths]
        assert array.shape in shapes, f"{launch.name}: {name} {array.shape}, expected {shapes}"
    return EMULATED_GRID


@pytest.fixture
def launches(monkeypatch):
    return install_fake_cupy(monkeypatch, rnn_launch)


def test_entry_parameters_are_parsed():
    # "long\n long units" is split across lines in rnn.cu.
    params = entry_parameters(family_source("rnn"), "gru_reset_gate_forward_f64")
    assert params == [("double*", "gx"), ("const double*", "gh_rz"),
                      ("const double*", "h_prev"), ("double*", "rh"),
                      ("long long", "units"), ("int", "hidden"), ("int", "hard_sigmoid")]


def step_calls(rng, dtype, rows, hidden, lengths, t, hard_sigmoid, reset_after):
    """(op, args, kwargs) of one call of every step kernel, random values."""
    def a(width):
        shape = (hidden,) if width == 0 else (rows, width * hidden)
        return rng.uniform(-2.5, 2.5, size=shape).astype(dtype)

    def gates(width):  # activations, as the forward leaves them
        return rng.uniform(0.01, 0.99, size=(rows, width * hidden)).astype(dtype)

    lengths = np.asarray(lengths, dtype=np.int32)
    kw = dict(hard_sigmoid=hard_sigmoid)
    gru_kw = dict(kw, reset_after=reset_after)
    gh_width = 3 if reset_after else 1
    return [
        ("lstm_cell_forward", (a(4), a(4), a(1), a(1), a(1), a(1), lengths, t), kw),
        ("lstm_cell_backward", (gates(4), a(1), a(1), a(1), a(1), a(4), a(1), a(1), lengths, t),
         kw),
        ("gru_reset_gate_forward", (a(3), a(2), a(1), a(1)), kw),
        ("gru_cell_forward", (a(3), a(gh_width), a(0), a(1), a(1), lengths, t), gru_kw),
        ("gru_cell_backward", (gates(3), a(3) if reset_after else None, a(0), a(1), a(1), a(3),
                               a(3) if reset_after else None, a(1), lengths, t), gru_kw),
        ("gru_reset_gate_backward", (gates(3), a(1), a(1), a(3), a(1), lengths, t), kw),
    ]


CASES = [  # rows, hidden, lengths, t
    (1, 1, [1], 0),
    (1, 1, [0], 0),  # a padded step: the state is carried over
    (3, 7, [5, 0, 2], 1),  # live, padded and just-ended rows in one step
    (2, 37, [3, 3], 2),  # 74 units: the 15-thread emulated grid wraps 5 times
]


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("hard_sigmoid", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows, hidden, lengths, t", CASES)
def test_step_kernels_match_the_host_build_bit_for_bit(launches, dtype, rows, hidden, lengths,
                                                       t, hard_sigmoid, reset_after):
    rng = np.random.default_rng(rows * 100 + hidden)
    for op, args, kwargs in step_calls(rng, dtype, rows, hidden, lengths, t, hard_sigmoid,
                                       reset_after):
        host_args = [x.copy() if isinstance(x, np.ndarray) else x for x in args]
        device_args = [x.copy() if isinstance(x, np.ndarray) else x for x in args]
        with host_build():
            getattr(cells, op)(*host_args, **kwargs)
        count = len(launches)
        getattr(cells, op)(*device_args, **kwargs)
        assert len(launches) == count + 1, f"{op} did not launch"
        for position, (on_host, on_device) in enumerate(zip(host_args, device_args)):
            if not isinstance(on_host, np.ndarray):
                continue
            assert on_device.tobytes() == on_host.tobytes(), \
                f"{op}: argument {position} differs from the host build"
        changed = [i for i, (x, y) in enumerate(zip(args, host_args))
                   if isinstance(x, np.ndarray) and x.tobytes() != y.tobytes()]
        assert changed, f"{op} wrote nothing: the comparison would prove nothing"


def test_a_bad_argument_order_is_caught(launches, monkeypatch):
    """The binding is not vacuous: swapping two arrays of one shape fails it."""
    original = kernel_launch.launch

    def swapped(name, dtype, work, args):
        args = list(args)
        args[2], args[6] = args[6], args[2]  # c_prev (float) <-> lengths (int32)
        original(name, dtype, work, tuple(args))

    monkeypatch.setattr(cells, "launch", swapped)
    rng = np.random.default_rng(0)
    op, args, kwargs = step_calls(rng, np.float64, 2, 3, [2, 2], 0, False, True)[0]
    with pytest.raises(AssertionError, match="lstm_cell_forward_f64: c_prev is int32"):
        getattr(cells, op)(*args, **kwargs)


def test_empty_batch_launches_nothing(launches):
    zeros = [np.zeros((0, 4 * 3)), np.zeros((0, 4 * 3)), np.zeros((0, 3)), np.zeros((0, 3)),
             np.zeros((0, 3)), np.zeros((0, 3))]
    cells.lstm_cell_forward(*zeros, np.zeros(0, dtype=np.int32), 0)
    assert launches == []
