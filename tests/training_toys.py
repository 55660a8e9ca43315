"""A toy classification problem for the training tests: an in-memory loader
with nnlite.data.DataLoader's interface (len, iteration from the current
position, state_dict/load_state_dict, set_epoch), a small MLP with BatchNorm
(buffers) and Dropout (random masks), and a Trainer factory."""
import numpy as np

from nnlite import nn, optim
from nnlite.training import ClassificationTask, Trainer

FEATURES, CLASSES = 8, 3


def toy_arrays(n, seed):
    """Inputs and labels from a fixed linear teacher, so the task is learnable."""
    teacher = np.random.default_rng(1234).standard_normal((FEATURES, CLASSES))
    x = np.random.default_rng(seed).standard_normal((n, FEATURES)).astype(np.float32)
    return x, (x @ teacher).argmax(axis=1).astype(np.int64)


class ArrayLoader:
    """Batches of (x, y) from arrays; shuffled per epoch by (seed, epoch)."""

    def __init__(self, x, y, batch_size, shuffle=True, seed=0):
        self.x, self.y, self.batch_size = x, y, batch_size
        self.shuffle, self.seed = shuffle, seed
        self.epoch, self.batch = 0, 0

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __iter__(self):
        order = (np.random.default_rng((self.seed, self.epoch)).permutation(len(self.x))
                 if self.shuffle else np.arange(len(self.x)))
        while self.batch < len(self):
            index = order[self.batch * self.batch_size:(self.batch + 1) * self.batch_size]
            self.batch += 1
            yield self.x[index], self.y[index]

    def state_dict(self):
        return {"seed": self.seed, "epoch": self.epoch, "batch": self.batch}

    def load_state_dict(self, state):
        self.seed, self.epoch, self.batch = state["seed"], state["epoch"], state["batch"]

    def set_epoch(self, epoch):
        self.epoch, self.batch = epoch, 0


def toy_model():
    return nn.Sequential(nn.Linear(FEATURES, 32), nn.BatchNorm1d(32), nn.ReLU(),
                         nn.Dropout(0.3), nn.Linear(32, CLASSES))


def toy_loaders(batch=32, train_size=256, val_size=128):
    train = ArrayLoader(*toy_arrays(train_size, seed=1), batch_size=batch, seed=7)
    val = ArrayLoader(*toy_arrays(val_size, seed=2), batch_size=64, shuffle=False)
    return train, val


def toy_trainer(out_dir, steps, task=None, init_seed=0, **options):
    """A fresh model, Adam, StepLR, loaders and Trainer; `init_seed` seeds the
    weights, so a resumed trainer can start from different ones."""
    import nnlite as nl
    nl.manual_seed(init_seed)
    model = toy_model()
    optimizer = optim.Adam(model.parameters(), lr=0.02)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=4, gamma=0.7)
    train, val = toy_loaders()
    options.setdefault("eval_every", 4)
    options.setdefault("log_every", 1)
    options.setdefault("progress", False)
    return Trainer(model, optimizer, task or ClassificationTask(), train, val, steps=steps,
                   out_dir=out_dir, scheduler=scheduler, **options)


def parameters(trainer):
    return {name: p.numpy().copy() for name, p in trainer.model.state_dict().items()}
