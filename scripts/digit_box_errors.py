"""Where a digit-sequence model's box error comes from: the squared error and
the mean signed error (bias) of each box coordinate, and for variable-length
sequences the error by the number of digits, on the run's own validation set;
with --probe N, also what a linear read-out of the same 1024 features (ridge
least squares fitted on N fresh canvases) makes of them, which tells a box
head that has not yet learnt what its features hold from features that lack it.

    python scripts/digit_box_errors.py RUN/last.h5 [RUN2/best.h5 ...] \
        [--variable] [--seed 0] [--images 500] [--probe 6000]

The images are the validation canvases `nnlite train digit_sequence[_variable]
--seed S` evaluates on (the same seed and size give the same images), so the
total printed here is the run's `box_error` (the seed's "mean localization
error": mean squared error over the four coordinates, in pixels squared).
"""
import argparse

import numpy as np

COORDINATES = ("x_centre", "y_centre", "height", "width")


def box_error_report(predicted, targets, digit_counts=None):
    """Plain-number summary of predicted boxes (N, 4) against target boxes
    (N, 4), both [x_centre, y_centre, height, width] in pixels: total mean
    squared error, and per coordinate its mean squared error, its bias (mean of
    predicted - target) and the targets' spread (their standard deviation: a
    coordinate that never varies can only be missed by noise or bias); with
    `digit_counts` (N,) also the total by number of digits."""
    predicted = np.asarray(predicted, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if predicted.shape != targets.shape or predicted.ndim != 2 or predicted.shape[1] != 4:
        raise ValueError(f"digit_box_errors: predicted boxes {predicted.shape} and targets "
                         f"{targets.shape} must both be (N, 4)")
    if len(predicted) == 0:
        raise ValueError("digit_box_errors: no boxes to score (N = 0)")
    diff = predicted - targets
    squared = diff * diff
    report = {"box_error": float(squared.mean()), "coordinates": {}}
    for k, name in enumerate(COORDINATES):
        report["coordinates"][name] = {"squared_error": float(squared[:, k].mean()),
                                       "bias": float(diff[:, k].mean()),
                                       "target_spread": float(targets[:, k].std())}
    if digit_counts is not None:
        digit_counts = np.asarray(digit_counts)
        if digit_counts.shape != (len(targets),):
            raise ValueError(f"digit_box_errors: digit_counts has shape {digit_counts.shape}; "
                             f"expected ({len(targets)},)")
        report["by_digits"] = {int(n): (float(squared[digit_counts == n].mean()),
                                        int((digit_counts == n).sum()))
                               for n in np.unique(digit_counts)}
    return report


def ridge_probe(train_features, train_boxes, features, ridge=1e-2):
    """Boxes predicted for `features` (M, F) by the affine map least-squares
    fitted from `train_features` (N, F) to `train_boxes` (N, 4), with `ridge`
    times the identity added to the normal equations (float64)."""
    def affine(x):
        x = np.asarray(x, dtype=np.float64)
        return np.hstack([x, np.ones((len(x), 1))])
    a = affine(train_features)
    if len(a) != len(train_boxes):
        raise ValueError(f"digit_box_errors: {len(a)} feature rows for {len(train_boxes)} boxes")
    weights = np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]),
                              a.T @ np.asarray(train_boxes, dtype=np.float64))
    return affine(features) @ weights


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--variable", action="store_true",
                        help="the variable-length task (digit_sequence_variable)")
    parser.add_argument("--seed", type=int, default=0, help="the run's --seed")
    parser.add_argument("--images", type=int, default=None,
                        help="validation canvases (default: the recipe's)")
    parser.add_argument("--probe", type=int, default=0, metavar="N",
                        help="also fit a linear read-out of the features on N fresh "
                             "training canvases (0: no probe)")
    args = parser.parse_args(argv)

    import nnlite as nl
    from nnlite.data import SyntheticDigitSequences
    from nnlite.io.checkpoint import load
    from nnlite.models import digit_sequence as ds

    def stacked(dataset):
        items = [dataset[i] for i in range(len(dataset))]
        return tuple(np.stack([item[k] for item in items]) for k in range(3))

    def features_and_boxes(model, images):
        """(flattened conv features, box head output), 100 canvases at a time."""
        parts = []
        with nl.no_grad():
            for i in range(0, len(images), 100):
                trace = dict(model.trace(nl.tensor(images[i:i + 100])))
                parts.append((trace["flatten"].numpy(), trace["box"].numpy()))
        return tuple(np.concatenate([part[k] for part in parts]) for k in range(2))

    _, val = ds.digit_datasets("synth", args.seed, args.variable,
                               args.images or ds.CPU_VALIDATION_SIZE)
    images, labels, boxes = stacked(val)
    counts = (labels != ds.NO_DIGIT).sum(axis=1) if args.variable else None
    if args.probe:
        # a seed no recipe trains or validates on
        probe_images, _, probe_boxes = stacked(SyntheticDigitSequences(
            args.probe, seed=args.seed + 2 * ds.VALIDATION_SEED_OFFSET,
            variable_length=args.variable))
    build = ds.MODELS["digit_sequence_variable" if args.variable else "digit_sequence"]
    for path in args.checkpoints:
        model = build()
        load(path, model)
        model.eval()
        features, predicted = features_and_boxes(model, images)
        report = box_error_report(predicted, boxes, counts)
        print(f"{path}: box error {report['box_error']:.2f} px^2 over {len(boxes)} canvases")
        for name, row in report["coordinates"].items():
            print(f"  {name:9s} squared error {row['squared_error']:7.2f}, bias "
                  f"{row['bias']:+6.2f}, target spread (std) {row['target_spread']:6.2f}")
        if "by_digits" in report:
            print("  by digits: " + ", ".join(f"{n}: {e:.2f} ({c})" for n, (e, c)
                                              in report["by_digits"].items()))
        if args.probe:
            probe_features, _ = features_and_boxes(model, probe_images)
            probe = box_error_report(ridge_probe(probe_features, probe_boxes, features), boxes)
            print(f"  linear read-out of the features (fitted on {args.probe} canvases): box "
                  f"error {probe['box_error']:.2f}; " + ", ".join(
                      f"{name} {row['squared_error']:.2f}"
                      for name, row in probe["coordinates"].items()))


if __name__ == "__main__":
    main()
