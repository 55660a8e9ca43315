"""BatchNorm whose training statistics are those of the global batch.

By default (as in PyTorch) each rank's BatchNorm normalises with the
statistics of its own shard: cheap, but with small shards the statistics
are noisier, and a 2-rank run at batch B per rank is not the 1-process run
at 2B. ``convert_sync_batchnorm(model)`` swaps every BatchNorm for a
SyncBatchNorm that all-gathers, per channel, each rank's (count, mean,
sum of squared deviations) and combines them in rank order (Chan's
parallel variance, in float64: no E[x^2] - E[x]^2 cancellation). Backward
all-gathers the two per-channel sums the input gradient needs. Running
statistics then follow the global batch and agree on every rank.

Costs two small collectives (2C + 1 float64 each) per layer and step, on
the critical path: backward cannot go below such a layer before they return.
"""
import numpy as np

from nnlite import device as _device
from nnlite.distributed.group import init
from nnlite.functional.normalization import as_channel_column, channel_axes
from nnlite.nn.normalization import _BatchNorm
from nnlite.tensor import Function


def _combine_statistics(rows, channels):
    """Rows of (count, mean[C], M2[C]) per rank -> global (count, mean, M2)."""
    count, mean, m2 = 0.0, np.zeros(channels), np.zeros(channels)
    for row in rows:
        n, row_mean, row_m2 = row[0], row[1:1 + channels], row[1 + channels:]
        total = count + n
        delta = row_mean - mean
        mean = mean + delta * (n / total)
        m2 = m2 + row_m2 + delta * delta * (count * n / total)
        count = total
    return count, mean, m2


class SyncBatchNormTrain(Function):
    @staticmethod
    def forward(ctx, x, weight=None, bias=None, eps=1e-5, running=None, group=None):
        xp = _device.xp_of(x)
        axes, channels = channel_axes(x), x.shape[1]
        local = x.astype(np.float64)
        local_mean = local.mean(axis=axes)
        local_m2 = ((local - as_channel_column(local_mean, x.ndim)) ** 2).sum(axis=axes)
        row = np.concatenate([[x.size // channels], _device.to_numpy(local_mean),
                              _device.to_numpy(local_m2)])
        rows = group.allgather_rows(row, what="SyncBatchNorm statistics")
        count, mean, m2 = _combine_statistics(rows, channels)
        var = m2 / count
        if running is not None:
            running_mean, running_var, momentum = running
            running_mean[...] = (1 - momentum) * running_mean + \
                momentum * xp.asarray(mean, dtype=running_mean.dtype)
            running_var[...] = (1 - momentum) * running_var + \
                momentum * xp.asarray(var * (count / max(count - 1, 1)), dtype=running_var.dtype)
        mean = xp.asarray(mean, dtype=x.dtype)
        invstd = xp.asarray(1 / np.sqrt(var + eps), dtype=x.dtype)
        xhat = (x - as_channel_column(mean, x.ndim)) * as_channel_column(invstd, x.ndim)
        ctx.save_for_backward(xhat, invstd, weight)
        ctx.group, ctx.count = group, count
        y = xhat
        if weight is not None:
            y = y * as_channel_column(weight, x.ndim) + as_channel_column(bias, x.ndim)
        return y.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, gy):
        xhat, invstd, weight = ctx.saved_tensors
        group, ndim = ctx.group, gy.ndim
        axes, channels = channel_axes(gy), gy.shape[1]
        xp = _device.xp_of(gy)
        gxhat = gy * as_channel_column(weight, ndim) if weight is not None else gy
        sum_g = gxhat.sum(axis=axes, dtype=np.float64)
        sum_gx = (gxhat * xhat).sum(axis=axes, dtype=np.float64)
        # The loss is sum_r w_r * loss_r (w_r: rank r's share of the global
        # batch) and the Reducer multiplies this rank's parameter gradients
        # by its w_r afterwards, so the input gradient returned here is
        # d(loss)/dx / w_r, built from the w-weighted sums of every rank.
        w = float(group.grad_weight)
        row = np.concatenate([[w], w * _device.to_numpy(sum_g), w * _device.to_numpy(sum_gx)])
        rows = group.allgather_rows(row, what="SyncBatchNorm gradient sums")
        total = rows[0].copy()
        for other in rows[1:]:
            total += other
        mean_g = xp.asarray(total[1:1 + channels] / (ctx.count * w), dtype=gy.dtype)
        mean_gx = xp.asarray(total[1 + channels:] / (ctx.count * w), dtype=gy.dtype)
        gx = (gxhat - as_channel_column(mean_g, ndim)
              - xhat * as_channel_column(mean_gx, ndim)) * as_channel_column(invstd, ndim)
        needs = ctx.needs_input_grad
        gw = (gy * xhat).sum(axis=axes) if len(needs) > 1 and needs[1] else None
        gb = gy.sum(axis=axes) if len(needs) > 2 and needs[2] else None
        return gx.astype(gy.dtype, copy=False), gw, gb


class SyncBatchNorm(_BatchNorm):
    """BatchNorm over the global batch of every rank of `group` in training;
    the same as BatchNorm in evaluation or with one rank. Takes (N, C, ...)
    inputs like PyTorch's SyncBatchNorm (the BatchNorm it replaces keeps its
    own input check, see convert_sync_batchnorm)."""
    expected_dims = (2, 3, 4, 5)
    layout = "(N, C, ...)"

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, group=None, device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        object.__setattr__(self, "group", group)

    def forward(self, x):
        group = init() if self.group is None else self.group
        if not self.training or group.size == 1:
            return super().forward(x)
        self._check_input(x)
        momentum = 0.0 if self.momentum is None else self.momentum
        running = None
        if self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked.data)
            running = (self.running_mean.data, self.running_var.data, momentum)
        affine = () if self.weight is None else (self.weight, self.bias)
        return SyncBatchNormTrain.apply(x, *affine, eps=self.eps, running=running, group=group)

    @classmethod
    def convert_sync_batchnorm(cls, module, group=None):
        """`module` with every BatchNorm (1d, 2d) replaced by a SyncBatchNorm
        that shares its Parameters and buffers (an optimiser built before
        keeps working) and keeps its input check. Returns the new root when
        `module` itself is a BatchNorm."""
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            sync = cls(module.num_features, module.eps, module.momentum, module.affine,
                       module.track_running_stats, group)
            object.__setattr__(sync, "expected_dims", module.expected_dims)
            object.__setattr__(sync, "layout", module.layout)
            for name in ("weight", "bias"):
                sync._parameters[name] = module._parameters[name]
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                sync._buffers[name] = module._buffers[name]
            sync.train(module.training)
            return sync
        for name, child in list(module._modules.items()):
            if child is not None:
                module._modules[name] = cls.convert_sync_batchnorm(child, group)
        return module


convert_sync_batchnorm = SyncBatchNorm.convert_sync_batchnorm
