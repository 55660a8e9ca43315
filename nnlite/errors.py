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
