"""Numerical gradient checking (Chainer's ``gradient_check``, PyTorch's
``gradcheck``): analytic gradients against float64 central differences.

Two modes share one scalar: every output is contracted with a fixed random
weight w, L = sum(w * out), and one backward gives dL/dx analytically.

* per element (the default): every element of every input is perturbed by
  +-eps, two forwards per element; a failure names the input and the element.
  Right for the small shapes op tests use.
* directional (``directional=True``, Chainer's ``check_backward``): one random
  unit direction d over all inputs together, compared as
  (L(x + eps d) - L(x - eps d)) / (2 eps) against <dL/dx, d>; two forwards in
  all, so it runs at a network's real layer shapes.

What the directional mode can miss, and how to set its tolerances: an error e
in the analytic gradient g changes <g, d> by <e, d>. An error orthogonal to d
goes unseen, which for a random d has probability zero; but for a unit d over
N elements both <e, d> and <g, d> are about |e| / sqrt(N) and |g| / sqrt(N),
so the check measures the error relative to the WHOLE gradient, |e| / |g|. A
backward that is 1 % off in a fraction f of similar elements gives
|e| / |g| ~ 0.01 sqrt(f): one bad element in a million reads as 1e-5, far
inside the default rtol=1e-3. So pick rtol below the smallest error worth
catching and atol well below the expected |<g, d>| ~ |g| / sqrt(N) (a failure
reports both values, so a first run shows the scale). The rtol term grows
with |<g, d>|, so it, not atol, usually decides what slips through. At the
seed networks' layer shapes float64 central differences along d agree to
3e-9 absolute, so tests/test_gradcheck_seed_shapes.py affords atol=rtol=1e-8
(a 35x margin or more); there one weight's gradient 1 % off among the 590,000
of CRNN's conv4 is caught by 99.1-99.97 % of random directions (5 seeds
measured; 67-99.9 % with rtol=1e-6).

eps: each element moves by only about eps / sqrt(N), so for a smooth op a
larger eps than the per-element mode's (1e-4 in float64) keeps the
difference above rounding noise; the truncation error grows as eps**2. Through
ReLUs and max-pools, though, moving every element at once makes some
pre-activations cross a kink, an error that grows with eps: on the whole seed
CRNN, eps=1e-6 agreed to 3e-8 relative in every draw tried, while eps=1e-5
was off by 6e-4 in one draw and eps=1e-4 by 1e-4 to 2e-3. Keep the default
eps there. A failure names the values and tolerances, and which
inputs' parts of d disagree (two more forwards per input, on failure only);
the per-element mode on a smaller shape then finds the element.
"""
import numpy as np

from nnlite.device import to_numpy, xp_of
from nnlite.errors import GradcheckError
from nnlite.tensor import Tensor, no_grad


def _output_list(out):
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o for o in outs if isinstance(o, Tensor) and o.dtype.kind == "f"]


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0, directional=False):
    """Check the gradients of ``fn(*inputs)`` for every input that requires grad.

    Each output is contracted with a fixed random weight w, giving the scalar
    L = sum(w * out); backward gives dL/dx analytically. A random w makes a
    wrong Jacobian entry show up with probability 1.

    directional=False: every element of every input is perturbed by +-eps to
    get dL/dx numerically (one backward, 2 forwards per element); a failure
    names the input, the element and both values.
    directional=True: the derivative of L along one random unit direction over
    all inputs (one backward, 2 forwards); see the module docstring for what
    it can miss and how to choose eps, atol and rtol.

    ``seed`` (an int or a numpy Generator) draws w and the direction, so a
    check is reproducible. Each element (or the one directional derivative)
    passes when |analytic - numerical| <= atol + rtol * |numerical|. Returns
    True, or raises ``GradcheckError`` with both values and the tolerances.
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
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    outputs = _output_list(fn(*inputs))
    if not outputs:
        raise ValueError("gradcheck: fn returned no floating-point Tensor")
    weights = [xp_of(o.data).asarray(rng.standard_normal(o.shape)) for o in outputs]

    def contracted(outs):
        return sum(float((o.data * w).sum()) for o, w in zip(_output_list(outs), weights))

    analytic = _analytic_gradients(inputs, checked, outputs, weights)
    if directional:
        _check_directional(fn, inputs, checked, analytic, contracted, rng, eps, atol, rtol)
    else:
        _check_elementwise(fn, inputs, checked, analytic, contracted, eps, atol, rtol)
    return True


def _analytic_gradients(inputs, checked, outputs, weights):
    """{input index: dL/dx as a NumPy array} by one backward of sum(w * out)."""
    for i in checked:
        inputs[i].grad = None
    loss = None
    for o, w in zip(outputs, weights):
        term = (o * Tensor(w)).sum()
        loss = term if loss is None else loss + term
    if loss.requires_grad:
        loss.backward()
    return {i: np.zeros(inputs[i].shape) if inputs[i].grad is None
            else to_numpy(inputs[i].grad.data) for i in checked}


def _check_elementwise(fn, inputs, checked, analytic, contracted, eps, atol, rtol):
    for i in checked:
        x = inputs[i]
        x.data = xp_of(x.data).ascontiguousarray(x.data)  # so reshape below is a view
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
        expected = analytic[i].reshape(-1)
        bad = np.abs(expected - numeric) > atol + rtol * np.abs(numeric)
        if bad.any():
            k = int(np.argmax(bad))
            element = np.unravel_index(k, x.shape) if x.shape else ()
            raise GradcheckError(
                f"gradcheck: input {i} (shape {x.shape}) element {tuple(int(e) for e in element)}:"
                f" analytic gradient {expected[k]:.8g} vs numerical {numeric[k]:.8g} "
                f"(atol={atol}, rtol={rtol}; {int(bad.sum())} of {bad.size} elements differ)")


def _directional_derivative(fn, inputs, direction, contracted, eps):
    """(L(x + eps d) - L(x - eps d)) / (2 eps), d given per input index; the
    inputs' arrays are restored afterwards."""
    originals = {i: inputs[i].data for i in direction}
    try:
        with no_grad():
            values = []
            for sign in (1.0, -1.0):
                for i, d in direction.items():
                    inputs[i].data = originals[i] + (sign * eps) * d
                values.append(contracted(fn(*inputs)))
    finally:
        for i, original in originals.items():
            inputs[i].data = original
    return (values[0] - values[1]) / (2 * eps)


def _check_directional(fn, inputs, checked, analytic, contracted, rng, eps, atol, rtol):
    # d is Gaussian, normalised over all inputs together: a uniformly random
    # unit direction, so no input or element is favoured.
    draws = {i: rng.standard_normal(inputs[i].shape) for i in checked}
    norm = np.sqrt(sum(float((d * d).sum()) for d in draws.values()))
    draws = {i: d / norm for i, d in draws.items()}
    direction = {i: xp_of(inputs[i].data).asarray(d) for i, d in draws.items()}

    expected = sum(float((analytic[i] * draws[i]).sum()) for i in checked)
    numeric = _directional_derivative(fn, inputs, direction, contracted, eps)
    tolerance = atol + rtol * abs(numeric)
    if abs(expected - numeric) <= tolerance:
        return
    # Which inputs are wrong: the same comparison along each input's part of d.
    parts = []
    for i in checked:
        part_expected = float((analytic[i] * draws[i]).sum())
        part_numeric = _directional_derivative(fn, inputs, {i: direction[i]}, contracted, eps)
        verdict = "differs" if abs(part_expected - part_numeric) > \
            atol + rtol * abs(part_numeric) else "agrees"
        parts.append(f"input {i} (shape {inputs[i].shape}): {part_expected:.10g} vs "
                     f"{part_numeric:.10g}, {verdict}")
    size = sum(draws[i].size for i in checked)
    raise GradcheckError(
        f"gradcheck (directional, one random unit direction over {size} elements of inputs "
        f"{checked}): analytic <grad, d> {expected:.10g} vs numerical {numeric:.10g}; "
        f"|difference| {abs(expected - numeric):.3g} > atol + rtol * |numerical| = "
        f"{tolerance:.3g} (atol={atol}, rtol={rtol}, eps={eps}). Along each input's part of "
        f"d: {'; '.join(parts)}. directional=False on a smaller shape names the element.")
