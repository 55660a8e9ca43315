"""The text models' training runs with the recipe options `nnlite train` does
not expose (curriculum length, model size, lexicon size, lr):

    python scripts/train_text.py crnn --max-length 16 --steps 3000 --out /work/runs/crnn
    python scripts/train_text.py charnet --steps 2000 --out /work/runs/charnet
    python scripts/train_text.py dictnet --lexicon-size 100 --steps 1000 --out /work/runs/dictnet

Same Trainer, checkpoints, metrics.json and curves.png as `nnlite train`;
--resume continues a stopped run (give it the same options); an --out that
already holds files is refused unless --overwrite is given."""
import argparse
import sys

from nnlite import models
from nnlite.training import RunExistsError, Trainer, check_run_directory


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", choices=("crnn", "charnet", "dictnet"))
    parser.add_argument("--data", default="synth")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--eval-every", type=int, default=None)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--size", choices=("compact", "seed"), default=None)
    parser.add_argument("--max-length", type=int, default=None,
                        help="longest synthetic word (crnn default 5, charnet 23)")
    parser.add_argument("--lexicon-size", type=int, default=None, help="dictnet's lexicon")
    parser.add_argument("--lr", type=float, default=None, help="charnet/dictnet SGD lr")
    parser.add_argument("--val-size", type=int, default=None)
    render = parser.add_mutually_exclusive_group()
    render.add_argument("--clean", action="store_true",
                        help="clean renders (no augmentation; crnn's default)")
    render.add_argument("--augment", action="store_true",
                        help="augmented renders (fonts, rotation, blur, noise, contrast; "
                             "charnet/dictnet's default)")
    parser.add_argument("--init", choices=("he", "default"), default=None,
                        help="charnet/dictnet weight init (default he)")
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default=None,
                        help="charnet/dictnet optimiser (default sgd, the seed's)")
    parser.add_argument("--layout", choices=("centred", "crop"), default=None,
                        help="charnet/dictnet renders: centred at their own aspect (default) "
                             "or stretched to fill the width as a resized word crop")
    parser.add_argument("--out", required=True)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run already in --out")
    args = parser.parse_args(argv)
    options = {key: value for key, value in (
        ("size", args.size), ("max_length", args.max_length), ("val_size", args.val_size),
        ("lexicon_size", args.lexicon_size), ("lr", args.lr), ("init", args.init),
        ("optimizer", args.optimizer), ("layout", args.layout)) if value is not None}
    if args.model == "crnn" and ({"lexicon_size", "lr", "init", "optimizer", "layout"}
                                 & set(options)):
        parser.error("--lexicon-size, --lr, --init, --optimizer and --layout are for "
                     "charnet/dictnet")
    if args.model != "crnn":
        options["model"] = args.model
    if args.clean or args.augment:
        options["augment"] = args.augment
    if args.resume and args.overwrite:
        parser.error("--resume continues the run in --out and --overwrite replaces it; give one")
    try:  # before the recipe, whose validation set takes a while to render
        check_run_directory(args.out, resume=args.resume, overwrite=args.overwrite)
    except FileNotFoundError as exc:
        parser.error(f"--resume: {exc}")
    except RunExistsError as exc:
        parser.error(f"{args.out} already holds a run ({exc.listing}); continue it "
                     f"with --resume, choose a new --out, or replace it with --overwrite")
    module = models.recipe_module(args.model)
    recipe = module.training_recipe(data=args.data, batch=args.batch, seed=args.seed,
                                    device=args.device, **options)
    trainer = Trainer(recipe.model, recipe.optimizer, recipe.task, recipe.train_loader,
                      recipe.val_loader, steps=args.steps or recipe.steps, out_dir=args.out,
                      scheduler=recipe.scheduler, eval_every=args.eval_every or recipe.eval_every,
                      log_every=recipe.log_every, device=args.device, seed=args.seed)
    history = trainer.fit(resume=args.resume, overwrite=args.overwrite)
    for row in history["eval"]:
        print(" ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                       for key, value in row.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
