"""Building a model without allocating its parameters (PyTorch's meta device).

    with nl.nn.meta():
        model = jaderberg.dictnet()          # 491M parameters, no bytes allocated
    nl.summary(model, (1, 32, 100))          # shapes, counts, bytes, FLOPs, memory verdict
    nl.nn.materialize(model)                 # real arrays, each layer's own initialisation

Inside ``meta()`` every Parameter a layer creates (through
``nn.linear.empty_parameter``, which every layer uses) holds a
``nnlite.device.MetaArray``: its shape and dtype, no values. Initialisers
leave such parameters alone. Buffers (BatchNorm's running statistics) stay
real arrays: they are small, and a summary's forward needs them.

``Module.to_empty(device)`` swaps every meta parameter and buffer for an
uninitialised array of the same shape and dtype (np.empty: the bytes are the
parameter's, no more); ``materialize`` then calls each layer's
``reset_parameters``, so the result is initialised as a normal build would be
(from the same random stream only if built in the same order, which it is).
Loading a checkpoint after ``to_empty`` fills every parameter without a wasted
initialisation.
"""
import threading
from contextlib import contextmanager

_state = threading.local()


def building_meta():
    """True inside ``with nl.nn.meta():``."""
    return getattr(_state, "depth", 0) > 0


@contextmanager
def meta():
    """Within the block, new parameters are created on the meta device."""
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1


def has_meta(module):
    """True when any parameter or buffer of `module` is on the meta device."""
    from nnlite.device import is_meta
    return any(is_meta(t.data) for t in list(module.parameters()) + list(module.buffers()))


def materialize(module, device="cpu"):
    """Give every meta parameter and buffer of `module` a real array on
    `device` and initialise those layers with their ``reset_parameters``;
    returns the module. Layers without meta parameters are not touched."""
    from nnlite.device import is_meta
    targets = [m for m in module.modules()
               if any(is_meta(p.data) for p in m._parameters.values() if p is not None)]
    module.to_empty(device=device)
    for layer in targets:
        reset = getattr(layer, "reset_parameters", None)
        if callable(reset):
            reset()
    return module
