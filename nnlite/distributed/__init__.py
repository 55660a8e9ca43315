"""Data-parallel training across processes and machines, on MPI.

    mpiexec -n 2 nnlite train crnn            # the CLI does all of this itself

    import nnlite.distributed as dist
    group = dist.init()                  # rank/size under mpiexec; 1 process otherwise
    dist.broadcast_parameters(model)     # rank 0's weights and buffers everywhere
    loader = dist.shard_loader(loader)   # each rank its piece of every global batch
    reducer = dist.Reducer(model.parameters())   # bucketed, overlapped all-reduce
    model = dist.convert_sync_batchnorm(model)   # optional: global-batch BatchNorm

or, PyTorch's way, ``ddp = dist.DistributedDataParallel(model)``. Without
mpi4py, or run without a launcher, everything above works on one process
and communicates nothing. docs/distributed.md has the design, the costs
and the measurements.
"""
from nnlite.distributed.group import (CollectiveTimeout, MPIGroup, SingleProcess, get_rank,
                                      get_world_size, init, is_distributed, launched_size)
from nnlite.distributed.reducer import DEFAULT_BUCKET_MB, Reducer, broadcast_parameters
from nnlite.distributed.transport import MPITransport, NCCLTransport, choose_transport
from nnlite.distributed.module import DistributedDataParallel
from nnlite.distributed.sync_batchnorm import SyncBatchNorm, convert_sync_batchnorm
from nnlite.distributed.sharding import shard_loader

__all__ = ["CollectiveTimeout", "DEFAULT_BUCKET_MB", "DistributedDataParallel", "MPIGroup",
           "MPITransport", "NCCLTransport", "Reducer", "SingleProcess", "SyncBatchNorm",
           "broadcast_parameters", "choose_transport", "convert_sync_batchnorm",
           "get_rank", "get_world_size", "init", "is_distributed", "launched_size",
           "shard_loader"]
