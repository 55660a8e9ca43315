"""Digit-sequence recognition + localisation (seed 004, SPECS section 5).

Input 1x128x256 (five 28x28 digits pasted on a canvas, values in [0, 1]).
Five same-padded ReLU convolutions (10x10->8, 8x8->14, 6x6->20, 4x4->24,
2x2->32), each followed by a 2x2 stride-2 max pool, give 32x4x8 = 1024
features, which feed two heads:

* digits: a GRU cell 1024 -> 576 run 5 steps on the same input from a zero
  state, with a separate linear 576 -> 11 per step (class 10 = no digit, which
  pads variable-length sequences);
* box: 1024 -> 768 -> 512 -> 256 -> 64 -> 32 -> 4 with ReLU between, the
  sequence's [x_center, y_center, h, w] in pixels.

The GRU cell is TensorFlow's (the seed's ``tf.contrib.rnn.GRUCell``): the
reset gate multiplies the state before the recurrent matmul of the candidate,
``nn.GRUCell(..., reset_after=False)``. ``reset_after=True`` gives PyTorch's
formulation. nnlite's cell keeps PyTorch's two bias vectors (b_ih, b_hh), so
the model has 1728 more parameters than TensorFlow's single-bias cell
(4,159,805 vs 4,158,077; both the 4.16M of SPECS).

Variants (the seed's experiments): ``loss="weighted"`` (default, 1000 * CE +
MSE), ``"unweighted"`` (CE + MSE; fails to classify), ``"square"`` (1000 * CE
+ squared error summed over the box coordinates); ``box_dropout=0.2`` (the
seed's keep probability 0.8, after each hidden box layer); ``deeper=True``
adds conv6 (2x2 -> 128, ReLU, pool), whose 128x2x4 output is again 1024.

The convolutions are Glorot-uniform with zero bias (TensorFlow's layer
default) unless ``conv_init="he"``: after five ReLU + pool stages Glorot
leaves the heads' features with about a sixth of the canvas's across-image
spread, He init with about three times it (tests/test_models_digits.py).

The box head's last bias starts at zero (the seed's) unless ``box_bias`` gives
its four starting values (the recipe's ``box_bias="mean"``: the mean training
box). From zero, Adam at 1e-4 moves that bias about 1e-4 a step, so the head's
outputs of 28-256 pixels must come through its weights from image-dependent
activations: the head's output then varies from image to image where the
target does not (issue 16: the fixed-length box width, constant 140, missed by
about 3 px rms).
"""
import numpy as np

import nnlite as nl
from nnlite import functional as F
from nnlite import nn

NUM_DIGITS = 5
NUM_CLASSES = 11
NO_DIGIT = 10
INPUT_SHAPE = (1, 128, 256)
CONVS = ((1, 8, 10), (8, 14, 8), (14, 20, 6), (20, 24, 4), (24, 32, 2))
DEEPER_CONV = (32, 128, 2)
FEATURES = 1024
HIDDEN = 576
BOX_LAYERS = (1024, 768, 512, 256, 64, 32, 4)
LOSSES = ("weighted", "unweighted", "square")


def start_box_bias(layer, box_bias, owner):
    """Start a box head's last layer's bias at `box_bias` ([x_center, y_center,
    h, w] in pixels) instead of zero. From zero, Adam at the seed's 1e-4 moves
    a bias about 1e-4 a step, so boxes of 28-256 px would have to come through
    image-dependent activations for thousands of steps (issue 16)."""
    bias = layer.bias
    try:
        values = np.asarray(box_bias, dtype=np.float64)
    except (TypeError, ValueError):
        values = np.full(0, np.nan)  # not numbers: reported below
    if values.shape != bias.shape or not np.isfinite(values).all():
        raise ValueError(f"{owner}: box_bias must be {bias.shape[0]} finite numbers "
                         f"([x_center, y_center, h, w] in pixels), got {box_bias!r}")
    bias.data[...] = values


class DigitSequenceNet(nn.Module):
    """forward(x (N, 1, 128, 256)) -> (digit logits (N, 5, 11), box (N, 4))."""

    def __init__(self, deeper=False, box_dropout=0.0, reset_after=False,
                 num_digits=NUM_DIGITS, num_classes=NUM_CLASSES, conv_init="glorot",
                 box_bias=None):
        super().__init__()
        convs = CONVS + ((DEEPER_CONV,) if deeper else ())
        self.convs = nn.ModuleList([nn.Conv2d(cin, cout, k, padding="same", init=conv_init)
                                    for cin, cout, k in convs])
        self.pool = nn.MaxPool2d(2, 2)
        self.gru = nn.GRUCell(FEATURES, HIDDEN, reset_after=reset_after)
        self.digit_heads = nn.ModuleList([nn.Linear(HIDDEN, num_classes, init="glorot")
                                          for _ in range(num_digits)])
        self.box_layers = nn.ModuleList([nn.Linear(a, b, init="glorot")
                                         for a, b in zip(BOX_LAYERS[:-1], BOX_LAYERS[1:])])
        if box_bias is not None:
            start_box_bias(self.box_layers[-1], box_bias, "digit_sequence")
        self.box_dropout = nn.Dropout(box_dropout)
        self.deeper = bool(deeper)

    def trace(self, x):
        """[(layer name, output)] for every layer in order; the last two are the heads."""
        if x.ndim != 4 or tuple(x.shape[1:]) != INPUT_SHAPE:
            raise ValueError(f"digit_sequence: input has shape {tuple(x.shape)}; expected "
                             f"(N, C, H, W) with (C, H, W) = {INPUT_SHAPE}")
        outputs = []
        for index, conv in enumerate(self.convs):
            x = self.pool(F.relu(conv(x)))
            outputs.append((f"conv{index + 1}", x))
        features = F.flatten(x, 1)
        outputs.append(("flatten", features))
        state, steps = None, []
        for head in self.digit_heads:  # the same input every step, zero initial state
            state = self.gru(features, state)
            steps.append(head(state))
        digits = F.stack(steps, dim=1)
        outputs.append(("digits", digits))
        box = features
        for index, layer in enumerate(self.box_layers):
            box = layer(box)
            if index < len(self.box_layers) - 1:
                box = self.box_dropout(F.relu(box))
        outputs.append(("box", box))
        return outputs

    def forward(self, x):
        outputs = self.trace(x)
        return outputs[-2][1], outputs[-1][1]


def digit_sequence(deeper=False, box_dropout=0.0, reset_after=False, conv_init="glorot",
                   box_bias=None):
    """The seed's weighted-loss localisation model (and its variants by option)."""
    return DigitSequenceNet(deeper=deeper, box_dropout=box_dropout, reset_after=reset_after,
                            conv_init=conv_init, box_bias=box_bias)


def digit_sequence_variable(deeper=False, box_dropout=0.0, reset_after=False, conv_init="glorot",
                            box_bias=None):
    """The same network; its name selects the variable-length (1-5 digits) recipe."""
    return digit_sequence(deeper=deeper, box_dropout=box_dropout, reset_after=reset_after,
                          conv_init=conv_init, box_bias=box_bias)


MODELS = {"digit_sequence": digit_sequence, "digit_sequence_variable": digit_sequence_variable}
INPUT_SHAPES = {"digit_sequence": INPUT_SHAPE, "digit_sequence_variable": INPUT_SHAPE}


def build(**options):
    return digit_sequence(**options)


def parameter_count(deeper=False, gru_biases=2):
    """Exact total from the layer shapes; gru_biases=1 gives TensorFlow's cell."""
    convs = CONVS + ((DEEPER_CONV,) if deeper else ())
    total = sum(cin * cout * k * k + cout for cin, cout, k in convs)
    total += 3 * HIDDEN * (FEATURES + HIDDEN) + gru_biases * 3 * HIDDEN
    total += NUM_DIGITS * (HIDDEN * NUM_CLASSES + NUM_CLASSES)
    total += sum(a * b + b for a, b in zip(BOX_LAYERS[:-1], BOX_LAYERS[1:]))
    return total


# ---------------------------------------------------------------- labels and losses

def encode_digits(sequences, length=NUM_DIGITS):
    """Digit sequences (strings or int lists, 1-5 digits) -> (N, 5) int64, padded
    with the no-digit class 10 (the variable-length labels)."""
    labels = np.full((len(sequences), length), NO_DIGIT, dtype=np.int64)
    for row, sequence in enumerate(sequences):
        digits = [int(d) for d in sequence]
        if not 1 <= len(digits) <= length or any(not 0 <= d <= 9 for d in digits):
            raise ValueError(f"encode_digits: {sequence!r} must be 1 to {length} digits 0-9")
        labels[row, :len(digits)] = digits
    return labels


def decode_digits(digit_logits):
    """(N, 5, 11) logits -> digit strings, no-digit positions dropped."""
    ids = np.asarray(digit_logits.numpy()).argmax(axis=2)
    return ["".join(str(i) for i in row if i != NO_DIGIT) for row in ids]


def _check_targets(op, digit_logits, box, digit_labels, box_targets):
    digit_labels = np.asarray(digit_labels, dtype=np.int64)
    expected = tuple(digit_logits.shape[:2])
    if digit_labels.shape != expected:
        raise ValueError(f"{op}: digit labels have shape {digit_labels.shape}; expected "
                         f"(N, positions) = {expected}")
    box_targets = nl.tensor(np.asarray(box_targets, dtype=box.dtype))
    if box_targets.shape != box.shape:
        raise ValueError(f"{op}: box targets have shape {box_targets.shape}; expected "
                         f"{box.shape}")
    return digit_labels, box_targets


def sequence_cross_entropy(digit_logits, digit_labels, class_weights=None):
    """Mean over batch and positions of each position's softmax cross-entropy;
    class_weights (length 11) scale each example's loss by its target's weight
    before the mean (the seed's re-weighting, not PyTorch's weighted mean)."""
    per_position = F.cross_entropy(F.permute(digit_logits, 0, 2, 1), digit_labels,
                                   reduction="none")
    if class_weights is not None:
        scale = np.asarray(class_weights, dtype=digit_logits.dtype)[digit_labels]
        per_position = per_position * nl.tensor(scale)
    return F.mean(per_position)


def loss(outputs, digit_labels, box_targets, variant="weighted", class_weights=None):
    """The seed's losses; returns (total, classification, localisation)."""
    if variant not in LOSSES:
        raise ValueError(f"digit_sequence.loss: variant={variant!r} is not one of {LOSSES}")
    digit_logits, box = outputs
    digit_labels, box_targets = _check_targets("digit_sequence.loss", digit_logits, box,
                                               digit_labels, box_targets)
    classification = sequence_cross_entropy(digit_logits, digit_labels, class_weights)
    if variant == "square":
        diff = box - box_targets
        localisation = F.mean(F.sum(diff * diff, dim=1))
    else:
        localisation = F.mse_loss(box, box_targets)
    weight = 1.0 if variant == "unweighted" else 1000.0
    return weight * classification + localisation, classification, localisation


def accuracies(digit_logits, digit_labels):
    """(sequence accuracy, character accuracy): all positions right / each position right."""
    predicted = np.asarray(digit_logits.numpy()).argmax(axis=2)
    correct = predicted == np.asarray(digit_labels)
    return float(correct.all(axis=1).mean()), float(correct.mean())


def box_error(box, box_targets):
    """Mean squared error of the box coordinates, in pixels squared (the seed's
    'mean localization error')."""
    diff = np.asarray(box.numpy()) - np.asarray(box_targets)
    return float((diff * diff).mean())


def default_config(variable_length=False):
    """Adam 1e-4, batch 50, the weighted loss (SPECS section 5)."""
    return {
        "model": "digit_sequence", "optimizer": "adam", "lr": 1e-4, "batch_size": 50,
        "loss": "weighted", "classification_weight": 1000.0, "num_digits": NUM_DIGITS,
        "num_classes": NUM_CLASSES, "no_digit_class": NO_DIGIT,
        "variable_length": bool(variable_length), "min_digits": 1 if variable_length else 5,
        "input_shape": INPUT_SHAPE, "canvas": (128, 256), "digit_size": 28,
        "targets": ({"sequence_accuracy": 0.80, "character_accuracy": 0.95, "box_error": 2.93}
                    if variable_length else
                    {"sequence_accuracy": 0.74, "character_accuracy": 0.94, "box_error": 2.32}),
    }


# ---------------------------------------------------------------- training (nnlite train)

VALIDATION_SEED_OFFSET = 1_000_003  # the fixed validation set's seed: seed + this
TRAIN_ITEMS = 10_000_000  # generated on demand: every batch is fresh data
CPU_STEPS, CPU_EVAL_EVERY, CPU_VALIDATION_SIZE = 20_000, 500, 500
MEAN_BOX_SAMPLES = 1000  # box_bias="mean": its x and y centre about 1 px from the true mean


class DigitSequenceTask:
    """Batches (images, digit labels (N, positions), boxes (N, 4)); `loss_fn(model,
    outputs, labels, boxes) -> (total, CE, box MSE)`; metric sequence accuracy;
    evaluate also gives character accuracy, box error (px^2) and the loss."""
    metric_name = "sequence_accuracy"
    higher_is_better = True

    def __init__(self, loss_fn):
        self.loss_fn = loss_fn

    def _forward(self, model, batch):
        from nnlite.training.task import model_device, move_batch
        images, labels, boxes = batch
        outputs = model(move_batch(images, model_device(model)))
        return outputs, np.asarray(labels), np.asarray(boxes)

    def loss(self, model, batch):
        outputs, labels, boxes = self._forward(model, batch)
        total, classification, localisation = self.loss_fn(model, outputs, labels, boxes)
        sequence, character = accuracies(outputs[0], labels)
        return total, {"cross_entropy": classification.item(), "box_mse": localisation.item(),
                       "sequence_accuracy": sequence, "character_accuracy": character}

    def evaluate(self, model, loader):
        sums = {"sequence_accuracy": 0.0, "character_accuracy": 0.0, "box_error": 0.0,
                "loss": 0.0}
        count = 0
        for batch in loader:
            outputs, labels, boxes = self._forward(model, batch)
            n = len(labels)
            sequence, character = accuracies(outputs[0], labels)
            values = {"sequence_accuracy": sequence, "character_accuracy": character,
                      "box_error": box_error(outputs[1], boxes),
                      "loss": self.loss_fn(model, outputs, labels, boxes)[0].item()}
            for key, value in values.items():
                sums[key] += value * n
            count += n
        if count == 0:
            raise ValueError("digit_sequence evaluate: the validation loader yielded no samples")
        return {key: total / count for key, total in sums.items()}

    def predict(self, model, batch):
        from nnlite.training.task import model_device, move_batch
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        return decode_digits(model(move_batch(images, model_device(model)))[0])


def digit_datasets(data, seed, variable_length, validation_size):
    """(training dataset, fixed validation dataset). data="synth": font digits;
    a PATH: the MNIST idx files there (training digits for training, test digits
    for validation), as the seed did."""
    from nnlite.data import MNIST, SyntheticDigitSequences, materialize
    train_digits = test_digits = None
    if data != "synth":
        train_digits, test_digits = MNIST(data, train=True), MNIST(data, train=False)
    train = SyntheticDigitSequences(TRAIN_ITEMS, seed=seed, variable_length=variable_length,
                                    mnist=train_digits)
    val = materialize(SyntheticDigitSequences(validation_size, seed=seed + VALIDATION_SEED_OFFSET,
                                              variable_length=variable_length,
                                              mnist=test_digits),
                      desc="digit sequence validation set")
    return train, val


def mean_box(dataset, samples):
    """Mean [x_center, y_center, h, w] of the boxes of dataset's first `samples` items."""
    samples = min(samples, len(dataset))
    if samples <= 0:
        raise ValueError("digit_sequence.mean_box: the dataset has no items to average")
    return np.mean([np.asarray(dataset[i][2], dtype=np.float64) for i in range(samples)], axis=0)


def resolve_box_bias(options, train, owner):
    """A recipe's box_bias="mean" becomes the mean box of train's first
    MEAN_BOX_SAMPLES items; numbers pass through to the network unchanged."""
    if isinstance(options.get("box_bias"), str):
        if options["box_bias"] != "mean":
            raise ValueError(f"{owner}: box_bias must be 'mean' or four numbers, got "
                             f"{options['box_bias']!r}")
        options["box_bias"] = mean_box(train, MEAN_BOX_SAMPLES)


def training_recipe(data="synth", batch=None, seed=0, device="cpu", model="digit_sequence",
                    validation_size=None, variant="weighted", lr=None, **options):
    """SPECS section 5: Adam 1e-4, batch 50, 1000 * CE + MSE(box); model
    "digit_sequence_variable" (or variable_length=True) trains on 1-5 digits.
    lr: Adam's learning rate instead of the seed's 1e-4. `options` go to the
    network (deeper, box_dropout, reset_after, conv_init, box_bias);
    box_bias="mean" starts the box head's last bias at the mean box of the
    first MEAN_BOX_SAMPLES training canvases (the seed's: zero)."""
    from nnlite import optim
    from nnlite.data import DataLoader
    from nnlite.training import Recipe
    if model not in MODELS:
        raise ValueError(f"digit_sequence.training_recipe: unknown model {model!r}; "
                         f"expected one of {sorted(MODELS)}")
    variable = options.pop("variable_length", model == "digit_sequence_variable")
    validation_size = validation_size or CPU_VALIDATION_SIZE
    config = default_config(variable_length=variable)
    train, val = digit_datasets(data, seed, variable, validation_size)
    resolve_box_bias(options, train, "digit_sequence.training_recipe")
    nl.manual_seed(seed)
    network = MODELS[model](**options)
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or lr <= 0):
        raise ValueError(f"digit_sequence.training_recipe: lr must be a positive number, got "
                         f"{lr!r}")
    optimizer = optim.Adam(network.parameters(), lr=config["lr"] if lr is None else lr)
    task = DigitSequenceTask(lambda net, outputs, labels, boxes:
                             loss(outputs, labels, boxes, variant=variant))
    return Recipe(network, optimizer, None, task,
                  DataLoader(train, batch or config["batch_size"], seed=seed, prefetch=4),
                  DataLoader(val, 100, prefetch=0), steps=CPU_STEPS,
                  eval_every=CPU_EVAL_EVERY, log_every=10)


def load_image(path):
    """(1, 128, 256) float32 in [0, 1] from an image file (grey; resized to
    128x256 if needed; digits white on black as in training) or a .npy array."""
    from nnlite.data import read_image
    from nnlite.models.imaging import resize_bilinear
    image = np.load(path) if str(path).endswith(".npy") else read_image(path, grey=True)
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 2:
        raise ValueError(f"digit_sequence.load_image: expected a grey image, got shape "
                         f"{image.shape}")
    if image.shape != INPUT_SHAPE[1:]:
        image = resize_bilinear(image, *INPUT_SHAPE[1:])
    return image.astype(np.float32)[None]


def predict_texts(model, images, beam=None, lexicon=None):
    """The digit strings read (argmax per position, no-digit positions dropped);
    beam and lexicon do not apply to a fixed-position classifier and are ignored."""
    return predict_boxes(model, images)[0]


def predict_boxes(model, images):
    """(digit strings, boxes (N, 4) float64): one forward pass gives both; a box
    is [x_center, y_center, h, w] in pixels of the 256x128 input (the image as
    load_image resized it)."""
    digit_logits, box = model(nl.tensor(np.asarray(images, dtype=np.float32)))
    return decode_digits(digit_logits), np.asarray(box.numpy(), dtype=np.float64)
