"""Every core differentiable op: forward against NumPy in float32 and float64,
and a float64 gradcheck of its backward."""
import numpy as np
import pytest

import nnlite as nl
import nnlite.functional as F

rng = np.random.default_rng(1234)


def positive(*shape):
    return rng.uniform(0.5, 2.0, size=shape)


def signed(*shape):
    # Keep values away from 0 so |x|, relu and clip have no kink inside eps.
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.2, 1.5, size=shape)


def distinct(*shape):
    # A permutation: no ties, so max/min gradients are well defined.
    return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 - 1.0


# (name, op on tensors, the same op in NumPy, inputs)
CASES = [
    ("add_broadcast", lambda a, b: a + b, lambda a, b: a + b, [signed(2, 3, 4), signed(3, 1)]),
    ("sub_scalar", lambda a: 3.0 - a, lambda a: 3.0 - a, [signed(4)]),
    ("mul", lambda a, b: a * b, lambda a, b: a * b, [signed(2, 3), signed(1, 3)]),
    ("div", lambda a, b: a / b, lambda a, b: a / b, [signed(3, 2), positive(3, 1)]),
    ("neg", lambda a: -a, lambda a: -a, [signed(5)]),
    ("pow_scalar", lambda a: a ** 3, lambda a: a ** 3, [signed(2, 3)]),
    ("pow_tensor", lambda a, b: a ** b, lambda a, b: a ** b, [positive(2, 3), signed(2, 3)]),
    ("rpow", lambda a: 2.0 ** a, lambda a: 2.0 ** a, [signed(4)]),
    ("matmul_2d", lambda a, b: a @ b, lambda a, b: a @ b, [signed(3, 4), signed(4, 5)]),
    ("matmul_batched_broadcast", lambda a, b: a @ b, lambda a, b: a @ b,
     [signed(2, 1, 3, 4), signed(3, 4, 2)]),
    ("matmul_vec_mat", lambda a, b: a @ b, lambda a, b: a @ b, [signed(4), signed(2, 4, 3)]),
    ("matmul_mat_vec", lambda a, b: a @ b, lambda a, b: a @ b, [signed(2, 3, 4), signed(4)]),
    ("matmul_dot", lambda a, b: a @ b, lambda a, b: a @ b, [signed(4), signed(4)]),
    ("exp", F.exp, np.exp, [signed(3, 2)]),
    ("log", F.log, np.log, [positive(3, 2)]),
    ("abs", F.abs, np.abs, [signed(6)]),
    ("sqrt", F.sqrt, np.sqrt, [positive(6)]),
    ("clip", lambda a: F.clip(a, -0.5, 0.7), lambda a: np.clip(a, -0.5, 0.7), [signed(10)]),
    ("clip_min_only", lambda a: a.clamp(min=0.3), lambda a: np.maximum(a, 0.3), [signed(10)]),
    ("relu", F.relu, lambda a: np.maximum(a, 0), [signed(3, 4)]),
    ("relu6", F.relu6, lambda a: np.clip(a, 0, 6), [signed(3, 4) * 5]),
    ("sigmoid", F.sigmoid, lambda a: 1 / (1 + np.exp(-a)), [signed(3, 4) * 3]),
    ("tanh", F.tanh, np.tanh, [signed(3, 4)]),
    ("sum_all", lambda a: a.sum(), lambda a: a.sum(), [signed(2, 3)]),
    ("sum_dims_keepdim", lambda a: a.sum(dim=(0, 2), keepdim=True),
     lambda a: a.sum(axis=(0, 2), keepdims=True), [signed(2, 3, 4)]),
    ("mean_negative_dim", lambda a: a.mean(dim=-1), lambda a: a.mean(axis=-1),
     [signed(2, 3, 4)]),
    ("max_dim", lambda a: a.max(dim=1), lambda a: a.max(axis=1), [distinct(3, 4, 2)]),
    ("max_all", lambda a: a.max(), lambda a: a.max(), [distinct(3, 4)]),
    ("min_dims_keepdim", lambda a: a.min(dim=(0, 2), keepdim=True),
     lambda a: a.min(axis=(0, 2), keepdims=True), [distinct(3, 2, 4)]),
    ("reshape", lambda a: a.reshape(4, -1), lambda a: a.reshape(4, -1), [signed(2, 3, 2)]),
    ("view_tuple", lambda a: a.view((3, 4)), lambda a: a.reshape(3, 4), [signed(12)]),
    ("flatten", lambda a: a.flatten(1), lambda a: a.reshape(2, -1), [signed(2, 3, 4)]),
    ("squeeze", lambda a: a.squeeze(1), lambda a: a.squeeze(1), [signed(2, 1, 3)]),
    ("unsqueeze", lambda a: a.unsqueeze(-1), lambda a: a[..., None], [signed(2, 3)]),
    ("transpose", lambda a: a.transpose(0, 2), lambda a: a.transpose(2, 1, 0),
     [signed(2, 3, 4)]),
    ("permute", lambda a: a.permute(1, 2, 0), lambda a: a.transpose(1, 2, 0), [signed(2, 3, 4)]),
    ("T", lambda a: a.T, lambda a: a.T, [signed(2, 3)]),
    ("expand", lambda a: a.expand(2, 3, 4), lambda a: np.broadcast_to(a, (2, 3, 4)),
     [signed(3, 1)]),
    ("slice", lambda a: a[1:, ::2], lambda a: a[1:, ::2], [signed(3, 5)]),
    ("int_array_index_with_repeats", lambda a: a[np.array([0, 2, 0, 0])],
     lambda a: a[np.array([0, 2, 0, 0])], [signed(3, 2)]),
    ("mixed_index", lambda a: a[:, np.array([1, 1]), 0], lambda a: a[:, np.array([1, 1]), 0],
     [signed(2, 3, 4)]),
    ("bool_mask_index", lambda a: a[np.array([True, False, True])],
     lambda a: a[np.array([True, False, True])], [signed(3, 2)]),
    ("cat", lambda a, b: nl.cat([a, b, a], dim=1), lambda a, b: np.concatenate([a, b, a], 1),
     [signed(2, 3), signed(2, 1)]),
    ("stack", lambda a, b: nl.stack([a, b], dim=-1), lambda a, b: np.stack([a, b], -1),
     [signed(2, 3), signed(2, 3)]),
    ("where", lambda a, b: nl.where(a.numpy() > 0, a, b), lambda a, b: np.where(a > 0, a, b),
     [signed(3, 3), signed(3, 3)]),
    ("linear", lambda x, w, b: F.linear(x, w, b), lambda x, w, b: x @ w.T + b,
     [signed(2, 5, 4), signed(3, 4), signed(3)]),
    ("linear_no_bias", lambda x, w: F.linear(x, w), lambda x, w: x @ w.T,
     [signed(5, 4), signed(3, 4)]),
    ("softmax", lambda x: F.softmax(x, dim=1),
     lambda x: np.exp(x) / np.exp(x).sum(1, keepdims=True), [signed(3, 5, 2) * 3]),
    ("log_softmax", lambda x: F.log_softmax(x, dim=-1),
     lambda x: x - np.log(np.exp(x).sum(-1, keepdims=True)), [signed(4, 7) * 3]),
    ("mse_loss", lambda a, b: F.mse_loss(a, b), lambda a, b: ((a - b) ** 2).mean(),
     [signed(3, 4), signed(3, 4)]),
    ("mse_loss_sum", lambda a, b: F.mse_loss(a, b, reduction="sum"),
     lambda a, b: ((a - b) ** 2).sum(), [signed(3, 4), signed(3, 4)]),
]


def _numpy_inputs(arrays, dtype):
    return [a.astype(dtype) for a in arrays]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,op,reference,arrays", CASES, ids=[c[0] for c in CASES])
def test_forward_matches_numpy(name, op, reference, arrays, dtype, device):
    inputs = _numpy_inputs(arrays, dtype)
    got = op(*[nl.tensor(a, device=device) for a in inputs])
    want = reference(*inputs)
    assert got.dtype == dtype and got.device == device
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got.numpy(), want, rtol=tol, atol=tol)


@pytest.mark.parametrize("name,op,reference,arrays", CASES, ids=[c[0] for c in CASES])
def test_gradcheck(name, op, reference, arrays, device):
    inputs = [nl.tensor(a.astype(np.float64), device=device, requires_grad=True)
              for a in arrays]
    assert nl.gradcheck(op, inputs)


def test_max_ties_send_the_gradient_to_the_first_maximum():
    x = nl.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], requires_grad=True)
    x.max(dim=1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 1, 0], [1, 0, 0]])


def test_reduction_dim_errors():
    x = nl.tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"sum: dim 2 is out of range.*2 dimensions"):
        x.sum(dim=2)
    with pytest.raises(ValueError, match="twice"):
        x.mean(dim=(1, -1))


def test_matmul_shape_mismatch_names_both_shapes():
    a = nl.tensor(np.ones((2, 3)))
    b = nl.tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\).*\(3\).*\(4\)"):
        a @ b


def test_linear_shape_mismatch():
    with pytest.raises(ValueError, match=r"linear: input of shape \(2, 5\).*\(\.\.\., 4\)"):
        F.linear(nl.tensor(np.ones((2, 5))), nl.tensor(np.ones((3, 4))))


def test_reshape_and_cat_errors():
    with pytest.raises(ValueError, match=r"reshape.*\(2, 3\).*\(4, 2\)"):
        nl.tensor(np.ones((2, 3))).reshape(4, 2)
    with pytest.raises(ValueError, match="cat: tensors must match"):
        nl.cat([nl.tensor(np.ones((2, 3))), nl.tensor(np.ones((3, 3)))], dim=1)
    with pytest.raises(ValueError, match="permutation"):
        nl.tensor(np.ones((2, 3))).permute(0, 0)


def test_getitem_with_tensor_index():
    x = nl.tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    idx = nl.tensor([2, 2])
    x[idx].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 0], [0, 0], [2, 2]])


def test_softmax_is_stable_for_large_logits():
    x = nl.tensor([[1000.0, 0.0, -1000.0]])
    np.testing.assert_allclose(F.softmax(x, dim=1).numpy(), [[1.0, 0.0, 0.0]])
    np.testing.assert_allclose(F.log_softmax(x, dim=1).numpy(), [[0.0, -1000.0, -2000.0]])


def test_dropout_train_and_eval():
    nl.manual_seed(0)
    x = nl.tensor(np.ones((200, 50)), requires_grad=True)
    y = F.dropout(x, p=0.3, training=True)
    kept = y.numpy() != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(y.numpy()[kept], 1 / 0.7)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), kept / 0.7)
    assert F.dropout(x, p=0.3, training=False) is x
    with pytest.raises(ValueError, match=r"dropout: p must be in \[0, 1\], got 1.5"):
        F.dropout(x, p=1.5)


def test_dropout_is_reproducible_under_manual_seed():
    x = nl.ones(4, 6)
    nl.manual_seed(7)
    a = F.dropout(x, 0.5).numpy()
    nl.manual_seed(7)
    b = F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(a, b)


def test_dropout_gradcheck_with_a_fixed_mask():
    def dropout_fixed_mask(t):
        nl.manual_seed(3)  # the same mask on every call gradcheck makes
        return F.dropout(t, p=0.4)

    x = nl.tensor(signed(5, 4), requires_grad=True)
    assert nl.gradcheck(dropout_fixed_mask, (x,))


def test_where_accepts_lists_and_scalars():
    a = nl.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = nl.where([True, False, True], a, 0.0)
    np.testing.assert_array_equal(y.numpy(), [1.0, 0.0, 3.0])
    y.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [1.0, 0.0, 1.0])


def test_scalar_base_power_gradient_keeps_the_dtype_and_runs_on_every_device(device):
    # 2 ** t: the exponent's gradient is 2^t ln 2. On the GPU this once failed
    # (CuPy's where refuses a Python bool).
    t = nl.tensor(np.array([-1.0, 0.0, 1.5], dtype=np.float32), device=device,
                  requires_grad=True)
    (2.0 ** t).sum().backward()
    assert t.grad.dtype == np.float32 and t.grad.device == device
    np.testing.assert_allclose(t.grad.numpy(), 2.0 ** np.array([-1.0, 0.0, 1.5]) * np.log(2.0),
                               rtol=1e-6)
    z = nl.tensor(np.array([0.5, 2.0], dtype=np.float32), device=device, requires_grad=True)
    (0.0 ** z).sum().backward()  # 0^p is flat in p: gradient 0, not NaN
    np.testing.assert_array_equal(z.grad.numpy(), [0.0, 0.0])
