"""Run under mpiexec (or alone) by tests/test_distributed_mpi.py.

    distributed_driver.py cli ARGS...     `nnlite ARGS` with the test model
        'dtoy' registered; afterwards every rank's state_dict ("weights":
        parameters and buffers) and parameters are compared, rank 0 prints
        "weights agree on N ranks" (or DIFFER) and "parameters agree ...",
        and saves the weights to $DTOY_WEIGHTS (an .npy file) when set.
    distributed_driver.py broadcast       ranks build the model from different
        seeds; after broadcast_parameters rank 0 prints whether they agree.
    distributed_driver.py ddp             3 SGD steps through
        DistributedDataParallel on each rank's half of a batch; rank 0 prints
        whether the ranks agree and how far they are from one process on the
        whole batch.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import distributed_recipe  # noqa: E402
import nnlite as nl  # noqa: E402
from nnlite import cli, distributed, models  # noqa: E402


def agree(group, vector, label):
    vectors = group.gather_object(vector, root=0, what="the weights check")
    if group.rank == 0:
        same = all(np.array_equal(v, vectors[0]) for v in vectors)
        print(f"{label} {'agree' if same else 'DIFFER'} on {group.size} ranks", flush=True)
        path = os.environ.get("DTOY_WEIGHTS")
        if path and label == "weights":
            np.save(path, vectors[0])


def main(argv):
    models._registry()
    models._REGISTRY["dtoy"] = (distributed_recipe.build, (8,))
    mode, rest = argv[0], argv[1:]
    group = distributed.init()
    if mode == "cli":
        status = cli.main(rest)
        if status == 0 and "last" in distributed_recipe.MODELS:
            model = distributed_recipe.MODELS["last"]
            agree(group, distributed_recipe.parameter_vector(model), "weights")
            agree(group, np.concatenate([p.numpy().ravel() for p in model.parameters()]),
                  "parameters")
        return status
    if mode == "broadcast":
        nl.manual_seed(100 + group.rank)
        model = distributed_recipe.build()
        before = distributed_recipe.parameter_vector(model)
        distributed.broadcast_parameters(model, group=group)
        agree(group, before, "initial weights before the broadcast")
        agree(group, distributed_recipe.parameter_vector(model), "weights after the broadcast")
        return 0
    if mode == "ddp":
        return ddp_steps(group)
    raise SystemExit(f"unknown mode {mode}")


def ddp_steps(group):
    import nnlite.functional as F
    from nnlite import nn, optim

    def build():
        nl.manual_seed(5)
        return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))

    x, y = distributed_recipe.toy_arrays(24, seed=3)
    half = len(x) // group.size
    model = build()
    ddp = distributed.DistributedDataParallel(model, bucket_cap_mb=1e-3)
    opt = optim.SGD(ddp.parameters(), lr=0.5, momentum=0.9)
    reference = build()
    ref_opt = optim.SGD(reference.parameters(), lr=0.5, momentum=0.9)
    lo, hi = group.rank * half, (group.rank + 1) * half
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(ddp(nl.tensor(x[lo:hi])), y[lo:hi]).backward()
        opt.step()
        ref_opt.zero_grad()
        F.cross_entropy(reference(nl.tensor(x)), y).backward()
        ref_opt.step()
    params = np.concatenate([p.numpy().ravel() for p in model.parameters()])
    agree(group, params, "ddp parameters")
    if group.rank == 0:
        expected = np.concatenate([p.numpy().ravel() for p in reference.parameters()])
        print(f"ddp distance to one process {np.abs(params - expected).max():.3g}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
