"""What a model module's ``training_recipe(data, batch, seed, device)``
returns: everything `nnlite train` needs to run one model's default training."""
from dataclasses import dataclass
from typing import Any, Optional


@dataclass
class Recipe:
    model: Any                   # an nnlite.nn.Module
    optimizer: Any               # an nnlite.optim.Optimizer over model's parameters
    scheduler: Optional[Any]     # an lr scheduler stepped once per optimiser step, or None
    task: Any                    # follows nnlite.training.Task
    train_loader: Any            # nnlite.data.DataLoader (or the same interface)
    val_loader: Optional[Any]    # the fixed validation loader, or None
    steps: int                   # default number of optimiser steps
    eval_every: int              # default evaluation interval in steps
    log_every: int = 10          # training-loss logging interval in steps
