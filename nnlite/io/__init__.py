"""nnlite.io: checkpoints and weight import (HDF5 through h5py)."""
from nnlite.io.keras import KerasImportError, load_keras_h5  # noqa: F401
