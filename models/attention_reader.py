"""The attention reader: deep_reader's recurrent network with a learnt input
mask (SPECS section 2, seed 001, PyTorch 0.4 originally).

    model = attention_reader()                   # 19,627,035 parameters
    logits, masks = model(images)                # (N, 5, 27), (N, 5, 40, 40)
    loss = masked_cross_entropy(logits, targets) # targets (N, 5), padded with 26

Each of the 5 steps multiplies the 40x40 image by the current mask (all ones
at the first step), runs three valid 3x3 convs (16 channels, ReLU), feeds the
flattened 16x34x34 = 18,496 features to one LSTMCell step (h, c carried), and
reads two heads off h: 27 class logits and a sigmoid 40x40 mask for the next
step. ``masks[:, t]`` is the mask step t looked through when it produced
``logits[:, t]`` (the seed's visualisation shows these).
"""
import string

import numpy as np

import nnlite
from nnlite import functional as F
from nnlite import nn

LETTERS = string.ascii_uppercase
TERMINAL = len(LETTERS)  # class 26 ends (and pads) a word
NUM_CLASSES = len(LETTERS) + 1
STEPS = 5
IMAGE_SIZE = 40


class AttentionReader(nn.Module):
    """forward(x) -> (logits (N, steps, num_classes), masks (N, steps, H, W))
    for x of shape (N, 1, image_size, image_size)."""

    def __init__(self, num_classes=NUM_CLASSES, steps=STEPS, image_size=IMAGE_SIZE,
                 channels=16, hidden_size=256, conv_init="torch"):
        super().__init__()
        if image_size < 7:
            raise ValueError(f"attention_reader: image_size must be >= 7 (three valid 3x3 "
                             f"convs), got {image_size}")
        self.num_classes, self.steps, self.image_size = num_classes, steps, image_size
        # "torch" (the seed's PyTorch 0.4.1 default) shrinks the image-dependent
        # part of the features about 20x over the three convs, below their
        # constant part (the biases); "he" keeps it (docs/results/vision.md).
        self.c1 = nn.Conv2d(1, channels, 3, init=conv_init)
        self.c2 = nn.Conv2d(channels, channels, 3, init=conv_init)
        self.c3 = nn.Conv2d(channels, channels, 3, init=conv_init)
        side = image_size - 6
        self.feature_size = channels * side * side  # 18496 for the seed's 40x40
        self.lstm = nn.LSTMCell(self.feature_size, hidden_size)
        self.mask_head = nn.Linear(hidden_size, image_size * image_size)
        self.class_head = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        size = self.image_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, size, size):
            raise ValueError(f"attention_reader: expected input (N, 1, {size}, {size}), got "
                             f"shape {tuple(x.shape)}")
        batch = x.shape[0]
        mask = nnlite.ones((batch, 1, size, size), dtype=x.dtype, device=x.device)
        state = None
        logits, masks = [], []
        for _ in range(self.steps):
            masks.append(F.reshape(mask, batch, size, size))
            h = F.relu(self.c1(x * mask))
            h = F.relu(self.c2(h))
            h = F.relu(self.c3(h))
            state = self.lstm(F.flatten(h, 1), state)
            logits.append(self.class_head(state[0]))
            mask = F.reshape(F.sigmoid(self.mask_head(state[0])), batch, 1, size, size)
        return F.stack(logits, dim=1), F.stack(masks, dim=1)

    def extra_repr(self):
        return f"num_classes={self.num_classes}, steps={self.steps}, image_size={self.image_size}"


def attention_reader(**options):
    """The deep_reader network (SPECS section 2); options as AttentionReader's."""
    return AttentionReader(**options)


build = attention_reader
MODELS = {"attention_reader": attention_reader}
INPUT_SHAPES = {"attention_reader": (1, IMAGE_SIZE, IMAGE_SIZE)}


def encode_words(words, steps=STEPS):
    """(N, steps) int64 targets: A-Z as 0-25, padded with the terminal class 26.
    A word needs room for its terminal, so at most steps - 1 letters."""
    targets = np.full((len(words), steps), TERMINAL, dtype=np.int64)
    for row, word in zip(targets, words):
        if len(word) > steps - 1 or any(c not in LETTERS for c in word):
            raise ValueError(f"attention_reader.encode_words: {word!r} must be 0..{steps - 1} "
                             f"letters A-Z")
        row[:len(word)] = [LETTERS.index(c) for c in word]
    return targets


def decode_words(logits):
    """Words from (N, steps, C) logits: argmax letters up to the first terminal."""
    best = np.asarray(logits.numpy() if isinstance(logits, nnlite.Tensor) else logits).argmax(axis=2)
    words = []
    for row in best:
        ends = np.nonzero(row == TERMINAL)[0]
        words.append("".join(LETTERS[i] for i in row[:ends[0] if ends.size else len(row)]
                             if i < TERMINAL))
    return words


def step_mask(targets):
    """(N, steps) float mask: 1 at positions 0..first terminal (inclusive), 0 after."""
    targets = np.asarray(targets)
    position = np.arange(targets.shape[1])[None, :]
    is_terminal = targets == TERMINAL
    first = np.where(is_terminal.any(axis=1), is_terminal.argmax(axis=1), targets.shape[1])
    return (position <= first[:, None]).astype(np.float32)


def masked_cross_entropy(logits, targets):
    """The seed's loss: per-step cross-entropy, ignored after the first terminal,
    summed and divided by ALL batch x steps entries (the seed averages the
    masked matrix, so ignored entries count in the denominator)."""
    n, steps, classes = logits.shape
    targets = np.asarray(targets.numpy() if isinstance(targets, nnlite.Tensor) else targets)
    if targets.shape != (n, steps):
        raise ValueError(f"attention_reader loss: targets of shape {targets.shape}; expected "
                         f"(N, steps) = {(n, steps)}")
    per_entry = F.cross_entropy(F.reshape(logits, n * steps, classes), targets.reshape(-1),
                                reduction="none")
    weights = nnlite.tensor(step_mask(targets).reshape(-1).astype(per_entry.dtype),
                            device=per_entry.device)
    return F.sum(per_entry * weights) / (n * steps)


loss = masked_cross_entropy


def metrics(logits, targets):
    """Whole-word exact match (the seed's accuracy): every position up to and
    including the first terminal predicted right."""
    targets = np.asarray(targets)
    best = np.asarray(logits.numpy() if isinstance(logits, nnlite.Tensor) else logits)
    best = best.argmax(axis=2)
    mask = step_mask(targets).astype(bool)
    correct = ((best == targets) | ~mask).all(axis=1)
    return {"word_accuracy": float(correct.mean())}


def default_config():
    """The seed's training setting (SPECS section 2)."""
    return {
        "model": "attention_reader",
        "input_shape": INPUT_SHAPES["attention_reader"],
        "classes": LETTERS + "<end>",
        "num_classes": NUM_CLASSES,
        "steps": STEPS,
        "optimizer": "adam",
        "lr": 1e-3,
        "batch_size": 32,
        "iterations": 10_000,
        "eval_every": 100,
        "test_set_size": 1024,
        "lr_schedule": {"kind": "test loss fails", "factor": 0.1, "fails": 3,
                        "monitor": "test loss"},
        "metric": "word_accuracy",
        "target_word_accuracy": 0.87,
    }


# ---------------------------------------------------------------- training (nnlite train)

VALIDATION_SEED_OFFSET = 1_000_003  # the fixed test set's seed: seed + this (not the training seed)
TRAIN_ITEMS = 10_000_000  # items are generated on demand: each batch is fresh data


def _words_batch(batch, device):
    from nnlite.training.task import move_batch
    images, words = batch
    return move_batch(images, device), encode_words(words)


class AttentionReaderTask:
    """Batches (images (N, 1, 40, 40), words); the seed's masked loss; metric
    whole-word accuracy. evaluate() also returns the test loss, which the lr
    schedule watches (SPECS section 2: lr x0.1 when the TEST LOSS stops improving)."""
    metric_name = "word_accuracy"
    higher_is_better = True

    def __init__(self):
        self.last_eval_loss = None

    def loss(self, model, batch):
        from nnlite.training.task import model_device
        images, targets = _words_batch(batch, model_device(model))
        logits, _ = model(images)
        return masked_cross_entropy(logits, targets), metrics(logits.numpy(), targets)

    def evaluate(self, model, loader):
        from nnlite.training.task import model_device
        total_loss, correct, count = 0.0, 0.0, 0
        for batch in loader:
            images, targets = _words_batch(batch, model_device(model))
            logits, _ = model(images)
            n = len(targets)
            total_loss += masked_cross_entropy(logits, targets).item() * n
            correct += metrics(logits.numpy(), targets)["word_accuracy"] * n
            count += n
        if count == 0:
            raise ValueError("attention_reader evaluate: the validation loader yielded no samples")
        self.last_eval_loss = total_loss / count
        return {"word_accuracy": correct / count, "loss": self.last_eval_loss}

    def predict(self, model, batch):
        from nnlite.training.task import model_device, move_batch
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        return decode_words(model(move_batch(images, model_device(model)))[0])


def _seed_schedule(optimizer, task, config):
    """TestLossFails on the task's latest test loss (the Trainer hands a
    plateau schedule the task's metric, word accuracy; the seed watches the
    test loss)."""
    from nnlite.optim.lr_scheduler import ReduceLROnPlateau

    class TestLossFails(ReduceLROnPlateau):
        """The seed's rule (deep_reader's main.py, LR_FAILS = 3, LR_STEP = 0.1):
        after each evaluation a test loss above the best so far is a fail; the
        third fail in a row cuts lr by `factor`, and so does every further fail
        in that row (the count is not reset by a cut, unlike PyTorch's
        ReduceLROnPlateau); a loss at or below the best resets it."""

        def __init__(self, optimizer, factor, fails):
            super().__init__(optimizer, mode="min", factor=factor, patience=fails - 1,
                             threshold=0.0, threshold_mode="abs")
            self.fails = fails

        def step(self, metrics=None, epoch=None):
            loss = self.read_loss()
            current = float(metrics if loss is None else loss)
            self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
            if current > self.best:
                self.num_bad_epochs += 1
                if self.num_bad_epochs >= self.fails:
                    self._reduce_lr()
            else:
                self.best, self.num_bad_epochs = current, 0
            self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    schedule = config["lr_schedule"]
    scheduler = TestLossFails(optimizer, factor=schedule["factor"], fails=schedule["fails"])
    scheduler.read_loss = lambda: task.last_eval_loss  # callable: not in state_dict
    return scheduler


SCHEDULES = ("seed", "cosine", "step", "constant")


def training_recipe(data="synth", batch=None, seed=0, device="cpu", lr=None,
                    font="DejaVuSans", schedule="seed", milestones=None, **overrides):
    """The seed's recipe (SPECS section 2): Adam 1e-3, batch 32, a fresh
    SyntheticLetters batch every iteration, a fixed 1024-image test set (its
    own seed) evaluated every 100 iterations, lr x0.1 at the third test-loss
    fail in a row and at each further one (the seed's rule: _seed_schedule),
    10,000 iterations. lr: Adam's starting learning rate instead of the seed's
    1e-3 (`--option lr=X`). font: the letters' font for the training and
    test images (a matplotlib font name or a path; the seed drew Arial, which
    is not installable here). schedule: "seed" (the rule above), "cosine"
    (half a cosine from the starting lr to 0 over the iterations, stepped every
    iteration: no cut on a noisy test loss; `--option schedule=cosine`),
    "step" (x0.1 at each of the iterations in `milestones`: `--option
    schedule=step --option milestones=[7000,9000]`) or "constant" (none).
    `overrides`: test_set_size, and the network's
    options (channels, hidden_size, conv_init; `--option conv_init=he`)."""
    from nnlite import optim
    from nnlite.data import DataLoader, SyntheticLetters, materialize
    from nnlite.training import Recipe
    if data != "synth":
        raise ValueError(f"attention_reader trains on synthetic letters only (the seed's data "
                         f"is generated); got {data!r}, use --data synth")
    if schedule not in SCHEDULES:
        raise ValueError(f"attention_reader recipe: schedule must be one of {SCHEDULES}, "
                         f"got {schedule!r}")
    if (schedule == "step") != (milestones is not None):
        raise ValueError(f"attention_reader recipe: milestones go with schedule='step' (and it "
                         f"needs them); got schedule={schedule!r}, milestones={milestones!r}")
    if milestones is not None and (
            not isinstance(milestones, (list, tuple)) or not milestones
            or any(isinstance(m, bool) or not isinstance(m, int) or m <= 0 for m in milestones)):
        raise ValueError(f"attention_reader recipe: milestones must be a list of positive "
                         f"iteration numbers, e.g. [7000, 9000]; got {milestones!r}")
    config = default_config()
    test_size = overrides.pop("test_set_size", config["test_set_size"])
    nnlite.manual_seed(seed)
    model = attention_reader(**overrides)
    size = model.image_size
    optimizer = optim.Adam(model.parameters(), lr=config["lr"] if lr is None else lr)
    task = AttentionReaderTask()
    if schedule == "seed":
        scheduler = _seed_schedule(optimizer, task, config)
    elif schedule == "cosine":
        scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config["iterations"])
    elif schedule == "step":
        scheduler = optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=config[
            "lr_schedule"]["factor"])
    else:
        scheduler = None
    batch = batch or config["batch_size"]
    train = DataLoader(SyntheticLetters(TRAIN_ITEMS, seed=seed, image_size=size, font=font),
                       batch, shuffle=False, seed=seed, prefetch=4, workers=1)
    test_set = materialize(SyntheticLetters(test_size, seed=seed + VALIDATION_SEED_OFFSET,
                                            image_size=size, font=font),
                           desc="attention_reader test set")
    val = DataLoader(test_set, 256, shuffle=False, prefetch=0)
    return Recipe(model, optimizer, scheduler, task, train, val, steps=config["iterations"],
                  eval_every=config["eval_every"], log_every=10)


def load_image(path):
    """(1, 40, 40) float32 from an image file (grey, resized to 40x40 if needed)
    or a .npy array; values as stored (the seed's images are letters at
    ~0.5 on black with noise)."""
    from nnlite.data import read_image
    from nnlite.models.imaging import resize_bilinear
    if str(path).endswith(".npy"):
        image = np.load(path).astype(np.float32)
        image = image.reshape(image.shape[-2:]) if image.ndim == 3 and image.shape[0] == 1 \
            else image
    else:
        image = read_image(path, grey=True)
    if image.ndim != 2:
        raise ValueError(f"attention_reader.load_image: expected a grey image, got shape "
                         f"{image.shape}")
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
        image = resize_bilinear(image, IMAGE_SIZE, IMAGE_SIZE)
    return image.astype(np.float32)[None]


def _lexicon_scores(logits, lexicon, steps):
    """(N, len(lexicon)) log-probabilities of each lexicon word (its letters and
    terminal, the positions the loss counts)."""
    shifted = logits - logits.max(axis=2, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=2, keepdims=True))
    words = [w.upper() for w in lexicon if 0 < len(w) < steps and w.isalpha()]
    if not words:
        raise ValueError(f"attention_reader: no lexicon word of 1..{steps - 1} letters A-Z")
    targets = encode_words(words, steps)
    mask = step_mask(targets)
    picked = log_probs[:, np.arange(steps)[None, :], targets]  # (N, words, steps)
    return (picked * mask[None]).sum(axis=2), words


def predict_texts(model, images, beam=None, lexicon=None):
    """Greedy words (the network's output is one class per step, so a beam adds
    nothing and is ignored); with a lexicon, the most probable lexicon word."""
    logits, _ = model(nnlite.tensor(np.asarray(images, dtype=np.float32)))
    if lexicon is None:
        return decode_words(logits)
    scores, words = _lexicon_scores(logits.numpy().astype(np.float64), lexicon, model.steps)
    return [words[i] for i in scores.argmax(axis=1)]


def attention_masks(model, images):
    """(N, steps, 40, 40): the mask each step looked through (step 1: all ones)."""
    _, masks = model(nnlite.tensor(np.asarray(images, dtype=np.float32)))
    return masks.numpy()
