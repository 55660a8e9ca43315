"""What a Trainer needs to know about a model's job: the Task protocol.

A task turns a batch into a loss and turns a validation loader into metrics.
It is the only place that knows what a batch holds, so it also moves the
batch to the model's device (``move_batch`` helps).

    class Task(Protocol):
        metric_name: str          # the key of evaluate()'s dict that picks best.h5
        higher_is_better: bool    # accuracy: True; error rate or loss: False

        def loss(self, model, batch) -> (Tensor, dict):
            # The scalar loss to backpropagate, and a dict of floats to log
            # beside it (e.g. {"accuracy": 0.5}); may be empty.

        def evaluate(self, model, loader) -> dict:
            # Metrics over the whole loader; must hold the key metric_name.
            # The Trainer calls it with model.eval() and under no_grad().

        def predict(self, model, batch):   # optional
            # The model's answers for a batch (texts, classes, ...).
"""
from typing import Protocol, runtime_checkable

import numpy as np

import nnlite as nl
import nnlite.functional as F
from nnlite import device as _device

__all__ = ["ClassificationTask", "RegressionTask", "Task", "check_task", "move_batch"]


@runtime_checkable
class Task(Protocol):
    """See the module docstring for the contract of each member."""
    metric_name: str
    higher_is_better: bool

    def loss(self, model, batch):
        ...

    def evaluate(self, model, loader):
        ...


def check_task(op, task):
    """A clear TypeError when `task` lacks a member of the Task protocol."""
    missing = [name for name in ("loss", "evaluate") if not callable(getattr(task, name, None))]
    missing += [name for name in ("metric_name", "higher_is_better") if not hasattr(task, name)]
    if missing:
        raise TypeError(f"{op}: task {type(task).__name__} does not follow the Task protocol "
                        f"(nnlite.training.Task): missing {', '.join(missing)}")
    if not isinstance(task.metric_name, str) or not task.metric_name:
        raise TypeError(f"{op}: task.metric_name must be a non-empty str, got "
                        f"{task.metric_name!r}")


def model_device(model):
    """The device of the model's first parameter ('cpu' for a parameter-free model)."""
    for param in model.parameters():
        return param.device
    return "cpu"


def move_batch(batch, device):
    """`batch` with every NumPy/CuPy array and Tensor moved to `device`, arrays
    wrapped as Tensors; tuples, lists and dicts are walked, anything else
    (strings, ints) is kept."""
    if isinstance(batch, nl.Tensor):
        return batch.to(device)
    if isinstance(batch, np.ndarray) or _device.is_device_array(batch):
        return nl.tensor(_device.move(batch, device))
    if isinstance(batch, tuple):
        return tuple(move_batch(item, device) for item in batch)
    if isinstance(batch, list):
        return [move_batch(item, device) for item in batch]
    if isinstance(batch, dict):
        return {key: move_batch(value, device) for key, value in batch.items()}
    return batch


class ClassificationTask:
    """Batches (inputs, class ids); cross-entropy loss; metric "accuracy"."""
    metric_name = "accuracy"
    higher_is_better = True

    def loss(self, model, batch):
        inputs, targets = move_batch(batch, model_device(model))
        logits = model(inputs)
        loss = F.cross_entropy(logits, targets)
        correct = float((logits.numpy().argmax(axis=-1) == targets.numpy()).mean())
        return loss, {"accuracy": correct}

    def evaluate(self, model, loader):
        total_loss, correct, count = 0.0, 0, 0
        for batch in loader:
            inputs, targets = move_batch(batch, model_device(model))
            logits = model(inputs)
            n = targets.shape[0]
            total_loss += F.cross_entropy(logits, targets).item() * n
            correct += int((logits.numpy().argmax(axis=-1) == targets.numpy()).sum())
            count += n
        if count == 0:
            raise ValueError("ClassificationTask.evaluate: the loader yielded no samples")
        return {"accuracy": correct / count, "loss": total_loss / count}

    def predict(self, model, batch):
        inputs = move_batch(batch[0] if isinstance(batch, (tuple, list)) else batch,
                            model_device(model))
        return model(inputs).numpy().argmax(axis=-1)


class RegressionTask:
    """Batches (inputs, targets); mean-squared-error loss; metric "mse" (lower is better)."""
    metric_name = "mse"
    higher_is_better = False

    def loss(self, model, batch):
        inputs, targets = move_batch(batch, model_device(model))
        return F.mse_loss(model(inputs), targets), {}

    def evaluate(self, model, loader):
        total, count = 0.0, 0
        for batch in loader:
            inputs, targets = move_batch(batch, model_device(model))
            n = targets.shape[0]
            total += F.mse_loss(model(inputs), targets).item() * n
            count += n
        if count == 0:
            raise ValueError("RegressionTask.evaluate: the loader yielded no samples")
        return {"mse": total / count}
