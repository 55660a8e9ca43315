"""Stochastic gradient descent with PyTorch's momentum and Nesterov equations."""
from nnlite.optim.optimizer import Optimizer, check_range


class SGD(Optimizer):
    """PyTorch's SGD. Per step, with g the gradient:

        g = g + weight_decay * p
        b = g                                   (first step)
        b = momentum * b + (1 - dampening) * g  (later steps)
        g = g + momentum * b if nesterov else b
        p = p - lr * g
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, maximize=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, group):
        for key in ("lr", "momentum", "dampening", "weight_decay"):
            check_range("SGD", key, group[key])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"SGD: nesterov=True requires momentum > 0 and dampening = 0, "
                             f"got momentum={group['momentum']}, "
                             f"dampening={group['dampening']}")

    def _update(self, param, grad, group, state, xp):
        momentum = group["momentum"]
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.copy()
            else:
                buf *= momentum
                buf += xp.multiply(grad, 1 - group["dampening"], out=self._work(param, 1)[0])
            grad = grad + momentum * buf if group["nesterov"] else buf
        param -= xp.multiply(grad, group["lr"], out=self._work(param, 1)[0])
