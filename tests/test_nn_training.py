"""Smoke runs: small networks learn toy problems in well under a second."""
import numpy as np

import nnlite as nl
import nnlite.functional as F
from nnlite import nn, optim


def xor_blobs(n=256, seed=0):
    """Four Gaussian blobs at (+-1, +-1); the class is the XOR of the signs,
    so no linear model can separate them."""
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(n, 2))
    x = signs + 0.25 * rng.standard_normal((n, 2))
    y = (signs[:, 0] != signs[:, 1]).astype(np.int64)
    return nl.tensor(x.astype(np.float32)), nl.tensor(y)


def accuracy(logits, y):
    return float((logits.numpy().argmax(axis=1) == y.numpy()).mean())


def test_mlp_learns_xor_blobs_with_adam():
    nl.manual_seed(0)
    x, y = xor_blobs()
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    optimizer = optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(200):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0], f"loss {losses[0]:.3f} -> {losses[-1]:.3f}"
    test_x, test_y = xor_blobs(seed=1)
    with nl.no_grad():
        assert accuracy(model.eval()(test_x), test_y) > 0.9


def test_batchnorm_dropout_mlp_learns_with_nesterov_sgd_and_step_lr():
    nl.manual_seed(1)
    x, y = xor_blobs(seed=2)
    model = nn.Sequential(nn.Linear(2, 32, init="glorot"), nn.BatchNorm1d(32), nn.ReLU(),
                          nn.Dropout(0.1), nn.Linear(32, 2, init="glorot"))
    optimizer = optim.SGD(model.parameters(), lr=0.2, momentum=0.9, nesterov=True)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=100, gamma=0.5)
    criterion = nn.CrossEntropyLoss()
    first = None
    for _ in range(150):
        for batch in range(4):  # mini-batches, so the running statistics matter in eval
            rows = slice(64 * batch, 64 * (batch + 1))
            optimizer.zero_grad()
            loss = criterion(model(x[rows]), y[rows])
            loss.backward()
            optimizer.step()
            first = loss.item() if first is None else first
        scheduler.step()
    assert loss.item() < 0.3 * first
    assert scheduler.get_last_lr() == [0.1]
    test_x, test_y = xor_blobs(seed=3)
    with nl.no_grad():
        assert accuracy(model.eval()(test_x), test_y) > 0.9
