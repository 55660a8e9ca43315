"""The autograd engine: Tensor basics, Function API, backward order,
accumulation, broadcasting, no_grad, anomaly detection, error messages."""
import numpy as np
import pytest

import nnlite as nl
import nnlite.functional as F


def test_tensor_defaults_and_dtypes():
    t = nl.tensor([[1.0, 2.0]])
    assert t.dtype == np.float32 and t.shape == (1, 2) and t.device == "cpu"
    assert nl.tensor(np.zeros(3)).dtype == np.float64  # float64 kept when given
    assert nl.tensor([1, 2]).dtype == np.int64
    assert nl.tensor([1.0], dtype=np.float64).dtype == np.float64
    a = np.ones(3, dtype=np.float32)
    t = nl.tensor(a)
    a[0] = 5
    assert t.numpy()[0] == 1  # tensor() copies, as torch.tensor does


def test_int_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match="floating-point"):
        nl.tensor([1, 2], requires_grad=True)


def test_backward_accumulates_when_a_tensor_is_used_twice():
    x = nl.tensor([2.0, 3.0], requires_grad=True)
    y = (x * x + x).sum()   # dy/dx = 2x + 1
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 7.0])
    (x * 3).sum().backward()  # leaves accumulate across backward calls
    np.testing.assert_allclose(x.grad.numpy(), [8.0, 10.0])


def test_diamond_graph_is_visited_once_per_node_in_topological_order():
    x = nl.tensor([1.5], dtype=np.float64, requires_grad=True)
    a = x.exp()
    b = a * a        # both branches meet again
    c = a + b
    d = c * a
    d.backward()
    # d = (e^x + e^{2x}) e^x = e^{2x} + e^{3x}
    expected = 2 * np.exp(3.0) + 3 * np.exp(4.5)
    np.testing.assert_allclose(x.grad.numpy(), [expected], rtol=1e-12)


def test_broadcast_gradients_are_summed_to_input_shape():
    a = nl.tensor(np.ones((2, 3, 4)), requires_grad=True)
    b = nl.tensor(np.ones((3, 1)), requires_grad=True)
    c = nl.tensor(2.0, dtype=np.float64, requires_grad=True)
    (a * b * c).sum().backward()
    assert b.grad.shape == (3, 1) and c.grad.shape == ()
    np.testing.assert_allclose(b.grad.numpy(), np.full((3, 1), 2.0 * 8))
    np.testing.assert_allclose(c.grad.numpy(), 24.0)


def test_gradient_dtype_follows_the_input():
    a = nl.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    b = nl.tensor(np.ones(3, dtype=np.float64))
    (a * b).sum().backward()  # the product is float64; a's grad stays float32
    assert a.grad.dtype == np.float32


def test_no_grad_records_nothing():
    x = nl.tensor([1.0], requires_grad=True)
    with nl.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert nl.is_grad_enabled()


def test_detach_cuts_the_graph_and_shares_data():
    x = nl.tensor([1.0, 2.0], requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad
    y = (x * d).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])


def test_retain_grad_keeps_intermediate_gradients():
    x = nl.tensor([1.0, 2.0], requires_grad=True)
    h = (x * 3).retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), [6.0, 12.0])


def test_second_backward_without_retain_graph_explains_itself():
    x = nl.tensor([1.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0])
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_backward_on_non_scalar_needs_a_grad():
    x = nl.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"scalar.*shape \(2,\)"):
        y.backward()
    y.backward(nl.tensor([1.0, 0.5]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 1.0])


def test_backward_grad_of_wrong_shape_is_rejected():
    x = nl.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        (x * 2).backward(np.ones(3, dtype=np.float32))


def test_backward_on_tensor_without_graph():
    with pytest.raises(RuntimeError, match="does not require grad"):
        nl.tensor([1.0]).sum().backward()


class Cube(nl.Function):
    @staticmethod
    def forward(ctx, x, scale=1.0):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return scale * x ** 3

    @staticmethod
    def backward(ctx, gy):
        x, = ctx.saved_tensors
        return 3 * ctx.scale * x ** 2 * gy


class TwoOutputs(nl.Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a + b, a * b

    @staticmethod
    def backward(ctx, g_sum, g_prod):
        a, b = ctx.saved_tensors
        return g_sum + g_prod * b, g_sum + g_prod * a


def test_custom_function_api():
    x = nl.tensor([1.0, 2.0], dtype=np.float64, requires_grad=True)
    y = Cube.apply(x, scale=2.0)
    np.testing.assert_allclose(y.numpy(), [2.0, 16.0])
    assert type(y.grad_fn).__name__ == "Node" and y.grad_fn.name == "Cube"
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 24.0])
    assert nl.gradcheck(lambda t: Cube.apply(t, scale=0.5), (x,))


def test_needs_input_grad_and_multiple_outputs():
    seen = {}

    class Probe(nl.Function):
        @staticmethod
        def forward(ctx, a, b):
            seen["needs"] = ctx.needs_input_grad
            return a * 1.0

        @staticmethod
        def backward(ctx, gy):
            return gy, None

    a = nl.tensor([1.0], requires_grad=True)
    Probe.apply(a, nl.tensor([2.0]))
    assert seen["needs"] == (True, False)

    a = nl.tensor([1.0, 2.0], dtype=np.float64, requires_grad=True)
    b = nl.tensor([3.0, 5.0], dtype=np.float64, requires_grad=True)
    s, p = TwoOutputs.apply(a, b)
    p.sum().backward()  # only one output reaches the loss: the other's grad is zero
    np.testing.assert_allclose(a.grad.numpy(), [3.0, 5.0])
    assert nl.gradcheck(lambda u, v: TwoOutputs.apply(u, v), (a, b))


def test_function_returning_a_wrong_shape_gradient_is_named():
    class Broken(nl.Function):
        @staticmethod
        def forward(ctx, x):
            return x.sum()

        @staticmethod
        def backward(ctx, gy):
            return np.ones(7)

    x = nl.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Broken.backward.*\(7,\).*\(2, 3\)"):
        Broken.apply(x).backward()


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_detect_anomaly_names_the_op_that_made_nan():
    x = nl.tensor([-1.0, 4.0], requires_grad=True)
    nl.set_detect_anomaly(True)
    try:
        with pytest.raises(nl.AnomalyError, match="Sqrt.forward"):
            F.sqrt(x).sum()
        y = nl.tensor([0.0, 1.0], requires_grad=True)
        loss = (F.sqrt(y) * 0.0).sum()   # forward is finite, backward is 0 * inf = NaN
        with pytest.raises(nl.AnomalyError, match="Sqrt.backward"):
            loss.backward()
    finally:
        nl.set_detect_anomaly(False)
    assert np.isnan(F.sqrt(x).numpy()[0])  # off again: NaN passes silently


def test_device_mix_is_rejected(monkeypatch):
    a = nl.tensor([1.0])
    b = nl.tensor([2.0])
    # Pretend `b` lives on the GPU: the check must name both devices.
    monkeypatch.setattr(nl.Tensor, "device",
                        property(lambda self: "cuda" if self is b else "cpu"))
    with pytest.raises(nl.DeviceMismatchError, match=r"Add.*cpu.*cuda"):
        F.add(a, b)


def test_unknown_device_is_rejected():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        nl.tensor([1.0], device="tpu")


def test_to_same_device_is_identity_and_dtype_conversion_is_differentiable():
    x = nl.tensor([1.0, 2.0], requires_grad=True)
    assert x.to("cpu") is x
    y = x.double()
    assert y.dtype == np.float64
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])


def test_item_repr_len_and_comparisons():
    t = nl.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert len(t) == 2 and t.sum().item() == 10.0
    assert "tensor(" in repr(t)
    assert (t > 2).numpy().tolist() == [[False, False], [True, True]]
    assert t.argmax(dim=1).numpy().tolist() == [1, 1]
    with pytest.raises(ValueError, match="one-element"):
        t.item()


def test_numpy_reads_a_tensor_as_one_array_not_element_by_element(monkeypatch):
    t = nl.tensor(np.arange(6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    # NumPy used to index a tensor once per element (each an autograd op):
    # a 4M-parameter state dict took a minute to compare
    monkeypatch.setattr(nl.Tensor, "__getitem__", lambda *a: pytest.fail("read by indexing"))
    a = np.asarray(t)
    assert a.dtype == np.float32 and a.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert np.shares_memory(a, t.data)  # as t.numpy(): no copy on the CPU
    copied = np.array(t)
    assert not np.shares_memory(copied, t.data)
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    assert np.stack([t, t]).shape == (2, 2, 3)
    assert np.asarray(t, copy=False) is t.data
    with pytest.raises(ValueError, match="copy=False, but converting float32 to float64"):
        np.asarray(t, dtype=np.float64, copy=False)
    # ndarray op Tensor still defers to the tensor (and stays differentiable)
    out = np.ones((2, 3), dtype=np.float32) + t
    assert isinstance(out, nl.Tensor) and out.requires_grad


def test_inplace_operators_rebind_instead_of_corrupting_the_graph():
    x = nl.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1.0
    y += 1
    y *= x
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 5.0])  # d/dx (x+1)x = 2x+1


def test_leaf_gradients_never_share_arrays():
    a = nl.tensor([1.0, 2.0], requires_grad=True)
    b = nl.tensor([3.0, 4.0], requires_grad=True)
    g = np.ones(2, dtype=np.float32)
    (a + b).backward(g)
    a.grad.data *= 5  # in-place clipping of one gradient must not touch the other
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 1.0])
    np.testing.assert_array_equal(g, [1.0, 1.0])


def test_python_scalar_conversions():
    assert float(nl.tensor([2.5])) == 2.5 and int(nl.tensor(3)) == 3
    assert [10, 20, 30][nl.tensor(1)] == 20
    with pytest.raises(TypeError, match="integer tensors"):
        [1, 2][nl.tensor(1.0)]


def test_dtype_mismatch_in_matmul_and_linear_is_an_error():
    a32 = nl.tensor(np.ones((2, 3), dtype=np.float32))
    b64 = nl.tensor(np.ones((3, 2)))
    with pytest.raises(TypeError, match="matmul: operands have dtypes float32 and float64"):
        a32 @ b64
    with pytest.raises(TypeError, match="linear: input is float32 but weight is float64"):
        F.linear(a32, nl.tensor(np.ones((4, 3))))


def test_tensor_keeps_the_data_where_it_is_unless_told(device, xp):
    # As torch.tensor: no device means the data's own. A batch already on the GPU
    # once came back to the CPU here, and the CRNN recipe then trained nowhere.
    data = xp.asarray(np.arange(3, dtype=np.float32))
    assert nl.tensor(data).device == device
    assert nl.tensor(nl.tensor(data)).device == device
    assert nl.tensor([1.0, 2.0]).device == "cpu"
    assert nl.tensor(data, device="cpu").device == "cpu"
    moved = nl.tensor(np.ones(2, dtype=np.float32), device=device)
    assert moved.device == device and isinstance(moved.data, type(data))


def test_move_batch_puts_arrays_on_the_models_device(device):
    from nnlite.training.task import model_device, move_batch
    model = nl.nn.Linear(3, 2).to(device)
    images, texts = move_batch((np.zeros((4, 3), dtype=np.float32), ["a", "b"]),
                               model_device(model))
    assert images.device == device and texts == ["a", "b"]
    assert model(images).shape == (4, 2)


def test_gradients_accumulate_into_the_leafs_own_array():
    # An unrolled cell adds one contribution per step; each lands in the
    # leaf's private gradient array (as PyTorch accumulates), not a new one.
    w = nl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    h = nl.tensor([1.0, 1.0, 1.0])
    for _ in range(3):
        h = h * w
    h.sum().backward()  # d/dw of w^3 summed = 3 w^2
    first = w.grad
    np.testing.assert_allclose(first.numpy(), [3.0, 12.0, 27.0])
    (w * 2.0).sum().backward()  # no zero_grad: accumulate, as PyTorch does
    assert w.grad is first
    np.testing.assert_allclose(w.grad.numpy(), [5.0, 14.0, 29.0])


def test_accumulation_never_writes_a_gradient_the_user_set():
    w = nl.tensor([1.0, 2.0], requires_grad=True)
    mine = np.array([10.0, 20.0], dtype=np.float32)
    w.grad = nl.tensor(mine)
    (w * 3.0).sum().backward()
    np.testing.assert_array_equal(mine, [10.0, 20.0])
    np.testing.assert_array_equal(w.grad.numpy(), [13.0, 23.0])


def test_accumulated_leaf_gradients_still_never_share_arrays():
    a = nl.tensor([1.0, 2.0], requires_grad=True)
    b = nl.tensor([3.0, 4.0], requires_grad=True)
    for _ in range(2):
        (a + b).sum().backward()
    a.grad.data *= 5
    np.testing.assert_array_equal(b.grad.numpy(), [2.0, 2.0])
    np.testing.assert_array_equal(a.grad.numpy(), [10.0, 10.0])
