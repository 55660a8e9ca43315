"""The seed's CRNN (SPECS section 3): shapes, parameter totals, the height
error, BatchNorm order and settings, loss, decode and a float64 gradcheck."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import functional as F
from nnlite.models import crnn as C

TINY = dict(channels=(2, 2, 2, 2, 2, 2, 2), hidden_size=2)


def conv_params(k, cin, cout):
    return k * k * cin * cout + cout


def lstm_params_keras(cin, hidden):  # one direction, Keras's single bias
    return 4 * (cin * hidden + hidden * hidden + hidden)


@pytest.fixture(scope="module")
def seed_model():
    nl.manual_seed(0)
    return C.crnn()


def test_parameter_total_matches_the_seeds_keras_summary(seed_model):
    # The seed's Keras summary, layer by layer (BatchNorm's 4 x C include the
    # 2 x C non-trainable moving statistics; each LSTM direction one bias).
    keras_total = (conv_params(3, 1, 64) + conv_params(3, 64, 128) + conv_params(3, 128, 256)
                   + conv_params(3, 256, 256) + conv_params(3, 256, 512) + 4 * 512
                   + conv_params(3, 512, 512) + 4 * 512 + conv_params(2, 512, 512)
                   + 2 * lstm_params_keras(512, 128) + 2 * lstm_params_keras(256, 128)
                   + 256 * 63 + 63)
    assert keras_total == 6_619_711
    # nnlite counts BatchNorm's moving statistics as buffers (2 x 2 x 512 fewer
    # parameters) and each LSTM direction has PyTorch's second bias bias_hh
    # (2 layers x 2 directions x 4 x 128 more): the two differences cancel.
    assert seed_model.num_parameters() == 6_619_711
    assert round(seed_model.num_parameters() / 1e6, 2) == 6.62
    buffers = sum(b.numel() for name, b in seed_model.named_buffers()
                  if name.endswith(("running_mean", "running_var")))
    bias_hh = sum(p.numel() for name, p in seed_model.named_parameters() if "bias_hh" in name)
    assert buffers == 2048 and bias_hh == 2048
    assert seed_model.num_parameters() - bias_hh + buffers == keras_total


def test_layer_by_layer_shapes_follow_specs(seed_model):
    m = seed_model.eval()
    x = nl.randn(2, 1, 32, 128)
    with nl.no_grad():
        h = m.pool1(F.relu(m.conv1(x)))
        assert h.shape == (2, 64, 16, 64)
        h = m.pool2(F.relu(m.conv2(h)))
        assert h.shape == (2, 128, 8, 32)
        h = m.pool4(F.relu(m.conv4(F.relu(m.conv3(h)))))
        assert h.shape == (2, 256, 4, 32)
        h = m.bn5(F.relu(m.conv5(h)))
        assert h.shape == (2, 512, 4, 32)
        h = m.pool6(m.bn6(F.relu(m.conv6(h))))
        assert h.shape == (2, 512, 2, 32)
        h = F.relu(m.conv7(h))
        assert h.shape == (2, 512, 1, 31)
        assert np.array_equal(h.numpy(), m.features(x).numpy())
        out = m(x)
    assert out.shape == (2, 31, 63)
    np.testing.assert_allclose(np.exp(out.numpy()).sum(axis=2), 1.0, rtol=1e-5)


def test_batchnorm_uses_keras_settings_and_comes_after_relu():
    nl.manual_seed(1)
    m = C.crnn(channels=(3, 3, 3, 3, 4, 4, 4), hidden_size=3).eval()
    for bn in (m.bn5, m.bn6):
        assert bn.momentum == 0.01 and bn.eps == 1e-3
        bn.running_mean.data[...] = np.linspace(-1, 1, 4)
        bn.running_var.data[...] = np.linspace(0.5, 2, 4)
        bn.bias.data[...] = -0.7  # BN after ReLU can emit negatives
    x = nl.rand(1, 1, 32, 16)
    with nl.no_grad():
        h = m.pool2(F.relu(m.conv2(m.pool1(F.relu(m.conv1(x))))))
        h = m.pool4(F.relu(m.conv4(F.relu(m.conv3(h)))))
        after = m.pool6(m.bn6(F.relu(m.conv6(m.bn5(F.relu(m.conv5(h)))))))
        before = m.pool6(F.relu(m.bn6(m.conv6(F.relu(m.bn5(m.conv5(h)))))))
        features = m.features(x).numpy()
    np.testing.assert_allclose(features, F.relu(m.conv7(after)).numpy(), rtol=1e-6)
    assert not np.allclose(features, F.relu(m.conv7(before)).numpy())


def test_running_stats_follow_keras_momentum():
    nl.manual_seed(2)
    m = C.crnn(**TINY)
    x = nl.rand(2, 1, 32, 16)
    with nl.no_grad():
        h = m.pool2(F.relu(m.conv2(m.pool1(F.relu(m.conv1(x))))))
        h = F.relu(m.conv5(m.pool4(F.relu(m.conv4(F.relu(m.conv3(h))))))).numpy()
    m.train()
    m(x)
    # Keras: moving = 0.99 moving + 0.01 batch, from mean 0 and variance 1
    # (PyTorch's running variance uses the unbiased batch variance).
    count = h.shape[0] * h.shape[2] * h.shape[3]
    np.testing.assert_allclose(m.bn5.running_mean.numpy(), 0.01 * h.mean(axis=(0, 2, 3)),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(m.bn5.running_var.numpy(),
                               0.99 + 0.01 * h.var(axis=(0, 2, 3)) * count / (count - 1),
                               rtol=1e-5)


@pytest.mark.parametrize("width,steps", [(128, 31), (64, 15), (100, 24), (256, 63), (8, 1)])
def test_other_widths_give_w_over_4_minus_1_steps(width, steps):
    nl.manual_seed(3)
    m = C.crnn(**TINY).eval()
    assert C.sequence_length(width) == steps
    assert m(nl.rand(1, 1, 32, width)).shape == (1, steps, 63)


def test_heights_32_to_47_work():
    nl.manual_seed(4)
    m = C.crnn(**TINY).eval()
    for height in (32, 40, 47):
        assert m(nl.rand(1, 1, height, 32)).shape == (1, 7, 63)


@pytest.mark.parametrize("height,feature_height", [(64, 3), (48, 2), (31, 0), (16, 0)])
def test_height_error_states_the_computed_shape_and_the_heights_that_work(height,
                                                                          feature_height):
    m = C.crnn(**TINY)
    with pytest.raises(ValueError) as info:
        m(nl.rand(2, 1, height, 128))
    message = str(info.value)
    assert f"(2, 1, {height}, 128)" in message
    assert f"(2, 2, {feature_height}, 31)" in message
    assert "heights 32 to 47 work" in message
    assert "squeeze" in message


def test_height_error_for_the_blog_users_62x411_input():
    m = C.crnn()
    with pytest.raises(ValueError, match=r"\(1, 512, 2, 101\)"):
        m.check_input(nl.zeros(1, 1, 62, 411))


def test_bad_channels_and_blank():
    with pytest.raises(ValueError, match="expected input \\(N, 1, H, W\\)"):
        C.crnn(**TINY)(nl.rand(1, 3, 32, 128))
    with pytest.raises(ValueError, match="blank"):
        C.crnn(blank="middle")
    with pytest.raises(ValueError, match="7 conv widths"):
        C.crnn(channels=(2, 2))


def test_dropout_is_active_in_training_only():
    nl.manual_seed(5)
    m = C.crnn(**TINY)
    x = nl.rand(2, 1, 32, 32)
    assert not np.allclose(m(x).numpy(), m(x).numpy())
    m.eval()
    np.testing.assert_array_equal(m(x).numpy(), m(x).numpy())
    quiet = C.crnn(dropout=0.0, **TINY)
    np.testing.assert_array_equal(quiet(x).numpy(), quiet(x).numpy())


def test_input_dropout_mask_is_constant_over_time_as_keras():
    nl.manual_seed(10)
    m = C.crnn(**TINY).train()
    dropped = m.input_dropout(nl.ones(7, 50, 40)).numpy()
    assert set(np.unique(dropped)) <= {0.0, 1.0 / 0.8}
    assert np.all(dropped == dropped[:1])  # same mask at every time step
    assert 0.1 < (dropped[0] == 0).mean() < 0.3
    m.eval()
    assert np.all(m.input_dropout(nl.ones(7, 50, 40)).numpy() == 1.0)
    with pytest.raises(ValueError, match="dropout"):
        C.crnn(dropout=1.0, **TINY)


def test_forward_backward_batch_2_with_ctc_loss(seed_model):
    m = seed_model.train()
    m.zero_grad()
    texts = ["Hello", "w0rld"]
    targets, lengths = C.encode_batch(texts, C.alphabet())
    log_probs = m(nl.rand(2, 1, 32, 128))
    loss = C.ctc_loss(log_probs, targets, lengths, blank=m.blank)
    loss.backward()
    assert np.isfinite(float(loss.item()))
    for name, p in m.named_parameters():
        assert p.grad is not None and np.isfinite(p.grad.numpy()).all(), name
    assert np.abs(m.conv1.weight.grad.numpy()).sum() > 0


@pytest.mark.parametrize("blank", ["last", "first"])
def test_loss_is_ctc_summed_per_sample_mean_over_batch(blank):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    logits = rng.standard_normal((3, 15, 63))
    log_probs = logits - np.log(np.exp(logits).sum(axis=2, keepdims=True))
    alphabet = C.alphabet(blank)
    targets, lengths = C.encode_batch(["ab", "Z9z", "hello"], alphabet)
    ours = C.ctc_loss(nl.tensor(log_probs), targets, lengths, blank=alphabet.blank)
    theirs = torch.nn.functional.ctc_loss(
        torch.tensor(log_probs).transpose(0, 1), torch.tensor(targets), torch.full((3,), 15),
        torch.tensor(lengths), blank=alphabet.blank, reduction="sum") / 3
    np.testing.assert_allclose(float(ours.item()), float(theirs), rtol=1e-10)
    assert alphabet.blank == (62 if blank == "last" else 0)
    assert C.crnn(blank=blank, **TINY).blank == alphabet.blank


def _path_log_probs(paths, alphabet, classes=63):
    """(N, T, C) log-probs whose argmax follows each path (characters or None = blank)."""
    out = np.full((len(paths), len(paths[0]), classes), np.log(0.2 / (classes - 1)))
    for n, path in enumerate(paths):
        for t, char in enumerate(path):
            out[n, t, alphabet.blank if char is None else alphabet.encode(char)[0]] = np.log(0.8)
    return out


@pytest.mark.parametrize("blank", ["last", "first"])
def test_decode_greedy_and_beam(blank):
    alphabet = C.alphabet(blank)
    paths = [["c", "c", None, "a", "t", "t"], ["o", None, "o", None, None, "K"]]
    log_probs = _path_log_probs(paths, alphabet)
    assert C.decode(log_probs, alphabet) == ["cat", "ooK"]
    assert C.decode(nl.tensor(log_probs), alphabet, method="beam", beam_width=8) == ["cat",
                                                                                     "ooK"]
    with pytest.raises(ValueError, match="greedy"):
        C.decode(log_probs, alphabet, method="viterbi")


def test_metrics_and_preprocess_and_config():
    result = C.metrics(["cat", "dog"], ["cat", "dot"])
    assert result["word_accuracy"] == 0.5
    assert result["character_error_rate"] == pytest.approx(1 / 6)
    image = np.zeros((32, 100), dtype=np.uint8)
    x = C.preprocess(image)
    assert x.shape == (1, 32, 128) and x.dtype == np.float32
    assert x[0, :, :100].max() == 0 and np.all(x[0, :, 100:] == 1.0)
    with pytest.raises(ValueError, match="larger than 32x128"):
        C.preprocess(np.zeros((32, 200)))
    config = C.default_config()
    assert config["lr"] == 1e-3 and config["batch_size"] == 256 and config["optimizer"] == "adam"
    assert config["num_classes"] == 63 and len(config["alphabet"]) == 62
    assert C.MODELS["crnn"] is C.crnn and C.INPUT_SHAPES["crnn"] == (1, 32, 128)


def test_float64_gradcheck_through_ctc_loss():
    nl.manual_seed(7)
    m = C.crnn(num_classes=5, dropout=0.0, **TINY).double()
    m.train()  # batch statistics in the BatchNorms
    x = nl.tensor(np.random.default_rng(8).uniform(0, 1, (2, 1, 32, 16)), requires_grad=True)
    targets, lengths = np.array([[1, 2], [3, 0]]), np.array([2, 1])
    params = [p for p in m.parameters()]

    def loss(image, *_):
        return C.ctc_loss(m(image), targets, lengths, blank=m.blank)

    assert nl.gradcheck(loss, [x] + params, atol=1e-6, rtol=1e-4)


def test_lstms_start_with_keras_initialisation():
    nl.manual_seed(9)
    m = C.crnn(**TINY)
    hidden = 2
    for lstm in (m.blstm1, m.blstm2):
        for suffix in ("l0", "l0_reverse"):
            bias_ih = getattr(lstm, f"bias_ih_{suffix}").numpy()
            assert np.array_equal(bias_ih, np.repeat([0.0, 1.0, 0.0, 0.0], hidden))
            assert not getattr(lstm, f"bias_hh_{suffix}").numpy().any()
            recurrent = getattr(lstm, f"weight_hh_{suffix}").numpy()  # (4H, H)
            np.testing.assert_allclose(recurrent.T @ recurrent, np.eye(hidden), atol=1e-5)
    torch_init = C.crnn(lstm_init="torch", **TINY)
    assert torch_init.blstm1.bias_hh_l0.numpy().any()
    with pytest.raises(ValueError, match="lstm_init"):
        C.crnn(lstm_init="random", **TINY)
