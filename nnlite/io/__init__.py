"""nnlite.io: checkpoints and weight import from other frameworks."""
from nnlite.io.matconvnet import load_matconvnet_npz, save_matconvnet_npz  # noqa: F401
