"""NAC and NALU (Trask et al. 2018, "Neural Arithmetic Logic Units").

NAC:  W = tanh(W_hat) * sigmoid(M_hat);  a = x W^T (no bias), so W is pushed
      towards {-1, 0, 1} and the layer adds and subtracts its inputs.
NALU: g = sigmoid(x G^T);  m = exp(log(|x| + eps) W^T);  y = g * a + (1 - g) * m.
      The log-space path multiplies, divides and takes powers. By default the
      paper's single NAC weight W serves both paths; ``shared_weights=False``
      gives the log path its own NAC (a common variant that trains more easily).

Parameter names follow the paper: ``W_hat``, ``M_hat`` (shape (out, in), as
Linear's weight) and ``G`` for the gate.
"""
from nnlite import functional as F
from nnlite.nn import init
from nnlite.nn.linear import empty_parameter
from nnlite.nn.module import Module


def _check_features(op, name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{op}: {name} must be a positive int, got {value!r}")


class NAC(Module):
    """Neural accumulator: forward(x) = x @ (tanh(W_hat) * sigmoid(M_hat)).T for
    x of shape (..., in_features)."""

    def __init__(self, in_features, out_features, device=None, dtype=None):
        super().__init__()
        _check_features("NAC", "in_features", in_features)
        _check_features("NAC", "out_features", out_features)
        self.in_features, self.out_features = in_features, out_features
        self.W_hat = empty_parameter((out_features, in_features), device, dtype)
        self.M_hat = empty_parameter((out_features, in_features), device, dtype)
        self.reset_parameters()

    def reset_parameters(self):
        init.xavier_uniform_(self.W_hat)
        init.xavier_uniform_(self.M_hat)

    @property
    def weight(self):
        """The effective weight tanh(W_hat) * sigmoid(M_hat), (out, in)."""
        return F.tanh(self.W_hat) * F.sigmoid(self.M_hat)

    def forward(self, x):
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"NAC({self.in_features}, {self.out_features}): input of shape "
                             f"{tuple(x.shape)}; expected (..., {self.in_features})")
        return F.linear(x, self.weight)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}"


class NALU(Module):
    """Neural arithmetic logic unit: a gated mix of a NAC (add/subtract) and the
    same NAC in log space (multiply/divide). eps keeps log(|x| + eps) finite at 0.

    The log path's result is exp of a sum, so inputs far from 1 overflow in
    float32 as quickly as the products they compute would."""

    def __init__(self, in_features, out_features, eps=1e-7, shared_weights=True, device=None,
                 dtype=None):
        super().__init__()
        _check_features("NALU", "in_features", in_features)
        _check_features("NALU", "out_features", out_features)
        if not eps > 0:
            raise ValueError(f"NALU: eps must be > 0, got {eps!r}")
        self.in_features, self.out_features = in_features, out_features
        self.eps = float(eps)
        self.shared_weights = bool(shared_weights)
        self.nac = NAC(in_features, out_features, device, dtype)
        if not self.shared_weights:
            self.nac_log = NAC(in_features, out_features, device, dtype)
        self.G = empty_parameter((out_features, in_features), device, dtype)
        self.reset_parameters()

    def reset_parameters(self):
        init.xavier_uniform_(self.G)

    def forward(self, x):
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"NALU({self.in_features}, {self.out_features}): input of shape "
                             f"{tuple(x.shape)}; expected (..., {self.in_features})")
        gate = F.sigmoid(F.linear(x, self.G))
        added = self.nac(x)
        log_weight = self.nac.weight if self.shared_weights else self.nac_log.weight
        multiplied = F.exp(F.linear(F.log(F.abs(x) + self.eps), log_weight))
        return gate * added + (1 - gate) * multiplied

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"eps={self.eps}, shared_weights={self.shared_weights}")
