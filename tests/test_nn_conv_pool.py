"""nn.Conv2d / MaxPool2d / AvgPool2d / ZeroPad2d and F.pad: PyTorch's
arguments, parameter names and layouts, initialisers, reprs and padding order."""
import math

import numpy as np
import pytest

import nnlite as nl
import nnlite.functional as F
from nnlite import nn


def test_conv2d_parameters_follow_pytorch_names_and_layout():
    conv = nn.Conv2d(3, 8, (5, 3))
    assert [name for name, _ in conv.named_parameters()] == ["weight", "bias"]
    assert conv.weight.shape == (8, 3, 5, 3) and conv.bias.shape == (8,)
    assert list(conv.state_dict()) == ["weight", "bias"]
    no_bias = nn.Conv2d(3, 8, 3, bias=False)
    assert no_bias.bias is None and [n for n, _ in no_bias.named_parameters()] == ["weight"]


def test_conv2d_glorot_default_and_torch_option():
    nl.manual_seed(0)
    conv = nn.Conv2d(16, 32, 3)
    fan_in, fan_out = 16 * 9, 32 * 9
    bound = math.sqrt(6 / (fan_in + fan_out))
    w = conv.weight.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert np.abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound
    assert (conv.bias.numpy() == 0).all()
    torch_init = nn.Conv2d(16, 32, 3, init="torch")
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform(a=sqrt(5)) and the bias share it
    for array in (torch_init.weight.numpy(), torch_init.bias.numpy()):
        assert np.abs(array).max() <= bound and np.abs(array).max() > 0.8 * bound
    he = nn.Conv2d(16, 32, 3, init="he")  # Keras's he_uniform: U(+-sqrt(6 / fan_in)), bias 0
    bound = math.sqrt(6 / fan_in)
    w = he.weight.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert np.abs(w.std() - math.sqrt(2 / fan_in)) < 0.05 * math.sqrt(2 / fan_in)
    assert (he.bias.numpy() == 0).all()
    with pytest.raises(ValueError, match=r"Conv2d: init='kaiming' is not one of"):
        nn.Conv2d(1, 1, 3, init="kaiming")


def test_conv2d_module_gradcheck_float64():
    nl.manual_seed(1)
    conv = nn.Conv2d(2, 3, (3, 2), stride=(1, 2), padding=1,
                     dtype=np.float64)
    x = nl.tensor(np.random.default_rng(0).standard_normal((2, 2, 5, 6)), requires_grad=True)
    assert nl.gradcheck(lambda x, w, b: F.conv2d(x, w, b, conv.stride, conv.padding),
                        [x, conv.weight, conv.bias])


@pytest.mark.parametrize("build", [
    lambda m: m.Conv2d(1, 64, 5, padding="same"),
    lambda m: m.Conv2d(128, 256, 3, padding=1, bias=False),
    lambda m: m.Conv2d(3, 4, (5, 3), stride=2, padding=(1, 2), dilation=2),
    lambda m: m.Conv2d(3, 4, 2, padding="valid"),
    lambda m: m.MaxPool2d(2, ceil_mode=True),
    lambda m: m.MaxPool2d((2, 1), (2, 1)),
    lambda m: m.AvgPool2d(3, 2, 1),
    lambda m: m.ZeroPad2d((0, 1, 0, 0)),
    lambda m: m.ZeroPad2d(2),
])
def test_modules_match_pytorch_repr_and_output(build):
    torch = pytest.importorskip("torch")
    ours, theirs = build(nn), build(torch.nn)
    assert repr(ours) == repr(theirs)
    in_channels = getattr(theirs, "in_channels", 3)
    x = np.random.default_rng(2).random((2, in_channels, 9, 11)).astype(np.float32)
    if isinstance(theirs, torch.nn.Conv2d):
        theirs.weight.data = torch.from_numpy(ours.weight.numpy().copy())
        if ours.bias is not None:
            theirs.bias.data = torch.from_numpy(ours.bias.numpy().copy())
    expected = theirs(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(ours(nl.tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_conv2d_refuses_same_padding_with_stride_at_construction():
    with pytest.raises(ValueError, match=r"Conv2d: padding='same' needs stride 1"):
        nn.Conv2d(1, 1, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match=r"Conv2d: stride must be positive"):
        nn.Conv2d(1, 1, 3, stride=0)


def test_pool_modules_refuse_unsupported_options():
    with pytest.raises(ValueError, match="MaxPool2d: dilation=2"):
        nn.MaxPool2d(2, dilation=2)
    with pytest.raises(ValueError, match="AvgPool2d: divisor_override"):
        nn.AvgPool2d(2, divisor_override=4)


def test_pad_uses_pytorch_order_and_routes_the_gradient():
    x = nl.tensor(np.arange(6.0).reshape(1, 1, 2, 3), requires_grad=True)
    y = F.pad(x, (1, 2, 0, 1), value=-1.0)  # left 1, right 2, top 0, bottom 1
    assert y.shape == (1, 1, 3, 6)
    np.testing.assert_array_equal(y.numpy()[0, 0], [[-1, 0, 1, 2, -1, -1],
                                                    [-1, 3, 4, 5, -1, -1],
                                                    [-1, -1, -1, -1, -1, -1]])
    (y * nl.tensor(np.arange(18.0).reshape(1, 1, 3, 6))).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], [[1, 2, 3], [7, 8, 9]])
    assert F.pad(x, (2, 0)).shape == (1, 1, 2, 5)


def test_zero_pad2d_matches_custom_zero_padding():
    x = nl.tensor(np.ones((1, 2, 3, 4), np.float32))
    y = nn.ZeroPad2d((0, 1, 0, 0))(x).numpy()
    assert y.shape == (1, 2, 3, 5) and (y[..., :4] == 1).all() and (y[..., 4] == 0).all()
    assert nn.ZeroPad2d(1)(x).shape == (1, 2, 5, 6)


@pytest.mark.parametrize("call, error, pattern", [
    (lambda x: F.pad(x, (1, -1)), ValueError, r"pad: negative padding \(1, -1\)"),
    (lambda x: F.pad(x, (1, 1, 1)), ValueError, r"pad: pad \(1, 1, 1\) must have an even length"),
    (lambda x: F.pad(x, (1,) * 10), ValueError, r"at most 2 \* 4"),
    (lambda x: F.pad(x, (1, 1), mode="reflect"), ValueError, r"pad: mode 'reflect' is not"),
    (lambda x: nn.ZeroPad2d((1, 2)), ValueError, r"ZeroPad2d: padding must be an int or "
                                                 r"\(left, right, top, bottom\)"),
    (lambda x: nn.ZeroPad2d(-1), ValueError, r"ZeroPad2d: negative padding"),
])
def test_bad_padding_is_refused(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call(nl.tensor(np.zeros((1, 1, 2, 2))))


def test_charnet_front_end_shapes():
    """SPECS.md section 1 (CharNet), conv1 .. pool3, on a batch of 2."""
    net = nn.Sequential(
        nn.Conv2d(1, 64, 5, padding="same"), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(64, 128, 5, padding="same"), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(128, 256, 3, padding="same"), nn.ReLU(),
        nn.Conv2d(256, 512, 3, padding="same"), nn.ReLU(),
        nn.MaxPool2d(2, 2, ceil_mode=True))
    with nl.no_grad():
        y = net(nl.tensor(np.random.default_rng(3).random((2, 1, 32, 100), np.float32)))
    assert y.shape == (2, 512, 4, 13)
