"""Recurrent layers at the seed networks' shapes, forward and forward+backward,
float32: the CRNN's BiLSTM, the attention reader's LSTM cell, the digit-sequence
model's GRU cell stepped 5 times. nnlite's modules vs the NumPy per-step
reference (CPU) and PyTorch's modules with the same weights (cuDNN on GPU)."""
import numpy as np

import nnlite as nl
from bench.harness import Case, Impl, device_sync, register, torch_or_none
from nnlite.reference import rnn as reference

# label: (module, input_size, hidden, T or steps stepped by hand, N); the CRNN's
# BiLSTM, the attention reader's LSTM cell, the digit model's GRU cell.
SHAPES = {
    "bilstm 512->128 T=31 N=32": ("LSTM", 512, 128, 31, 32),
    "lstm cell 18496->256 N=32": ("LSTMCell", 18496, 256, 1, 32),
    "gru cell 1024->576 x5 N=50": ("GRUCell", 1024, 576, 5, 50),
}


@register
def rnn_cases(device, xp):
    cases = []
    for label, spec in SHAPES.items():
        cases += _cases(device, xp, label + " float32", *spec)
    return cases


def _flops(kind, features, hidden, steps, batch):
    gates = 3 if kind == "GRUCell" else 4
    directions = 2 if kind == "LSTM" else 1
    # Forward GEMMs: input and recurrent projections; backward does two of each.
    forward = 2 * steps * batch * gates * hidden * (features + hidden) * directions
    return forward, 3 * forward


def _cases(device, xp, shape, kind, features, hidden, steps, batch):
    rng = np.random.default_rng(0)
    nl.manual_seed(0)
    module = (nl.nn.LSTM(features, hidden, bidirectional=True) if kind == "LSTM"
              else getattr(nl.nn, kind)(features, hidden)).to(device)
    x_host = rng.standard_normal((steps, batch, features) if kind == "LSTM"
                                 else (batch, features)).astype(np.float32)
    out_width = 2 * hidden if kind == "LSTM" else hidden
    gy_host = rng.standard_normal((steps, batch, out_width) if kind == "LSTM"
                                  else (batch, hidden)).astype(np.float32)
    x = nl.tensor(x_host, device=device)
    x_grad = nl.tensor(x_host, device=device, requires_grad=True)
    gy = nl.tensor(gy_host, device=device)
    sync = device_sync(device)

    def run(inp):
        if kind == "LSTM":
            return module(inp)[0]
        if kind == "LSTMCell":
            return module(inp)[0]
        h = None
        for _ in range(steps):
            h = module(inp, h)
        return h

    def forward():
        with nl.no_grad():
            return run(x)

    def forward_backward():
        module.zero_grad()
        x_grad.grad = None
        run(x_grad).backward(gy)
        return x_grad.grad

    fwd = [Impl("nnlite", forward, sync)]
    both = [Impl("nnlite", forward_backward, sync)]
    if device == "cpu":
        ref_fwd, ref_both = _reference_impls(module, kind, x_host, gy_host, steps)
        fwd.append(Impl("numpy-ref", ref_fwd))
        both.append(Impl("numpy-ref", ref_both))
    torch = torch_or_none()
    if torch is not None:
        t_fwd, t_both = _torch_impls(torch, device, module, kind, x_host, gy_host, steps)
        fwd.append(t_fwd)
        both.append(t_both)
    flops_fwd, flops_both = _flops(kind, features, hidden, steps, batch)
    return [Case(f"{kind} fwd", device, shape, fwd, flops=flops_fwd),
            Case(f"{kind} fwd+bwd", device, shape, both, flops=flops_both)]


def _reference_impls(module, kind, x, gy, steps):
    state = {k: v.numpy().astype(np.float64) for k, v in module.state_dict().items()}
    x = x.astype(np.float64)
    gy = gy.astype(np.float64)
    H = module.hidden_size

    def weights(suffix):
        return [state[f"{n}{suffix}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]

    if kind == "LSTM":
        zeros = np.zeros((x.shape[1], H))

        def fwd():
            return [reference.lstm_forward(x, zeros, zeros, *weights(s), reverse=bool(s))
                    for s in ("_l0", "_l0_reverse")]

        def both():
            return [reference.lstm_backward(x, zeros, zeros, *weights(s), gy[..., d * H:(d + 1) * H],
                                            zeros, zeros, reverse=bool(d))
                    for d, s in enumerate(("_l0", "_l0_reverse"))]
        return fwd, both
    zeros = np.zeros((x.shape[0], H))
    seq = np.stack([x] * steps)
    if kind == "LSTMCell":
        return (lambda: reference.lstm_forward(seq, zeros, zeros, *weights("")),
                lambda: reference.lstm_backward(seq, zeros, zeros, *weights(""),
                                                np.zeros(seq.shape[:2] + (H,)), gy, zeros))
    return (lambda: reference.gru_forward(seq, zeros, *weights("")),
            lambda: reference.gru_backward(seq, zeros, *weights(""),
                                           np.zeros(seq.shape[:2] + (H,)), gy))


def _torch_impls(torch, device, module, kind, x, gy, steps):
    t_module = (torch.nn.LSTM(module.input_size, module.hidden_size, bidirectional=True)
                if kind == "LSTM" else getattr(torch.nn, kind)(module.input_size,
                                                               module.hidden_size))
    with torch.no_grad():
        for name, param in t_module.named_parameters():
            param.copy_(torch.from_numpy(getattr(module, name).numpy()))
    t_module = t_module.to(device)
    xt = torch.from_numpy(x).to(device)
    xg = xt.clone().requires_grad_(True)
    gyt = torch.from_numpy(gy).to(device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def run(inp):
        if kind in ("LSTM", "LSTMCell"):
            return t_module(inp)[0]
        h = None
        for _ in range(steps):
            h = t_module(inp, h)
        return h

    def forward():
        with torch.no_grad():
            return run(xt)

    def forward_backward():
        t_module.zero_grad()
        xg.grad = None
        run(xg).backward(gyt)
        return xg.grad

    return Impl("torch", forward, sync), Impl("torch", forward_backward, sync)
