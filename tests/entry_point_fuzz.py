"""Child process of tests/test_entry_point_fuzz.py: calls the entry points of
nnlite._C with hostile arguments and reports every outcome on stdout.

The calls start from real ones, recorded while the kernel modules run small
valid cases, and mutate one to three arguments: an integer becomes negative,
zero, huge or overflowing; an array gets the wrong dtype, size, layout or
becomes empty or non-contiguous. Each case is printed before it runs, so if
the process dies the parent knows which call killed it.

Usage: python entry_point_fuzz.py SEED CASES
"""
import sys

import numpy as np

from nnlite.kernels import (activation, conv, ctc, dequant, direct_conv, launch, pool, rnn,
                            softmax, winograd)
from nnlite.kernels.shapes import ConvGeometry, PoolGeometry

HOSTILE_INTS = [-2**63, -2**31 - 1, -2**31, -1, 0, 1, 2, 3, 5, 2**31 - 1, 2**31, 2**32 + 1,
                2**62, 2**63 - 1]


def record_real_calls():
    """[(name, dtype, args), ...] of the entry-point calls of small valid cases."""
    calls = []
    real_launch = launch.launch

    def recording(name, dtype, work, args):
        calls.append((name, np.dtype(dtype), tuple(args)))
        try:
            real_launch(name, dtype, work, args)
        except (ValueError, TypeError):
            pass  # the recorded arguments are what matters; results are unused

    launch.launch = recording
    for module in (activation, conv, ctc, dequant, direct_conv, pool, rnn, softmax, winograd):
        module.launch = recording
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((2, 3, 5, 6)).astype(dtype)
        g = ConvGeometry.of((5, 6), (3, 2), (2, 1), (1, 0, 1, 1), (1, 2))
        conv.col2im(conv.im2col(x, g), x.shape, g)
        w = rng.standard_normal((4, 3, 3, 2)).astype(dtype)
        y = direct_conv.forward(x, w, np.zeros(4, dtype), g)
        direct_conv.backward_data(y, w, g, x.shape)
        direct_conv.backward_weight(x, y, g)
        p = PoolGeometry.of((5, 6), 2, ceil_mode=True)
        y, argmax = pool.maxpool_forward(x, p)
        pool.maxpool_backward(y, argmax, p)
        pool.avgpool_backward(pool.avgpool_forward(x, p), p)
        softmax.softmax_backward(softmax.softmax_forward(x.reshape(6, 30)), x.reshape(6, 30))
        lp = np.log(np.full((6, 2, 4), 0.25, dtype))
        targets = np.array([[1, 2], [3, 0]], np.int32)
        lengths = np.array([6, 5], np.int32)
        target_lengths = np.array([2, 1], np.int32)
        nll, alpha = ctc.ctc_alpha(lp, targets, lengths, target_lengths)
        ctc.ctc_backward(lp, targets, lengths, target_lengths, alpha, nll, np.ones(2, dtype))
        n, h = 3, 4
        z = lambda k: np.zeros((n, k * h), dtype)  # noqa: E731
        live = np.full(n, 2, np.int32)
        rnn.lstm_cell_forward(z(4), z(4), z(1), z(1), z(1), z(1), live, 0)
        rnn.lstm_cell_backward(z(4), z(1), z(1), z(1), z(1), z(4), z(1), z(1), live, 0)
        rnn.gru_reset_gate_forward(z(3), z(2), z(1), z(1))
        rnn.gru_cell_forward(z(3), z(3), np.zeros(h, dtype), z(1), z(1), live, 0)
        rnn.gru_cell_backward(z(3), z(3), np.zeros(h, dtype), z(1), z(1), z(3), z(3), z(1),
                              live, 0)
        rnn.gru_reset_gate_backward(z(3), z(1), z(1), z(3), z(1), live, 0)
        for tile in winograd.TILES:  # x (2, 3, 5, 6), padding (1, 1, 0, 0)
            tiles = winograd.output_tiles(5, 4, tile)
            u = winograd.filter_transform(rng.standard_normal((4, 3, 3, 3)).astype(dtype), tile)
            m = np.matmul(u, winograd.input_transform(x, 1, 0, tiles, tile))
            winograd.output_adjoint(winograd.output_transform(m, 2, (5, 4), tile), tile)
            winograd.filter_adjoint(u, tile)
        q = rng.integers(-128, 128, size=(3, 5)).astype(np.int8)
        dequant.dequant_int8(q, np.full(3, 0.5, dtype), dtype=dtype)
        dequant.dequant_binary16(rng.standard_normal(7).astype(np.float16), dtype=dtype)
        y, mask = activation.relu_forward(x)
        activation.relu_backward(x, mask)
    launch.launch = real_launch
    return calls


# How often each array mutation is drawn: those pybind11 itself refuses (dtype,
# layout) rarely, those only the entry point's own checks can catch often.
ARRAY_MUTATIONS = {"other float dtype": 0.05, "fewer elements": 0.2, "more elements": 0.15,
                   "empty": 0.1, "strided": 0.05, "int64": 0.05, "hostile values": 0.4}


def mutate_array(a, rng):
    kinds = list(ARRAY_MUTATIONS)
    kind = kinds[rng.choice(len(kinds), p=list(ARRAY_MUTATIONS.values()))]
    if kind == "other float dtype":
        return a.astype(np.float64 if a.dtype != np.float64 else np.float32)
    if kind == "fewer elements":
        return np.zeros(max(a.size - int(rng.integers(1, 4)), 0), a.dtype)
    if kind == "more elements":
        return np.zeros(a.size + int(rng.integers(1, 100)), a.dtype)
    if kind == "empty":
        return np.zeros(0, a.dtype)
    if kind == "strided":
        return np.zeros(2 * a.size + 2, a.dtype)[::2]  # non-contiguous, right size
    if kind == "int64":
        return np.zeros(a.shape, np.int64)
    # Hostile values in a buffer of the right size: labels, lengths, NaN, inf,
    # extreme int8 weights, binary16 infinities and NaNs. (An array already
    # mutated to int64 gets integers too: NaN does not fit it.)
    integers = [-1, 2**31 - 1, -2**31, 7]
    values = {np.dtype(np.int8): [-128, 127, -1], np.dtype(np.uint8): [0, 1, 255],
              np.dtype(np.uint16): [0x7C00, 0xFC00, 0x7E01, 0xFFFF, 0x0001]}.get(
                  a.dtype, integers if a.dtype.kind == "i" else [np.nan, np.inf, -np.inf])
    out = a.copy()
    if out.size:
        out.flat[int(rng.integers(out.size))] = rng.choice(values)
    return out


def mutate_int(value, rng):
    """Often an off-by-a-little value (consistent-looking geometry), else a hostile one."""
    if rng.random() < 0.4:
        return int(value) + int(rng.choice([-2, -1, 1, 2]))
    return int(rng.choice(HOSTILE_INTS))


def mutate(args, rng):
    args = list(args)
    for _ in range(int(rng.integers(1, 3))):
        k = int(rng.integers(len(args)))
        if isinstance(args[k], np.ndarray):
            args[k] = mutate_array(args[k], rng)
        else:
            args[k] = mutate_int(args[k], rng)
    return args


def main(seed, cases):
    from nnlite import _C
    calls = record_real_calls()
    rng = np.random.default_rng(seed)
    for case in range(cases):
        name, dtype, args = calls[int(rng.integers(len(calls)))]
        entry = f"{name}_{'f32' if dtype == np.float32 else 'f64'}"
        args = mutate(args, rng)
        described = ", ".join(f"{a.dtype}{a.shape}{'' if a.flags.c_contiguous else ' strided'}"
                              if isinstance(a, np.ndarray) else str(a) for a in args)
        print(f"CALL {case} {entry}({described})", flush=True)
        try:
            getattr(_C, entry)(*args)
            print("OK", flush=True)
        except (ValueError, TypeError) as exc:
            print(f"REFUSED {type(exc).__name__}: {str(exc).splitlines()[0][:200]}", flush=True)
        except Exception as exc:  # anything else is a finding
            print(f"UNEXPECTED {type(exc).__name__}: {exc}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
