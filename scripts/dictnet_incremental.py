"""DictNet incremental learning (Xiao et al. 2014, as Jaderberg et al. applied it)
on a small synthetic lexicon, reporting the accuracy on the OLD classes after
each widening:

    python scripts/dictnet_incremental.py --words 1000 --round 250 --json out.json

A lexicon of --words random lower-case words (jaderberg_train.synthetic_lexicon)
is rendered --images-per-word times for training and --val-per-word times
(another seed) for evaluation. Round r widens the softmax to r x --round
classes and trains --steps-per-round SGD steps (jaderberg.train_incremental).
--mode xiao (the seed's method, default): widen in place (conv/fc weights and
the old softmax columns copied, new columns fresh, nothing frozen) and train on
the examples of every word so far; --mode new_words: the same widening, trained
on the new words only (an ablation); --mode scratch: a fresh network each round
trained on every word so far (nothing inherited). --plateau-window W ends a
round early when the loss stops falling (Jaderberg's "partial convergence").
After each round the held-out images are classified over every class so far,
and the accuracy is reported separately for the words of earlier rounds (old),
of this round (new) and for all of them."""
import argparse
import json
import sys
import time

import numpy as np

import nnlite as nl
from nnlite.data import SyntheticWords
from nnlite.models import jaderberg, jaderberg_train


def render(lexicon, per_word, seed):
    """(images normalised (N, 1, 32, 100), word ids (N,)): per_word renders of each word."""
    words = SyntheticWords(1, alphabet=jaderberg.ALPHABET, height=32, width=100,
                           lexicon=lexicon, seed=seed)
    ids = np.repeat(np.arange(len(lexicon)), per_word)
    images = np.stack([words.render(lexicon[word], np.random.default_rng([seed, i]))
                       for i, word in enumerate(ids)])
    return jaderberg_train.normalise(images), ids


def accuracy(model, images, ids, classes):
    chosen = ids < classes
    if not chosen.any():
        return None
    model.eval()
    predicted = []
    with nl.no_grad():
        for start in range(0, int(chosen.sum()), 256):
            batch = images[chosen][start:start + 256]
            predicted.append(model(nl.tensor(batch)).numpy().argmax(axis=1))
    model.train()
    return float((np.concatenate(predicted) == ids[chosen]).mean())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--words", type=int, default=1000)
    parser.add_argument("--round", type=int, default=250, help="classes added per round")
    parser.add_argument("--images-per-word", type=int, default=20)
    parser.add_argument("--val-per-word", type=int, default=4)
    parser.add_argument("--steps-per-round", type=int, default=300)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--width-divisor", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--mode", choices=jaderberg.INCREMENTAL_MODES, default="xiao")
    parser.add_argument("--plateau-window", type=int, default=None,
                        help="end a round when the mean loss of the last W steps fell by "
                             "less than --plateau-tol below the W before")
    parser.add_argument("--plateau-tol", type=float, default=0.01)
    parser.add_argument("--init", choices=("default", "he"), default="he",
                        help="he: He-uniform conv/fc weights (zero biases), which keep the "
                             "signal's scale through the ReLU layers; default: nnlite's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write the per-round results here")
    args = parser.parse_args(argv)
    started = time.time()
    lexicon = jaderberg_train.synthetic_lexicon(args.words)
    train_images, train_ids = render(lexicon, args.images_per_word, args.seed)
    val_images, val_ids = render(lexicon, args.val_per_word, args.seed + 7919)
    schedule = list(range(args.round, args.words, args.round)) + [args.words]
    print(f"rendered {len(train_ids)} training and {len(val_ids)} validation images in "
          f"{time.time() - started:.0f} s; schedule {schedule}", flush=True)
    nl.manual_seed(args.seed)

    def make_model(classes):
        model = jaderberg.dictnet(num_words=classes, width_divisor=args.width_divisor,
                                  hidden=args.hidden)
        if args.init == "he":
            for layer in (model.conv1, model.conv2, model.conv3, model.conv4, model.conv5,
                          model.fc1, model.fc2):
                nl.nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
                nl.nn.init.zeros_(layer.bias)
        return model

    model = make_model(schedule[0])
    rounds, losses = [], []

    def after_step(classes, step, loss):
        losses.append(loss)

    def after_round(classes, model, steps):
        index = schedule.index(classes)
        old = schedule[index - 1] if index else 0
        new = val_ids >= old
        row = {"classes": classes, "step": len(losses), "round_steps": steps,
               "train_loss_last_10": float(np.mean(losses[-10:])),
               "old_class_accuracy": accuracy(model, val_images[~new], val_ids[~new], old)
               if old else None,
               "new_class_accuracy": accuracy(model, val_images[new], val_ids[new], classes),
               "all_class_accuracy": accuracy(model, val_images, val_ids, classes),
               "wall_s": round(time.time() - started, 1)}
        rounds.append(row)
        print(json.dumps(row), flush=True)

    jaderberg.train_incremental(train_images, train_ids, num_words=args.words,
                                schedule=schedule, steps_per_round=args.steps_per_round,
                                batch_size=args.batch, lr=args.lr, model=model,
                                seed=args.seed, on_step=after_step, on_round=after_round,
                                mode=args.mode, make_model=make_model,
                                plateau_window=args.plateau_window,
                                plateau_tol=args.plateau_tol)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"options": vars(args), "schedule": schedule, "rounds": rounds}, handle,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
