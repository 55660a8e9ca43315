"""Which loss term drives a digit-sequence model's shared convolutions: for
each convolution kernel, the norm of the gradient of the classification term
(cross-entropy over the digit positions) and of the localisation term (box
MSE), averaged over a few training batches, and their ratio. Adam scales each
parameter's step by its gradient's size, so where one term's gradient is
hundreds of times the other's, the shared layers follow that term alone; the
seed's 1000x weight on the cross-entropy is what turns that round.

    python scripts/digit_loss_gradients.py [RUN/last.h5 ...] [--variable] \
        [--option conv_init=he --option box_bias=mean] [--batches 4]

Without a checkpoint it measures the recipe's freshly initialised network
(`--option` as for `nnlite train digit_sequence`); with checkpoints, each
one's weights. The batches are the recipe's first training batches.
"""
import argparse

import numpy as np


def term_gradient_norms(model, batches, terms):
    """{term: {parameter name: mean gradient norm}}: for each batch and each
    named scalar of `terms(outputs, labels, boxes)` (a dict), the norm of that
    term's gradient alone with respect to every parameter, averaged over the
    batches. A parameter the term does not reach has norm 0."""
    import nnlite as nl
    sums = {}
    count = 0
    for images, labels, boxes in batches:
        count += 1
        for name in list(terms(model(nl.tensor(images)), labels, boxes)):
            for parameter in model.parameters():
                parameter.grad = None
            # a fresh forward per term: each backward sees only its own graph
            terms(model(nl.tensor(images)), labels, boxes)[name].backward()
            row = sums.setdefault(name, {})
            for key, parameter in model.named_parameters():
                norm = 0.0 if parameter.grad is None else \
                    float(np.linalg.norm(np.asarray(parameter.grad.numpy(), dtype=np.float64)))
                row[key] = row.get(key, 0.0) + norm
    if count == 0:
        raise ValueError("digit_loss_gradients: no batches to measure")
    return {name: {key: total / count for key, total in row.items()}
            for name, row in sums.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="*")
    parser.add_argument("--variable", action="store_true",
                        help="the variable-length task (digit_sequence_variable)")
    parser.add_argument("--seed", type=int, default=0, help="the run's --seed")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a training_recipe option, as for nnlite train")
    parser.add_argument("--batches", type=int, default=4)
    args = parser.parse_args(argv)

    from nnlite.cli_train import _recipe_options
    from nnlite.io.checkpoint import load
    from nnlite.models import digit_sequence as ds

    # parsed and checked as `nnlite train --option` does
    options = _recipe_options(ds, args.option)
    model_name = "digit_sequence_variable" if args.variable else "digit_sequence"
    recipe = ds.training_recipe(model=model_name, seed=args.seed, validation_size=2, **options)
    batches = []
    for batch in recipe.train_loader:
        batches.append(batch)
        if len(batches) == args.batches:
            break

    def terms(outputs, labels, boxes):
        _, classification, localisation = ds.loss(outputs, labels, boxes)
        return {"cross-entropy": classification, "box MSE": localisation}

    for path in args.checkpoints or [None]:
        model = recipe.model
        if path is not None:
            load(path, model)
        model.train()  # as in training (the model has no dropout by default)
        norms = term_gradient_norms(model, batches, terms)
        ce, mse = norms["cross-entropy"], norms["box MSE"]
        print(f"{path or 'initialisation ' + str(options)}: gradient norm per convolution "
              f"kernel over {len(batches)} batches")
        for key in ce:
            if key.startswith("convs.") and key.endswith(".weight"):
                print(f"  {key:16s} cross-entropy {ce[key]:.3e}  box MSE {mse[key]:.3e}  "
                      f"box / CE {mse[key] / ce[key]:8.1f}")


if __name__ == "__main__":
    main()
