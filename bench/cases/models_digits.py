"""Whole network: the digit-sequence model (seed 004, models/digit_sequence.py:
4.16M parameters, 1x128x256 input, same-padded convs 10x10/8x8/6x6/4x4/2x2
each with ReLU and a 2x2 max pool, TensorFlow's GRUCell 1024 -> 576 run 5
steps with a linear 576 -> 11 per step, and a 1024 -> ... -> 4 box head)
reading a batch (N=50, eval mode, no gradient) and taking one training step
at the seed's batch (N=50: forward, the weighted loss 1000 * CE + MSE(box),
backward, Adam 1e-4).

As models.py: PyTorch runs an independent replica with nnlite's weights
copied in; its inference output (digit logits and box, both compared) is the
reference that nnlite's must match before either is timed. The replica pads
the even kernels as nnlite's "same" does (the odd pixel at the bottom/right,
TensorFlow's split) and writes TensorFlow's GRU cell out (reset gate before
the candidate's recurrent matmul; PyTorch's nn.GRUCell applies it after).
"""
import numpy as np
from nnlite.models import digit_sequence as digits_model

import nnlite as nl
from bench.cases.models import ModelSetup, _SliceCache, load_nnlite_state, model_pair_cases
from bench.cases.models_attention import both_outputs
from bench.harness import register

BATCHES = {"inference": (50,), "train step": (50,)}  # the seed's batch
TRAIN_REPEAT = {"cpu": 4, "cuda": 20}
INFER_REPEAT = {"cpu": 6, "cuda": 50}
LR = 1e-4      # the seed's Adam
VARIANT = "weighted"
WEIGHT = 1000.0  # the weighted loss's cross-entropy factor


@register
def digit_cases(device, xp):
    return model_pair_cases(DigitsSetup(device), device, "digit sequence", BATCHES,
                            INFER_REPEAT, TRAIN_REPEAT, output=both_outputs)


class DigitsSetup(ModelSetup):
    """The digit-sequence model and its replica."""

    def __init__(self, device, seed=0, **options):
        super().__init__(device)
        self.seed = seed
        self.options = options  # digit_sequence's (deeper, box_dropout, reset_after)

    def _build_both(self):
        rng = np.random.default_rng(self.seed)
        nl.manual_seed(self.seed)
        self.model = digits_model.digit_sequence(**self.options).to(self.device)
        self.optimizer = nl.optim.Adam(self.model.parameters(), lr=LR)
        n = max(BATCHES["inference"] + BATCHES["train step"])
        height, width = digits_model.INPUT_SHAPE[1:]
        self.images = rng.random((n,) + digits_model.INPUT_SHAPE, dtype=np.float32)
        self.labels = rng.integers(0, 10, size=(n, digits_model.NUM_DIGITS))  # five digits
        # [x_center, y_center, h, w] of a 28x140 strip somewhere on the canvas
        self.boxes = np.stack([rng.uniform(70, width - 70, n), rng.uniform(14, height - 14, n),
                               np.full(n, 28.0), np.full(n, 140.0)], axis=1).astype(np.float32)
        self.inputs = _SliceCache(lambda k: nl.tensor(self.images[:k], device=self.device))
        if self.torch is not None:
            self._build_torch()

    def nnlite_loss(self, n):
        outputs = self.model(self.inputs[n])
        total, _, _ = digits_model.loss(outputs, self.labels[:n], self.boxes[:n],
                                        variant=VARIANT)
        return total

    # PyTorch's replica -------------------------------------------------------

    def _build_torch(self):
        torch = self.torch
        replica = load_nnlite_state(torch, _torch_digits(torch, self.model), self.model,
                                    "digit-sequence")
        self.replica = replica.to(self.device)
        self.torch_optimizer = torch.optim.Adam(self.replica.parameters(), lr=LR)
        self.torch_inputs = _SliceCache(
            lambda k: torch.from_numpy(self.images[:k].copy()).to(self.device))
        self.torch_labels = torch.from_numpy(self.labels).to(self.device)
        self.torch_boxes = torch.from_numpy(self.boxes).to(self.device)

    def torch_loss(self, n):
        functional = self.torch.nn.functional
        digit_logits, box = self.replica(self.torch_inputs[n])
        # The seed's weighted loss: 1000 * mean CE over batch and positions + MSE(box).
        ce = functional.cross_entropy(digit_logits.permute(0, 2, 1), self.torch_labels[:n])
        return WEIGHT * ce + functional.mse_loss(box, self.torch_boxes[:n])


def _torch_digits(torch, model):
    """models/digit_sequence.py's DigitSequenceNet in PyTorch, same parameter names."""
    nn = torch.nn
    functional = nn.functional
    shapes = []
    for conv in model.convs:
        if conv.padding != "same" or tuple(conv.stride) != (1, 1) or \
                tuple(conv.dilation) != (1, 1):
            raise NotImplementedError("bench: the digit-sequence replica has stride-1 "
                                      "'same' convolutions only")
        shapes.append(tuple(conv.weight.shape))  # (out, in, kh, kw)
    gru = model.gru
    if gru.gate_activation != "sigmoid":
        raise NotImplementedError("bench: the digit-sequence replica has sigmoid GRU gates only")

    class TensorFlowGRUCell(nn.Module):
        """tf.contrib.rnn.GRUCell with PyTorch's layout and two biases: r and z
        as PyTorch's, n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)."""

        def __init__(self, input_size, hidden_size):
            super().__init__()
            self.hidden_size = hidden_size
            self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
            self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
            self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size))
            self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size))

        def forward(self, x, h):
            hid = self.hidden_size
            gx = functional.linear(x, self.weight_ih, self.bias_ih)
            gh = functional.linear(h, self.weight_hh[:2 * hid], self.bias_hh[:2 * hid])
            r = torch.sigmoid(gx[:, :hid] + gh[:, :hid])
            z = torch.sigmoid(gx[:, hid:2 * hid] + gh[:, hid:])
            n = torch.tanh(gx[:, 2 * hid:] + functional.linear(
                r * h, self.weight_hh[2 * hid:], self.bias_hh[2 * hid:]))
            return (1 - z) * n + z * h

    class Replica(nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = nn.ModuleList([nn.Conv2d(cin, cout, (kh, kw))
                                        for cout, cin, kh, kw in shapes])
            self.gru = (nn.GRUCell(gru.input_size, gru.hidden_size) if gru.reset_after
                        else TensorFlowGRUCell(gru.input_size, gru.hidden_size))
            self.digit_heads = nn.ModuleList([nn.Linear(h.in_features, h.out_features)
                                              for h in model.digit_heads])
            self.box_layers = nn.ModuleList([nn.Linear(b.in_features, b.out_features)
                                             for b in model.box_layers])
            self.box_dropout = nn.Dropout(model.box_dropout.p)

        def forward(self, x):
            for conv in self.convs:
                kh, kw = conv.kernel_size
                # "same", the odd pixel after: (left, right, top, bottom)
                x = functional.pad(x, ((kw - 1) // 2, kw // 2, (kh - 1) // 2, kh // 2))
                x = functional.max_pool2d(torch.relu(conv(x)), 2, 2)
            features = x.flatten(1)
            state = torch.zeros((x.shape[0], self.gru.hidden_size), dtype=x.dtype,
                                device=x.device)
            steps = []
            for head in self.digit_heads:  # the same input every step, zero initial state
                state = self.gru(features, state)
                steps.append(head(state))
            box = features
            for index, layer in enumerate(self.box_layers):
                box = layer(box)
                if index < len(self.box_layers) - 1:
                    box = self.box_dropout(torch.relu(box))
            return torch.stack(steps, dim=1), box

    return Replica()
