"""nnlite.training: the engine behind `nnlite train`.

- ``Trainer(model, optimizer, task, train_loader, val_loader, steps, out_dir, ...)``
  with ``fit(resume=False, overwrite=False)``: periodic evaluation, best/last
  checkpoints, metrics.json and curves.png, exact resume, Ctrl-C safe; a
  fresh run refuses an out_dir holding files (``RunExistsError``;
  ``check_run_directory`` checks ahead without writing).
- ``Task``: the protocol a model's job follows (loss, evaluate, metric_name,
  higher_is_better, optional predict); ``ClassificationTask`` and
  ``RegressionTask`` are ready-made ones; ``move_batch`` moves a batch's
  arrays to a device as Tensors.
- ``Recipe``: what a model module's ``training_recipe(...)`` returns for
  `nnlite train` (model, optimizer, scheduler, task, loaders, steps, eval_every).

Layering: imports nnlite.nn/optim/io/functional only, never nnlite.models
or nnlite.data (the CLI joins them).
"""
from nnlite.training.recipe import Recipe
from nnlite.training.task import ClassificationTask, RegressionTask, Task, move_batch
from nnlite.training.trainer import (BEST, CURVES, LAST, METRICS, RunExistsError, Trainer,
                                     check_run_directory)

__all__ = ["BEST", "CURVES", "ClassificationTask", "LAST", "METRICS", "Recipe",
           "RegressionTask", "RunExistsError", "Task", "Trainer", "check_run_directory",
           "move_batch"]
