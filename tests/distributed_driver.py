"""Run under mpiexec (or alone) by tests/test_distributed_mpi.py.

    distributed_driver.py cli ARGS...     `nnlite ARGS` with the test model
        'dtoy' registered; afterwards every rank's state_dict ("weights":
        parameters and buffers) and parameters are compared, rank 0 prints
        "weights agree on N ranks" (or DIFFER) and "parameters agree ...",
        and saves the weights to $DTOY_WEIGHTS (an .npy file) when set.
    distributed_driver.py broadcast       ranks build the model from different
        seeds; after broadcast_parameters rank 0 prints whether they agree.
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
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
