"""Property-based tests (hypothesis): broadcasting, reductions and reshapes
over random shapes; gradients always come back in each input's shape and
equal NumPy's closed forms."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nnlite as nl

settings.register_profile("nnlite", max_examples=60, deadline=None)
settings.load_profile("nnlite")


@st.composite
def broadcastable_pair(draw):
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4,
                                                    max_side=4))
    a_shape, b_shape = shapes.input_shapes
    elements = st.floats(-3, 3, allow_nan=False, width=64)
    a = draw(hnp.arrays(np.float64, a_shape, elements=elements))
    b = draw(hnp.arrays(np.float64, b_shape, elements=elements))
    return a, b


@given(broadcastable_pair(), st.sampled_from(["add", "sub", "mul"]))
def test_broadcast_gradients_have_input_shapes_and_closed_form_values(pair, op):
    a_np, b_np = pair
    a, b = nl.tensor(a_np, requires_grad=True), nl.tensor(b_np, requires_grad=True)
    out = {"add": a + b, "sub": a - b, "mul": a * b}[op]
    np.testing.assert_allclose(out.numpy(), {"add": np.add, "sub": np.subtract,
                                             "mul": np.multiply}[op](a_np, b_np))
    out.sum().backward()
    assert a.grad.shape == a_np.shape and b.grad.shape == b_np.shape
    full = np.broadcast_shapes(a_np.shape, b_np.shape)
    ones = np.ones(full)
    # d(sum)/da summed over the broadcast positions, computed NumPy's way.
    ga = {"add": ones, "sub": ones, "mul": np.broadcast_to(b_np, full)}[op]
    gb = {"add": ones, "sub": -ones, "mul": np.broadcast_to(a_np, full)}[op]

    def reduce_to(g, shape):
        while g.ndim > len(shape):
            g = g.sum(axis=0)
        return g.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True) \
            .reshape(shape)

    np.testing.assert_allclose(a.grad.numpy(), reduce_to(ga, a_np.shape), atol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), reduce_to(gb, b_np.shape), atol=1e-12)


@st.composite
def array_and_dims(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, max_side=4))
    x = draw(hnp.arrays(np.float64, shape, elements=st.floats(-5, 5, width=64), unique=True))
    dims = draw(st.lists(st.integers(-len(shape), len(shape) - 1), unique_by=lambda d: d %
                         len(shape), max_size=len(shape)))
    return x, (tuple(dims) if dims else None), draw(st.booleans())


@given(array_and_dims(), st.sampled_from(["sum", "mean", "max", "min"]))
def test_reductions_match_numpy_and_gradients_keep_shape(case, name):
    x_np, dims, keepdim = case
    x = nl.tensor(x_np, requires_grad=True)
    out = getattr(x, name)(dim=dims, keepdim=keepdim)
    axis = None if dims is None else tuple(d % x_np.ndim for d in dims)
    want = getattr(np, {"sum": "sum", "mean": "mean", "max": "amax", "min": "amin"}[name])(
        x_np, axis=axis, keepdims=keepdim)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-12)
    out.sum().backward()
    assert x.grad.shape == x_np.shape
    g = x.grad.numpy()
    if name == "sum":
        np.testing.assert_allclose(g, np.ones_like(x_np))
    elif name == "mean":
        np.testing.assert_allclose(g, np.full_like(x_np, out.numpy().size / x_np.size))
    else:  # values are unique: exactly one 1 per reduced slice, at the extreme
        assert g.sum() == out.numpy().size
        picked = x_np[g == 1]
        np.testing.assert_allclose(np.sort(picked), np.sort(np.ravel(want)))


@given(hnp.array_shapes(min_dims=1, max_dims=4, max_side=4), st.data())
def test_reshape_permute_roundtrip_gradients(shape, data):
    x_np = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    x = nl.tensor(x_np, requires_grad=True)
    perm = data.draw(st.permutations(range(len(shape))))
    y = x.permute(*perm).reshape(-1)
    np.testing.assert_array_equal(y.numpy(), x_np.transpose(perm).reshape(-1))
    weights = np.arange(y.shape[0], dtype=np.float64)
    (y * nl.tensor(weights)).sum().backward()
    # Each input element receives the weight of the position it moved to.
    np.testing.assert_array_equal(x.grad.numpy().transpose(perm).reshape(-1), weights)
