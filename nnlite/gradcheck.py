"""Numerical gradient checking (Chainer's ``gradient_check``, PyTorch's
``gradcheck``): analytic gradients against float64 central differences."""
import numpy as np

from nnlite.device import to_numpy, xp_of
from nnlite.errors import GradcheckError
from nnlite.tensor import Tensor, no_grad


def _output_list(out):
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o for o in outs if isinstance(o, Tensor) and o.dtype.kind == "f"]


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Check the gradients of ``fn(*inputs)`` for every input that requires grad.

    Each output is contracted with a fixed random weight w, giving the scalar
    L = sum(w * out); backward gives dL/dx analytically and every element of
    every input is perturbed by +-eps to get it numerically. A random w makes a
    wrong Jacobian entry show up with probability 1, at the cost of one
    backward and 2 forwards per element. Returns True, or raises
    ``GradcheckError`` naming the input, the element and both values.
    """
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad; pass tensors made with "
                         "requires_grad=True")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {inputs[i].dtype}; central differences "
                            f"with eps={eps} need float64 inputs")
    rng = np.random.default_rng(seed)
    outputs = _output_list(fn(*inputs))
    if not outputs:
        raise ValueError("gradcheck: fn returned no floating-point Tensor")
    weights = [xp_of(o.data).asarray(rng.standard_normal(o.shape)) for o in outputs]

    def contracted(outs):
        return sum(float((o.data * w).sum()) for o, w in zip(_output_list(outs), weights))

    for i in checked:
        inputs[i].grad = None
    loss = None
    for o, w in zip(outputs, weights):
        term = (o * Tensor(w)).sum()
        loss = term if loss is None else loss + term
    if loss.requires_grad:
        loss.backward()

    for i in checked:
        x = inputs[i]
        x.data = xp_of(x.data).ascontiguousarray(x.data)  # so reshape below is a view
        analytic = np.zeros(x.shape) if x.grad is None else to_numpy(x.grad.data)
        flat = x.data.reshape(-1)  # a view: perturbing it perturbs the input
        numeric = np.empty(flat.size)
        with no_grad():
            for k in range(flat.size):
                original = flat[k].item()
                flat[k] = original + eps
                plus = contracted(fn(*inputs))
                flat[k] = original - eps
                minus = contracted(fn(*inputs))
                flat[k] = original
                numeric[k] = (plus - minus) / (2 * eps)
        analytic = analytic.reshape(-1)
        bad = np.abs(analytic - numeric) > atol + rtol * np.abs(numeric)
        if bad.any():
            k = int(np.argmax(bad))
            element = np.unravel_index(k, x.shape) if x.shape else ()
            raise GradcheckError(
                f"gradcheck: input {i} (shape {x.shape}) element {tuple(int(e) for e in element)}:"
                f" analytic gradient {analytic[k]:.8g} vs numerical {numeric[k]:.8g} "
                f"(atol={atol}, rtol={rtol}; {int(bad.sum())} of {bad.size} elements differ)")
    return True
