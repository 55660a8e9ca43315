"""Optimisers against NumPy transcriptions of PyTorch's published update
equations (and against torch.optim itself when torch is installed)."""
import functools

import numpy as np
import pytest

import nnlite as nl
from nnlite import nn, optim

STEPS = 5
CURVATURE = np.array([0.5, 1.0, 2.0, 4.0, 0.1, 3.0])
TARGET = np.array([1.0, -2.0, 0.5, 0.0, 3.0, -1.0])
START = np.array([0.3, 0.1, -0.7, 1.5, -2.0, 0.8])


def quadratic_grad(p):
    """Gradient of sum(c * (p - t)^2), the loss the nnlite side differentiates."""
    return 2 * CURVATURE * (p - TARGET)


# -- reference implementations: PyTorch's documented algorithms, line by line ---------

def reference_sgd(p, steps, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    trajectory, buf = [], None
    for _ in range(steps):
        g = quadratic_grad(p)
        if weight_decay:
            g = g + weight_decay * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
        trajectory.append(p)
    return trajectory


def reference_adam(p, steps, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                   amsgrad=False, decoupled=False):
    b1, b2 = betas
    m, v, v_max, trajectory = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p), []
    for t in range(1, steps + 1):
        g = quadratic_grad(p)
        if weight_decay and decoupled:
            p = p * (1 - lr * weight_decay)
        elif weight_decay:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        v_max = np.maximum(v_max, v)
        v_hat = (v_max if amsgrad else v) / (1 - b2 ** t)
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v_hat) + eps)
        trajectory.append(p)
    return trajectory


def reference_rmsprop(p, steps, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                      centered=False):
    s, a, buf, trajectory = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p), []
    for _ in range(steps):
        g = quadratic_grad(p)
        if weight_decay:
            g = g + weight_decay * p
        s = alpha * s + (1 - alpha) * g * g
        if centered:
            a = alpha * a + (1 - alpha) * g
            denom = np.sqrt(s - a * a) + eps
        else:
            denom = np.sqrt(s) + eps
        if momentum:
            buf = momentum * buf + g / denom
            p = p - lr * buf
        else:
            p = p - lr * g / denom
        trajectory.append(p)
    return trajectory


CASES = [
    (optim.SGD, reference_sgd, dict(lr=0.05)),
    (optim.SGD, reference_sgd, dict(lr=0.05, momentum=0.9)),
    (optim.SGD, reference_sgd, dict(lr=0.05, momentum=0.9, dampening=0.3)),
    (optim.SGD, reference_sgd, dict(lr=0.05, momentum=0.9, nesterov=True)),
    (optim.SGD, reference_sgd, dict(lr=0.05, momentum=0.5, weight_decay=0.1)),
    (optim.Adam, reference_adam, dict(lr=0.1)),
    (optim.Adam, reference_adam, dict(lr=0.1, betas=(0.8, 0.9), amsgrad=True)),
    (optim.Adam, reference_adam, dict(lr=0.1, weight_decay=0.2, eps=1e-3)),
    (optim.AdamW, functools.partial(reference_adam, decoupled=True),
     dict(lr=0.1, weight_decay=0.3)),
    (optim.RMSprop, reference_rmsprop, dict(lr=0.01)),
    (optim.RMSprop, reference_rmsprop, dict(lr=0.01, centered=True, alpha=0.9)),
    (optim.RMSprop, reference_rmsprop, dict(lr=0.01, momentum=0.9, weight_decay=0.1)),
    (optim.RMSprop, reference_rmsprop, dict(lr=0.01, momentum=0.5, centered=True)),
]
CASE_IDS = [f"{cls.__name__}-{'-'.join(f'{k}={v}' for k, v in kw.items())}"
            for cls, _, kw in CASES]


def nnlite_trajectory(cls, options, steps=STEPS, device="cpu"):
    p = nn.Parameter(nl.tensor(START, dtype=np.float64, device=device))
    curvature = nl.tensor(CURVATURE, device=device)
    target = nl.tensor(TARGET, device=device)
    optimizer = cls([p], **options)
    trajectory = []
    for _ in range(steps):
        optimizer.zero_grad()
        (curvature * (p - target) ** 2).sum().backward()
        optimizer.step()
        trajectory.append(p.numpy().copy())
    return trajectory


@pytest.mark.parametrize("cls, reference, options", CASES, ids=CASE_IDS)
def test_trajectory_matches_pytorch_equations(cls, reference, options):
    expected = reference(START.copy(), STEPS, **options)
    got = nnlite_trajectory(cls, options)
    for step, (a, b) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=f"step {step + 1}")
    assert not np.allclose(got[-1], START)


ON_DEVICE = [3, 6, 8, 12]  # nesterov SGD, amsgrad Adam, AdamW, centered momentum RMSprop


@pytest.mark.parametrize("cls, reference, options", [CASES[i] for i in ON_DEVICE],
                         ids=[CASE_IDS[i] for i in ON_DEVICE])
def test_trajectory_on_device(device, cls, reference, options):
    expected = reference(START.copy(), STEPS, **options)
    got = nnlite_trajectory(cls, options, device=device)
    np.testing.assert_allclose(got[-1], expected[-1], rtol=1e-10)


@pytest.mark.parametrize("cls, reference, options", CASES, ids=CASE_IDS)
def test_trajectory_matches_torch(cls, reference, options):
    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.tensor(START, dtype=torch.float64))
    curvature, target = torch.tensor(CURVATURE), torch.tensor(TARGET)
    optimizer = getattr(torch.optim, cls.__name__)([p], **options)
    got = nnlite_trajectory(cls, options)
    for step in range(STEPS):
        optimizer.zero_grad()
        (curvature * (p - target) ** 2).sum().backward()
        optimizer.step()
        # atol: entries that cancel to ~1e-16 differ only by rounding order.
        np.testing.assert_allclose(got[step], p.detach().numpy(), rtol=1e-10, atol=1e-14,
                                   err_msg=f"step {step + 1}")


# -- groups, skipping, in-place updates -----------------------------------------------

def test_param_groups_have_their_own_options_and_gradless_params_are_skipped():
    a = nn.Parameter(nl.tensor(np.ones(2), dtype=np.float64))
    b = nn.Parameter(nl.tensor(np.ones(2), dtype=np.float64))
    frozen = nn.Parameter(nl.tensor(np.ones(2), dtype=np.float64))
    optimizer = optim.SGD([{"params": [a]}, {"params": [b, frozen], "lr": 0.5}], lr=0.1,
                          momentum=0.9)
    assert [g["lr"] for g in optimizer.param_groups] == [0.1, 0.5]
    assert optimizer.param_groups[1]["momentum"] == 0.9
    view = a.data
    (a.sum() + b.sum()).backward()
    optimizer.step()
    assert a.data is view  # updated in place, so views and aliases stay valid
    np.testing.assert_allclose(a.numpy(), [0.9, 0.9])
    np.testing.assert_allclose(b.numpy(), [0.5, 0.5])
    np.testing.assert_array_equal(frozen.numpy(), [1, 1])
    assert frozen not in optimizer.state
    optimizer.zero_grad()
    assert a.grad is None and b.grad is None


def test_step_returns_closure_loss():
    p = nn.Parameter(nl.tensor(np.array([2.0])))
    optimizer = optim.SGD([p], lr=0.25)

    def closure():
        optimizer.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    assert optimizer.step(closure).item() == 4.0
    np.testing.assert_allclose(p.numpy(), [1.0])


# -- state_dict ---------------------------------------------------------------------

def two_groups(values):
    params = [nn.Parameter(nl.tensor(v.copy(), dtype=np.float64)) for v in values]
    return params, [{"params": params[:1]}, {"params": params[1:], "lr": 0.02}]


def train(optimizer, params, steps):
    for _ in range(steps):
        optimizer.zero_grad()
        sum(((p - 1.0) ** 4).sum() for p in params).backward()
        optimizer.step()


@pytest.mark.parametrize("cls, options", [
    (optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
    (optim.Adam, dict(lr=0.05, amsgrad=True)),
    (optim.RMSprop, dict(lr=0.01, momentum=0.5, centered=True)),
])
def test_state_dict_resumes_training_exactly(cls, options):
    values = [np.array([0.5, -1.0, 2.0]), np.array([[3.0, 0.0], [-2.0, 1.5]])]
    params_a, groups_a = two_groups(values)
    optimizer_a = cls(groups_a, **options)
    train(optimizer_a, params_a, 3)
    saved = optimizer_a.state_dict()
    assert [g["params"] for g in saved["param_groups"]] == [[0], [1]]
    assert saved["state"][0]["step" if cls is not optim.SGD else "momentum_buffer"] is not None

    params_b, groups_b = two_groups([p.numpy() for p in params_a])
    optimizer_b = cls(groups_b, lr=123.0)  # options must come back from the state dict
    optimizer_b.load_state_dict(saved)
    assert optimizer_b.param_groups[1]["lr"] == 0.02
    train(optimizer_a, params_a, 2)
    train(optimizer_b, params_b, 2)
    for a, b in zip(params_a, params_b):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_state_dict_is_a_snapshot():
    params, groups = two_groups([np.array([0.5, 2.0])])
    optimizer = optim.Adam(groups)
    train(optimizer, params, 1)
    saved = optimizer.state_dict()
    exp_avg = saved["state"][0]["exp_avg"].copy()
    train(optimizer, params, 1)
    assert saved["state"][0]["step"] == 1
    np.testing.assert_array_equal(saved["state"][0]["exp_avg"], exp_avg)


def test_load_state_dict_rejects_a_different_layout():
    params, groups = two_groups([np.ones(2), np.ones(3)])
    saved = optim.SGD(groups, lr=0.1).state_dict()
    other = optim.SGD([nn.Parameter(nl.ones(2))], lr=0.1)
    with pytest.raises(ValueError, match="2 parameter groups, this optimizer has 1"):
        other.load_state_dict(saved)
    params, groups = two_groups([np.ones(2), np.ones(3)])
    optimizer = optim.Adam(groups)
    train(optimizer, params, 1)
    saved = optimizer.state_dict()
    saved["state"][1]["exp_avg"] = np.zeros(4)
    with pytest.raises(ValueError, match=r"'exp_avg' has shape \(4,\).*shape \(3,\)"):
        optim.Adam(two_groups([np.ones(2), np.ones(3)])[1]).load_state_dict(saved)


# -- bad input ----------------------------------------------------------------------

def one_param():
    return [nn.Parameter(nl.ones(2))]


@pytest.mark.parametrize("make, message", [
    (lambda: optim.SGD(one_param(), lr=-0.1), r"SGD: lr must be >= 0.0, got -0.1"),
    (lambda: optim.SGD(one_param(), lr=0.1, momentum=-1), r"SGD: momentum must be >= 0.0"),
    (lambda: optim.SGD(one_param(), lr=0.1, nesterov=True),
     r"SGD: nesterov=True requires momentum > 0 and dampening = 0, got momentum=0.0"),
    (lambda: optim.SGD(one_param(), lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
     r"dampening=0.1"),
    (lambda: optim.Adam(one_param(), lr=-1e-3), r"Adam: lr must be >= 0.0, got -0.001"),
    (lambda: optim.Adam(one_param(), betas=(1.0, 0.999)),
     r"Adam: betas\[0\] must be >= 0.0 and < 1.0, got 1.0"),
    (lambda: optim.Adam(one_param(), betas=(0.9, -0.1)), r"Adam: betas\[1\] must be"),
    (lambda: optim.Adam(one_param(), betas=0.9), r"Adam: betas must be a pair"),
    (lambda: optim.AdamW(one_param(), eps=-1), r"AdamW: eps must be >= 0.0, got -1"),
    (lambda: optim.RMSprop(one_param(), alpha=1.5), r"RMSprop: alpha must be >= 0.0 and <= 1.0"),
    (lambda: optim.SGD([], lr=0.1), r"SGD: got an empty parameter list"),
])
def test_bad_options_are_rejected_with_the_value(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_params_are_rejected():
    p = nn.Parameter(nl.ones(2))
    with pytest.raises(TypeError, match="got a single Tensor; wrap it in a list"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2], lr=0.1)
    with pytest.raises(TypeError, match="can only optimise Tensors, got ndarray"):
        optim.SGD([np.ones(2)], lr=0.1)


def _adam_with_temporaries(p, g, m, v, v_max, t, lr, b1, b2, eps, amsgrad):
    """nnlite's Adam before its work buffers, operation for operation."""
    m *= b1
    m += (1 - b1) * g
    v *= b2
    v += (1 - b2) * g * g
    if amsgrad:
        np.maximum(v_max, v, out=v_max)
    denom = np.sqrt(v_max if amsgrad else v) / (1 - b2 ** t) ** 0.5 + eps
    p -= (lr / (1 - b1 ** t)) * m / denom


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_in_work_buffers_rounds_as_with_temporaries(amsgrad):
    rng = np.random.default_rng(0)
    shapes = [(7, 5), (40,), (3,)]  # the buffers are sized by the largest
    params = [nl.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True)
              for s in shapes]
    copies = [p.numpy().copy() for p in params]
    moments = [[np.zeros_like(c) for _ in range(3)] for c in copies]
    opt = optim.Adam(params, lr=1e-2, amsgrad=amsgrad)
    for t in range(1, 6):
        for p, c, (m, v, v_max) in zip(params, copies, moments):
            g = (rng.standard_normal(c.shape) * 10.0 ** rng.integers(-6, 2)).astype(np.float32)
            p.grad = nl.tensor(g)
            _adam_with_temporaries(c, g, m, v, v_max, t, 1e-2, 0.9, 0.999, 1e-8, amsgrad)
        opt.step()
        for p, c in zip(params, copies):
            np.testing.assert_array_equal(p.numpy(), c)  # bit for bit


def test_sgd_in_work_buffers_rounds_as_with_temporaries():
    rng = np.random.default_rng(1)
    p = nl.tensor(rng.standard_normal(50).astype(np.float32), requires_grad=True)
    c, buf = p.numpy().copy(), None
    opt = optim.SGD([p], lr=0.03, momentum=0.9, dampening=0.1)
    for _ in range(4):
        g = rng.standard_normal(50).astype(np.float32)
        p.grad = nl.tensor(g)
        opt.step()
        if buf is None:
            buf = g.copy()
        else:
            buf *= 0.9
            buf += (1 - 0.1) * g
        c -= 0.03 * buf
        np.testing.assert_array_equal(p.numpy(), c)


def test_work_buffers_are_reused_and_never_checkpointed():
    big = nl.tensor(np.ones(1000, dtype=np.float32), requires_grad=True)
    small = nl.tensor(np.ones(10, dtype=np.float32), requires_grad=True)
    opt = optim.Adam([small, big])
    for p in (big, small):
        p.grad = nl.tensor(np.full(p.shape, 0.5, dtype=np.float32))
    opt.step()
    buffers = [id(b) for bs in opt._work_buffers.values() for b in bs]
    assert [b.size for bs in opt._work_buffers.values() for b in bs] == [1000, 1000]
    opt.step()
    assert [id(b) for bs in opt._work_buffers.values() for b in bs] == buffers
    assert "_work_buffers" not in repr(opt.state_dict())


@pytest.mark.parametrize("centered,momentum", [(False, 0.0), (True, 0.0), (True, 0.8)])
def test_rmsprop_in_work_buffers_rounds_as_with_temporaries(centered, momentum):
    rng = np.random.default_rng(2)
    p = nl.tensor(rng.standard_normal(30).astype(np.float32), requires_grad=True)
    c = p.numpy().copy()
    square, mean, buf = np.zeros_like(c), np.zeros_like(c), np.zeros_like(c)
    opt = optim.RMSprop([p], lr=0.01, alpha=0.9, centered=centered, momentum=momentum)
    for _ in range(4):
        g = rng.standard_normal(30).astype(np.float32)
        p.grad = nl.tensor(g)
        opt.step()
        square *= 0.9  # nnlite's RMSprop before its work buffers, operation for operation
        square += (1 - 0.9) * g * g
        if centered:
            mean *= 0.9
            mean += (1 - 0.9) * g
            avg = np.sqrt(square - mean * mean) + 1e-8
        else:
            avg = np.sqrt(square) + 1e-8
        if momentum:
            buf *= momentum
            buf += g / avg
            c -= 0.01 * buf
        else:
            c -= 0.01 * g / avg
        np.testing.assert_array_equal(p.numpy(), c)
