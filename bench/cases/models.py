"""Whole networks: the seed CRNN (6.6M parameters, 1x32x128 input, T=31, 63
classes) and the compact CRNN that `nnlite train crnn` trains (the main job:
crnn_train.build_sized("compact"), 0.55M parameters, no dropout) reading a
batch (N=32 and N=1, eval mode, no gradient) and taking one training step
(N=32: forward, the seed's CTC loss, backward, Adam). The attention reader
and the digit-sequence model have modules of their own (models_attention,
models_digits), built the same way.

PyTorch runs a layer-for-layer replica with nnlite's weights copied in, so its
inference output is the reference that nnlite's must match before either is
timed: a second, independent implementation of the same network. The training
step has no reference (each step moves the weights; dropout draws differ), only
the time. These cases take seconds per run on a CPU, so they time a few rounds
(`Case.max_repeat`), not --repeat's, and run with --all or --filter model.
"""
import numpy as np
from nnlite.models import crnn as crnn_model

import nnlite as nl
from bench.harness import Case, Impl, device_sync, register, torch_or_none

BATCHES = {"inference": (32, 1), "train step": (32,)}
MAX_LABEL = 5  # the README main job's words: 1-5 characters
TRAIN_REPEAT = {"cpu": 5, "cuda": 20}
INFER_REPEAT = {"cpu": 10, "cuda": 50}


def _seed_crnn():
    return crnn_model.crnn()


def _compact_crnn():
    from nnlite.models import crnn_train  # imports the data pipeline: only when built
    return crnn_train.build_sized(size="compact")


# label -> the network's builder (the CRNN sizes benchmarked)
SIZES = {"seed": _seed_crnn, "compact": _compact_crnn}


@register
def model_cases(device, xp):
    cases = []
    for size, build in SIZES.items():
        cases += model_pair_cases(_LazySetup(device, build), device, f"{size} CRNN",
                                  BATCHES, INFER_REPEAT, TRAIN_REPEAT)
    return cases


def model_pair_cases(setup, device, label, batches, infer_repeat, train_repeat,
                     rtol=1e-3, atol=1e-3, output=None):
    """The "model inference" (checked against PyTorch's replica first) and
    "model train step" cases of one network, for a setup object with
    nnlite_infer(n), torch_infer(n), nnlite_step(n), torch_step(n), sync,
    torch_sync and torch (None without PyTorch). `output` (optional) turns
    an inference result into the array that is compared (default: the
    first output)."""
    extra = {} if output is None else {"output": output}
    cases = []
    for n in batches["inference"]:
        impls = [Impl("nnlite", lambda n=n: setup.nnlite_infer(n), setup.sync, **extra)]
        expected = None
        if setup.torch is not None:
            reference = Impl("torch", lambda n=n: setup.torch_infer(n), setup.torch_sync,
                             **extra)
            impls.append(reference)
            expected = (lambda reference=reference: reference.output(reference.run()))
        cases.append(Case("model inference", device, f"{label} N={n} float32", impls,
                          expected=expected, rtol=rtol, atol=atol,
                          max_repeat=infer_repeat[device], long=True))
    for n in batches["train step"]:
        impls = [Impl("nnlite", lambda n=n: setup.nnlite_step(n), setup.sync)]
        if setup.torch is not None:
            impls.append(Impl("torch", lambda n=n: setup.torch_step(n), setup.torch_sync))
        cases.append(Case("model train step", device, f"{label} N={n} Adam float32", impls,
                          max_repeat=train_repeat[device], long=True))
    return cases


def torch_sync_of(torch, device):
    return torch.cuda.synchronize if device == "cuda" and torch is not None else (lambda: None)


def load_nnlite_state(torch, replica, model, what):
    """Copies nnlite `model`'s state_dict into the PyTorch `replica` (same
    names and layouts); any parameter missing on either side is an error."""
    state = {k: torch.from_numpy(np.ascontiguousarray(v.numpy()))
             for k, v in model.state_dict().items()}
    missing, unexpected = replica.load_state_dict(state, strict=False)
    left = [k for k in missing if not k.endswith("num_batches_tracked")]
    if left or unexpected:
        raise RuntimeError(f"bench: the PyTorch {what} replica does not match nnlite's "
                           f"parameters: missing {left}, unexpected {unexpected}")
    return replica


class ModelSetup:
    """Both networks of a model case, built at first use, so that `--filter` on
    other cases never pays for them. A subclass builds them in _build_both
    (setting model, optimizer, inputs and, when torch is installed, replica,
    torch_optimizer, torch_inputs) and gives each library's loss of the first
    n samples (nnlite_loss, torch_loss); inference and the training step are
    the same for every model."""

    def __init__(self, device):
        self.device = device
        self.sync = device_sync(device)
        self.torch = torch_or_none()
        self.torch_sync = torch_sync_of(self.torch, device)
        self._built = False

    def _build(self):
        if not self._built:
            self._build_both()
            self._built = True

    def nnlite_infer(self, n):
        self._build()
        self.model.eval()
        with nl.no_grad():
            return self.model(self.inputs[n])

    def nnlite_step(self, n):
        self._build()
        self.model.train()
        self.optimizer.zero_grad()
        loss = self.nnlite_loss(n)
        loss.backward()
        self.optimizer.step()
        return loss

    def torch_infer(self, n):
        self._build()
        self.replica.eval()
        with self.torch.no_grad():
            return self.replica(self.torch_inputs[n])

    def torch_step(self, n):
        self._build()
        self.replica.train()
        self.torch_optimizer.zero_grad()
        loss = self.torch_loss(n)
        loss.backward()
        self.torch_optimizer.step()
        return loss


class _LazySetup(ModelSetup):
    """The CRNN (seed or compact size) and its replica."""

    def __init__(self, device, build=_seed_crnn):
        super().__init__(device)
        self.build_model = build

    def _build_both(self):
        rng = np.random.default_rng(0)
        nl.manual_seed(0)
        self.model = self.build_model().to(self.device)
        self.optimizer = nl.optim.Adam(self.model.parameters(), lr=1e-3)
        n = max(BATCHES["inference"] + BATCHES["train step"])
        self.images = rng.random((n, 1, crnn_model.INPUT_HEIGHT, crnn_model.INPUT_WIDTH),
                                 dtype=np.float32)
        self.lengths = rng.integers(1, MAX_LABEL + 1, size=n)
        self.targets = np.zeros((n, MAX_LABEL), dtype=np.int64)
        for row, length in zip(self.targets, self.lengths):
            row[:length] = rng.integers(0, self.model.num_classes - 1, size=length)
        self.inputs = _SliceCache(lambda k: nl.tensor(self.images[:k], device=self.device))
        if self.torch is not None:
            self._build_torch()

    def nnlite_loss(self, n):
        log_probs = self.model(self.inputs[n])
        return crnn_model.ctc_loss(log_probs, self.targets[:n], self.lengths[:n],
                                   blank=self.model.blank)

    # PyTorch's replica -------------------------------------------------------

    def _build_torch(self):
        torch = self.torch
        replica = load_nnlite_state(torch, _torch_crnn(torch, self.model), self.model, "CRNN")
        self.replica = replica.to(self.device)
        self.torch_optimizer = torch.optim.Adam(self.replica.parameters(), lr=1e-3)
        self.torch_inputs = _SliceCache(
            lambda k: torch.from_numpy(self.images[:k].copy()).to(self.device))
        self.torch_targets = torch.from_numpy(self.targets).to(self.device)
        self.torch_lengths = torch.from_numpy(self.lengths).to(self.device)

    def torch_loss(self, n):
        torch = self.torch
        log_probs = self.replica(self.torch_inputs[n])  # (N, T, C)
        t = log_probs.shape[1]
        # The seed's loss, as crnn_model.ctc_loss: CTC summed per sample, mean over the batch.
        return torch.nn.functional.ctc_loss(
            log_probs.transpose(0, 1), self.torch_targets[:n],
            torch.full((n,), t, dtype=torch.int64, device=log_probs.device),
            self.torch_lengths[:n], blank=self.model.blank, reduction="sum") / n


class _SliceCache(dict):
    """{batch size: the first k samples as a device tensor}, made at first use."""

    def __init__(self, make):
        super().__init__()
        self.make = make

    def __missing__(self, k):
        self[k] = value = self.make(k)
        return value


def _torch_crnn(torch, model):
    """models/crnn.py's CRNN in PyTorch, with the same parameter names."""
    nn = torch.nn
    for lstm in (model.blstm1, model.blstm2):
        if lstm.gate_activation != "sigmoid":
            raise NotImplementedError(f"bench: the PyTorch CRNN replica has sigmoid gates "
                                      f"only, not {lstm.gate_activation!r}")

    class Replica(nn.Module):
        def __init__(self):
            super().__init__()
            c = (model.in_channels,) + model.channels
            for i in range(1, 7):
                setattr(self, f"conv{i}", nn.Conv2d(c[i - 1], c[i], 3, padding=1))
            self.conv7 = nn.Conv2d(c[6], c[7], 2)
            self.bn5 = nn.BatchNorm2d(c[5], eps=model.bn5.eps, momentum=model.bn5.momentum)
            self.bn6 = nn.BatchNorm2d(c[6], eps=model.bn6.eps, momentum=model.bn6.momentum)
            hidden = model.blstm1.hidden_size
            self.blstm1 = nn.LSTM(c[7], hidden, bidirectional=True)
            self.blstm2 = nn.LSTM(2 * hidden, hidden, bidirectional=True)
            self.fc = nn.Linear(2 * hidden, model.num_classes)
            self.dropout = model.dropout

        def input_dropout(self, seq):  # one mask per sequence, as models/crnn.py
            if not self.training or self.dropout == 0:
                return seq
            keep = torch.ones((1,) + tuple(seq.shape[1:]), dtype=seq.dtype, device=seq.device)
            return seq * nn.functional.dropout(keep, self.dropout, True)

        def forward(self, x):
            relu, pool = torch.relu, nn.functional.max_pool2d
            x = pool(relu(self.conv1(x)), 2)
            x = pool(relu(self.conv2(x)), 2)
            x = relu(self.conv3(x))
            x = pool(relu(self.conv4(x)), (2, 1))
            x = self.bn5(relu(self.conv5(x)))
            x = pool(self.bn6(relu(self.conv6(x))), (2, 1))
            seq = relu(self.conv7(x)).squeeze(2).permute(2, 0, 1)  # (T, N, C)
            seq, _ = self.blstm1(self.input_dropout(seq))
            seq, _ = self.blstm2(self.input_dropout(seq))
            return torch.log_softmax(self.fc(seq), dim=2).transpose(0, 1)

    return Replica()
