"""CharNet (CHAR+2) and DictNet (DICT+2), Jaderberg et al. 2014 (SPECS section 1).

Five same-padded ReLU convolutions (5x5/64, 5x5/128, 3x3/256, 3x3/512, 3x3/512)
with 2x2 max pooling after conv1, conv2 and conv4, then fc 26624 -> 4096 ->
4096 (ReLU, dropout 0.5) and a classifier:

* CharNet: 851 = 23 positions x 37 classes (0-9, a-z, space). ``head="softmax23"``
  (default) gives (N, 23, 37) logits trained with a per-position softmax
  cross-entropy; ``head="sigmoid"`` gives (N, 851) logits trained with the seed
  repository's sigmoid + binary cross-entropy over every unit.
* DictNet: one softmax over ``num_words`` (88172) lexicon words.

pool3 is Caffe's ceil mode (8x25 -> 4x13). ``pool3="pad"`` builds the seed's
Keras route instead (one zero column on the right, then a floor pool): the
same numbers, because pool3's input is post-ReLU (>= 0).

Preprocessing (``preprocess``): grey = 0.2989 R + 0.5870 G + 0.1140 B,
bilinear resize to 32x100, then (img - mean) / (std + 1e-4) per image. The
resize is models.imaging.resize_bilinear, a small NumPy bilinear (no new
dependency).
"""
import numpy as np

import nnlite as nl
from nnlite import metrics
from nnlite import functional as F
from nnlite import nn

from nnlite.models.imaging import resize_bilinear

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz "
SPACE = ALPHABET.index(" ")  # 36: pads words to MAX_LENGTH positions
MAX_LENGTH = 23
NUM_CHAR_CLASSES = len(ALPHABET)  # 37
NUM_WORDS = 88172
INPUT_SHAPE = (1, 32, 100)
HEADS = ("softmax23", "sigmoid")
POOL3_MODES = ("ceil", "pad")

# (name, in, out, kernel) of the five convolutions; a pool follows the named ones.
CONVS = (("conv1", 1, 64, 5), ("conv2", 64, 128, 5), ("conv3", 128, 256, 3),
         ("conv4", 256, 512, 3), ("conv5", 512, 512, 3))
POOLED_AFTER = {"conv1": "pool1", "conv2": "pool2", "conv4": "pool3"}
FEATURE_SHAPE = (512, 4, 13)  # conv5's output: fc1 sees 512 * 4 * 13 = 26624 inputs
HIDDEN = 4096


class JaderbergNet(nn.Module):
    """The shared CharNet/DictNet body with a `num_outputs`-wide classifier.

    forward(x) takes (N, 1, 32, 100) and returns the classifier's logits:
    (N, 23, 37) for CharNet's softmax23 head, (N, num_outputs) otherwise.
    """

    def __init__(self, num_outputs, kind="dictnet", head="softmax", pool3="ceil",
                 dropout=0.5, width_divisor=1, hidden=HIDDEN):
        # width_divisor / hidden build narrower nets of the same structure
        # (conv widths // width_divisor, fc widths `hidden`) for CPU training
        super().__init__()
        if pool3 not in POOL3_MODES:
            raise ValueError(f"{kind}: pool3={pool3!r} is not one of {POOL3_MODES}")
        self.kind, self.head, self.pool3_mode = kind, head, pool3
        previous = CONVS[0][1]
        for name, _, cout, k in CONVS:
            width = max(1, cout // int(width_divisor))
            setattr(self, name, nn.Conv2d(previous, width, k, padding="same"))
            previous = width
        self.pool1 = nn.MaxPool2d(2, 2)
        self.pool2 = nn.MaxPool2d(2, 2)
        if pool3 == "ceil":
            self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        else:  # the seed's CustomZeroPadding2D then a floor pool
            self.pool3 = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 0)), nn.MaxPool2d(2, 2))
        features = previous * FEATURE_SHAPE[1] * FEATURE_SHAPE[2]
        self.fc1 = nn.Linear(features, hidden, init="glorot")
        self.fc2 = nn.Linear(hidden, hidden, init="glorot")
        self.classifier = nn.Linear(hidden, num_outputs, init="glorot")
        self.dropout = nn.Dropout(dropout)

    def _check_input(self, x):
        if x.ndim != 4 or tuple(x.shape[1:]) != INPUT_SHAPE:
            raise ValueError(f"{self.kind}: input has shape {tuple(x.shape)}; expected "
                             f"(N, C, H, W) with (C, H, W) = {INPUT_SHAPE} (grey 32x100, "
                             f"see jaderberg.preprocess)")

    def trace(self, x):
        """Runs forward and returns [(layer name, output)] for every layer in order."""
        self._check_input(x)
        outputs = []
        for name, _, _, _ in CONVS:
            x = F.relu(getattr(self, name)(x))
            outputs.append((name, x))
            if name in POOLED_AFTER:
                pool = POOLED_AFTER[name]
                x = getattr(self, pool)(x)
                outputs.append((pool, x))
        x = F.flatten(x, 1)  # NCHW order, as MatConvNet's fc1 after the import transpose
        x = self.dropout(F.relu(self.fc1(x)))
        outputs.append(("fc1", x))
        x = self.dropout(F.relu(self.fc2(x)))
        outputs.append(("fc2", x))
        x = self.classifier(x)
        if self.head == "softmax23":
            x = F.reshape(x, (x.shape[0], MAX_LENGTH, NUM_CHAR_CLASSES))
        outputs.append(("classifier", x))
        return outputs

    def forward(self, x):
        return self.trace(x)[-1][1]

    def extra_repr(self):
        return f"kind={self.kind!r}, head={self.head!r}, pool3={self.pool3_mode!r}"


def charnet(head="softmax23", pool3="ceil", dropout=0.5, **widths):
    """CHAR+2: 23 x 37 outputs; head "softmax23" (default) or "sigmoid".
    `widths` (width_divisor, hidden) build a narrower net; the default is the paper's."""
    if head not in HEADS:
        raise ValueError(f"charnet: head={head!r} is not one of {HEADS}")
    return JaderbergNet(MAX_LENGTH * NUM_CHAR_CLASSES, kind="charnet", head=head,
                        pool3=pool3, dropout=dropout, **widths)


def dictnet(num_words=NUM_WORDS, pool3="ceil", dropout=0.5, **widths):
    """DICT+2: one softmax over `num_words` lexicon words (88172 in the paper)."""
    if isinstance(num_words, bool) or not isinstance(num_words, (int, np.integer)) \
            or num_words < 1:
        raise ValueError(f"dictnet: num_words must be a positive int, got {num_words!r}")
    return JaderbergNet(int(num_words), kind="dictnet", head="softmax", pool3=pool3,
                        dropout=dropout, **widths)


MODELS = {"charnet": charnet, "dictnet": dictnet}
INPUT_SHAPES = {"charnet": INPUT_SHAPE, "dictnet": INPUT_SHAPE}
# `nnlite train/predict charnet|dictnet`'s recipes, found through
# nnlite.models.recipe_module (a module of its own: no data pipeline on build).
RECIPE_MODULE = "jaderberg_train"


def build(name="charnet", **options):
    """build("charnet", head=...) or build("dictnet", num_words=...)."""
    if name not in MODELS:
        raise ValueError(f"jaderberg.build: unknown model {name!r}; expected one of "
                         f"{sorted(MODELS)}")
    return MODELS[name](**options)


def parameter_count(num_outputs):
    """Exact parameter total of the body plus a `num_outputs` classifier, from the
    layer shapes alone (DictNet's 491M without allocating 2 GB)."""
    total = sum(cin * cout * k * k + cout for _, cin, cout, k in CONVS)
    features = int(np.prod(FEATURE_SHAPE))
    total += features * HIDDEN + HIDDEN + HIDDEN * HIDDEN + HIDDEN
    return total + HIDDEN * num_outputs + num_outputs


# ---------------------------------------------------------------- incremental learning

def widen(model, new_classes):
    """Adds `new_classes` (an int, or a sequence of new words) columns to a DictNet's
    softmax, in place, and returns the model. Conv and fc weights are kept; the
    old classifier rows keep their trained weights and biases; the new rows are
    Glorot-uniform with zero bias, as a fresh layer (Xiao et al. 2014). Any
    model whose `classifier` attribute is an nn.Linear can be widened."""
    old = getattr(model, "classifier", None)
    if not isinstance(old, nn.Linear) or getattr(model, "kind", "dictnet") != "dictnet":
        raise TypeError(f"widen: expected a DictNet (jaderberg.dictnet()) or a model whose "
                        f"`classifier` is an nn.Linear, got {type(model).__name__}"
                        + (f" of kind {model.kind!r}" if hasattr(model, "kind") else ""))
    count = new_classes if isinstance(new_classes, (int, np.integer)) else len(new_classes)
    if isinstance(count, bool) or count < 1:
        raise ValueError(f"widen: new_classes must add at least one class, got {new_classes!r}")
    old_classes = old.out_features
    wider = nn.Linear(old.in_features, old_classes + int(count), init="glorot",
                      dtype=old.weight.dtype, device=old.weight.device)
    wider.weight.data[:old_classes] = old.weight.data
    wider.bias.data[:old_classes] = old.bias.data
    model.classifier = wider
    return model


def incremental_schedule(num_words, start=5000, steps=(5000, 5000, 5000), then=10000):
    """Class counts of each incremental round: start, +5k, +5k, +5k, then +10k
    rounds, capped at num_words (the seed's DictNet schedule; any lexicon size)."""
    if num_words < 1:
        raise ValueError(f"incremental_schedule: num_words must be >= 1, got {num_words}")
    sizes = [min(start, num_words)]
    step_index = 0
    while sizes[-1] < num_words:
        step = steps[step_index] if step_index < len(steps) else then
        sizes.append(min(sizes[-1] + step, num_words))
        step_index += 1
    return sizes



INCREMENTAL_MODES = ("xiao", "new_words", "scratch")


def incremental_examples(word_ids, classes, previous, mode):
    """Indices of the examples a round that grows the softmax from `previous` to
    `classes` words draws its batches from: every word so far ("xiao", "scratch"),
    or only the words this round added ("new_words")."""
    if mode not in INCREMENTAL_MODES:
        raise ValueError(f"train_incremental: mode {mode!r} is not one of "
                         f"{', '.join(INCREMENTAL_MODES)}")
    word_ids = np.asarray(word_ids)
    lowest = previous if mode == "new_words" else 0
    return np.flatnonzero((word_ids >= lowest) & (word_ids < classes))


def train_incremental(images, word_ids, num_words=None, schedule=None, steps_per_round=100,
                      batch_size=64, lr=0.1, momentum=0.9, decay=1e-6, model=None, seed=0,
                      on_step=None, mode="xiao", make_model=None, plateau_window=None,
                      plateau_tol=0.01, on_round=None):
    """DictNet's incremental training (Xiao et al. 2014, as Jaderberg et al. 2014
    applied it) on any lexicon size.

    `images` (N, 1, 32, 100) and `word_ids` (N,) with ids in [0, num_words).
    Round r trains a softmax over the first schedule[r] words (default
    incremental_schedule(num_words)). `mode`:

    * "xiao" (the seed's method): between rounds the model is widened in place
      (widen: conv/fc weights and the old softmax columns copied, new columns
      fresh), nothing is frozen, and each round trains every parameter on the
      examples of every word so far (old and new words).
    * "new_words" (an ablation: SPECS's paraphrase): widened the same way, but
      each round trains on the examples of the words it added only.
    * "scratch" (the comparison without inheritance): each round after the
      first trains a fresh model, make_model(classes) (default
      dictnet(num_words=classes)), on every word so far; nothing is copied.

    A round runs steps_per_round SGD steps, or, with plateau_window=W, stops
    early once the mean loss of the last W steps fell by less than plateau_tol
    (relative) below the W steps before ("until partial convergence").
    SGD with Nesterov momentum and Keras's decay, lr / (1 + decay * step), a fresh
    optimiser each round. on_step(classes, step, loss) after every step;
    on_round(classes, model, steps) after every round.
    Returns (model, [(classes, mean loss of the round)])."""
    if mode not in INCREMENTAL_MODES:
        raise ValueError(f"train_incremental: mode {mode!r} is not one of "
                         f"{', '.join(INCREMENTAL_MODES)}")
    word_ids = np.asarray(word_ids, dtype=np.int64)
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or tuple(images.shape[1:]) != INPUT_SHAPE or \
            images.shape[0] != word_ids.shape[0]:
        raise ValueError(f"train_incremental: images have shape {images.shape} and word_ids "
                         f"{word_ids.shape}; expected (N,) + {INPUT_SHAPE} and (N,)")
    num_words = int(word_ids.max()) + 1 if num_words is None else int(num_words)
    schedule = incremental_schedule(num_words) if schedule is None else list(schedule)
    if schedule != sorted(schedule) or schedule[-1] < int(word_ids.max()) + 1:
        raise ValueError(f"train_incremental: schedule {schedule} must increase and cover "
                         f"the {int(word_ids.max()) + 1} words the labels use")
    if plateau_window is not None and int(plateau_window) < 1:
        raise ValueError(f"train_incremental: plateau_window must be >= 1, got "
                         f"{plateau_window!r}")
    make_model = (lambda classes: dictnet(num_words=classes)) if make_model is None \
        else make_model
    rng = np.random.default_rng(seed)
    model = make_model(schedule[0]) if model is None else model
    history, step, previous = [], 0, 0
    for index, classes in enumerate(schedule):
        if mode == "scratch" and index > 0:
            model = make_model(classes)
        if model.classifier.out_features < classes:
            widen(model, classes - model.classifier.out_features)
        chosen = incremental_examples(word_ids, classes, previous, mode)
        previous = classes
        if chosen.size == 0:
            continue
        optimizer = nl.optim.SGD(model.parameters(), lr=lr, momentum=momentum, nesterov=True)
        model.train()
        losses = []
        for _ in range(steps_per_round):
            batch = rng.choice(chosen, size=min(batch_size, chosen.size), replace=False)
            for group in optimizer.param_groups:
                group["lr"] = lr / (1.0 + decay * step)
            optimizer.zero_grad()
            loss = dictnet_loss(model(nl.tensor(images[batch])), word_ids[batch])
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            step += 1
            if on_step is not None:
                on_step(classes, step, losses[-1])
            if plateau_window is not None and len(losses) >= 2 * plateau_window and \
                    len(losses) % plateau_window == 0:
                last = float(np.mean(losses[-plateau_window:]))
                before = float(np.mean(losses[-2 * plateau_window:-plateau_window]))
                if before - last < plateau_tol * abs(before):
                    break
        history.append((classes, float(np.mean(losses))))
        if on_round is not None:
            on_round(classes, model, len(losses))
    return model, history


# ---------------------------------------------------------------- preprocessing

GREY_WEIGHTS = (0.2989, 0.5870, 0.1140)


def to_grey(image):
    """(H, W), (H, W, 3) or (H, W, 4) -> (H, W) float64; integer images scale to [0, 1]."""
    array = np.asarray(image)
    if array.dtype.kind in "iu":
        array = array / float(np.iinfo(array.dtype).max)
    elif array.dtype.kind != "f" and array.dtype.kind != "b":
        raise TypeError(f"preprocess: image dtype {array.dtype} is not a numeric image")
    array = array.astype(np.float64)
    if array.ndim == 2:
        return array
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return array[..., :3] @ np.asarray(GREY_WEIGHTS)
    if array.ndim == 3 and array.shape[2] == 1:
        return array[..., 0]
    raise ValueError(f"preprocess: image has shape {array.shape}; expected (H, W) grey or "
                     f"(H, W, 3|4) colour")


def preprocess(image):
    """One image -> float32 (1, 32, 100): grey, bilinear resize, (x - mean) / (std + 1e-4)."""
    grey = resize_bilinear(to_grey(image), INPUT_SHAPE[1], INPUT_SHAPE[2])
    normalised = (grey - grey.mean()) / (grey.std() + 1e-4)
    return normalised.astype(np.float32)[None]


def preprocess_batch(images):
    """A sequence of images (any sizes) -> float32 (N, 1, 32, 100)."""
    return np.stack([preprocess(image) for image in images])


# ---------------------------------------------------------------- labels, losses, decoding

def encode_words(words):
    """Words -> (N, 23) int64 class ids, lower-cased, padded with the space class."""
    labels = np.full((len(words), MAX_LENGTH), SPACE, dtype=np.int64)
    for row, word in enumerate(words):
        word = word.lower()
        if len(word) > MAX_LENGTH:
            raise ValueError(f"encode_words: {word!r} has {len(word)} characters; CharNet "
                             f"reads at most {MAX_LENGTH}")
        for position, char in enumerate(word):
            if char not in ALPHABET:
                raise ValueError(f"encode_words: {word!r} has {char!r}, which is not in the "
                                 f"alphabet {ALPHABET!r}")
            labels[row, position] = ALPHABET.index(char)
    return labels


def _position_logits(logits):
    """(N, 23, 37) or (N, 851) logits -> (N, 23, 37)."""
    if logits.ndim == 2 and logits.shape[1] == MAX_LENGTH * NUM_CHAR_CLASSES:
        return F.reshape(logits, (logits.shape[0], MAX_LENGTH, NUM_CHAR_CLASSES))
    if logits.ndim == 3 and tuple(logits.shape[1:]) == (MAX_LENGTH, NUM_CHAR_CLASSES):
        return logits
    raise ValueError(f"charnet: logits have shape {tuple(logits.shape)}; expected "
                     f"(N, {MAX_LENGTH}, {NUM_CHAR_CLASSES}) or "
                     f"(N, {MAX_LENGTH * NUM_CHAR_CLASSES})")


def charnet_loss(logits, labels, head="softmax23"):
    """softmax23: cross-entropy of each of the 23 positions, averaged over positions
    and batch. sigmoid: binary cross-entropy of all 851 units against the one-hot
    labels (the seed repository's loss). `labels` is (N, 23) class ids (encode_words)."""
    labels = np.asarray(labels.numpy() if isinstance(labels, nl.Tensor) else labels)
    if labels.ndim != 2 or labels.shape[1] != MAX_LENGTH or labels.shape[0] != logits.shape[0]:
        raise ValueError(f"charnet_loss: labels have shape {labels.shape}; expected "
                         f"(N, {MAX_LENGTH}) = ({logits.shape[0]}, {MAX_LENGTH})")
    per_position = _position_logits(logits)
    if head == "softmax23":
        return F.cross_entropy(F.permute(per_position, 0, 2, 1), labels)
    if head == "sigmoid":
        one_hot = np.eye(NUM_CHAR_CLASSES, dtype=per_position.dtype)[labels]
        return F.binary_cross_entropy_with_logits(per_position, nl.tensor(one_hot))
    raise ValueError(f"charnet_loss: head={head!r} is not one of {HEADS}")


def dictnet_loss(logits, word_ids):
    """Categorical cross-entropy over the lexicon."""
    return F.cross_entropy(logits, np.asarray(word_ids, dtype=np.int64))


def decode_charnet(logits):
    """Argmax per position -> strings with trailing spaces stripped."""
    ids = np.asarray(_position_logits(logits).numpy()).argmax(axis=2)
    return ["".join(ALPHABET[i] for i in row).rstrip(" ") for row in ids]


def decode_dictnet(logits, lexicon=None):
    """Argmax word ids, or the words themselves when `lexicon` is given."""
    ids = np.asarray(logits.numpy()).argmax(axis=1)
    if lexicon is None:
        return ids.tolist()
    if len(lexicon) != logits.shape[1]:
        raise ValueError(f"decode_dictnet: lexicon has {len(lexicon)} words but the logits "
                         f"have {logits.shape[1]} classes")
    return [lexicon[i] for i in ids]


def word_accuracy(predicted_words, target_words):
    """Case-insensitive exact-match accuracy (the paper's metric), via nl.metrics."""
    return metrics.word_accuracy([p.lower() for p in predicted_words],
                                 [t.lower() for t in target_words])


def default_config(name="charnet"):
    """The seed's training recipe (SPECS section 1)."""
    config = {
        "model": name,
        "optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True,
        "lr_decay": 1e-6,  # Keras's SGD decay: lr / (1 + decay * iteration)
        "batch_size": 1024,  # the paper's; use a smaller batch on small machines
        "init": "glorot_uniform", "dropout": 0.5,
        "input_shape": INPUT_SHAPE, "samples_per_epoch": 10000,
    }
    if name == "charnet":
        config.update(head="softmax23", alphabet=ALPHABET, max_length=MAX_LENGTH)
    elif name == "dictnet":
        config.update(num_words=NUM_WORDS, incremental_start=5000,
                      incremental_steps=(5000, 5000, 5000), incremental_then=10000)
    else:
        raise ValueError(f"default_config: unknown model {name!r}; expected 'charnet' or "
                         f"'dictnet'")
    return config
