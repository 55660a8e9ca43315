"""SVHN multi-digit recognition + localisation (seed 004, SPECS section 6).

Input 3x128x256 (SVHN crops resized), per-pixel mean/std normalised; labels
are 6 positions x 11 classes (10 = no digit) plus the digits' union box.

"Paper convolution" model (after Goodfellow et al. 2013): convs 5x5 -> 48, 64,
128, 160 then 2x2 -> 192, 192, each same + ReLU + max 2x2 s2, giving 192x2x4 =
1536 features; dropout (the seed's keep probability 0.8) before the heads; six
linear 1536 -> 11 digit heads and a linear 1536 -> 4 box head.

Final variant (``pooling=False``): every max pool is replaced by a 2x2
stride-2 convolution with the same channels. It is linear (no ReLU): it
stands in for the pool, and the convolution before it already ends in a ReLU.

Loss (``loss``): 1000 * cross-entropy, with the no-digit class's examples
scaled by 0.125 (the seed's re-weighting), + MSE(box) + 0.001 * (sum of squared
conv kernels) / 2 (TensorFlow's l2_loss over the convolution weights).
"""
import numpy as np

import nnlite as nl
from nnlite import functional as F
from nnlite import nn

from nnlite.models.digit_sequence import (accuracies, box_error,  # noqa: F401 - metrics
                                          resolve_box_bias, sequence_cross_entropy,
                                          start_box_bias)
from nnlite.models.imaging import resize_bilinear

NUM_POSITIONS = 6
NUM_CLASSES = 11
NO_DIGIT = 10
INPUT_SHAPE = (3, 128, 256)
CONVS = ((3, 48, 5), (48, 64, 5), (64, 128, 5), (128, 160, 5), (160, 192, 2), (192, 192, 2))
FEATURES = 192 * 2 * 4
NO_DIGIT_WEIGHT = 0.125
L2_WEIGHT = 0.001
CLASSIFICATION_WEIGHT = 1000.0


class SVHNNet(nn.Module):
    """forward(x (N, 3, 128, 256)) -> (digit logits (N, 6, 11), box (N, 4))."""

    def __init__(self, pooling=True, dropout=0.2, box_bias=None):
        super().__init__()
        self.pooling = bool(pooling)
        self.convs = nn.ModuleList([nn.Conv2d(cin, cout, k, padding="same")
                                    for cin, cout, k in CONVS])
        if pooling:
            self.pool = nn.MaxPool2d(2, 2)
        else:
            self.downsample = nn.ModuleList([nn.Conv2d(cout, cout, 2, stride=2)
                                             for _, cout, _ in CONVS])
        self.dropout = nn.Dropout(dropout)
        self.digit_heads = nn.ModuleList([nn.Linear(FEATURES, NUM_CLASSES, init="glorot")
                                          for _ in range(NUM_POSITIONS)])
        self.box_head = nn.Linear(FEATURES, 4, init="glorot")
        if box_bias is not None:
            start_box_bias(self.box_head, box_bias, "svhn")

    def trace(self, x):
        """[(layer name, output)] for every layer in order; the last two are the heads."""
        if x.ndim != 4 or tuple(x.shape[1:]) != INPUT_SHAPE:
            raise ValueError(f"svhn: input has shape {tuple(x.shape)}; expected (N, C, H, W) "
                             f"with (C, H, W) = {INPUT_SHAPE}")
        outputs = []
        for index, conv in enumerate(self.convs):
            x = F.relu(conv(x))
            x = self.pool(x) if self.pooling else self.downsample[index](x)
            outputs.append((f"conv{index + 1}", x))
        features = self.dropout(F.flatten(x, 1))
        outputs.append(("flatten", features))
        outputs.append(("digits", F.stack([head(features) for head in self.digit_heads], 1)))
        outputs.append(("box", self.box_head(features)))
        return outputs

    def forward(self, x):
        outputs = self.trace(x)
        return outputs[-2][1], outputs[-1][1]

    def conv_weights(self):
        """Every convolution kernel (the L2 term's weights; biases excluded)."""
        convs = list(self.convs) + ([] if self.pooling else list(self.downsample))
        return [conv.weight for conv in convs]


def svhn(pooling=True, dropout=0.2, box_bias=None):
    """The "paper convolution" model; pooling=False is the seed's final variant.
    box_bias: the box head's starting bias (the seed's: zero)."""
    return SVHNNet(pooling=pooling, dropout=dropout, box_bias=box_bias)


def svhn_no_pooling(dropout=0.2, box_bias=None):
    return SVHNNet(pooling=False, dropout=dropout, box_bias=box_bias)


MODELS = {"svhn": svhn, "svhn_no_pooling": svhn_no_pooling}
INPUT_SHAPES = {"svhn": INPUT_SHAPE, "svhn_no_pooling": INPUT_SHAPE}


def build(**options):
    return svhn(**options)


def parameter_count(pooling=True):
    """Exact total from the layer shapes."""
    total = sum(cin * cout * k * k + cout for cin, cout, k in CONVS)
    if not pooling:
        total += sum(cout * cout * 4 + cout for _, cout, _ in CONVS)
    return total + NUM_POSITIONS * (FEATURES * NUM_CLASSES + NUM_CLASSES) + FEATURES * 4 + 4


# ---------------------------------------------------------------- preprocessing

def resize(image):
    """(H, W, 3) image -> float64 (128, 256, 3), bilinear."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"svhn.resize: image has shape {image.shape}; expected (H, W, 3)")
    if image.dtype.kind in "iu":
        image = image / float(np.iinfo(image.dtype).max)
    return resize_bilinear(image, INPUT_SHAPE[1], INPUT_SHAPE[2])


def fit_normalisation(images):
    """Per-pixel mean and std of (N, 3, 128, 256) training images."""
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 4 or tuple(images.shape[1:]) != INPUT_SHAPE:
        raise ValueError(f"svhn.fit_normalisation: images have shape {images.shape}; "
                         f"expected (N,) + {INPUT_SHAPE}")
    return images.mean(axis=0), images.std(axis=0)


def normalise(images, mean, std, eps=1e-8):
    """(images - mean) / (std + eps), per pixel, as float32."""
    return ((np.asarray(images, dtype=np.float64) - mean) / (std + eps)).astype(np.float32)


# ---------------------------------------------------------------- loss and metrics

def l2_term(model):
    """sum of squared conv kernels / 2 (TensorFlow's tf.nn.l2_loss)."""
    total = None
    for weight in model.conv_weights():
        squares = F.sum(weight * weight)
        total = squares if total is None else total + squares
    return total * 0.5


def loss(model, outputs, digit_labels, box_targets, no_digit_weight=NO_DIGIT_WEIGHT,
         l2_weight=L2_WEIGHT, classification_weight=CLASSIFICATION_WEIGHT):
    """1000 * re-weighted CE + MSE(box) + 0.001 * l2_term; returns (total, CE, MSE)."""
    digit_logits, box = outputs
    digit_labels = np.asarray(digit_labels, dtype=np.int64)
    if digit_labels.shape != tuple(digit_logits.shape[:2]):
        raise ValueError(f"svhn.loss: digit labels have shape {digit_labels.shape}; expected "
                         f"(N, {NUM_POSITIONS}) = {tuple(digit_logits.shape[:2])}")
    box_targets = nl.tensor(np.asarray(box_targets, dtype=box.dtype))
    if box_targets.shape != box.shape:
        raise ValueError(f"svhn.loss: box targets have shape {box_targets.shape}; expected "
                         f"{box.shape}")
    weights = np.ones(NUM_CLASSES)
    weights[NO_DIGIT] = no_digit_weight
    classification = sequence_cross_entropy(digit_logits, digit_labels, weights)
    localisation = F.mse_loss(box, box_targets)
    total = classification_weight * classification + localisation
    if l2_weight:
        total = total + l2_weight * l2_term(model)
    return total, classification, localisation


def default_config(pooling=True):
    """The seed's recipe. It states the steps (50k; 60k for the re-weighted run,
    lr lowered by hand) but not the optimiser: Adam 1e-4 and batch 50 are its
    digit-sequence model's (SPECS section 5)."""
    return {
        "model": "svhn" if pooling else "svhn_no_pooling", "optimizer": "adam", "lr": 1e-4,
        "batch_size": 50, "steps": 50000 if pooling else 60000,
        "classification_weight": CLASSIFICATION_WEIGHT, "no_digit_weight": NO_DIGIT_WEIGHT,
        "l2_weight": L2_WEIGHT, "dropout": 0.2, "num_positions": NUM_POSITIONS,
        "num_classes": NUM_CLASSES, "no_digit_class": NO_DIGIT, "input_shape": INPUT_SHAPE,
        "normalisation": "per-pixel mean/std of the training set",
    }


# ---------------------------------------------------------------- training (nnlite train)

VALIDATION_SEED_OFFSET = 1_000_003
TRAIN_ITEMS = 10_000_000
NORMALISATION_SAMPLE = 512  # training images the per-pixel mean/std is fitted on
MIN_STD = 0.1  # floor of the per-pixel std
CPU_STEPS, CPU_EVAL_EVERY, CPU_VALIDATION_SIZE = 20_000, 500, 500


class _SVHNItems:
    """A (image, labels, box) dataset made svhn-ready: grey images repeated to
    3 channels, labels padded to 6 positions, images normalised per pixel."""

    def __init__(self, dataset, mean, std):
        self.dataset, self.mean, self.std = dataset, mean, std

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        image, labels, box = _three_channels(*self.dataset[index])
        return normalise(image[None], self.mean, self.std)[0], labels, box


def _three_channels(image, labels, box):
    image = np.asarray(image, dtype=np.float32)
    if image.shape[0] == 1:
        image = np.repeat(image, 3, axis=0)
    if len(labels) < NUM_POSITIONS:
        labels = np.concatenate([labels, np.full(NUM_POSITIONS - len(labels), NO_DIGIT,
                                                 dtype=np.int64)])
    return image, labels, box


def svhn_datasets(data, seed, validation_size):
    """(train, fixed validation, (mean, std)). A PATH: SVHN format 1 there
    (train/ for training, test/ for validation). "synth": the variable-length
    synthetic digit sequences (1-5 font digits on a 128x256 canvas, no SVHN
    stand-in exists offline) repeated to 3 channels, 6 label positions."""
    from nnlite.data import SVHN, Subset, SyntheticDigitSequences, materialize
    if data == "synth":
        train = SyntheticDigitSequences(TRAIN_ITEMS, seed=seed, variable_length=True)
        val = SyntheticDigitSequences(validation_size, seed=seed + VALIDATION_SEED_OFFSET,
                                      variable_length=True)
    else:
        train, val = SVHN(data, "train"), SVHN(data, "test")
        if len(val) > validation_size:
            val = Subset(val, range(validation_size))
    sample_size = min(NORMALISATION_SAMPLE, len(train))
    sample = np.stack([_three_channels(*train[i])[0] for i in range(sample_size)])
    mean, std = fit_normalisation(sample)
    # a pixel the sample never inked (black synthetic canvas) has std 0: without a
    # floor, ink there would be normalised to ~1e8
    std = np.maximum(std, MIN_STD)
    val = materialize(_SVHNItems(val, mean, std), desc="svhn validation set")
    return _SVHNItems(train, mean, std), val, (mean, std)


def training_recipe(data="synth", batch=None, seed=0, device="cpu", model="svhn",
                    validation_size=None, **options):
    """SPECS section 6: Adam 1e-4, batch 50, 1000 * re-weighted CE + MSE(box)
    + 0.001 * L2 of the conv kernels; model "svhn_no_pooling" is the final variant.
    `options` go to the network (dropout, box_bias); box_bias="mean" starts the
    box head's bias at the mean box of the first training items, as in
    digit_sequence (the seed's: zero)."""
    from nnlite import optim
    from nnlite.data import DataLoader
    from nnlite.models.digit_sequence import DigitSequenceTask
    from nnlite.training import Recipe
    if model not in MODELS:
        raise ValueError(f"svhn.training_recipe: unknown model {model!r}; expected one of "
                         f"{sorted(MODELS)}")
    validation_size = validation_size or CPU_VALIDATION_SIZE
    config = default_config(pooling=model == "svhn")
    train, val, _ = svhn_datasets(data, seed, validation_size)
    # the boxes are read from the raw items: the normalised images are not needed
    resolve_box_bias(options, train.dataset, "svhn.training_recipe")
    nl.manual_seed(seed)
    network = MODELS[model](**options)
    optimizer = optim.Adam(network.parameters(), lr=config["lr"])
    task = DigitSequenceTask(loss)
    return Recipe(network, optimizer, None, task,
                  DataLoader(train, batch or config["batch_size"], shuffle=data != "synth",
                             seed=seed, prefetch=4),
                  DataLoader(val, 100, prefetch=0), steps=CPU_STEPS,
                  eval_every=CPU_EVAL_EVERY, log_every=10)
