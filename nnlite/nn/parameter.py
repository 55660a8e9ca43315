"""Parameter: the Tensor a Module registers as trainable."""
import numpy as np

from nnlite.tensor import Tensor


class Parameter(Tensor):
    """A leaf Tensor that a Module registers as trainable.

    Built from a Tensor it shares that tensor's array, as PyTorch does."""

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = np.empty((0,), dtype=np.float32)
        raw = data.data if isinstance(data, Tensor) else data
        super().__init__(raw, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo):
        copied = Parameter(self.data.copy(), requires_grad=self.requires_grad)
        memo[id(self)] = copied
        return copied
