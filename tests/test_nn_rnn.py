"""nn.LSTM / nn.GRU / cells and the sequence Functions behind them, against the
NumPy per-step reference (outputs, final states, every gradient), PyTorch's
modules (when torch is importable), and float64 gradcheck."""
import zlib

import numpy as np
import pytest

import nnlite as nl
from nnlite.device import to_numpy
from nnlite.reference import rnn as ref

TOLERANCE = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}
PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _reference_stack(kind, module, x, h0, c0, lengths, gy, gh_n, gc_n):
    """Forward and backward of a stacked (bi)directional module by composing the
    reference layer functions; dropout is off. Returns (y, h_n, c_n, grads)
    with grads keyed by parameter name plus "x", "h0", "c0"."""
    L, D = module.num_layers, module.num_directions
    opts = dict(hard_sigmoid=module.gate_activation == "hard_sigmoid")
    if kind == "gru":
        opts["reset_after"] = module.reset_after
    H = module.hidden_size
    layer_inputs, finals, tapes = [x], [], []
    for layer in range(L):
        outs = []
        for d in range(D):
            k = layer * D + d
            w = [module.state_dict()[f"{n}_l{layer}{'_reverse' if d else ''}"].numpy()
                 .astype(np.float64) for n in PARAM_NAMES]
            if kind == "lstm":
                y, h, c = ref.lstm_forward(layer_inputs[-1], h0[k], c0[k], *w, lengths, d == 1,
                                           **opts)
                finals.append((h, c))
            else:
                y, h = ref.gru_forward(layer_inputs[-1], h0[k], *w, lengths, d == 1, **opts)
                finals.append((h,))
            tapes.append(w)
            outs.append(y)
        layer_inputs.append(np.concatenate(outs, axis=2))
    grads, g_out = {}, gy
    g_h0, g_c0 = np.zeros_like(h0), np.zeros_like(c0)
    for layer in reversed(range(L)):
        g_in = np.zeros_like(layer_inputs[layer])
        for d in range(D):
            k = layer * D + d
            w = tapes[k]
            gy_d = g_out[:, :, d * H:(d + 1) * H]
            if kind == "lstm":
                g = ref.lstm_backward(layer_inputs[layer], h0[k], c0[k], *w, gy_d, gh_n[k],
                                      gc_n[k], lengths, d == 1, **opts)
                g_c0[k] = g["c0"]
            else:
                g = ref.gru_backward(layer_inputs[layer], h0[k], *w, gy_d, gh_n[k], lengths,
                                     d == 1, **opts)
            g_h0[k] = g["h0"]
            g_in += g["x"]
            suffix = f"_l{layer}{'_reverse' if d else ''}"
            for name, key in zip(PARAM_NAMES, ("w_ih", "w_hh", "b_ih", "b_hh")):
                grads[name + suffix] = g[key]
        g_out = g_in
    grads.update(x=g_out, h0=g_h0, c0=g_c0)
    h_n = np.stack([f[0] for f in finals])
    c_n = np.stack([f[1] for f in finals]) if kind == "lstm" else None
    return layer_inputs[-1], h_n, c_n, grads


CASES = {  # (T, N, I, H, num_layers, bidirectional)
    "T1": (1, 3, 4, 5, 1, False),
    "N1": (4, 1, 3, 2, 1, True),
    "H1": (3, 2, 3, 1, 1, False),
    "2layer-bi": (5, 3, 4, 3, 2, True),
}


@pytest.mark.parametrize("variant", ["lstm", "lstm-hard", "gru", "gru-hard-reset-before",
                                     "gru-reset-before"])
@pytest.mark.parametrize("padded", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("given_states", [False, True], ids=["zero-state", "initial-state"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", list(CASES))
def test_module_matches_reference(device, case, dtype, given_states, padded, variant):
    T, N, I, H, L, bi = CASES[case]
    kind = variant[:4].rstrip("-")
    rng = np.random.default_rng(zlib.crc32(f"{case} {variant}".encode()))
    opts = dict(gate_activation="hard_sigmoid" if "hard" in variant else "sigmoid")
    if kind == "gru":
        opts["reset_after"] = "reset-before" not in variant
    nl.manual_seed(1)
    cls = nl.nn.LSTM if kind == "lstm" else nl.nn.GRU
    module = cls(I, H, num_layers=L, bidirectional=bi, dtype=dtype, **opts).to(device)
    D = 2 if bi else 1
    x = rng.standard_normal((T, N, I)).astype(dtype)
    h0 = rng.standard_normal((L * D, N, H)).astype(dtype) if given_states else \
        np.zeros((L * D, N, H), dtype)
    c0 = rng.standard_normal((L * D, N, H)).astype(dtype) if given_states else np.zeros_like(h0)
    lengths = rng.integers(0, T + 1, size=N) if padded else None
    if padded:
        lengths[0] = T  # the longest sample need not be first, but one has the full length
    gy = rng.standard_normal((T, N, D * H))
    gh_n, gc_n = rng.standard_normal(h0.shape), rng.standard_normal(h0.shape)

    xt = nl.tensor(x, device=device, requires_grad=True)
    states = [nl.tensor(s, device=device, requires_grad=True) for s in (h0, c0)]
    if kind == "lstm":
        y, (h_n, c_n) = module(xt, tuple(states) if given_states else None, lengths=lengths)
        loss = (y * nl.tensor(gy.astype(dtype), device=device)).sum() + \
            (h_n * nl.tensor(gh_n.astype(dtype), device=device)).sum() + \
            (c_n * nl.tensor(gc_n.astype(dtype), device=device)).sum()
    else:
        y, h_n = module(xt, states[0] if given_states else None, lengths=lengths)
        loss = (y * nl.tensor(gy.astype(dtype), device=device)).sum() + \
            (h_n * nl.tensor(gh_n.astype(dtype), device=device)).sum()
    loss.backward()

    y_ref, h_ref, c_ref, grads = _reference_stack(
        kind, module, x.astype(np.float64),
        h0.astype(np.float64), c0.astype(np.float64), lengths, gy, gh_n, gc_n)
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(to_numpy(y.data), y_ref, **tol)
    np.testing.assert_allclose(to_numpy(h_n.data), h_ref, **tol)
    if kind == "lstm":
        np.testing.assert_allclose(to_numpy(c_n.data), c_ref, **tol)
    np.testing.assert_allclose(to_numpy(xt.grad.data), grads["x"], **tol)
    if given_states:
        np.testing.assert_allclose(to_numpy(states[0].grad.data), grads["h0"], **tol)
        if kind == "lstm":
            np.testing.assert_allclose(to_numpy(states[1].grad.data), grads["c0"], **tol)
    for name, param in module.named_parameters():
        np.testing.assert_allclose(to_numpy(param.grad.data), grads[name], err_msg=name, **tol)


def test_lengths_zero_the_padded_outputs_and_keep_the_last_valid_state():
    nl.manual_seed(0)
    lstm = nl.nn.LSTM(3, 2, bidirectional=True, batch_first=True, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((2, 5, 3))
    y, (h_n, _) = lstm(nl.tensor(x), lengths=[5, 3])
    assert y.shape == (2, 5, 4)
    assert (y.numpy()[1, 3:] == 0).all() and (y.numpy()[0] != 0).all()
    # Sample 1 alone, truncated to its 3 steps, gives the same result.
    y_short, (h_short, _) = lstm(nl.tensor(x[1:, :3]))
    np.testing.assert_allclose(y.numpy()[1, :3], y_short.numpy()[0], rtol=1e-12)
    np.testing.assert_allclose(h_n.numpy()[:, 1], h_short.numpy()[:, 0], rtol=1e-12)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_matches_pytorch_module_with_its_state_dict(kind):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    t_module = getattr(torch.nn, kind)(6, 4, num_layers=2, bidirectional=True,
                                       batch_first=True).double()
    module = getattr(nl.nn, kind)(6, 4, num_layers=2, bidirectional=True, batch_first=True,
                                  dtype=np.float64)
    assert list(module.state_dict()) == list(t_module.state_dict())
    module.load_state_dict({k: v.numpy() for k, v in t_module.state_dict().items()})
    x = rng.standard_normal((3, 7, 6))
    h0 = rng.standard_normal((4, 3, 4))
    xt, x_nl = torch.tensor(x, requires_grad=True), nl.tensor(x, requires_grad=True)
    if kind == "LSTM":
        c0 = rng.standard_normal((4, 3, 4))
        y_t, (h_t, c_t) = t_module(xt, (torch.tensor(h0), torch.tensor(c0)))
        y, (h, c) = module(x_nl, (nl.tensor(h0), nl.tensor(c0)))
        np.testing.assert_allclose(c.numpy(), c_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    else:
        y_t, h_t = t_module(xt, torch.tensor(h0))
        y, h = module(x_nl, nl.tensor(h0))
    np.testing.assert_allclose(y.numpy(), y_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h.numpy(), h_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = rng.standard_normal(y.shape)
    (y_t * torch.tensor(w)).sum().backward()
    (y * nl.tensor(w)).sum().backward()
    np.testing.assert_allclose(x_nl.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-11)
    for name, param in t_module.named_parameters():
        np.testing.assert_allclose(getattr(module, name).grad.numpy(), param.grad.numpy(),
                                   rtol=1e-9, atol=1e-11, err_msg=name)


@pytest.mark.parametrize("kind", ["LSTMCell", "GRUCell"])
def test_cells_match_pytorch(kind):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    t_cell = getattr(torch.nn, kind)(5, 3).double()
    cell = getattr(nl.nn, kind)(5, 3, dtype=np.float64)
    cell.load_state_dict({k: v.numpy() for k, v in t_cell.state_dict().items()})
    x, h, c = rng.standard_normal((4, 5)), rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    if kind == "LSTMCell":
        h_t, c_t = t_cell(torch.tensor(x), (torch.tensor(h), torch.tensor(c)))
        h_new, c_new = cell(nl.tensor(x), (nl.tensor(h), nl.tensor(c)))
        np.testing.assert_allclose(c_new.numpy(), c_t.detach().numpy(), rtol=1e-12)
    else:
        h_t = t_cell(torch.tensor(x), torch.tensor(h))
        h_new = cell(nl.tensor(x), nl.tensor(h))
    np.testing.assert_allclose(h_new.numpy(), h_t.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("kind, options", [
    ("LSTMCell", {}), ("LSTMCell", dict(gate_activation="hard_sigmoid")), ("GRUCell", {}),
    ("GRUCell", dict(gate_activation="hard_sigmoid")), ("GRUCell", dict(reset_after=False))],
    ids=["lstm", "lstm-hard", "gru", "gru-hard", "gru-reset-before"])
def test_cells_gradcheck(kind, options):
    nl.manual_seed(2)
    cell = getattr(nl.nn, kind)(3, 2, dtype=np.float64, **options)
    rng = np.random.default_rng(7)
    # Keep hard_sigmoid away from its kinks, where central differences are meaningless.
    x = nl.tensor(rng.standard_normal((2, 3)) * 0.5, requires_grad=True)
    h = nl.tensor(rng.standard_normal((2, 2)) * 0.5, requires_grad=True)
    c = nl.tensor(rng.standard_normal((2, 2)), requires_grad=True)
    params = [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh]
    if kind == "LSTMCell":
        assert nl.gradcheck(lambda x, h, c, *p: cell(x, (h, c)), [x, h, c] + params)
    else:
        assert nl.gradcheck(lambda x, h, *p: cell(x, h), [x, h] + params)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_bidirectional_two_layer_sequence_gradcheck(kind):
    nl.manual_seed(3)
    module = getattr(nl.nn, kind)(2, 2, num_layers=2, bidirectional=True, dtype=np.float64)
    x = nl.tensor(np.random.default_rng(8).standard_normal((3, 2, 2)), requires_grad=True)

    def run(x, *params):
        y, state = module(x, lengths=[3, 2])
        return (y, state[0]) if kind == "LSTM" else (y, state)
    assert nl.gradcheck(run, [x] + list(module.parameters()))


def test_backward_is_deterministic():
    nl.manual_seed(4)
    gru = nl.nn.GRU(8, 16, num_layers=2, bidirectional=True)
    x = np.random.default_rng(9).standard_normal((6, 5, 8)).astype(np.float32)
    runs = []
    for _ in range(2):
        gru.zero_grad()
        xt = nl.tensor(x, requires_grad=True)
        y, _ = gru(xt, lengths=[6, 2, 4, 6, 1])
        (y * y).sum().backward()
        runs.append([xt.grad.numpy()] + [p.grad.numpy().copy() for p in gru.parameters()])
    for first, second in zip(*runs):
        assert first.tobytes() == second.tobytes()


def test_parameters_follow_pytorch_names_shapes_and_init():
    nl.manual_seed(0)
    lstm = nl.nn.LSTM(10, 20, num_layers=2, bidirectional=True)
    shapes = {name: p.shape for name, p in lstm.named_parameters()}
    assert shapes["weight_ih_l0"] == (80, 10) and shapes["weight_ih_l1_reverse"] == (80, 40)
    assert shapes["weight_hh_l1"] == (80, 20) and shapes["bias_hh_l0_reverse"] == (80,)
    assert len(shapes) == 16
    bound = 1 / np.sqrt(20)
    values = np.concatenate([p.numpy().ravel() for p in lstm.parameters()])
    assert np.abs(values).max() <= bound and np.abs(values).max() > 0.9 * bound
    gru = nl.nn.GRU(4, 6, bias=False)
    assert [n for n, _ in gru.named_parameters()] == ["weight_ih_l0", "weight_hh_l0"]
    y, h = gru(nl.tensor(np.ones((2, 1, 4), np.float32)))
    assert y.shape == (2, 1, 6) and h.shape == (1, 1, 6)


def test_dropout_between_layers_only_in_training():
    nl.manual_seed(0)
    lstm = nl.nn.LSTM(4, 8, num_layers=2, dropout=0.5, dtype=np.float64)
    x = nl.tensor(np.random.default_rng(1).standard_normal((3, 2, 4)))
    lstm.eval()
    eval_a, eval_b = lstm(x)[0].numpy(), lstm(x)[0].numpy()
    np.testing.assert_array_equal(eval_a, eval_b)
    lstm.train()
    assert not np.allclose(lstm(x)[0].numpy(), eval_a)
    single = nl.nn.LSTM(4, 8, num_layers=1, dropout=0.5, dtype=np.float64)
    single.train()  # no layer after the last: dropout never applies
    np.testing.assert_array_equal(single(x)[0].numpy(), single(x)[0].numpy())


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: nl.nn.LSTM(4, 3)(nl.tensor(np.zeros((5, 2, 6), np.float32))), ValueError,
     r"LSTM: input has shape \(5, 2, 6\); expected \(T, N, input_size\) with input_size=4"),
    (lambda: nl.nn.GRU(4, 3, batch_first=True)(nl.tensor(np.zeros((2, 5), np.float32))),
     ValueError, r"GRU: input has shape \(2, 5\); expected \(N, T, input_size\)"),
    (lambda: nl.nn.LSTM(4, 3, num_layers=2)(nl.tensor(np.zeros((5, 2, 4), np.float32)),
                                            (nl.tensor(np.zeros((1, 2, 3), np.float32)),
                                             nl.tensor(np.zeros((2, 2, 3), np.float32)))),
     ValueError, r"LSTM: h_0 has shape \(1, 2, 3\); expected \(num_layers \* num_directions, "
                 r"N, hidden_size\) = \(2, 2, 3\)"),
    (lambda: nl.nn.GRU(4, 3, bidirectional=True)(nl.tensor(np.zeros((5, 2, 4), np.float32)),
                                                 nl.tensor(np.zeros((2, 2, 4), np.float32))),
     ValueError, r"GRU: h_0 has shape \(2, 2, 4\); expected .* = \(2, 2, 3\)"),
    (lambda: nl.nn.LSTMCell(4, 3)(nl.tensor(np.zeros((2, 5), np.float32))), ValueError,
     r"LSTMCell: input has shape \(2, 5\); expected \(N, input_size\) or \(input_size,\) "
     r"with input_size=4"),
    (lambda: nl.nn.LSTMCell(4, 3)(nl.tensor(np.zeros((2, 4), np.float32)),
                                  (nl.tensor(np.zeros((2, 3), np.float32)),
                                   nl.tensor(np.zeros((3, 3), np.float32)))), ValueError,
     r"LSTMCell: c has shape \(3, 3\); expected \(N, hidden_size\) = \(2, 3\)"),
    (lambda: nl.nn.GRUCell(4, 3)(nl.tensor(np.zeros((2, 4), np.float32)),
                                 nl.tensor(np.zeros((2, 2), np.float32))), ValueError,
     r"GRUCell: hx has shape \(2, 2\); expected \(N, hidden_size\) = \(2, 3\)"),
    (lambda: nl.nn.GRU(4, 3)(nl.tensor(np.zeros((5, 2, 4), np.float32)), lengths=[5, 6]),
     ValueError, r"gru: lengths must lie in \[0, T\] = \[0, 5\]; got \[5, 6\]"),
    (lambda: nl.nn.GRU(4, 3)(nl.tensor(np.zeros((5, 2, 4), np.float32)), lengths=[5, -1]),
     ValueError, r"gru: lengths must lie in \[0, T\] = \[0, 5\]; got \[5, -1\]"),
    (lambda: nl.nn.LSTM(4, 3)(nl.tensor(np.zeros((5, 2, 4), np.float32)), lengths=[5]),
     ValueError, r"lstm: lengths has shape \(1,\); expected one length per sample, \(2,\)"),
    (lambda: nl.nn.LSTM(4, 3)(nl.tensor(np.zeros((5, 2, 4), np.float32)), lengths=[2.5, 1]),
     TypeError, r"lstm: lengths must be integers"),
    (lambda: nl.nn.LSTM(4, 3, gate_activation="relu"), ValueError,
     r"LSTM: gate_activation='relu' is not one of \('sigmoid', 'hard_sigmoid'\)"),
    (lambda: nl.nn.GRU(4, 0), ValueError, r"GRU: hidden_size must be an int >= 1, got 0"),
    (lambda: nl.nn.LSTM(4, 3, dropout=1.5), ValueError, r"LSTM: dropout must be a probability"),
])
def test_bad_input_names_the_expected_shape(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_cell_steps_by_hand_like_the_seed_models():
    """The digit-sequence GRU cell: the same input for 5 steps from a zero state,
    against the reference sequence with that input repeated."""
    nl.manual_seed(0)
    cell = nl.nn.GRUCell(12, 7, dtype=np.float64)
    x = np.random.default_rng(2).standard_normal((3, 12))
    h = None
    for _ in range(5):
        h = cell(nl.tensor(x), h)
    w = [getattr(cell, n).numpy() for n in PARAM_NAMES]
    _, h_ref = ref.gru_forward(np.stack([x] * 5), np.zeros((3, 7)), *w)
    np.testing.assert_allclose(h.numpy(), h_ref, rtol=1e-12)
    h1, c1 = nl.nn.LSTMCell(12, 7)(nl.tensor(x[0].astype(np.float32)))  # unbatched
    assert h1.shape == (7,) and c1.shape == (7,)


@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_empty_batch_gives_empty_outputs_and_zero_gradients(cls, bidirectional):
    """N = 0: PyTorch returns (T, 0, D*H) outputs; so does nnlite (it raised a
    reshape error)."""
    nl.manual_seed(0)
    layer = getattr(nl.nn, cls)(4, 5, bidirectional=bidirectional)
    x = nl.tensor(np.zeros((3, 0, 4), np.float32), requires_grad=True)
    y = layer(x)[0]
    assert y.shape == (3, 0, 10 if bidirectional else 5)
    y.sum().backward()
    assert x.grad.shape == (3, 0, 4)
    assert all(not p.grad.numpy().any() for p in layer.parameters())


@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
def test_empty_sequence_is_refused_by_name(cls):
    """T = 0: PyTorch raises 'Expected sequence length to be larger than 0'."""
    layer = getattr(nl.nn, cls)(4, 5)
    with pytest.raises(ValueError, match=r"the input sequence is empty \(T = 0"):
        layer(nl.tensor(np.zeros((0, 2, 4), np.float32)))
