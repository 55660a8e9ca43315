"""CRNN's training recipe for `nnlite train crnn` (models.crnn names this
module in RECIPE_MODULE; nnlite.models.recipe_module("crnn") returns it).

    recipe = training_recipe()              # printed words in many fonts: the main job
    recipe = training_recipe(data="synth")           # clean synthetic 1-5 character words
    recipe = training_recipe(data="/data/mjsynth")   # MJSynth's folder instead
    recipe = training_recipe(data="unseen-fonts")    # for `nnlite eval`: the benchmark

Printed data (data="printed", the default; nnlite.data.printed): real words, case
variants, digits and mixed tokens of up to 16 characters in the training
font families, rendered at natural size with background, contrast,
geometry, blur, noise and JPEG variety, fitted to 32x128 by the function
that fits a user's image (load_image below). The stream is read in order so
that item i belongs to step i // batch, and a Curriculum raises the
augmentation strength from clean (the first PRINTED_CLEAN_STEPS steps) to
full over PRINTED_RAMP_STEPS. Its validation set is drawn like the
unseen-fonts benchmark (held-out fonts and words, Pillow's renderer) from
another seed, so choosing best.h5 on it never looks at the benchmark.
data="unseen-fonts" evaluates on the benchmark itself (nnlite.data.benchmark:
1,000 words, fixed seed); training on it is refused.

Synthetic data: SyntheticWords over the seed's 62 characters at 32x128. The
default curriculum is clean renders (no augmentation) of words of
1-DEFAULT_MAX_LENGTH characters: the README's run reads words after ~1,000
steps on it, where the augmented renders were still on CTC's all-blank
plateau at 1,500 steps (docs/results/text.md). ``augment=True`` adds fonts,
rotation, blur, noise and contrast; ``max_length=16`` gives the full range.
The validation set is a fixed set of VAL_SIZE words drawn from a different
seed and rendered the same way, once.
Loss: CTC (crnn.ctc_loss, blank last); metric: word accuracy of greedy
decoding (plus the character error rate and the validation CTC loss).
Optimiser: the seed's Adam at lr 1e-3 (crnn.default_config); on printed data
a cosine decay to 1e-5 over the run, on the others none.

Model size: on the named data sets the default is the COMPACT CRNN, the
seed's layers with a quarter of the channels (16..128) and 64 LSTM units per
direction (0.55M parameters instead of 6.6M): a CPU step at batch 32 costs
about a tenth of the seed size's, so the main job reads printed words
within its 10 minutes. size="seed" trains the seed's full CRNN (the default for a dataset
PATH). ``build_for_checkpoint`` rebuilds either from a checkpoint's shapes,
so `nnlite predict crnn` reads both."""
import numpy as np

import nnlite as nl
from nnlite.data import (Curriculum, DataLoader, MJSynth, PrintedWords, Subset, SyntheticWords,
                         UnseenFontsBenchmark, materialize, read_image)
from nnlite.data.benchmark import BENCHMARK_SEED
from nnlite.data.words import MAX_LENGTH
from nnlite.training import Recipe
from nnlite.training.task import model_device, move_batch

from nnlite.models import crnn as _crnn

DEFAULT_MAX_LENGTH = 5     # the README run's curriculum: words of 1-5 characters
DEFAULT_BATCH = 32         # the seed's is 256; 32 keeps a CPU step around a second
DEFAULT_AUGMENT = False    # clean renders by default: see the module docstring
DEFAULT_STEPS = 1500
DEFAULT_EVAL_EVERY = 250
TRAIN_SIZE = 1_000_000     # synthetic items are drawn on demand; this is just the epoch
VAL_SIZE = 256
VAL_SEED_OFFSET = 7919     # the validation words come from seed + this, never trained on
SHOW_PREDICTIONS = 6       # validation predictions printed at each evaluation
# Printed data: a stream far longer than any run, so one epoch never ends and
# the curriculum's step (index // batch) never wraps round.
PRINTED_TRAIN_SIZE = 2 ** 40
# The main job's printed run (`nnlite train crnn`): 3,000 steps of the compact
# CRNN, about 10 minutes on 2 idle cores; clean renders for 500 steps (off
# CTC's all-blank plateau), the augmentation then grown to full strength at
# the last step, and a cosine lr. Measured on the unseen-font validation
# words (README): ramping over 1,500 steps at a constant lr read 72.9% at
# step 3,000 (64.6% at 2,000, when the augmentation reached full strength);
# this setting read 75.2% already at step 2,000.
PRINTED_STEPS = 3000
PRINTED_EVAL_EVERY = 500
PRINTED_CLEAN_STEPS = 500
PRINTED_RAMP_STEPS = 2500
PRINTED_LR_SCHEDULE = "cosine"
PRINTED_VAL_SIZE = 512
PRINTED_WORKERS = 2         # render processes (worker_type="process")
LR_SCHEDULES = ("constant", "cosine")
COSINE_FLOOR = 0.01         # lr_schedule="cosine" ends at this fraction of the lr
# Named data sets of this recipe; EVAL_ONLY_DATA are refused by `nnlite train`.
NAMED_DATA = ("synth", "printed", "unseen-fonts")
EVAL_ONLY_DATA = {"unseen-fonts": "the unseen-fonts benchmark is for `nnlite eval` only; "
                                  "train with --data printed (its validation words are "
                                  "drawn the same way from another seed)"}
# The compact net's LSTMs use PyTorch's uniform initialisation and no input
# dropout. Why: with the seed's Keras initialisation (orthogonal recurrent
# weights, forget-gate bias 1) and dropout 0.2, the compact CRNN was still on
# CTC's all-blank plateau after 2,000 steps on clean 1-5 character words
# (word accuracy 0.0%, CER 0.94); with these two changes the same run read
# 64% of the words at step 1,000 (docs/results/text.md). The seed size keeps
# the seed's choices.
SIZES = {"compact": dict(channels=tuple(c // 4 for c in _crnn.SEED_CHANNELS), hidden_size=64,
                         lstm_init="torch", dropout=0.0),
         "seed": dict(channels=_crnn.SEED_CHANNELS, hidden_size=128)}
DEFAULT_SIZE = "compact"    # on the named data sets; a PATH (MJSynth) trains the seed's


def _check_size(size):
    if size not in SIZES:
        raise ValueError(f"crnn training_recipe: size must be one of {sorted(SIZES)}, "
                         f"got {size!r}")


def build_sized(name="crnn", size=DEFAULT_SIZE, **model_options):
    """The CRNN of `size` (a key of SIZES) that the recipe trains, with
    model_options on top (nnlite.models.sizes and `nnlite summary --size`)."""
    _check_size(size)
    config = _crnn.default_config()
    return _crnn.crnn(num_classes=config["num_classes"], blank=config["blank"],
                      **{**SIZES[size], **model_options})


class CTCTextTask:
    """Batches (images (N, 1, 32, W), texts); CTC loss; greedy-decoded word
    accuracy. evaluate prints the first few validation predictions beside the
    truth (``show`` of them; 0 prints none)."""
    metric_name = "word_accuracy"
    higher_is_better = True

    def __init__(self, alphabet, show=SHOW_PREDICTIONS, printer=None):
        self.alphabet = alphabet
        self.show = int(show)
        self.printer = printer

    def _forward(self, model, batch):
        images, texts = batch
        images = move_batch(images, model_device(model))
        log_probs = model(images)
        targets, lengths = _crnn.encode_batch(texts, self.alphabet)
        loss = _crnn.ctc_loss(log_probs, targets, lengths, blank=model.blank)
        return loss, log_probs, list(texts)

    def loss(self, model, batch):
        loss, log_probs, texts = self._forward(model, batch)
        words = _crnn.decode(log_probs.numpy(), self.alphabet)
        return loss, {"word_accuracy": nl.metrics.word_accuracy(words, texts)}

    def evaluate(self, model, loader):
        total, count, predictions, truths = 0.0, 0, [], []
        for batch in loader:
            loss, log_probs, texts = self._forward(model, batch)
            total += loss.item() * len(texts)
            count += len(texts)
            predictions += _crnn.decode(log_probs.numpy(), self.alphabet)
            truths += texts
        if count == 0:
            raise ValueError("crnn evaluate: the validation loader yielded no samples")
        if self.show:
            self._print_examples(predictions[:self.show], truths[:self.show])
        return {"word_accuracy": nl.metrics.word_accuracy(predictions, truths),
                "character_error_rate": nl.metrics.character_error_rate(predictions, truths),
                "loss": total / count}

    def _print_examples(self, predictions, truths):
        from tqdm.auto import tqdm
        write = self.printer or tqdm.write
        lines = [f"  {'ok' if p == t else '  '} {t!r:>20} -> {p!r}"
                 for p, t in zip(predictions, truths)]
        write("validation examples (truth -> prediction):\n" + "\n".join(lines))

    def predict(self, model, batch):
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        log_probs = model(move_batch(images, model_device(model)))
        return _crnn.decode(log_probs.numpy(), self.alphabet)


def synthetic_datasets(seed=0, min_length=1, max_length=DEFAULT_MAX_LENGTH,
                       train_size=TRAIN_SIZE, val_size=VAL_SIZE, progress=True,
                       augment=DEFAULT_AUGMENT):
    """(train, validation) SyntheticWords over CRNN's alphabet at 32x128; the
    validation set is rendered once from a different seed. augment=False
    renders clean black DejaVuSans text on white (an easier curriculum)."""
    shape = dict(alphabet=_crnn.CHARACTERS, height=_crnn.INPUT_HEIGHT,
                 width=_crnn.INPUT_WIDTH, min_length=min_length, max_length=max_length,
                 augment=augment)
    train = SyntheticWords(train_size, seed=seed, **shape)
    val = SyntheticWords(val_size, seed=seed + VAL_SEED_OFFSET, **shape)
    return train, materialize(val, progress=progress, desc="rendering the validation words")


def printed_datasets(seed=0, batch=DEFAULT_BATCH, max_length=MAX_LENGTH,
                     val_size=PRINTED_VAL_SIZE, progress=True, clean_steps=PRINTED_CLEAN_STEPS,
                     ramp_steps=PRINTED_RAMP_STEPS, train_size=PRINTED_TRAIN_SIZE):
    """(train, validation) for data="printed": PrintedWords with a Curriculum
    (item i at step i // batch), and val_size words drawn like the
    unseen-fonts benchmark from a seed other than the benchmark's."""
    train = PrintedWords(train_size, seed=seed, max_length=max_length,
                         curriculum=Curriculum(clean_steps, ramp_steps), items_per_step=batch)
    val_seed = seed + VAL_SEED_OFFSET
    if val_seed == BENCHMARK_SEED:
        val_seed += 1
    val = UnseenFontsBenchmark(val_size, seed=val_seed)
    return train, materialize(val, progress=progress, desc="rendering the validation words")


def mjsynth_datasets(root, val_size=2000, progress=True):
    """(train, validation) from MJSynth's folder: annotation_train.txt, and the
    first val_size of annotation_val.txt (rendered once), padded to 32x128 as
    the seed feeds images."""
    options = dict(height=_crnn.INPUT_HEIGHT, width=_crnn.INPUT_WIDTH, mode="pad")
    train = MJSynth(root, "annotation_train.txt", **options)
    val = MJSynth(root, "annotation_val.txt", **options)
    val = Subset(val, range(min(val_size, len(val))))
    return train, materialize(val, progress=progress, desc="reading the validation images")


def training_recipe(data="printed", batch=None, seed=0, device="cpu",
                    max_length=None, steps=None,
                    eval_every=None, size=None, model_options=None,
                    show=SHOW_PREDICTIONS, val_size=None, conv_init="he", augment=DEFAULT_AUGMENT,
                    clean_steps=PRINTED_CLEAN_STEPS, ramp_steps=PRINTED_RAMP_STEPS,
                    workers=PRINTED_WORKERS, lr_schedule=None):
    """The `nnlite train crnn` recipe (see the module docstring). `data` is
    "synth", "printed", "unseen-fonts" or an MJSynth folder. `size` is
    "compact" or "seed" (default: compact on the named data, seed on a
    PATH); model_options go to crnn.crnn on top of it (e.g. smaller channels
    for tests). max_length (default 5 on synth, 16 on printed) and val_size
    (default VAL_SIZE, PRINTED_VAL_SIZE on printed) size the data;
    clean_steps, ramp_steps and workers (render processes; 0: one background
    thread instead) apply to printed data. lr_schedule is "constant" (Adam
    at the config's lr throughout) or "cosine" (half a cosine from that lr
    down to a hundredth of it over `steps`: CosineAnnealingLR with T_max =
    steps, whose state a --resume restores, T_max included). Defaults on
    printed data: PRINTED_STEPS, PRINTED_EVAL_EVERY, cosine; elsewhere
    DEFAULT_STEPS, DEFAULT_EVAL_EVERY, constant (the synthetic run's
    figures in docs/results/text.md were made so)."""
    printed = data == "printed"
    steps = steps or (PRINTED_STEPS if printed else DEFAULT_STEPS)
    eval_every = eval_every or (PRINTED_EVAL_EVERY if printed else DEFAULT_EVAL_EVERY)
    lr_schedule = lr_schedule or (PRINTED_LR_SCHEDULE if printed else "constant")
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"crnn training_recipe: lr_schedule must be one of "
                         f"{', '.join(map(repr, LR_SCHEDULES))}, got {lr_schedule!r}")
    named = data in NAMED_DATA
    size = size or (DEFAULT_SIZE if named else "seed")
    _check_size(size)  # before any data is rendered
    config = _crnn.default_config()
    alphabet = _crnn.alphabet(config["blank"])
    batch = batch or DEFAULT_BATCH
    if data == "synth":
        train, val = synthetic_datasets(seed, max_length=max_length or DEFAULT_MAX_LENGTH,
                                        val_size=val_size or VAL_SIZE, progress=show > 0,
                                        augment=augment)
    elif data == "printed":
        train, val = printed_datasets(seed, batch, max_length=max_length or MAX_LENGTH,
                                      val_size=val_size or PRINTED_VAL_SIZE, progress=show > 0,
                                      clean_steps=clean_steps, ramp_steps=ramp_steps)
    elif data == "unseen-fonts":
        if val_size is not None or max_length is not None:
            raise ValueError("the unseen-fonts benchmark is fixed (1,000 words of 2-12 "
                             "characters); val_size and max_length do not apply to it")
        train, _ = printed_datasets(seed, batch, val_size=1, progress=False)
        val = materialize(UnseenFontsBenchmark(), progress=show > 0,
                          desc="rendering the unseen-fonts benchmark")
    else:
        train, val = mjsynth_datasets(data, progress=show > 0)
    nl.manual_seed(seed)
    model = build_sized(size=size, **(model_options or {}))
    if conv_init == "he":
        he_init_convs(model)
    elif conv_init != "default":
        raise ValueError(f"crnn training_recipe: conv_init must be 'he' or 'default', got "
                         f"{conv_init!r}")
    optimizer = nl.optim.Adam(model.parameters(), lr=config["lr"])
    scheduler = None
    if lr_schedule == "cosine":
        scheduler = nl.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=steps, eta_min=config["lr"] * COSINE_FLOOR)
    if isinstance(train, PrintedWords):
        # in order: item i is trained on at step i // batch (the curriculum's clock)
        train_loader = DataLoader(train, batch_size=batch, shuffle=False, seed=seed,
                                  drop_last=True, prefetch=max(2, 2 * workers),
                                  workers=max(1, workers),
                                  worker_type="process" if workers > 0 else "thread")
    else:
        train_loader = DataLoader(train, batch_size=batch, shuffle=True, seed=seed,
                                  drop_last=True)
    val_loader = DataLoader(val, batch_size=64, prefetch=0)
    return Recipe(model, optimizer, scheduler, CTCTextTask(alphabet, show=show), train_loader,
                  val_loader, steps=steps, eval_every=eval_every, log_every=10)


def he_init_convs(model):
    """He (Kaiming) uniform initialisation of every conv weight, zero biases.
    Why: with fan-in-scaled uniform weights (nnlite's and PyTorch's default, and
    Keras's Glorot is similar) each ReLU conv shrinks its signal's variance by
    about 3x, so five convs before the first BatchNorm leave the LSTMs almost no
    signal and CTC sits long on its all-blank plateau; He's gain keeps the variance."""
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "conv6", "conv7"):
        conv = getattr(model, name)
        nl.nn.init.kaiming_uniform_(conv.weight, nonlinearity="relu")
        if conv.bias is not None:
            nl.nn.init.zeros_(conv.bias)
    return model


def load_image(path):
    """An image file -> float32 (1, 32, W) as the seed feeds it: grey, trimmed
    to its text with a quarter of the text's height of paper around it (a
    user's word on a large page; nnlite.data.images.trim_to_ink), then fitted
    as the training images are: scaled to height 32 keeping the aspect (width
    at most 128), padded white to 32x128."""
    from nnlite.data.images import fit_word
    return fit_word(read_image(path), _crnn.INPUT_HEIGHT, _crnn.INPUT_WIDTH)[None] \
        .astype(np.float32)


def predict_texts(model, images, beam=None, lexicon=None):
    """Greedy CTC decoding, or beam search of width `beam` (optionally over a lexicon)."""
    alphabet = _crnn.alphabet("last" if model.blank == model.num_classes - 1 else "first")
    log_probs = model(nl.tensor(np.asarray(images, dtype=np.float32)).to(model_device(model)))
    if beam is None and lexicon is None:
        return _crnn.decode(log_probs.numpy(), alphabet)
    return _crnn.decode(log_probs.numpy(), alphabet, method="beam", beam_width=beam or 10,
                        lexicon=lexicon)


def build_for_checkpoint(path, name="crnn"):
    """A CRNN shaped like the one saved in checkpoint `path` (crnn.from_checkpoint)."""
    return _crnn.from_checkpoint(path)


# `nnlite predict crnn IMAGE...` (no checkpoint) uses the packaged weights.
pretrained_weights = _crnn.pretrained_weights
