"""The dequant kernel family (nnlite.kernels dequant_int8 / dequant_binary16)
against the NumPy reference, on every device present: float32 and float64
outputs, edge sizes, every binary16 bit pattern, writing into a workspace
view, and bad input."""
import numpy as np
import pytest

from nnlite.device import to_numpy
from nnlite.kernels import dequant
from nnlite.reference import dequant as ref

from kernel_testing import each_dtype

SHAPES = [(1, 1), (3, 7), (1, 5000), (1030, 3), (0, 4), (4, 0), (64, 1025)]


def make_int8(shape, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.integers(-128, 128, size=shape).astype(np.int8)
    scale = rng.uniform(-0.1, 0.2, size=shape[0])
    return q, scale


@each_dtype
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_int8_matches_reference(xp, shape, dtype):
    q, scale = make_int8(shape)
    w = dequant.dequant_int8(xp.asarray(q), xp.asarray(scale.astype(dtype)), dtype=dtype)
    assert w.shape == shape and w.dtype == dtype
    expected = q.astype(np.float64) * scale.astype(dtype).astype(np.float64)[:, None]
    if shape[0] * shape[1] <= 5000:  # the loop reference, where it is quick
        np.testing.assert_array_equal(expected, ref.dequant_int8(q, scale.astype(dtype)))
    # One product, rounded once: exact in float64, within half an ulp in float32.
    np.testing.assert_array_equal(to_numpy(w), expected.astype(dtype))


@each_dtype
def test_int8_extremes_and_a_float64_scale_into_float32(xp, dtype):
    q = np.array([[-128, -1, 0, 1, 127]], np.int8)
    scale = np.array([0.5])  # float64: cast to the output dtype
    w = to_numpy(dequant.dequant_int8(xp.asarray(q), xp.asarray(scale), dtype=dtype))
    np.testing.assert_array_equal(w, np.array([[-64, -0.5, 0, 0.5, 63.5]], dtype))


@each_dtype
def test_int8_writes_into_a_workspace_view(xp, dtype):
    q, scale = make_int8((6, 9), seed=1)
    workspace = xp.full(100, np.nan, dtype=dtype)
    view = workspace[:54].reshape(6, 9)
    out = dequant.dequant_int8(xp.asarray(q[:6]), xp.asarray(scale), w=view)
    assert out is view
    np.testing.assert_array_equal(to_numpy(workspace[:54]).reshape(6, 9),
                                  (q * scale.astype(dtype)[:, None]).astype(dtype))
    assert np.isnan(to_numpy(workspace[54:])).all()  # nothing written past the chunk


@each_dtype
def test_int8_nan_and_inf_scales_propagate(xp, dtype):
    q = np.array([[1, 0], [2, -3]], np.int8)
    scale = np.array([np.nan, np.inf], dtype)
    w = to_numpy(dequant.dequant_int8(xp.asarray(q), xp.asarray(scale)))
    assert np.isnan(w[0]).all() and np.isnan(w[1, 1]) is np.False_
    assert w[1, 0] == np.inf and w[1, 1] == -np.inf


@each_dtype
def test_every_binary16_pattern_decodes_exactly(xp, dtype):
    bits = np.arange(2**16, dtype=np.uint16)
    w = to_numpy(dequant.dequant_binary16(xp.asarray(bits), dtype=dtype))
    expected = ref.dequant_binary16(bits)
    with np.errstate(invalid="ignore"):  # widening signalling NaNs
        np.testing.assert_array_equal(w.astype(np.float64), expected)  # NaN equals NaN here
    assert np.array_equal(np.signbit(w), np.signbit(expected))  # -0.0 and the signed NaNs
    # NumPy's own conversion agrees bit for bit (float32: NaN payloads included;
    # widening a signalling NaN to float64 may set its quiet bit).
    unsigned = np.uint32 if dtype == np.float32 else np.uint64
    compared = np.ones(w.shape, bool) if dtype == np.float32 else ~np.isnan(w)
    np.testing.assert_array_equal(w.view(unsigned)[compared],
                                  bits.view(np.float16).astype(dtype).view(unsigned)[compared])


@each_dtype
@pytest.mark.parametrize("shape", [(0,), (1,), (3, 5), (2, 3, 4), (70000,)],
                         ids=lambda s: "x".join(map(str, s)) or "empty")
def test_binary16_keeps_the_shape_and_takes_float16(xp, shape, dtype):
    values = np.random.default_rng(2).standard_normal(shape).astype(np.float16)
    w = dequant.dequant_binary16(xp.asarray(values), dtype=dtype)
    assert w.shape == shape and w.dtype == dtype
    np.testing.assert_array_equal(to_numpy(w), values.astype(dtype))


def test_binary16_default_dtype_is_float32(xp):
    assert dequant.dequant_binary16(xp.zeros(3, np.float16)).dtype == np.float32
    assert dequant.dequant_int8(xp.zeros((2, 2), np.int8), xp.ones(2, np.float32)).dtype == \
        np.float32


# ------------------------------------------------------------- bad input --

def test_int8_refuses_wrong_arrays(xp):
    q, scale = make_int8((3, 4))
    q, scale = xp.asarray(q), xp.asarray(scale.astype(np.float32))
    with pytest.raises(TypeError, match="dequant_int8: q must be a 2-D int8"):
        dequant.dequant_int8(q.astype(np.int16), scale)
    with pytest.raises(TypeError, match="dequant_int8: q must be a 2-D int8"):
        dequant.dequant_int8(q.reshape(-1), scale)
    with pytest.raises(ValueError, match=r"scale must be .* of shape \(3,\)"):
        dequant.dequant_int8(q, scale[:2])
    with pytest.raises(ValueError, match="scale must be a floating-point"):
        dequant.dequant_int8(q, xp.ones(3, np.int32))
    with pytest.raises(ValueError, match=r"w has shape \(4, 3\); expected \(3, 4\)"):
        dequant.dequant_int8(q, scale, w=xp.empty((4, 3), np.float32))
    with pytest.raises(TypeError, match="w has dtype int32"):
        dequant.dequant_int8(q, scale, w=xp.empty((3, 4), np.int32))
    with pytest.raises(ValueError, match="writable C-contiguous"):
        dequant.dequant_int8(q, scale, w=xp.empty((4, 3), np.float32).T)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        dequant.dequant_int8(q, scale, dtype=np.float16)
    with pytest.raises(TypeError, match="but dtype=float64 was asked for"):
        dequant.dequant_int8(q, scale, w=xp.empty((3, 4), np.float32), dtype=np.float64)


def test_binary16_refuses_wrong_arrays(xp):
    with pytest.raises(TypeError, match="dequant_binary16: bits must be a float16 or uint16"):
        dequant.dequant_binary16(xp.zeros(3, np.float32))
    with pytest.raises(ValueError, match=r"w has shape \(2,\); expected \(3,\)"):
        dequant.dequant_binary16(xp.zeros(3, np.float16), w=xp.empty(2, np.float32))
    with pytest.raises(TypeError, match="dequant_binary16: bits must be"):
        dequant.dequant_binary16([1, 2, 3])


def test_host_entry_points_check_every_argument():
    """nnlite._C trusts no caller: counts, sizes, writability and aliasing."""
    from nnlite import _C
    q = np.zeros((3, 4), np.int8)
    scale = np.ones(3, np.float32)
    w = np.empty((3, 4), np.float32)
    _C.dequant_int8_f32(q, scale, w, 3, 4)
    for args, message in [
            ((q, scale, w, 4, 3), "dequant_int8: scale has shape"),
            ((q, scale, w, 3, 5), "dequant_int8: q has shape"),
            ((q, scale, w, -1, 4), "dequant_int8: rows = -1"),
            ((q, scale, w, 2**31, 4), "dequant_int8: rows = 2147483648"),
            ((q, scale, w, 3, 2**31), "dequant_int8: cols = 2147483648"),
            ((q, scale, np.empty(11, np.float32), 3, 4), "dequant_int8: w has shape"),
            ((q, scale[:2], w, 3, 4), "dequant_int8: scale has shape")]:
        with pytest.raises(ValueError, match=message):
            _C.dequant_int8_f32(*args)
    read_only = np.empty((3, 4), np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="w is read-only"):
        _C.dequant_int8_f32(q, scale, read_only, 3, 4)
    with pytest.raises(TypeError):  # pybind11 refuses the wrong dtype (noconvert)
        _C.dequant_int8_f32(q.astype(np.int16), scale, w, 3, 4)
    buffer = np.zeros(8, np.uint16)
    with pytest.raises(ValueError, match="dequant_binary16: w shares memory with bits"):
        _C.dequant_binary16_f32(buffer[:4], buffer.view(np.float32), 4)
    shared = np.zeros(32, np.int8)
    with pytest.raises(ValueError, match="dequant_int8: w shares memory with q"):
        _C.dequant_int8_f32(shared[:8].reshape(2, 4), scale[:2],
                            shared.view(np.float32)[:8].reshape(2, 4), 2, 4)
    bits = np.zeros(6, np.uint16)
    with pytest.raises(ValueError, match="dequant_binary16: count = -1"):
        _C.dequant_binary16_f32(bits, np.empty(6, np.float32), -1)
    with pytest.raises(ValueError, match="dequant_binary16: bits has shape"):
        _C.dequant_binary16_f64(bits, np.empty(7, np.float64), 7)
