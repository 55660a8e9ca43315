"""nnlite.models: the seed networks, one module per network (CharNet/DictNet,
CRNN, attention reader, NAC/NALU, digit sequences, SVHN), each with its
build(), preprocessing, loss, metrics and default training config.

Installed from the repository's top-level models/ folder as nnlite.models
(setup.py's package_dir). The networks arrive with the model issue; until
then this package holds none.
"""
