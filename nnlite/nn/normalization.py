"""BatchNorm1d and BatchNorm2d with PyTorch's buffers and momentum rule.

Keras's BatchNormalization(momentum=0.99, epsilon=1e-3) is
BatchNorm2d(C, eps=1e-3, momentum=0.01) here.
"""
import numpy as np

from nnlite import device as _device
from nnlite import functional as F
from nnlite.nn import init
from nnlite.nn.linear import empty_parameter
from nnlite.nn.module import Module
from nnlite.tensor import Tensor


class _BatchNorm(Module):
    expected_dims = ()
    layout = ""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) \
                or num_features <= 0:
            raise ValueError(f"{name}: num_features must be a positive int, got "
                             f"{num_features!r}")
        if eps <= 0:
            raise ValueError(f"{name}: eps must be > 0, got {eps}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{name}: momentum must be in [0, 1] or None (cumulative "
                             f"average), got {momentum}")
        self.num_features = int(num_features)
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = empty_parameter((num_features,), device, dtype)
            self.bias = empty_parameter((num_features,), device, dtype)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            xp = _device.xp("cpu" if device is None else device)
            dtype = np.float32 if dtype is None else dtype
            self.register_buffer("running_mean", Tensor(xp.zeros(num_features, dtype=dtype)))
            self.register_buffer("running_var", Tensor(xp.ones(num_features, dtype=dtype)))
            self.register_buffer("num_batches_tracked", Tensor(xp.zeros((), dtype=np.int64)))
        else:
            for buffer in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(buffer, None)
        self.reset_parameters()

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self):
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def _check_input(self, x):
        name = type(self).__name__
        if x.ndim not in self.expected_dims:
            raise ValueError(f"{name}: expected {self.layout} input, got {x.ndim}-D input "
                             f"of shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{name}({self.num_features}): input of shape {x.shape} has "
                             f"{x.shape[1]} channels in dim 1, expected {self.num_features}")

    def forward(self, x):
        self._check_input(x)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1  # in place: state_dict views see it
            if self.momentum is None:  # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked.data)
        # Batch statistics in training, and always when no running ones exist.
        use_batch_stats = self.training or self.running_mean is None
        update_running = not self.training or self.track_running_stats
        return F.batch_norm(
            x,
            self.running_mean if update_running else None,
            self.running_var if update_running else None,
            self.weight, self.bias, use_batch_stats, momentum, self.eps)

    def _optional_state_keys(self):
        # Checkpoints written before the counter existed (and Keras imports) lack it.
        return {"num_batches_tracked": 0} if self.track_running_stats else {}

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Over (N, C) or (N, C, L) inputs, statistics per channel C."""
    expected_dims = (2, 3)
    layout = "2-D (N, C) or 3-D (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Over (N, C, H, W) inputs, statistics per channel C."""
    expected_dims = (4,)
    layout = "4-D (N, C, H, W)"
