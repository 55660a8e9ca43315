"""CharNet / DictNet (SPECS section 1): shapes, exact parameter totals, heads,
losses, decoding, preprocessing and DictNet's widen.

CharNet (133M parameters, ~530 MB) is built once per module; DictNet at the
paper's 88172 words (~2 GB) is never built: its total comes from the layer
shapes, and every DictNet behaviour is tested on a small lexicon."""
import math

import numpy as np
import pytest

import nnlite as nl
import nnlite.functional as F
from nnlite import nn
from nnlite.models import jaderberg
from nnlite.models.imaging import resize_bilinear

# Worked out by hand from SPECS's layer table: convs 1,664 + 204,928 + 295,168 +
# 1,180,160 + 2,359,808; fc1 26,624*4,096 + 4,096; fc2 4,096*4,096 + 4,096;
# CharNet's classifier 4,096*851 + 851, DictNet's 4,096*88,172 + 88,172.
CHARNET_PARAMETERS = 133_365_587
DICTNET_PARAMETERS = 491_119_724

SPECS_SHAPES = [  # SPECS section 1's table, (C, H, W) per layer
    ("conv1", (64, 32, 100)), ("pool1", (64, 16, 50)), ("conv2", (128, 16, 50)),
    ("pool2", (128, 8, 25)), ("conv3", (256, 8, 25)), ("conv4", (512, 8, 25)),
    ("pool3", (512, 4, 13)), ("conv5", (512, 4, 13)), ("fc1", (4096,)), ("fc2", (4096,)),
]


@pytest.fixture(scope="module")
def charnet():
    nl.manual_seed(0)
    return jaderberg.charnet()


@pytest.fixture(scope="module")
def dictnet40():
    """A DictNet over a 40-word lexicon (test_widen... widens it: it runs last)."""
    nl.manual_seed(3)
    return jaderberg.dictnet(num_words=40)


@pytest.fixture(scope="module")
def images():
    return nl.tensor(np.random.default_rng(0).standard_normal((2, 1, 32, 100)),
                     dtype=np.float32)


def test_charnet_layer_shapes_follow_specs(charnet, images):
    charnet.eval()
    with nl.no_grad():
        outputs = charnet.trace(images)
    names = [name for name, _ in outputs]
    assert names == [name for name, _ in SPECS_SHAPES] + ["classifier"]
    for (name, output), (_, expected) in zip(outputs, SPECS_SHAPES):
        assert output.shape == (2,) + expected, name
    assert outputs[-1][1].shape == (2, 23, 37)


def test_parameter_totals_match_specs(charnet, dictnet40):
    assert charnet.num_parameters() == CHARNET_PARAMETERS
    assert round(CHARNET_PARAMETERS / 1e6, 1) == 133.4
    assert jaderberg.parameter_count(851) == CHARNET_PARAMETERS
    assert jaderberg.parameter_count(88172) == DICTNET_PARAMETERS
    assert round(DICTNET_PARAMETERS / 1e6, 1) == 491.1
    # float32 weights alone: 1.96 GB, the figure SPECS quotes against the TK1
    assert round(DICTNET_PARAMETERS * 4 / 1e9, 2) == 1.96
    small = dictnet40.num_parameters()
    assert small == CHARNET_PARAMETERS - (4096 + 1) * 851 + (4096 + 1) * 40
    assert small == jaderberg.parameter_count(40)


def test_charnet_forward_backward_both_heads(charnet, images):
    charnet.train()
    labels = jaderberg.encode_words(["hello", "World42"])
    for head, shape in (("softmax23", (2, 23, 37)), ("sigmoid", (2, 851))):
        charnet.head = head
        try:
            charnet.zero_grad()
            logits = charnet(images)
            assert logits.shape == shape
            loss = jaderberg.charnet_loss(logits, labels, head=head)
            loss.backward()
        finally:
            charnet.head = "softmax23"
        assert np.isfinite(loss.item())
        for name, param in charnet.named_parameters():
            assert param.grad is not None and param.grad.shape == param.shape, name
        assert np.abs(charnet.conv1.weight.grad.numpy()).sum() > 0


def test_wrong_input_size_names_expected_shape(charnet):
    with pytest.raises(ValueError, match=r"charnet: input has shape \(2, 1, 32, 128\).*"
                                         r"\(C, H, W\) = \(1, 32, 100\)"):
        charnet(nl.zeros((2, 1, 32, 128)))
    with pytest.raises(ValueError, match=r"shape \(1, 3, 32, 100\)"):
        charnet(nl.zeros((1, 3, 32, 100)))


def test_ceil_pool3_equals_the_seeds_zero_column_then_floor_pool(charnet, images):
    x = np.random.default_rng(1).standard_normal((2, 512, 8, 25)).astype(np.float32)
    ceil = nn.MaxPool2d(2, 2, ceil_mode=True)
    padded = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 0)), nn.MaxPool2d(2, 2))
    relu = nl.tensor(np.maximum(x, 0))
    assert ceil(relu).shape == (2, 512, 4, 13)
    np.testing.assert_array_equal(ceil(relu).numpy(), padded(relu).numpy())
    # the trick needs post-ReLU input: on negative values the zero column wins
    assert not np.array_equal(ceil(nl.tensor(x)).numpy(), padded(nl.tensor(x)).numpy())
    # the whole network through either route (the pool3="pad" build's module)
    charnet.eval()
    with nl.no_grad():
        ceil_logits = charnet(images).numpy().copy()
        charnet.pool3 = padded
        try:
            padded_logits = charnet(images).numpy()
        finally:
            charnet.pool3 = ceil
    np.testing.assert_array_equal(ceil_logits, padded_logits)
    with pytest.raises(ValueError, match="pool3='floor' is not one of"):
        jaderberg.JaderbergNet(5, pool3="floor")


def test_encode_words_and_decode_charnet():
    labels = jaderberg.encode_words(["Cat", "a9"])
    assert labels.shape == (2, 23)
    assert labels[0, :4].tolist() == [12, 10, 29, 36] and (labels[0, 3:] == 36).all()
    assert labels[1, :2].tolist() == [10, 9]
    logits = np.full((2, 23, 37), -1.0, dtype=np.float32)
    for row in range(2):
        logits[row, np.arange(23), labels[row]] = 5.0
    assert jaderberg.decode_charnet(nl.tensor(logits)) == ["cat", "a9"]
    flat = nl.tensor(logits.reshape(2, 851))  # the sigmoid head's layout, position-major
    assert jaderberg.decode_charnet(flat) == ["cat", "a9"]
    assert jaderberg.word_accuracy(["cat", "a9"], ["CAT", "ab"]) == 0.5
    with pytest.raises(ValueError, match="'x-ray' has '-'"):
        jaderberg.encode_words(["x-ray"])
    with pytest.raises(ValueError, match="24 characters"):
        jaderberg.encode_words(["a" * 24])


def test_losses_match_numpy():
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((3, 23, 37))
    labels = rng.integers(0, 37, (3, 23))
    shifted = logits - logits.max(axis=2, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=2, keepdims=True))
    expected_ce = -np.take_along_axis(log_probs, labels[..., None], 2).mean()
    got = jaderberg.charnet_loss(nl.tensor(logits), labels).item()
    assert math.isclose(got, expected_ce, rel_tol=1e-10)
    one_hot = np.eye(37)[labels]
    expected_bce = np.mean(np.logaddexp(0, logits) - one_hot * logits)
    got = jaderberg.charnet_loss(nl.tensor(logits.reshape(3, 851)), labels, head="sigmoid")
    assert math.isclose(got.item(), expected_bce, rel_tol=1e-10)
    words = rng.integers(0, 7, 3)
    word_logits = rng.standard_normal((3, 7))
    lse = np.log(np.exp(word_logits).sum(axis=1))
    expected = np.mean(lse - word_logits[np.arange(3), words])
    assert math.isclose(jaderberg.dictnet_loss(nl.tensor(word_logits), words).item(), expected,
                        rel_tol=1e-10)
    with pytest.raises(ValueError, match=r"labels have shape \(3, 5\); expected \(N, 23\)"):
        jaderberg.charnet_loss(nl.tensor(logits), labels[:, :5])


def test_widen_keeps_old_predictions_and_adds_fresh_classes(dictnet40, charnet):
    model = dictnet40.eval()
    x = nl.tensor(np.random.default_rng(4).standard_normal((2, 1, 32, 100)), dtype=np.float32)
    with nl.no_grad():
        before = model(x).numpy().copy()
    old_weight = model.classifier.weight.numpy().copy()
    conv_weight = model.conv3.weight.numpy().copy()
    assert jaderberg.widen(model, 9) is model
    assert model.classifier.weight.shape == (49, 4096)
    with nl.no_grad():
        after = model(x).numpy()
    assert after.shape == (2, 49)
    np.testing.assert_array_equal(after[:, :40], before)
    np.testing.assert_array_equal(model.classifier.weight.numpy()[:40], old_weight)
    np.testing.assert_array_equal(model.conv3.weight.numpy(), conv_weight)
    new_rows = model.classifier.weight.numpy()[40:]
    bound = math.sqrt(6 / (4096 + 49))  # Glorot-uniform of the wider layer
    assert np.abs(new_rows).max() <= bound and new_rows.std() > bound / 3
    assert (model.classifier.bias.numpy()[40:] == 0).all()
    assert jaderberg.decode_dictnet(nl.tensor(after), [f"w{i}" for i in range(49)])[0] == \
        f"w{after[0].argmax()}"
    jaderberg.widen(model, ["new", "words"])
    assert model.classifier.out_features == 51
    # a round of incremental learning trains the new columns
    model.train()
    jaderberg.dictnet_loss(model(x), [49, 50]).backward()
    grad = model.classifier.weight.grad.numpy()
    assert grad.shape == (51, 4096) and np.abs(grad[49:]).sum() > 0
    with pytest.raises(TypeError, match="widen: expected a DictNet"):
        jaderberg.widen(nn.Linear(2, 2), 3)
    with pytest.raises(TypeError, match="of kind 'charnet'"):
        jaderberg.widen(charnet, 3)
    assert charnet.classifier.out_features == 851
    with pytest.raises(ValueError, match="at least one class"):
        jaderberg.widen(model, 0)


class TinyWordNet(nn.Module):
    """A DictNet stand-in (same input, a `classifier` Linear) small enough to train
    in a test; DictNet itself takes seconds per CPU step."""

    def __init__(self, num_words):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding="same")
        self.classifier = nn.Linear(4 * 4 * 10, num_words, init="glorot")

    def forward(self, x):
        return self.classifier(F.flatten(F.avg_pool2d(F.relu(self.conv(x)), (8, 10)), 1))


def test_incremental_training_on_a_tiny_lexicon():
    nl.manual_seed(6)
    rng = np.random.default_rng(6)
    word_ids = np.repeat(np.arange(7), 2)
    images = rng.standard_normal((7, 1, 32, 100)).astype(np.float32)[word_ids]
    log = []
    model, history = jaderberg.train_incremental(
        images, word_ids, schedule=[3, 5, 7], steps_per_round=15, batch_size=4, lr=0.05,
        model=TinyWordNet(3), on_step=lambda classes, step, loss: log.append((classes, loss)))
    assert model.classifier.out_features == 7
    assert [classes for classes, _ in history] == [3, 5, 7]
    assert len(log) == 45
    for classes in (3, 5, 7):  # each round's loss falls on the words it added
        losses = [loss for c, loss in log if c == classes]
        assert np.mean(losses[-3:]) < np.mean(losses[:3]), classes
    with pytest.raises(ValueError, match="must increase and cover the 7 words"):
        jaderberg.train_incremental(images, word_ids, schedule=[3, 5], model=TinyWordNet(3))
    with pytest.raises(ValueError, match=r"images have shape \(14, 1, 32, 99\)"):
        jaderberg.train_incremental(images[..., :99], word_ids, model=TinyWordNet(3))


class RecordingWordNet(TinyWordNet):
    """TinyWordNet that records the word ids of every training batch (each image
    carries its word id in pixel (0, 0)) and the parameters it had then."""

    def __init__(self, num_words, log):
        super().__init__(num_words)
        self.log = log

    def forward(self, x):
        if self.training:
            self.log.append((self, self.classifier.out_features,
                             x.numpy()[:, 0, 0, 0].round().astype(int).tolist(),
                             self.conv.weight.numpy().copy(),
                             self.classifier.weight.numpy().copy()))
        return super().forward(x)


def _id_images(word_ids, rng):
    images = rng.standard_normal((len(word_ids), 1, 32, 100)).astype(np.float32)
    images[:, 0, 0, 0] = word_ids
    return images


def test_incremental_examples_per_mode():
    word_ids = np.array([0, 1, 2, 3, 4, 5, 3, 1])
    assert jaderberg.incremental_examples(word_ids, 5, 3, "xiao").tolist() == [0, 1, 2, 3, 4, 6, 7]
    assert jaderberg.incremental_examples(word_ids, 5, 3, "scratch").tolist() == \
        [0, 1, 2, 3, 4, 6, 7]
    assert jaderberg.incremental_examples(word_ids, 5, 3, "new_words").tolist() == [3, 4, 6]
    with pytest.raises(ValueError, match="mode 'cumulative' is not one of xiao, new_words, "
                                         "scratch"):
        jaderberg.incremental_examples(word_ids, 5, 3, "cumulative")
    with pytest.raises(ValueError, match="mode 'bad' is not one of xiao, new_words, scratch"):
        jaderberg.train_incremental(np.zeros((8, 1, 32, 100), np.float32), word_ids,
                                    mode="bad", model=TinyWordNet(3))


@pytest.mark.parametrize("mode", jaderberg.INCREMENTAL_MODES)
def test_incremental_modes_data_copying_and_freezing(mode):
    nl.manual_seed(3)
    rng = np.random.default_rng(3)
    word_ids = np.repeat(np.arange(6), 3)
    images = _id_images(word_ids, rng)
    log, after_round = [], {}

    def on_round(classes, model, steps):
        after_round[classes] = (model, steps, model.conv.weight.numpy().copy(),
                                model.classifier.weight.numpy().copy())

    first = RecordingWordNet(3, log)
    model, history = jaderberg.train_incremental(
        images, word_ids, schedule=[3, 6], steps_per_round=6, batch_size=4, lr=0.05,
        model=first, mode=mode, make_model=lambda classes: RecordingWordNet(classes, log),
        on_round=on_round)
    assert [classes for classes, _ in history] == [3, 6]
    assert model.classifier.out_features == 6 and model.classifier.weight.shape[0] == 6
    round1 = [entry for entry in log if entry[1] == 3]
    round2 = [entry for entry in log if entry[1] == 6]
    assert len(round1) == 6 and len(round2) == 6
    assert {w for entry in round1 for w in entry[2]} <= {0, 1, 2}
    seen = {w for entry in round2 for w in entry[2]}
    if mode == "new_words":
        assert seen <= {3, 4, 5}
    else:  # every word so far: old words come back in round 2
        assert seen & {0, 1, 2} and seen & {3, 4, 5}
    _, _, conv1, cls1 = after_round[3]
    net2, _, conv2, cls2 = round2[0][0], None, round2[0][3], round2[0][4]
    if mode == "scratch":  # a fresh model: nothing copied
        assert net2 is not first and model is not first
        assert not np.array_equal(conv2, conv1)
        assert not np.array_equal(cls2[:3], cls1)
    else:  # widened in place: conv and old softmax columns copied
        assert net2 is first and model is first
        np.testing.assert_array_equal(conv2, conv1)
        np.testing.assert_array_equal(cls2[:3], cls1)
        # nothing is frozen: round 2 moves the conv weights and the old columns
        _, _, conv_end, cls_end = after_round[6]
        assert not np.array_equal(conv_end, conv1)
        assert not np.array_equal(cls_end[:3], cls1)


def test_incremental_round_stops_at_a_plateau():
    word_ids = np.repeat(np.arange(4), 2)
    images = _id_images(word_ids, np.random.default_rng(0))
    steps = []
    jaderberg.train_incremental(images, word_ids, schedule=[2, 4], steps_per_round=50,
                                batch_size=8, lr=0.0, model=TinyWordNet(2),
                                plateau_window=3,
                                on_round=lambda classes, model, n: steps.append(n))
    assert steps == [6, 6]  # lr 0 and full batches: a flat loss ends each round at 2 windows
    steps.clear()
    jaderberg.train_incremental(images, word_ids, schedule=[2, 4], steps_per_round=12,
                                batch_size=8, lr=0.0, model=TinyWordNet(2),
                                on_round=lambda classes, model, n: steps.append(n))
    assert steps == [12, 12]
    with pytest.raises(ValueError, match="plateau_window must be >= 1"):
        jaderberg.train_incremental(images, word_ids, model=TinyWordNet(2), plateau_window=0)


def test_incremental_schedule():
    sizes = jaderberg.incremental_schedule(88172)
    assert sizes[:6] == [5000, 10000, 15000, 20000, 30000, 40000]
    assert sizes[-1] == 88172 and sizes[-2] == 80000
    assert jaderberg.incremental_schedule(12, start=5, steps=(3,), then=4) == [5, 8, 12]
    assert jaderberg.incremental_schedule(3) == [3]


def test_resize_bilinear_hand_values():
    image = np.array([[0.0, 1.0], [2.0, 3.0]])
    # half-pixel centres of 4 outputs over 2 inputs: -0.25 (clamped to 0), 0.25, 0.75, 1.25 (1)
    expected_row = np.array([0.0, 0.25, 0.75, 1.0])
    out = resize_bilinear(image, 4, 4)
    np.testing.assert_allclose(out[0], expected_row)
    np.testing.assert_allclose(out[:, 0], 2 * expected_row)
    colour = np.stack([image, 10 * image], axis=2)  # channels resize independently
    np.testing.assert_allclose(resize_bilinear(colour, 4, 4)[..., 1], 10 * out)
    with pytest.raises(ValueError, match=r"got shape \(0, 3\)"):
        resize_bilinear(np.zeros((0, 3)), 2, 2)


def test_resize_bilinear_matches_torch_interpolate():
    torch = pytest.importorskip("torch")
    big = np.random.default_rng(7).random((45, 130))
    reference = torch.nn.functional.interpolate(torch.tensor(big)[None, None], size=(32, 100),
                                                mode="bilinear", align_corners=False)
    np.testing.assert_allclose(resize_bilinear(big, 32, 100), reference[0, 0].numpy(),
                               atol=1e-12)


def test_preprocess():
    rng = np.random.default_rng(8)
    colour = rng.integers(0, 256, (40, 120, 3), dtype=np.uint8)
    out = jaderberg.preprocess(colour)
    assert out.shape == (1, 32, 100) and out.dtype == np.float32
    assert abs(out.mean()) < 1e-5 and abs(out.std() - 1) < 1e-3
    grey = colour @ np.array([0.2989, 0.5870, 0.1140]) / 255  # same image, greyed by hand
    np.testing.assert_allclose(jaderberg.preprocess(grey), out, atol=1e-5)
    batch = jaderberg.preprocess_batch([colour, grey[:20, :50]])
    assert batch.shape == (2, 1, 32, 100)
    with pytest.raises(ValueError, match=r"image has shape \(4, 5, 2\)"):
        jaderberg.preprocess(np.zeros((4, 5, 2)))


def test_build_and_config():
    assert set(jaderberg.MODELS) == {"charnet", "dictnet"}
    assert jaderberg.INPUT_SHAPES["charnet"] == (1, 32, 100)
    assert jaderberg.MODELS["dictnet"] is jaderberg.dictnet
    with pytest.raises(ValueError, match="unknown model 'crnn'"):
        jaderberg.build("crnn")
    with pytest.raises(ValueError, match="head='softmax' is not one of"):
        jaderberg.charnet(head="softmax")
    with pytest.raises(ValueError, match="num_words must be a positive int"):
        jaderberg.dictnet(num_words=0)
    config = jaderberg.default_config("charnet")
    assert config["lr"] == 0.1 and config["momentum"] == 0.9 and config["nesterov"]
    assert config["batch_size"] == 1024 and config["alphabet"][36] == " "
    assert jaderberg.default_config("dictnet")["num_words"] == 88172
