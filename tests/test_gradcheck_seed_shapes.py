"""Directional float64 gradchecks (nl.gradcheck(..., directional=True)) at the
seed networks' real layer shapes: every CRNN convolution (so the algorithm
F.conv2d picks for that shape is the one checked), both BiLSTMs, the
classifier + CTC at T=31 and C=63, the whole seed CRNN, and the attention
reader's 18496 -> 256 LSTM cell. Layers are taken from the built seed
networks, so their shapes are the seed's by construction; only the batch is
small. The whole file takes about 10 s on 2 shared cores.

Tolerances (see nnlite/gradcheck.py): the measured disagreement along d is
at most 3.3e-9 at these shapes, at least 35x inside atol=rtol=1e-8, which
still catch one gradient element 1 % off among conv4's 589,824 weights
(test_one_wrong_element_among_a_conv_layers_weights_is_caught; 99 % or more
of random directions do). Smooth layers use eps=1e-4; anything through ReLU
or max-pool keeps eps=1e-6, where moving every element at once crosses no
kink (on the whole CRNN a larger eps was off by up to 2e-3 relative)."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import functional as F
from nnlite.models import attention_reader, crnn

RTOL, ATOL = 1e-8, 1e-8
SMOOTH_EPS = 1e-4   # conv, LSTM, softmax + CTC: truncation error ~ eps**2 stays tiny
KINKED_EPS = 1e-6   # through ReLU / max-pool: small enough to cross no kink
BATCH = 2
HEIGHT, WIDTH = crnn.INPUT_HEIGHT, crnn.INPUT_WIDTH
T = crnn.sequence_length(WIDTH)  # 31
NUM_CLASSES = 63


def directional_gradcheck(fn, inputs, eps=SMOOTH_EPS, seed=0):
    return nl.gradcheck(fn, inputs, eps=eps, atol=ATOL, rtol=RTOL, seed=seed, directional=True)


def random_input(shape, seed):
    return nl.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


@pytest.fixture(scope="module")
def seed_crnn():
    nl.manual_seed(0)
    return crnn.crnn(dropout=0.0).double()  # dropout off: fn must be deterministic


# conv name -> (C, H, W) of its input for a 32x128 image (the seed's size)
CRNN_CONV_INPUTS = {
    "conv1": (1, 32, 128), "conv2": (64, 16, 64), "conv3": (128, 8, 32),
    "conv4": (256, 8, 32), "conv5": (256, 4, 32), "conv6": (512, 4, 32),
    "conv7": (512, 2, 32),
}


@pytest.mark.parametrize("name", sorted(CRNN_CONV_INPUTS))
def test_crnn_convolution_at_its_seed_shape(seed_crnn, name):
    conv = getattr(seed_crnn, name)
    x = random_input((BATCH,) + CRNN_CONV_INPUTS[name], seed=1)
    assert conv.in_channels == x.shape[1]
    assert directional_gradcheck(lambda x, w, b: conv(x), [x, conv.weight, conv.bias])


@pytest.mark.parametrize("name", ["blstm1", "blstm2"])
def test_crnn_bilstm_at_its_seed_shape(seed_crnn, name):
    lstm = getattr(seed_crnn, name)
    x = random_input((T, BATCH, lstm.input_size), seed=2)  # 31 x 2 x 512 (or 256) -> 2 x 128

    def run(x, *params):
        y, (h, c) = lstm(x)
        return y, h, c
    assert directional_gradcheck(run, [x] + list(lstm.parameters()))


def test_crnn_classifier_and_ctc_at_t31_c63(seed_crnn):
    fc = seed_crnn.fc
    features = random_input((T, 4, fc.in_features), seed=3)
    rng = np.random.default_rng(3)
    target_lengths = [12, 7, 1, 5]
    targets = rng.integers(0, NUM_CLASSES - 1, (4, max(target_lengths)))

    def run(features, w, b):
        log_probs = F.log_softmax(fc(features), dim=2)
        return F.ctc_loss(log_probs, targets, [T] * 4, target_lengths,
                          blank=seed_crnn.blank, reduction="none")
    assert fc.out_features == NUM_CLASSES
    assert directional_gradcheck(run, [features, fc.weight, fc.bias])


def test_whole_seed_crnn_with_ctc(seed_crnn):
    """All 6.6M parameters and the image at once, BatchNorm in training mode."""
    image = nl.tensor(np.random.default_rng(4).uniform(size=(BATCH, 1, HEIGHT, WIDTH)),
                      requires_grad=True)
    targets = np.random.default_rng(4).integers(0, NUM_CLASSES - 1, (BATCH, 5))

    def run(image, *params):
        log_probs = F.transpose(seed_crnn(image), 0, 1)  # (T, N, C) for ctc_loss
        return F.ctc_loss(log_probs, targets, [T] * BATCH, [5] * BATCH,
                          blank=seed_crnn.blank, reduction="none")
    assert directional_gradcheck(run, [image] + list(seed_crnn.parameters()), eps=KINKED_EPS)


def test_attention_reader_lstm_cell_18496_to_256():
    nl.manual_seed(0)
    cell = attention_reader.attention_reader().lstm.double()
    assert (cell.input_size, cell.hidden_size) == (18496, 256)
    x = random_input((1, cell.input_size), seed=5)
    h = nl.tensor(np.random.default_rng(6).standard_normal((1, 256)) * 0.5, requires_grad=True)
    c = random_input((1, 256), seed=7)
    assert directional_gradcheck(lambda x, h, c, *params: cell(x, (h, c)),
                                 [x, h, c] + list(cell.parameters()))


class GradientOffInOneElement(nl.Function):
    """The identity, whose backward is 1 % off in one element."""
    ELEMENT = 12345

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, gy):
        grad = gy.copy()
        grad.reshape(-1)[GradientOffInOneElement.ELEMENT] *= 1.01
        return grad


def test_one_wrong_element_among_a_conv_layers_weights_is_caught(seed_crnn):
    conv = seed_crnn.conv4  # 256 x 256 x 3 x 3: one bad element among 589,824
    x = random_input((BATCH,) + CRNN_CONV_INPUTS["conv4"], seed=1)

    def wrong(x, w, b):
        return F.conv2d(x, GradientOffInOneElement.apply(w), b, padding="same")
    with pytest.raises(nl.GradcheckError, match=r"input 1 \(shape \(256, 256, 3, 3\)\): "
                                                r"\S+ vs \S+, differs"):
        directional_gradcheck(wrong, [x, conv.weight, conv.bias])
