"""F.linear: y = x W^T + b, with W stored (out_features, in_features) as in
PyTorch, so weights move between the two libraries unchanged."""
from nnlite.device import xp_of
from nnlite.functional.gemm import gemm
from nnlite.tensor import Function


class Linear(Function):
    @staticmethod
    def forward(ctx, x, weight, bias=None):
        if weight.ndim != 2:
            raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got "
                             f"shape {tuple(weight.shape)}")
        if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
            raise ValueError(
                f"linear: input of shape {tuple(x.shape)} does not match weight of shape "
                f"{tuple(weight.shape)}; expected input (..., {weight.shape[1]})")
        if bias is not None and tuple(bias.shape) != (weight.shape[0],):
            raise ValueError(f"linear: bias of shape {tuple(bias.shape)} does not match "
                             f"weight; expected ({weight.shape[0]},)")
        if x.dtype != weight.dtype:
            raise TypeError(f"linear: input is {x.dtype} but weight is {weight.dtype}; "
                            f"convert one (model.double() or x.float())")
        ctx.save_for_backward(x, weight)
        # as 2-D GEMMs (functional.gemm: no BLAS threads meeting at barriers)
        y = gemm(xp_of(x), x.reshape(-1, x.shape[-1]), weight.T)
        y = y.reshape(x.shape[:-1] + (weight.shape[0],))
        return y + bias if bias is not None else y

    @staticmethod
    def backward(ctx, gy):
        x, weight = ctx.saved_tensors
        xp = xp_of(gy)
        gy2 = gy.reshape(-1, gy.shape[-1])
        gx = gemm(xp, gy2, weight).reshape(x.shape) if ctx.needs_input_grad[0] else None
        gw = gemm(xp, gy2.T, x.reshape(-1, x.shape[-1])) if ctx.needs_input_grad[1] else None
        gb = gy2.sum(axis=0) if len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2] \
            else None
        return gx, gw, gb


def linear(x, weight, bias=None):
    """y = x @ weight.T + bias; weight is (out_features, in_features)."""
    if bias is None:
        return Linear.apply(x, weight)
    return Linear.apply(x, weight, bias)
