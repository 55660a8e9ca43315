"""Give each rank its piece of every global batch."""
import copy

from nnlite.distributed.group import init


def shard_loader(loader, group=None, keep_global_batch=True):
    """A copy of the nnlite.data.DataLoader `loader` for this rank of `group`.

    keep_global_batch=True (the CLI's rule): `loader.batch_size` is read as
    the GLOBAL batch, which must divide by the number of ranks; each rank
    takes batch_size / size samples of it, so a run on any number of ranks
    trains on the same batches as one process at that batch size.
    keep_global_batch=False (PyTorch's rule): each rank takes batch_size
    samples and the global batch grows with the ranks."""
    group = init() if group is None else group
    for attribute in ("num_replicas", "rank", "batch_size", "global_batch_size"):
        if not hasattr(loader, attribute):
            raise TypeError(f"shard_loader: {type(loader).__name__} is not an "
                            f"nnlite.data.DataLoader (it has no {attribute}); shard the "
                            f"data yourself by group.rank and group.size")
    if loader.num_replicas != 1:
        raise ValueError(f"shard_loader: the loader is already sharded over "
                         f"{loader.num_replicas} ranks")
    sharded = copy.copy(loader)
    if keep_global_batch:
        if loader.batch_size % group.size:
            raise ValueError(f"shard_loader: the global batch of {loader.batch_size} does not "
                             f"divide among {group.size} ranks; give a multiple of "
                             f"{group.size}")
        sharded.batch_size = loader.batch_size // group.size
    sharded.num_replicas, sharded.rank = group.size, group.rank
    sharded.last_shard_fraction = 1.0 / group.size
    return sharded
