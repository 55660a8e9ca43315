"""CRNN: CNN + BiLSTM + CTC, the seed's Keras text recogniser (SPECS section 3).

    model = crnn()                                  # 6,619,711 parameters, blank last
    log_probs = model(images)                       # (N, T=31, 63) for (N, 1, 32, 128)
    loss = ctc_loss(log_probs, targets, target_lengths, blank=model.blank)
    words = decode(log_probs, alphabet())           # greedy; method="beam" for beam search

Layer order is the seed's: every conv has its ReLU inside (Keras
``activation='relu'``) and BatchNormalization comes AFTER that ReLU, with
Keras's defaults momentum 0.99 and epsilon 1e-3 (nnlite/PyTorch spelling:
momentum=0.01, because PyTorch's momentum weighs the NEW batch statistic).

The convolutions bring the height down by 16 and then by 1 (the 2x2 valid
conv7), so only input heights 32..47 leave a feature map of height 1 to become
the time axis; the width W gives T = W // 4 - 1 time steps (31 for 128).
Dropout 0.2 on each BiLSTM's input follows Keras's LSTM(dropout=0.2): one
mask per sequence, constant over time.
"""
import os
import string

import numpy as np

import nnlite
from nnlite import functional as F
from nnlite import nn

CHARACTERS = string.ascii_letters + string.digits  # the seed's char_list: a-z A-Z 0-9
SEED_CHANNELS = (64, 128, 256, 256, 512, 512, 512)
INPUT_HEIGHT, INPUT_WIDTH = 32, 128

# Keras BatchNormalization() defaults in nnlite's spelling.
KERAS_BN_MOMENTUM = 0.01
KERAS_BN_EPS = 1e-3


def feature_shape(height, width, channels=SEED_CHANNELS[-1]):
    """(C, H, W) of conv7's output for an input of `height` x `width`: four
    floor-halvings of the height (pools 1, 2, 4, 6) then the 2x2 valid conv7
    (-1); the width is halved twice (pools 1 and 2) then loses 1 to conv7."""
    h = height
    for _ in range(4):
        h //= 2
    w = (width // 2) // 2
    return channels, h - 1, w - 1


def sequence_length(width):
    """T, the number of CTC time steps, for an input `width` (T = W // 4 - 1)."""
    return feature_shape(INPUT_HEIGHT, width)[2]


def _heights_that_work():
    """Every input height whose features reduce to height 1 (the squeeze needs it)."""
    return [h for h in range(1, 256) if feature_shape(h, INPUT_WIDTH)[1] == 1]


def keras_lstm_init(lstm):
    """Keras 2's LSTM initialisation on an nn.LSTM: Glorot-uniform input
    kernels, orthogonal recurrent kernels, bias 0 except 1 for the forget gate
    (unit_forget_bias). Keras has one bias, so bias_hh is 0."""
    hidden = lstm.hidden_size
    for name, param in lstm.named_parameters():
        if name.startswith("weight_ih"):
            nn.init.xavier_uniform_(param)
        elif name.startswith("weight_hh"):
            nn.init.orthogonal_(param)
        else:
            nn.init.zeros_(param)
            if name.startswith("bias_ih"):
                param.data[hidden:2 * hidden] = 1.0  # gate order i, f, g, o


class CRNN(nn.Module):
    """The seed's CRNN. forward(x) with x (N, in_channels, H, W) returns (N, T, C)
    log-probabilities (log_softmax over C), T = W // 4 - 1.

    ``channels`` (7 conv widths) and ``hidden_size`` (per LSTM direction)
    default to the seed's; smaller values build the reduced models used by the
    gradcheck and the Keras-import fixture. ``blank`` is "last" (the seed's,
    index num_classes - 1) or "first" (index 0, PyTorch's default).
    ``gate_activation="hard_sigmoid"`` matches standalone Keras <= 2.3, whose
    LSTM default recurrent activation it was; tf.keras 2.x uses "sigmoid".
    ``lstm_init="keras"`` (default) initialises the LSTMs as the seed's Keras
    did (see keras_lstm_init); "torch" keeps PyTorch's uniform initialisation.
    """

    def __init__(self, num_classes=63, blank="last", in_channels=1, channels=SEED_CHANNELS,
                 hidden_size=128, dropout=0.2, gate_activation="sigmoid", lstm_init="keras"):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"crnn: num_classes must be an int >= 2 (labels plus the blank), "
                             f"got {num_classes!r}")
        if blank not in ("last", "first"):
            raise ValueError(f"crnn: blank must be 'last' (the seed's) or 'first', got {blank!r}")
        channels = tuple(channels)
        if len(channels) != 7 or any(int(c) != c or c < 1 for c in channels):
            raise ValueError(f"crnn: channels must give the 7 conv widths as positive ints, "
                             f"got {channels}")
        channels = tuple(int(c) for c in channels)
        hidden_size = int(hidden_size)
        self.num_classes = num_classes
        self.blank = num_classes - 1 if blank == "last" else 0
        self.blank_position = blank
        self.in_channels = in_channels
        self.channels = channels
        c1, c2, c3, c4, c5, c6, c7 = channels
        self.conv1 = nn.Conv2d(in_channels, c1, 3, padding="same")
        self.pool1 = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding="same")
        self.pool2 = nn.MaxPool2d(2, 2)
        self.conv3 = nn.Conv2d(c2, c3, 3, padding="same")
        self.conv4 = nn.Conv2d(c3, c4, 3, padding="same")
        self.pool4 = nn.MaxPool2d((2, 1), (2, 1))
        self.conv5 = nn.Conv2d(c4, c5, 3, padding="same")
        self.bn5 = nn.BatchNorm2d(c5, eps=KERAS_BN_EPS, momentum=KERAS_BN_MOMENTUM)
        self.conv6 = nn.Conv2d(c5, c6, 3, padding="same")
        self.bn6 = nn.BatchNorm2d(c6, eps=KERAS_BN_EPS, momentum=KERAS_BN_MOMENTUM)
        self.pool6 = nn.MaxPool2d((2, 1), (2, 1))
        self.conv7 = nn.Conv2d(c6, c7, 2, padding="valid")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"crnn: dropout must be in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)
        self.blstm1 = nn.LSTM(c7, hidden_size, bidirectional=True,
                              gate_activation=gate_activation)
        self.blstm2 = nn.LSTM(2 * hidden_size, hidden_size, bidirectional=True,
                              gate_activation=gate_activation)
        self.fc = nn.Linear(2 * hidden_size, num_classes, init="glorot")
        if lstm_init == "keras":
            for lstm in (self.blstm1, self.blstm2):
                keras_lstm_init(lstm)
        elif lstm_init != "torch":
            raise ValueError(f"crnn: lstm_init must be 'keras' or 'torch', got {lstm_init!r}")

    def check_input(self, x):
        """Raises a ValueError that explains the shapes when x cannot give a
        height-1 feature map (the seed users' most-asked question)."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"crnn: expected input (N, {self.in_channels}, H, W), got shape "
                             f"{tuple(x.shape)}")
        n, _, height, width = x.shape
        features = feature_shape(height, width, self.channels[-1])
        if features[1] != 1 or features[2] < 1:
            works = _heights_that_work()
            raise ValueError(
                f"crnn: input of shape {tuple(x.shape)} gives conv7 features of shape "
                f"(N, C, H, W) = ({n}, {features[0]}, {features[1]}, {features[2]}), but the "
                f"height must reduce to 1 to become the time axis (squeeze of H) and the width "
                f"to at least 1 time step. Input heights {works[0]} to {works[-1]} work "
                f"(H // 16 - 1 == 1; the seed uses 32) with widths >= 8 (T = W // 4 - 1); "
                f"resize or pad the image height to {INPUT_HEIGHT}, or change the pooling.")
        return features

    def features(self, x):
        """conv7's (N, C, 1, T) output."""
        self.check_input(x)
        x = self.pool1(F.relu(self.conv1(x)))
        x = self.pool2(F.relu(self.conv2(x)))
        x = F.relu(self.conv3(x))
        x = self.pool4(F.relu(self.conv4(x)))
        x = self.bn5(F.relu(self.conv5(x)))
        x = self.pool6(self.bn6(F.relu(self.conv6(x))))
        return F.relu(self.conv7(x))

    def input_dropout(self, seq):
        """Keras's LSTM(dropout=p) on a (T, N, F) sequence in training: one mask
        per sample and feature, the same at every time step, kept values scaled
        by 1 / (1 - p). (Keras draws separate masks for the two directions of a
        Bidirectional layer; here both directions share one.)"""
        if not self.training or self.dropout == 0:
            return seq
        keep = nnlite.ones((1,) + tuple(seq.shape[1:]), dtype=seq.dtype, device=seq.device)
        return seq * F.dropout(keep, self.dropout, True)

    def forward(self, x):
        seq = F.permute(F.squeeze(self.features(x), 2), (2, 0, 1))  # (T, N, C) time-major
        seq, _ = self.blstm1(self.input_dropout(seq))
        seq, _ = self.blstm2(self.input_dropout(seq))
        log_probs = F.log_softmax(self.fc(seq), dim=2)
        return F.transpose(log_probs, 0, 1)  # (N, T, classes), the seed's layout

    def extra_repr(self):
        return f"num_classes={self.num_classes}, blank={self.blank}, dropout={self.dropout}"


def from_checkpoint(path):
    """A CRNN shaped like the one saved in checkpoint `path` (compact, seed or
    any channels), read from its parameter shapes; blank last. Its weights are
    not loaded: nnlite.io.load(path, model) does that."""
    import h5py
    with h5py.File(path, "r") as f:
        if "model" not in f:
            raise ValueError(f"{path!r} holds no model group (not an nnlite checkpoint)")
        group = f["model"]
        channels = tuple(int(group[f"conv{i}.weight"].shape[0]) for i in range(1, 8))
        hidden = int(group["blstm1.weight_hh_l0"].shape[1])
        classes = int(group["fc.weight"].shape[0])
    return crnn(num_classes=classes, channels=channels, hidden_size=hidden)


# The packaged weights (docs/pretrained.md: how they were made and what they
# read), when this install has them.
PRETRAINED_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights",
                               "crnn_printed.h5")


def pretrained_weights():
    """The path of the packaged weights, or None when this install has none."""
    return PRETRAINED_FILE if os.path.isfile(PRETRAINED_FILE) else None


def pretrained(device="cpu"):
    """The CRNN with the packaged weights, in eval mode: it reads printed words
    of up to 16 characters (a-z A-Z 0-9) from images fitted by preprocess."""
    path = pretrained_weights()
    if path is None:
        raise FileNotFoundError(
            f"nnlite.models.crnn.pretrained: this install has no packaged weights "
            f"({PRETRAINED_FILE}); train a model with `nnlite train crnn --data printed` "
            f"and load its best.h5 instead")
    model = from_checkpoint(path)
    nnlite.io.load(path, model)
    return model.to(device).eval()


def crnn(num_classes=63, blank="last", **options):
    """The seed's CRNN (SPECS section 3); options as CRNN's (channels,
    hidden_size, dropout, gate_activation, in_channels)."""
    return CRNN(num_classes=num_classes, blank=blank, **options)


build = crnn
MODELS = {"crnn": crnn}
INPUT_SHAPES = {"crnn": (1, INPUT_HEIGHT, INPUT_WIDTH)}
# `nnlite train/predict crnn`'s recipe, found through nnlite.models.recipe_module;
# a module of its own, so that building the network never imports the data pipeline.
RECIPE_MODULE = "crnn_train"


def alphabet(blank="last"):
    """The seed's 62 characters with the blank last (index 62) or first."""
    return nnlite.decode.Alphabet(CHARACTERS, blank=blank)


def preprocess(image, height=INPUT_HEIGHT, width=INPUT_WIDTH):
    """A grey uint8 (H, W) image as the seed feeds it: padded with white (255)
    on the right and bottom to height x width (no resize), divided by 255.
    Returns float32 (1, height, width)."""
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"crnn.preprocess: expected a grey (H, W) image, got shape "
                         f"{image.shape}")
    if image.shape[0] > height or image.shape[1] > width:
        raise ValueError(f"crnn.preprocess: image of shape {image.shape} is larger than "
                         f"{height}x{width}; the seed pads and never shrinks, so resize it "
                         f"first (keeping height {height})")
    padded = np.full((height, width), 255, dtype=np.float32)
    padded[:image.shape[0], :image.shape[1]] = image
    return (padded / 255.0)[None]


def encode_batch(texts, alphabet_):
    """Padded (N, S) int64 targets and (N,) lengths for ctc_loss."""
    ids = [alphabet_.encode(t) for t in texts]
    lengths = np.array([len(i) for i in ids], dtype=np.int64)
    padded = np.zeros((len(ids), max(1, int(lengths.max(initial=0)))), dtype=np.int64)
    for row, label in zip(padded, ids):
        row[:len(label)] = label
    return padded, lengths


def ctc_loss(log_probs, targets, target_lengths, blank, input_lengths=None):
    """The seed's loss (Keras ctc_batch_cost, then Keras's mean): CTC summed per
    sample, mean over the batch. log_probs is the model's (N, T, C) output."""
    n, t, _ = log_probs.shape
    if input_lengths is None:
        input_lengths = np.full(n, t, dtype=np.int64)
    per_sample = F.ctc_loss(F.transpose(log_probs, 0, 1), targets, input_lengths,
                            target_lengths, blank=blank, reduction="none")
    return F.mean(per_sample)


loss = ctc_loss


def decode(log_probs, alphabet_, method="greedy", beam_width=10, lexicon=None):
    """Texts from the model's (N, T, C) output: "greedy" (the seed's) or "beam"."""
    time_major = F.transpose(log_probs, 0, 1) if isinstance(log_probs, nnlite.Tensor) \
        else np.swapaxes(np.asarray(log_probs), 0, 1)
    if method == "greedy":
        ids = nnlite.decode.ctc_greedy(time_major, blank=alphabet_.blank)
    elif method == "beam":
        ids = nnlite.decode.ctc_beam_search(time_major, beam_width, blank=alphabet_.blank,
                                            lexicon=lexicon, alphabet=alphabet_)
    else:
        raise ValueError(f"crnn.decode: method must be 'greedy' or 'beam', got {method!r}")
    return [alphabet_.decode(i) for i in ids]


def metrics(predictions, targets):
    """Word accuracy and character error rate of decoded texts."""
    return {"word_accuracy": nnlite.metrics.word_accuracy(predictions, targets),
            "character_error_rate": nnlite.metrics.character_error_rate(predictions, targets)}


def default_config():
    """The seed's training setting (SPECS section 3)."""
    return {
        "model": "crnn",
        "input_shape": INPUT_SHAPES["crnn"],
        "alphabet": CHARACTERS,
        "blank": "last",
        "num_classes": len(CHARACTERS) + 1,
        "optimizer": "adam",
        "lr": 1e-3,
        "batch_size": 256,
        "epochs": 10,
        "lr_schedule": None,
        "checkpoint": "best validation loss",
        "max_label_length": sequence_length(INPUT_WIDTH),
        "decode": "greedy",
    }
