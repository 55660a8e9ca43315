"""Optimisers and learning-rate schedulers with PyTorch's names, options,
update equations and state_dict layout (``nl.optim.SGD`` ...)."""
from nnlite.optim import lr_scheduler
from nnlite.optim.adam import Adam, AdamW
from nnlite.optim.optimizer import Optimizer
from nnlite.optim.rmsprop import RMSprop
from nnlite.optim.sgd import SGD

__all__ = ["Adam", "AdamW", "Optimizer", "RMSprop", "SGD", "lr_scheduler"]
