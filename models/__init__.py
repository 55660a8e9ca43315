"""nnlite.models: the seed networks, one module per network (CharNet/DictNet,
CRNN, attention reader, NAC/NALU, digit sequences, SVHN), each with its
build(), preprocessing, loss, metrics and default training config.

Installed from the repository's top-level models/ folder as nnlite.models
(setup.py's package_dir). The networks arrive with the model issue; until
then this package holds none.
"""

# The registry: CLI name -> (builder, default input shape). The model issue
# fills it from each model module's MODELS / INPUT_SHAPES; until then it is
# empty (tests register entries through monkeypatch).
_REGISTRY = {}


def available():
    """The registered model names, sorted."""
    return sorted(_REGISTRY)


def get(name):
    """(builder, default input shape) of the model registered as `name`;
    a KeyError listing the available names otherwise."""
    if name not in _REGISTRY:
        names = ", ".join(available()) or "none registered"
        raise KeyError(f"unknown model {name!r}; available models: {names}")
    return _REGISTRY[name]
