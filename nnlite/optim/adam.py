"""Adam and AdamW with PyTorch's bias correction."""
from nnlite.optim.optimizer import Optimizer, check_range


class Adam(Optimizer):
    """PyTorch's Adam. Per step t, with g the gradient:

        g = g + weight_decay * p                     (L2 penalty; AdamW decays p instead)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g^2
        v_max = max(v_max, v)                        (amsgrad; then v_max replaces v below)
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """

    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, maximize=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, group):
        name = type(self).__name__
        for key in ("lr", "eps", "weight_decay"):
            check_range(name, key, group[key])
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            check_range(name, f"betas[{i}]", beta, 0.0, 1.0, high_open=True)
        group["betas"] = tuple(betas)

    def _update(self, param, grad, group, state, xp):
        beta1, beta2 = group["betas"]
        lr, weight_decay = group["lr"], group["weight_decay"]
        if group["maximize"]:
            grad = -grad
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(param)
            state["exp_avg_sq"] = xp.zeros_like(param)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(param)
        state["step"] += 1
        step = state["step"]
        if weight_decay != 0:
            if self.decoupled:
                param *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * param
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        # In two reused buffers, in the order of the formula above (so the
        # rounding is the same as with temporaries): m, v, then the step.
        work, step_size = self._work(param, 2)
        exp_avg *= beta1
        exp_avg += xp.multiply(grad, 1 - beta1, out=work)
        exp_avg_sq *= beta2
        xp.multiply(grad, 1 - beta2, out=work)
        exp_avg_sq += xp.multiply(work, grad, out=work)
        if group["amsgrad"]:
            if "max_exp_avg_sq" not in state:  # amsgrad switched on mid-training
                state["max_exp_avg_sq"] = xp.zeros_like(param)
            xp.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
            second = state["max_exp_avg_sq"]
        else:
            second = exp_avg_sq
        denom = xp.sqrt(second, out=work)
        denom /= (1 - beta2 ** step) ** 0.5
        denom += group["eps"]
        xp.multiply(exp_avg, lr / (1 - beta1 ** step), out=step_size)
        step_size /= denom
        param -= step_size


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr *
    weight_decay before the Adam step, instead of adding an L2 gradient."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)
