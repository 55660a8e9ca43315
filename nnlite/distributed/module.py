"""DistributedDataParallel as a Module: ``DistributedDataParallel(model)``
broadcasts rank 0's parameters and buffers, then each training forward
prepares a gradient reduction (and, with broadcast_buffers=True, PyTorch's
default, first copies rank 0's buffers, such as BatchNorm's running
statistics, to every rank). Its state_dict keys carry the ``module.``
prefix, as PyTorch's do; save ``ddp.module`` to keep the plain names."""
from nnlite.distributed.group import init
from nnlite.distributed.reducer import DEFAULT_BUCKET_MB, Reducer, broadcast_parameters
from nnlite.nn.module import Module
from nnlite.tensor import is_grad_enabled


class DistributedDataParallel(Module):
    def __init__(self, module, group=None, bucket_cap_mb=DEFAULT_BUCKET_MB, reduction="ordered",
                 transport="auto", broadcast_buffers=True):
        super().__init__()
        self.module = module
        group = init() if group is None else group
        object.__setattr__(self, "group", group)
        object.__setattr__(self, "broadcast_buffers", bool(broadcast_buffers))
        broadcast_parameters(module, group=group)
        object.__setattr__(self, "reducer", Reducer(module.parameters(), group, bucket_cap_mb,
                                                    reduction, transport))

    def forward(self, *args, weight=None, **kwargs):
        """`weight`: this rank's share of the global batch (default 1/size)."""
        if self.training and is_grad_enabled() and self.group.size > 1:
            if self.broadcast_buffers:
                buffers = [b.data for b in self.module.buffers() if b is not None]
                self.group.broadcast_arrays(buffers, what="the broadcast of the buffers")
            self.reducer.prepare(weight)
        return self.module(*args, **kwargs)

    def no_sync(self):
        return self.reducer.no_sync()
