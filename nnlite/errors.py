"""Exceptions that are part of nnlite's API.

Every error names the operation, what it was given and what it expected; these
classes exist where a caller may want to catch one kind of failure on its own.
"""


class OutOfMemoryError(MemoryError):
    """A device allocation would exceed nnlite's memory budget
    (``nnlite.cuda.set_memory_limit`` / ``NNLITE_GPU_MEMORY_LIMIT``)."""


class GradcheckError(AssertionError):
    """``nnlite.gradcheck`` found an analytic gradient that disagrees with
    central differences."""


class AnomalyError(FloatingPointError):
    """With ``nnlite.set_detect_anomaly(True)``, an op produced NaN (forward
    or backward); the message names the op."""


class DeviceMismatchError(RuntimeError):
    """An op received tensors that live on different devices."""


class InvalidNameError(KeyError, ValueError):
    """A parameter, buffer or sub-module name that cannot be registered: empty,
    containing "." (the separator of state-dict keys) or "/" (the separator of
    HDF5 paths, so the checkpoint could never be loaded), or the name of an
    attribute the module already has. A KeyError, as PyTorch raises for "."
    and clashes, and a ValueError, as it is a bad value."""

    def __str__(self):  # KeyError would show the message in quotes
        return str(self.args[0]) if self.args else ""
