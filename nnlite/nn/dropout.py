"""Dropout, active only in training mode."""
from nnlite import functional as F
from nnlite.nn.module import Module


class Dropout(Module):
    """Zeroes each element with probability p in training and scales the rest
    by 1 / (1 - p); the identity in eval mode."""

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)
        self.inplace = inplace  # accepted for PyTorch code; the result is always new

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"
