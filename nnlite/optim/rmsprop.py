"""RMSprop with PyTorch's equations (eps outside the square root)."""
from nnlite.optim.optimizer import Optimizer, check_range


class RMSprop(Optimizer):
    """PyTorch's RMSprop. Per step, with g the gradient:

        g = g + weight_decay * p
        s = alpha * s + (1 - alpha) * g^2
        a = alpha * a + (1 - alpha) * g            (centered)
        d = sqrt(s - a^2) + eps  if centered  else  sqrt(s) + eps
        b = momentum * b + g / d;  p = p - lr * b  (momentum > 0)
        p = p - lr * g / d                         (otherwise)

    Keras's RMSprop puts eps inside the square root; the difference is
    negligible except for tiny gradients.
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, maximize=False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, group):
        for key in ("lr", "eps", "weight_decay", "momentum"):
            check_range("RMSprop", key, group[key])
        check_range("RMSprop", "alpha", group["alpha"], 0.0, 1.0)

    def _update(self, param, grad, group, state, xp):
        alpha, eps = group["alpha"], group["eps"]
        if group["maximize"]:
            grad = -grad
        if not state:
            state["step"] = 0
            state["square_avg"] = xp.zeros_like(param)
        if group["momentum"] > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = xp.zeros_like(param)
        if group["centered"] and "grad_avg" not in state:
            state["grad_avg"] = xp.zeros_like(param)
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param
        square_avg = state["square_avg"]
        work, avg = self._work(param, 2)  # in the formula's order: same rounding
        square_avg *= alpha
        xp.multiply(grad, 1 - alpha, out=work)
        square_avg += xp.multiply(work, grad, out=work)
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg *= alpha
            grad_avg += xp.multiply(grad, 1 - alpha, out=work)
            xp.subtract(square_avg, xp.multiply(grad_avg, grad_avg, out=work), out=avg)
            xp.sqrt(avg, out=avg)
        else:
            xp.sqrt(square_avg, out=avg)
        avg += eps
        if group["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf *= group["momentum"]
            buf += xp.divide(grad, avg, out=work)
            param -= xp.multiply(buf, group["lr"], out=work)
        else:
            xp.multiply(grad, group["lr"], out=work)
            work /= avg
            param -= work
