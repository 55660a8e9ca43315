"""Whole network: the attention reader (seed deep_reader, models/attention_reader.py:
19.6M parameters, 40x40 input, 5 steps of mask * image -> three valid 3x3
convs (16 channels) -> LSTMCell 18,496 -> 256 -> a sigmoid 40x40 mask head and
a 27-class head) reading a batch (N=32, eval mode, no gradient) and taking one
training step at the seed's batch (N=32: forward, the seed's masked
cross-entropy, backward, Adam 1e-3).

As models.py: PyTorch runs an independent replica with nnlite's weights
copied in; its inference output (the class logits and the 5 masks, both
compared) is the reference that nnlite's must match before either is timed.
The network has no dropout or batch statistics, so the first training step
of both gives the same loss (tests/test_bench.py checks it).
"""
import numpy as np
from nnlite.models import attention_reader as reader_model

import nnlite as nl
from bench.cases.models import ModelSetup, _SliceCache, load_nnlite_state, model_pair_cases
from bench.harness import primary_output, register

BATCHES = {"inference": (32,), "train step": (32,)}  # the seed's batch
TRAIN_REPEAT = {"cpu": 5, "cuda": 20}
INFER_REPEAT = {"cpu": 10, "cuda": 50}
LR = 1e-3  # the seed's Adam


def both_outputs(result):
    """(logits, masks) -> one flat array, so that the check covers the masks too."""
    return np.concatenate([primary_output(part).ravel() for part in result[:2]])


@register
def attention_cases(device, xp):
    return model_pair_cases(ReaderSetup(device), device, "attention reader", BATCHES,
                            INFER_REPEAT, TRAIN_REPEAT, output=both_outputs)


class ReaderSetup(ModelSetup):
    """The attention reader (a 19.6M-parameter LSTMCell) and its replica."""

    def __init__(self, device, seed=0, **options):
        super().__init__(device)
        self.seed = seed
        self.options = options  # AttentionReader's (tests: a smaller image_size)

    def _build_both(self):
        rng = np.random.default_rng(self.seed)
        nl.manual_seed(self.seed)
        self.model = reader_model.attention_reader(**self.options).to(self.device)
        self.optimizer = nl.optim.Adam(self.model.parameters(), lr=LR)
        n = max(BATCHES["inference"] + BATCHES["train step"])
        size, steps = self.model.image_size, self.model.steps
        self.images = rng.random((n, 1, size, size), dtype=np.float32)
        # Words of 1..steps-1 letters, padded with the terminal class (encode_words).
        self.targets = np.full((n, steps), reader_model.TERMINAL, dtype=np.int64)
        for row in self.targets:
            length = rng.integers(1, steps)
            row[:length] = rng.integers(0, reader_model.TERMINAL, size=length)
        self.inputs = _SliceCache(lambda k: nl.tensor(self.images[:k], device=self.device))
        if self.torch is not None:
            self._build_torch()

    def nnlite_loss(self, n):
        logits, _ = self.model(self.inputs[n])
        return reader_model.masked_cross_entropy(logits, self.targets[:n])

    # PyTorch's replica -------------------------------------------------------

    def _build_torch(self):
        torch = self.torch
        replica = load_nnlite_state(torch, _torch_reader(torch, self.model), self.model,
                                    "attention reader")
        self.replica = replica.to(self.device)
        self.torch_optimizer = torch.optim.Adam(self.replica.parameters(), lr=LR)
        self.torch_inputs = _SliceCache(
            lambda k: torch.from_numpy(self.images[:k].copy()).to(self.device))
        self.torch_targets = torch.from_numpy(self.targets).to(self.device)

    def torch_loss(self, n):
        logits, _ = self.replica(self.torch_inputs[n])
        return _torch_masked_cross_entropy(self.torch, logits, self.torch_targets[:n])


def _torch_masked_cross_entropy(torch, logits, targets):
    """The seed's loss in PyTorch: per-step cross-entropy up to and including
    the first terminal, summed, over ALL N x steps entries."""
    n, steps, classes = logits.shape
    terminal = targets == reader_model.TERMINAL
    first = torch.where(terminal.any(dim=1), terminal.int().argmax(dim=1),
                        torch.full_like(targets[:, 0], steps))
    position = torch.arange(steps, device=targets.device)[None, :]
    weights = (position <= first[:, None]).to(logits.dtype)
    per_entry = torch.nn.functional.cross_entropy(logits.reshape(n * steps, classes),
                                                  targets.reshape(-1), reduction="none")
    return (per_entry * weights.reshape(-1)).sum() / (n * steps)


def _torch_reader(torch, model):
    """models/attention_reader.py's AttentionReader in PyTorch, same parameter names."""
    nn = torch.nn
    channels = model.c1.out_channels
    size, steps = model.image_size, model.steps

    class Replica(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(1, channels, 3)
            self.c2 = nn.Conv2d(channels, channels, 3)
            self.c3 = nn.Conv2d(channels, channels, 3)
            self.lstm = nn.LSTMCell(model.feature_size, model.lstm.hidden_size)
            self.mask_head = nn.Linear(model.lstm.hidden_size, size * size)
            self.class_head = nn.Linear(model.lstm.hidden_size, model.num_classes)

        def forward(self, x):
            batch = x.shape[0]
            mask = torch.ones((batch, 1, size, size), dtype=x.dtype, device=x.device)
            state, logits, masks = None, [], []
            for _ in range(steps):
                masks.append(mask.reshape(batch, size, size))
                h = torch.relu(self.c1(x * mask))
                h = torch.relu(self.c2(h))
                h = torch.relu(self.c3(h))
                state = self.lstm(h.flatten(1), state)
                logits.append(self.class_head(state[0]))
                mask = torch.sigmoid(self.mask_head(state[0])).reshape(batch, 1, size, size)
            return torch.stack(logits, dim=1), torch.stack(masks, dim=1)

    return Replica()
