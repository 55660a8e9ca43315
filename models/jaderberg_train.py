"""CharNet / DictNet training recipes for `nnlite train charnet|dictnet`
(models.jaderberg names this module in RECIPE_MODULE;
nnlite.models.recipe_module("charnet") returns it).

CharNet: SyntheticWords of 1-23 characters over its alphabet (0-9 a-z) at
32x100, each image normalised as jaderberg.preprocess does ((x - mean) /
(std + 1e-4)); the per-position softmax head (23 x 37) trained with the
per-position cross-entropy; metrics: word accuracy (the metric that picks
best.h5) and character accuracy (see charnet_metrics).

DictNet: a synthetic lexicon of `lexicon_size` random lower-case words
(synthetic_lexicon), SyntheticWords drawn from it, one softmax over the
lexicon; metric: word accuracy. The incremental experiment (widening the
softmax round by round) is scripts/dictnet_incremental.py.

Optimiser: the seed's SGD with Nesterov momentum 0.9 and Keras decay
lr / (1 + 1e-6 step); lr 0.1 (the seed's) for the seed-size nets, 0.01 by
default for the compact ones (an untuned choice; `lr=` overrides it).
optimizer="adam" (lr 1e-3) is not the seed's: on the reduced budget the SGD
recipe learnt characters about three times more slowly (issue 16,
docs/results/text.md), and not at all in 1,500 steps on 1-23 characters.

Size: "compact" (the default on a CPU) keeps the layer structure with a
quarter of the conv channels and 512-wide fully connected layers (about 3.6M
parameters for CharNet instead of 138M); "seed" is the paper's network.
"""
import numpy as np

import nnlite as nl
from nnlite.data import DataLoader, MJSynth, Subset, SyntheticWords, materialize, read_image
from nnlite.training import Recipe
from nnlite.training.task import model_device

from nnlite.models import jaderberg as _jb

SIZES = {"compact": dict(divisor=4, hidden=512), "seed": dict(divisor=1, hidden=_jb.HIDDEN)}
DEFAULT_SIZE = "compact"
DEFAULT_BATCH = 32
DEFAULT_STEPS = 2000
DEFAULT_EVAL_EVERY = 250
VAL_SIZE = 256
VAL_SEED_OFFSET = 7919
TRAIN_SIZE = 1_000_000
LEXICON_SIZE = 100
LEXICON_SEED = 12345
ADAM_LR = 1e-3


def build(name, size="compact", num_words=LEXICON_SIZE, **widths):
    """CharNet or DictNet (num_words classes) of `size` "compact" or "seed";
    `widths` (width_divisor, hidden) override the size's."""
    if size not in SIZES:
        raise ValueError(f"{name}: size must be one of {sorted(SIZES)}, got {size!r}")
    widths = {"width_divisor": SIZES[size]["divisor"], "hidden": SIZES[size]["hidden"],
              **widths}
    if name == "charnet":
        return _jb.charnet(**widths)
    return _jb.dictnet(num_words=num_words, **widths)


def build_sized(name, size=DEFAULT_SIZE):
    """The CharNet or DictNet of `size` that the recipe trains by default
    (nnlite.models.sizes and `nnlite summary --size`)."""
    return build(name, size)


def he_init(model):
    """He-uniform weights for the ReLU layers (convs, fc1, fc2), zero biases.
    Why: fan-in-scaled defaults shrink the signal about 3x per ReLU layer, and
    seven of them left our compact CharNet learning only the padding prior in
    1,500 SGD steps; He's gain keeps the scale (see docs/results/text.md)."""
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc1", "fc2"):
        layer = getattr(model, name)
        nl.nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
        nl.nn.init.zeros_(layer.bias)
    return model


def normalise(images):
    """Per-image (x - mean) / (std + 1e-4), as jaderberg.preprocess, on (N, 1, H, W)."""
    images = np.asarray(images, dtype=np.float32)
    mean = images.mean(axis=(1, 2, 3), keepdims=True)
    std = images.std(axis=(1, 2, 3), keepdims=True)
    return (images - mean) / (std + 1e-4)


def charnet_metrics(predicted, truth):
    """word_accuracy: exact matches (case-insensitive); character_accuracy:
    correct positions over the positions of the longer of prediction and truth
    (so padding that both leave blank does not count)."""
    correct = total = 0
    for p, t in zip(predicted, truth):
        t = t.lower()
        span = max(len(p), len(t))
        correct += sum(1 for i in range(span) if i < len(p) and i < len(t) and p[i] == t[i])
        total += span
    return {"word_accuracy": _jb.word_accuracy(predicted, truth),
            "character_accuracy": correct / max(total, 1)}


class CharNetTask:
    metric_name = "word_accuracy"
    higher_is_better = True

    def __init__(self, head="softmax23", show=6):
        self.head, self.show = head, show

    def _forward(self, model, batch):
        images, texts = batch
        logits = model(nl.tensor(normalise(images)).to(model_device(model)))
        loss = _jb.charnet_loss(logits, _jb.encode_words(texts), head=self.head)
        return loss, logits, list(texts)

    def loss(self, model, batch):
        loss, logits, texts = self._forward(model, batch)
        return loss, charnet_metrics(_jb.decode_charnet(logits), texts)

    def evaluate(self, model, loader):
        total, predicted, truth = 0.0, [], []
        for batch in loader:
            loss, logits, texts = self._forward(model, batch)
            total += loss.item() * len(texts)
            predicted += _jb.decode_charnet(logits)
            truth += texts
        if not truth:
            raise ValueError("charnet evaluate: the validation loader yielded no samples")
        _print_examples(predicted[:self.show], truth[:self.show])
        return {**charnet_metrics(predicted, truth), "loss": total / len(truth)}


class DictNetTask:
    metric_name = "word_accuracy"
    higher_is_better = True

    def __init__(self, lexicon, show=6):
        self.lexicon = list(lexicon)
        self.ids = {word: i for i, word in enumerate(self.lexicon)}
        self.show = show

    def _forward(self, model, batch):
        images, texts = batch
        logits = model(nl.tensor(normalise(images)).to(model_device(model)))
        ids = np.array([self.ids[t] for t in texts], dtype=np.int64)
        return _jb.dictnet_loss(logits, ids), logits, list(texts)

    def loss(self, model, batch):
        loss, logits, texts = self._forward(model, batch)
        words = _jb.decode_dictnet(logits, self.lexicon)
        return loss, {"word_accuracy": _jb.word_accuracy(words, texts)}

    def evaluate(self, model, loader):
        total, predicted, truth = 0.0, [], []
        for batch in loader:
            loss, logits, texts = self._forward(model, batch)
            total += loss.item() * len(texts)
            predicted += _jb.decode_dictnet(logits, self.lexicon)
            truth += texts
        if not truth:
            raise ValueError("dictnet evaluate: the validation loader yielded no samples")
        _print_examples(predicted[:self.show], truth[:self.show])
        return {"word_accuracy": _jb.word_accuracy(predicted, truth), "loss": total / len(truth)}


def _print_examples(predicted, truth):
    if not predicted:
        return
    from tqdm.auto import tqdm
    tqdm.write("validation examples (truth -> prediction):\n" + "\n".join(
        f"  {'ok' if p == t.lower() else '  '} {t!r:>25} -> {p!r}"
        for p, t in zip(predicted, truth)))


def synthetic_lexicon(size=LEXICON_SIZE, seed=LEXICON_SEED, min_length=3, max_length=10):
    """`size` distinct random lower-case words, a pure function of (size, seed)."""
    rng = np.random.default_rng(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words, seen = [], set()
    while len(words) < size:
        word = "".join(letters[i] for i in rng.integers(26, size=rng.integers(
            min_length, max_length + 1)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def training_recipe(data="synth", batch=None, seed=0, device="cpu", model="charnet",
                    size="compact", steps=DEFAULT_STEPS, eval_every=DEFAULT_EVAL_EVERY,
                    lexicon_size=LEXICON_SIZE, max_length=_jb.MAX_LENGTH, lr=None,
                    val_size=VAL_SIZE, show=6, model_options=None, init="he", augment=True,
                    layout="centred", optimizer="sgd"):
    """`nnlite train charnet|dictnet` (see the module docstring); a `data` PATH
    reads MJSynth's folder (CharNet only: DictNet needs its lexicon's ids).
    augment=False renders every word clean (black DejaVuSans on white,
    centred): one image per word, so the validation words are the training
    renders (a memorisation measure, used by the compression experiment).
    layout: SyntheticWords' "centred" or "crop" (words stretched to the width);
    optimizer: "sgd" (the seed's) or "adam"."""
    if model not in ("charnet", "dictnet"):
        raise ValueError(f"jaderberg training_recipe: model must be 'charnet' or 'dictnet', "
                         f"got {model!r}")
    config = _jb.default_config(model)
    lexicon = synthetic_lexicon(lexicon_size) if model == "dictnet" else None
    shape = dict(alphabet=_jb.ALPHABET, height=_jb.INPUT_SHAPE[1], width=_jb.INPUT_SHAPE[2],
                 max_length=max_length if lexicon is None else 10, augment=bool(augment),
                 layout=layout)
    if data == "synth":
        train = SyntheticWords(TRAIN_SIZE, seed=seed, lexicon=lexicon, **shape)
        val = SyntheticWords(val_size, seed=seed + VAL_SEED_OFFSET, lexicon=lexicon, **shape)
    elif model == "charnet":
        train = MJSynth(data, "annotation_train.txt", height=32, width=100)
        val = MJSynth(data, "annotation_val.txt", height=32, width=100)
        val = Subset(val, range(min(2000, len(val))))
    else:
        raise ValueError("dictnet trains on its synthetic lexicon only (--data synth)")
    val = materialize(val, progress=show > 0, desc="rendering the validation words")
    nl.manual_seed(seed)
    network = build(model, size, num_words=lexicon_size, **(model_options or {}))
    if init == "he":
        he_init(network)
    elif init != "default":
        raise ValueError(f"jaderberg training_recipe: init must be 'he' or 'default', got "
                         f"{init!r}")
    if optimizer == "sgd":
        lr = lr or (config["lr"] if size == "seed" else 0.01)
        optimizer = nl.optim.SGD(network.parameters(), lr=lr, momentum=config["momentum"],
                                 nesterov=config["nesterov"])
    elif optimizer == "adam":  # not the seed's; see docs/results/text.md (issue 16)
        optimizer = nl.optim.Adam(network.parameters(), lr=lr or ADAM_LR)
    else:
        raise ValueError(f"jaderberg training_recipe: optimizer must be 'sgd' or 'adam', got "
                         f"{optimizer!r}")
    decay = config["lr_decay"]
    scheduler = nl.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1.0 + decay * step))
    task = CharNetTask(show=show) if model == "charnet" else DictNetTask(lexicon, show=show)
    train_loader = DataLoader(train, batch_size=batch or DEFAULT_BATCH, shuffle=True, seed=seed,
                              drop_last=True)
    val_loader = DataLoader(val, batch_size=64, prefetch=0)
    return Recipe(network, optimizer, scheduler, task, train_loader, val_loader, steps=steps,
                  eval_every=eval_every, log_every=10)


def load_image(path):
    """An image file -> float32 (1, 32, 100) in [0, 1] (stretched, grey); the
    per-image normalisation happens in predict_texts, as in training."""
    from nnlite.data.images import fit
    return fit(read_image(path), 32, 100, "stretch")[None].astype(np.float32)


def predict_texts(model, images, beam=None, lexicon=None):
    """CharNet: the per-position argmax. DictNet: the synthetic lexicon's word
    (or `lexicon`'s, when it has as many words as the softmax)."""
    logits = model(nl.tensor(normalise(images)).to(model_device(model)))
    if model.kind == "charnet":
        return _jb.decode_charnet(logits)
    words = lexicon if lexicon is not None else synthetic_lexicon(logits.shape[1])
    return _jb.decode_dictnet(logits, list(words))


def build_for_checkpoint(path, name):
    """CharNet / DictNet shaped like the one saved in `path` (compact or seed),
    read from the conv1 weight and the fc1 / classifier biases, which a
    compressed checkpoint keeps too (nnlite.compression restructures the rest)."""
    import h5py
    with h5py.File(path, "r") as f:
        if "model" not in f:
            raise ValueError(f"{path!r} holds no model group (not an nnlite checkpoint)")
        group = f["model"]
        conv1 = int(group["conv1.weight"].shape[0])
        hidden = int(_bias_of(group, "fc1").shape[0])
        outputs = int(_bias_of(group, "classifier").shape[0])
    widths = dict(width_divisor=_jb.CONVS[0][2] // conv1, hidden=hidden)
    if name == "charnet":
        return _jb.charnet(**widths)
    return _jb.dictnet(num_words=outputs, **widths)


def _bias_of(group, layer):
    """The bias dataset of a Linear, dense ("fc1.bias") or low rank ("fc1.up.bias")."""
    for key in (f"{layer}.bias", f"{layer}.up.bias"):
        if key in group:
            return group[key]
    raise KeyError(f"no {layer}.bias or {layer}.up.bias in the checkpoint")
