"""A model module for the data-parallel tests (tests/test_distributed_mpi.py):
a small MLP with BatchNorm (and Dropout when DTOY_DROPOUT is set) on the toy
classification problem, behind a real nnlite.data.DataLoader, so that
`nnlite train dtoy` runs under mpiexec in a second or two.

NNLITE_TEST_FAIL="RANK,STEP,MODE" makes rank RANK fail inside step STEP:
MODE "raise" raises, "hang" sleeps for an hour, "exit" leaves at once
through MPI_Finalize (the others are left waiting). DTOY_STEP_SECONDS slows
every step down and DTOY_MARK names a file created at step 2 (the Ctrl-C
test)."""
import os
import sys
import time

import numpy as np

import nnlite as nl
from nnlite import nn, optim
from nnlite.data import DataLoader
from nnlite.training import ClassificationTask, Recipe

from training_toys import CLASSES, FEATURES, toy_arrays

TRAIN_SIZE = 101      # 6 global batches of 16 and a last one of 5 (cut 3 + 2 on 2 ranks)
BATCH = 16
MODELS = {}           # the models built in this process, for the driver's checks


class ArrayDataset:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        return self.x[index], self.y[index]


def build():
    dropout = float(os.environ.get("DTOY_DROPOUT", "0"))
    # no bias before BatchNorm: its gradient is exactly zero, rounding noise that
    # Adam would blow up into +-lr steps differing between runs of any layout
    layers = [nn.Linear(FEATURES, 32, bias=False), nn.BatchNorm1d(32), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers, nn.Linear(32, CLASSES))


class FailingTask(ClassificationTask):
    def __init__(self):
        self.calls = 0

    def loss(self, model, batch):
        self.calls += 1
        time.sleep(float(os.environ.get("DTOY_STEP_SECONDS", "0")))
        mark = os.environ.get("DTOY_MARK")
        if mark and self.calls == 2:
            open(mark, "w").close()
        fail = os.environ.get("NNLITE_TEST_FAIL")
        if fail:
            rank, step, mode = fail.split(",")
            from nnlite import distributed
            if distributed.get_rank() == int(rank) and self.calls == int(step):
                if mode == "raise":
                    raise RuntimeError("injected failure")
                if mode == "hang":
                    time.sleep(3600)
                if mode == "exit":
                    sys.stdout.flush()
                    sys.exit(0)
        return super().loss(model, batch)


def training_recipe(data="synth", batch=None, seed=0, device="cpu"):
    nl.manual_seed(seed)
    model = build()
    MODELS["last"] = model
    optimizer = optim.Adam(model.parameters(), lr=0.02)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=4, gamma=0.7)
    train = DataLoader(ArrayDataset(*toy_arrays(TRAIN_SIZE, seed=1)), batch_size=batch or BATCH,
                       shuffle=True, seed=seed + 7, prefetch=0)
    val = DataLoader(ArrayDataset(*toy_arrays(64, seed=2)), batch_size=32, prefetch=0)
    return Recipe(model, optimizer, scheduler, FailingTask(), train, val, steps=12,
                  eval_every=4, log_every=2)


def parameter_vector(model):
    return np.concatenate([v.numpy().ravel().astype(np.float64)
                           for v in model.state_dict().values()])
