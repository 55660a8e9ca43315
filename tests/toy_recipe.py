"""A model module as nnlite.models' modules will be after the wiring step,
for the CLI tests: a builder, training_recipe, load_image, predict_texts and
attention_masks over the toy classification problem of training_toys."""
import numpy as np

import nnlite as nl
from nnlite import optim
from nnlite.training import ClassificationTask, Recipe

from training_toys import FEATURES, toy_loaders, toy_model

LETTERS = "abc"
INTERRUPT_AT = None  # a test sets a step number to simulate Ctrl-C there


def build():
    return toy_model()


class ToyTask(ClassificationTask):
    def __init__(self):
        self.calls = 0

    def loss(self, model, batch):
        self.calls += 1
        if self.calls == INTERRUPT_AT:
            raise KeyboardInterrupt
        return super().loss(model, batch)


def training_recipe(data="synth", batch=None, seed=0, device="cpu"):
    if data != "synth":
        raise FileNotFoundError(f"no toy dataset at {data!r}")
    nl.manual_seed(seed)
    model = toy_model()
    optimizer = optim.Adam(model.parameters(), lr=0.02)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.5)
    train, val = toy_loaders(batch=batch or 32)
    return Recipe(model, optimizer, scheduler, ToyTask(), train, val, steps=20, eval_every=10,
                  log_every=5)


def load_image(path):
    """A .npy file of FEATURES values as a (1, 2, FEATURES // 2) 'image'."""
    return np.load(path).astype(np.float32).reshape(1, 2, FEATURES // 2)


def predict_texts(model, images, beam=None, lexicon=None):
    logits = model(nl.tensor(np.asarray(images).reshape(len(images), FEATURES))).numpy()
    texts = [LETTERS[i] for i in logits.argmax(axis=1)]
    if lexicon is not None:  # stands in for lexicon decoding: mark the constrained output
        texts = [text if text in lexicon else "?" for text in texts]
    return texts


def attention_masks(model, images):
    """Three 'steps' of 2x4 masks: softmax of each class's input weights times the image."""
    flat = np.asarray(images).reshape(len(images), 1, FEATURES)
    weights = model[0].weight.numpy()[:3].reshape(1, 3, FEATURES)
    scores = np.exp(flat * weights)
    return (scores / scores.sum(axis=2, keepdims=True)).reshape(len(images), 3, 2, 4)
