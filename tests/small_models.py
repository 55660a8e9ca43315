"""Small models assembled from nnlite layers for the checkpoint and summary
tests: convolution, BatchNorm (running-statistics buffers), pooling, a
bidirectional LSTM and a Linear head, so every kind of state is exercised."""
import numpy as np

import nnlite as nl
import nnlite.functional as F
from nnlite import nn

INPUT_SHAPE = (1, 8, 12)  # (C, H, W); the LSTM runs over the 6 pooled columns


class ConvLSTMNet(nn.Module):
    def __init__(self, hidden=8, classes=5):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4),
                                      nn.ReLU(), nn.MaxPool2d(2))
        self.rnn = nn.LSTM(4 * 4, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, classes)

    def forward(self, x):
        f = self.features(x)                       # (N, 4, 4, 6)
        n, c, h, w = f.shape
        sequence = f.permute(0, 3, 1, 2).reshape(n, w, c * h)
        out, _ = self.rnn(sequence)                # (N, 6, 2 * hidden)
        return self.head(out)                      # (N, 6, classes)


def batch(n=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n,) + INPUT_SHAPE).astype(np.float32)
    y = rng.integers(0, 5, size=(n * 6,))
    return nl.tensor(x), nl.tensor(y)


def train_steps(model, optimizer, steps, first_seed):
    """`steps` optimiser steps on fresh deterministic batches; dropout-free, so
    the result depends only on the weights, the optimiser state and the seeds."""
    model.train()
    for step in range(steps):
        x, y = batch(seed=first_seed + step)
        optimizer.zero_grad()
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y)
        loss.backward()
        optimizer.step()
