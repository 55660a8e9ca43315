"""Where an attention reader's errors are: whole-word accuracy by word length,
letter accuracy by position, how often the terminal lands where it should,
and the letter pairs it confuses most, on a fresh set of the seed's images.

    python scripts/reader_errors.py RUN/last.h5 [RUN2/best.h5 ...] \
        [--images 1024] [--seed 1000004] [--font DejaVuSans] [--top 12]

The images come from their own seed (default: none that a recipe trains or
tests on), so every checkpoint is scored on the same unseen words.
"""
import argparse
import collections

import numpy as np


def error_report(best, targets, letters, terminal):
    """Plain-number summary of greedy predictions `best` (N, steps) against
    `targets` (N, steps), both class indices, letters < terminal, padded with
    `terminal` (the seed's scoring: positions after the first terminal do not
    count)."""
    best, targets = np.asarray(best), np.asarray(targets)
    if best.shape != targets.shape or best.ndim != 2:
        raise ValueError(f"reader_errors: predictions {best.shape} and targets "
                         f"{targets.shape} must be the same (N, steps)")
    position = np.arange(targets.shape[1])[None, :]
    is_terminal = targets == terminal
    first = np.where(is_terminal.any(axis=1), is_terminal.argmax(axis=1), targets.shape[1])
    counted = position <= first[:, None]
    right = best == targets
    words = (right | ~counted).all(axis=1)
    lengths = first
    report = {"word_accuracy": float(words.mean()),
              "by_length": {}, "by_position": {}, "confusions": collections.Counter()}
    for length in np.unique(lengths):
        chosen = lengths == length
        report["by_length"][int(length)] = (float(words[chosen].mean()), int(chosen.sum()))
    is_letter = counted & ~is_terminal
    for p in range(targets.shape[1]):
        chosen = is_letter[:, p]
        if chosen.any():
            report["by_position"][p] = float(right[chosen, p].mean())
    ends = counted & is_terminal
    report["letter_accuracy"] = float(right[is_letter].mean()) if is_letter.any() else None
    report["terminal_accuracy"] = float(right[ends].mean()) if ends.any() else None
    for i, p in zip(*np.nonzero(is_letter & ~right)):
        said = best[i, p]
        report["confusions"][(letters[targets[i, p]],
                              letters[said] if said < terminal else "<end>")] += 1
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=1_000_004)
    parser.add_argument("--font", default="DejaVuSans")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args(argv)

    import nnlite as nl
    from nnlite.data import SyntheticLetters
    from nnlite.io.checkpoint import load
    from nnlite.models import attention_reader as ar

    data = SyntheticLetters(args.images, seed=args.seed, font=args.font)
    items = [data[i] for i in range(args.images)]
    images = np.stack([image for image, _ in items])
    targets = ar.encode_words([word for _, word in items])
    for path in args.checkpoints:
        model = ar.attention_reader()
        load(path, model)
        model.eval()
        with nl.no_grad():
            logits = np.concatenate([model(nl.tensor(images[i:i + 128]))[0].numpy()
                                     for i in range(0, len(images), 128)])
        report = error_report(logits.argmax(axis=2), targets, ar.LETTERS, ar.TERMINAL)
        print(f"{path}: words {report['word_accuracy']:.3f}, letters "
              f"{report['letter_accuracy']:.3f}, terminal {report['terminal_accuracy']:.3f}")
        print("  by length: " + ", ".join(f"{n}: {a:.3f} ({c})" for n, (a, c)
                                          in report["by_length"].items()))
        print("  letters by position: " + ", ".join(f"{p}: {a:.3f}" for p, a
                                                   in report["by_position"].items()))
        errors = sum(report["confusions"].values())
        print(f"  {errors} letter errors; most common (truth -> read): " + ", ".join(
            f"{t}->{r} {n}" for (t, r), n in report["confusions"].most_common(args.top)))


if __name__ == "__main__":
    main()
