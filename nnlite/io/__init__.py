"""nnlite.io: reading and writing weights.

- ``save(path, model, optimizer=None, **meta)`` / ``load(path, model,
  optimizer=None)``: nnlite's own HDF5 checkpoints (parameters and buffers
  under their state-dict names, the optimiser's state so training resumes
  exactly, and JSON metadata such as step, epoch or config), with a CRC-32
  of every array. Writes are atomic: an interrupted save leaves the previous
  file intact. A load checks everything before it changes anything.
- ``CheckpointError``: a file that is not a usable nnlite checkpoint for this
  model (truncated, corrupt, foreign, or saved from another architecture).
- ``UnverifiedCheckpointWarning``: a format-1 checkpoint (no checksums) was
  loaded.
- ``load_matconvnet_npz(model, path)`` / ``save_matconvnet_npz``: MatConvNet
  arrays (the Jaderberg seed's npz dumps) into CharNet and DictNet.
- ``load_keras_h5(model, path)``: a Keras 2 .h5 weights or model file (the
  CRNN seed's ModelCheckpoint output) into nnlite's CRNN.

Importers of other frameworks' weights live in their own modules here and are
re-exported below.
"""
from nnlite.io.checkpoint import (FORMAT_NAME, FORMAT_VERSION, CheckpointError,
                                  UnverifiedCheckpointWarning, load, save)
from nnlite.io.keras import KerasImportError, load_keras_h5
from nnlite.io.matconvnet import load_matconvnet_npz, save_matconvnet_npz

__all__ = ["CheckpointError", "FORMAT_NAME", "FORMAT_VERSION", "KerasImportError",
           "UnverifiedCheckpointWarning", "load", "load_keras_h5", "load_matconvnet_npz", "save",
           "save_matconvnet_npz"]
