"""`nnlite train | eval | predict | visualize MODEL ...`: the training-side
subcommands, registered in nnlite.cli.COMMANDS.

MODEL resolves through the model registry (nnlite.models.recipe_module) to
its recipe module; that module supplies
    training_recipe(data="synth", batch=None, seed=0, device="cpu") -> nnlite.training.Recipe
    load_image(path) -> array                                 (predict, visualize)
    predict_texts(model, images, beam=None, lexicon=None) -> [str]   (predict)
    attention_masks(model, images) -> array (N, steps, h, w)  (visualize)
and a model that also locates its text (digit_sequence)
    predict_boxes(model, images) -> ([str], array (N, 4))     (predict, visualize)
with each box [x_center, y_center, h, w] in pixels of the resized input.
"""
import math
import os
import sys

DATA_HELP = ("'synth' (built-in synthetic data), a data set the model's recipe names (crnn: "
             "'printed' = printed words in many fonts, its default; 'unseen-fonts' = the "
             "held-out-font benchmark, eval only), or a dataset path (default: the "
             "recipe's own, 'synth' for every model but crnn)")


def _model_argument(parser):
    parser.add_argument("model", metavar="MODEL",
                        help="a registered model name; see `nnlite summary --list`")


def _data_options(parser):
    parser.add_argument("--data", default=None, metavar="synth|NAME|PATH", help=DATA_HELP)
    parser.add_argument("--batch", type=int, default=None, metavar="N",
                        help="batch size (default: the model's recipe)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                        help="where to run (default cpu)")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="random seed for weights, data and dropout (default 0)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="pass KEY=VALUE to the model's training_recipe (a Python "
                             "literal, else a string), e.g. --option size=seed "
                             "--option workers=8; repeatable")


def add_train_command(subparsers):
    parser = subparsers.add_parser(
        "train", help="train a model (default: on built-in synthetic data)",
        description="Train a registered model with its default recipe: a progress bar with "
                    "loss and the validation metric, periodic evaluation, best.h5 and last.h5 "
                    "checkpoints, metrics.json and curves.png in --out. Ctrl-C or SIGTERM "
                    "saves last.h5; --resume continues exactly where the run stopped. A run "
                    "directory that already holds files is never overwritten unless "
                    "--overwrite is given.")
    _model_argument(parser)
    _data_options(parser)
    parser.add_argument("--steps", type=int, default=None, metavar="N",
                        help="optimiser steps in total (default: the recipe's)")
    parser.add_argument("--eval-every", type=int, default=None, metavar="N",
                        help="evaluate and checkpoint every N steps (default: the recipe's)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="run directory (default runs/MODEL)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run saved in DIR/last.h5")
    parser.add_argument("--overwrite", action="store_true",
                        help="start afresh in a DIR that holds an earlier run, deleting its "
                             "checkpoints, metrics.json and curves.png")
    parser.add_argument("--init", default=None, metavar="CHECKPOINT",
                        help="start from the weights of CHECKPOINT ('pretrained': the "
                             "model's packaged weights) with a fresh optimiser, schedule and "
                             "data stream, e.g. to fine-tune; the recipe must build a model "
                             "of the checkpoint's shapes (--option size=... / model_options)")
    parser.add_argument("--clip-grad-norm", type=float, default=None, metavar="MAX",
                        help="scale the gradients to a joint 2-norm of at most MAX before "
                             "each step (PyTorch's clip_grad_norm_; the norm is logged as "
                             "grad_norm); not stored in the run: give it again with --resume")
    parser.add_argument("--sync-bn", action="store_true",
                        help="under mpiexec: BatchNorm statistics over the global batch of "
                             "all ranks (default: each rank's own, as PyTorch)")
    parser.add_argument("--reduction", default="ordered", choices=("ordered", "allreduce"),
                        help="under mpiexec: how gradients are summed: 'ordered' (every rank's "
                             "gradients to every rank, added in rank order: the same bits in "
                             "every run; for a few ranks) or 'allreduce' (MPI's, "
                             "bandwidth-optimal; for many ranks)")
    parser.set_defaults(run=run_train)


def add_eval_command(subparsers):
    parser = subparsers.add_parser(
        "eval", help="evaluate a checkpoint on the validation data",
        description="Load CHECKPOINT into MODEL and print the recipe's validation metrics.")
    _model_argument(parser)
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="an nnlite .h5 checkpoint")
    _data_options(parser)
    parser.set_defaults(run=run_eval)


def add_predict_command(subparsers):
    parser = subparsers.add_parser(
        "predict", help="print the text a trained model reads in images",
        description="Load CHECKPOINT into MODEL and print the text read from each IMAGE "
                    "(greedy decoding, or beam search with --beam), one tab-separated line "
                    "per image: path, text and, for a model that locates the text "
                    "(digit_sequence), its box x_center,y_center,h,w in pixels of the "
                    "model's input (the image resized to it). Without CHECKPOINT, "
                    "a model that ships pretrained weights (crnn) uses them.")
    _model_argument(parser)
    parser.add_argument("inputs", metavar="[CHECKPOINT] IMAGE", nargs="+",
                        help="an nnlite .h5 checkpoint (optional for a model with packaged "
                             "weights), then image files")
    parser.add_argument("--beam", type=int, default=None, metavar="W",
                        help="beam-search width (default: greedy)")
    parser.add_argument("--lexicon", default=None, metavar="FILE",
                        help="a word list, one word per line, to constrain the output")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.set_defaults(run=run_predict)


def add_visualize_command(subparsers):
    parser = subparsers.add_parser(
        "visualize", help="attention masks of a reader (PNG grid, animated GIF), or the "
                          "box a digit-sequence model finds (PNG)",
        description="Load CHECKPOINT into MODEL and write, for each IMAGE: for an "
                    "attention reader, the mask over the image at every step "
                    "(DIR/<name>_attention.png and DIR/<name>_attention.gif); for a model "
                    "that locates its text (digit_sequence), the image with the box and "
                    "the digits it reads (DIR/<name>_box.png).")
    _model_argument(parser)
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="an nnlite .h5 checkpoint")
    parser.add_argument("images", metavar="IMAGE", nargs="+", help="image files")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.set_defaults(run=run_visualize)


# ---------------------------------------------------------------- helpers --

class CommandError(Exception):
    """A message for the user and the exit status."""

    def __init__(self, message, status=2):
        super().__init__(message)
        self.status = status


_QUIET = {"rank": 0}  # under mpiexec, ranks other than 0 leave messages to rank 0


def _reporting(command):
    """Turn CommandError into `nnlite COMMAND: message` on stderr and its status."""
    def decorate(function):
        def run(args):
            try:
                return function(args)
            except CommandError as exc:
                if _QUIET["rank"] == 0:
                    print(f"nnlite {command}: {exc}", file=sys.stderr)
                return exc.status
        return run
    return decorate


def _resolve(name, needs, purpose):
    """(builder, module) of model `name`; `needs` are the module functions required."""
    from nnlite import models
    try:
        builder, _ = models.get(name)
    except KeyError:
        available = ", ".join(models.available()) or "none registered"
        raise CommandError(f"unknown model {name!r}; available models: {available}") from None
    module = models.recipe_module(name)
    missing = [function for function in needs if not callable(getattr(module, function, None))]
    if missing:
        raise CommandError(f"model {name} has no {purpose} yet ({module.__name__} defines no "
                           f"{', '.join(missing)})")
    return builder, module


def _positive(option, value):
    if value is not None and value <= 0:
        raise CommandError(f"{option} must be a positive int, got {value}")


def _recipe_options(module, pairs):
    """{KEY: value} from --option KEY=VALUE pairs, checked against the
    parameters of module.training_recipe."""
    import ast
    import inspect
    parameters = inspect.signature(module.training_recipe).parameters.values()
    accepted = [p.name for p in parameters if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
                and p.name not in ("data", "batch", "seed", "device", "model")]
    # A recipe with **options hands the other keys on (to its network); one
    # nothing takes fails there, as a TypeError that _recipe reports.
    open_ended = any(p.kind == p.VAR_KEYWORD for p in parameters)
    options = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CommandError(f"--option {pair!r}: expected KEY=VALUE")
        if key not in accepted and not open_ended:
            raise CommandError(f"--option {key}: {module.__name__}.training_recipe takes no "
                               f"option {key!r}; it takes {', '.join(accepted) or 'none'}")
        try:
            options[key] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            options[key] = text.strip()  # a bare word such as size=seed
    return options


def _recipe(module, args):
    import inspect
    options = dict(batch=args.batch, seed=args.seed, device=args.device)
    if args.data is not None:  # else the recipe's default data
        options["data"] = args.data
    options.update(_recipe_options(module, getattr(args, "option", [])))
    # A module that registers several models (nalu: nac, nalu ...; jaderberg:
    # charnet, dictnet; svhn: svhn, svhn_no_pooling) takes the name.
    accepted = inspect.signature(module.training_recipe).parameters
    if "model" in accepted:
        options["model"] = args.model
    # A recipe that shapes its schedule by the run's length (crnn's cosine lr)
    # hears --steps, not only the Trainer.
    if getattr(args, "steps", None) and "steps" in accepted:
        options["steps"] = args.steps
    try:
        return module.training_recipe(**options)
    except (FileNotFoundError, ValueError, TypeError) as exc:
        given = " ".join(f"--option {pair}" for pair in getattr(args, "option", []))
        data = f"--data {args.data}" if args.data is not None else "the default data"
        raise CommandError(f"{data}{' ' + given if given else ''}: {exc}") \
            from None


def _checkpoint_and_images(name, module, inputs):
    """(checkpoint, images) of `nnlite predict MODEL [CHECKPOINT] IMAGE...`. For a
    model with packaged weights the first input is the checkpoint only when it
    is an HDF5 file (or a folder, or a missing *.h5, for _check_checkpoint to
    explain); otherwise every input is an image and the packaged weights are
    the checkpoint. Other models always take a checkpoint first."""
    import h5py
    first = inputs[0]
    packaged = getattr(module, "pretrained_weights", None)
    weights = packaged() if callable(packaged) else None
    is_checkpoint = (os.path.isdir(first)
                     or (os.path.isfile(first) and h5py.is_hdf5(first))
                     or (not os.path.exists(first)
                         and first.lower().endswith((".h5", ".hdf5"))))
    if weights is not None and not is_checkpoint:
        return weights, list(inputs)
    if len(inputs) < 2:
        if weights is None:
            raise CommandError(f"{name} ships no pretrained weights: give a CHECKPOINT, then "
                               f"at least one IMAGE")
        raise CommandError(f"{first!r} is a checkpoint; give at least one IMAGE after it")
    return first, list(inputs[1:])


def _initialise(model, module, args):
    """`--init CHECKPOINT`: load the checkpoint's model weights (not its
    optimiser or run state) into the recipe's freshly built model."""
    if getattr(args, "init", None) is None:
        return
    from nnlite import io
    path = args.init
    if path == "pretrained":
        packaged = getattr(module, "pretrained_weights", None)
        path = packaged() if callable(packaged) else None
        if path is None:
            raise CommandError(f"--init pretrained: {args.model} ships no pretrained weights")
    _check_checkpoint(path)
    try:
        io.load(path, model)
    except io.CheckpointError as exc:
        raise CommandError(f"--init: {exc}{_owner_hint(path, args.model)}; the recipe's model "
                           f"must have the checkpoint's shapes (--option size=... or "
                           f"--option model_options=...)") from None
    except OSError as exc:
        raise CommandError(f"--init: cannot read checkpoint {path!r}: {_reason(exc)}") from None


def _check_checkpoint(path):
    """A message, before any model is built, for a checkpoint that is not a file."""
    if not os.path.exists(path):
        raise CommandError(f"checkpoint {path!r} does not exist")
    if os.path.isdir(path):
        raise CommandError(f"checkpoint {path!r} is a directory, not a checkpoint file")


def _load_checkpoint(path, model, device, name):
    """Load `path` into `model`, after giving the model the compressed
    structure the checkpoint was saved with (`nnlite compress`), if any."""
    from nnlite import compression, io
    try:
        compression.prepare_for_checkpoint(model, path)
    except compression.CompressionError as exc:
        if "cannot read" not in str(exc) and "holds no model group" not in str(exc):
            raise CommandError(f"checkpoint {path!r}: {exc}") from None
        # not a readable checkpoint: io.load below says why, in its words
    model.to(device)
    try:
        return io.load(path, model)
    except FileNotFoundError:
        raise CommandError(f"checkpoint {path!r} does not exist") from None
    except io.CheckpointError as exc:
        raise CommandError(f"{exc}{_owner_hint(path, name)}") from None
    except OSError as exc:  # unreadable: permissions, a device, an I/O error
        raise CommandError(f"cannot read checkpoint {path!r}: {_reason(exc)}") from None


def _reason(exc):
    """An OSError in words: its strerror (the path is said by the caller) or its text."""
    return exc.strerror or str(exc)


def resume_command(args, out_dir):
    """The `nnlite train ... --resume` that continues this run: the run
    stores its state, not the command's options, so the ones that shape the
    recipe, the data or the step are given again."""
    import shlex
    words = ["nnlite", "train", args.model]
    for flag, value, default in (("--data", args.data, None), ("--batch", args.batch, None),
                                 ("--device", args.device, "cpu"), ("--seed", args.seed, 0),
                                 ("--steps", args.steps, None),
                                 ("--eval-every", args.eval_every, None),
                                 ("--clip-grad-norm", args.clip_grad_norm, None)):
        if value != default:
            words += [flag, str(value)]
    if getattr(args, "sync_bn", False):
        words.append("--sync-bn")
    if getattr(args, "reduction", "ordered") != "ordered":
        words += ["--reduction", args.reduction]
    for pair in getattr(args, "option", []):
        words += ["--option", pair]
    words += ["--out", out_dir, "--resume"]
    return " ".join(shlex.quote(word) for word in words)


def _writable_directory(path, option):
    """Prove a file can be written in the output folder `path`, or in the
    nearest folder above it that exists (the run makes the rest), so an
    unwritable `option` (--out) is a message, not a traceback after the work
    is done. Nothing is created: a command that fails before its run starts
    leaves no empty folders behind."""
    import tempfile
    if os.path.exists(path) and not os.path.isdir(path):
        raise CommandError(f"{option} {path}: is a file, not a directory")
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise CommandError(f"{option} {path}: {existing} is a file, not a directory")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise CommandError(f"{option} {path}: cannot write there: {_reason(exc)}") from None


def _build_for(builder, module, args):
    """The model to load the checkpoint into: the module's build_for_checkpoint(path,
    name) when it has one (recipes that train other sizes than the builder's
    default), else the registered builder's default. Built on the meta device
    and given the checkpoint's compressed structure before any array is
    allocated (nnlite.compression.build_for_checkpoint)."""
    if not callable(getattr(module, "build_for_checkpoint", None)):
        return builder()
    _check_checkpoint(args.checkpoint)
    from nnlite import compression
    try:
        return compression.build_for_checkpoint(args.model, args.checkpoint)
    except (OSError, KeyError, ValueError) as exc:
        raise CommandError(f"cannot read model shapes from {args.checkpoint!r}: {exc}"
                           f"{_owner_hint(args.checkpoint, args.model)}") from None


def _owner_hint(path, asked):
    """'; it holds a crnn checkpoint ...' when the parameter names saved in
    `path` are exactly those of another registered model than `asked`, else
    ''. Each candidate is built on the meta device (nothing allocated)."""
    import nnlite as nl
    from nnlite import models
    try:
        import h5py
        with h5py.File(path, "r") as f:
            saved = set(f["model"].keys()) if "model" in f else set()
    except (OSError, KeyError):
        return ""
    owners = []
    for name in models.available():
        builder, _ = models.get(name)
        try:
            with nl.nn.meta():
                keys = set(builder().state_dict())
        except Exception:  # noqa: BLE001 - a builder that cannot run on meta is no candidate
            continue
        if keys == saved and name != asked:
            owners.append(name)
    if not owners:
        return ""
    return (f"; it holds the parameters of {' or '.join(owners)}, not of {asked}: give "
            f"{owners[0]} as the model")


def _load_images(module, paths):
    missing = [path for path in paths if not os.path.isfile(path)]
    if missing:
        raise CommandError(f"no such image file: {', '.join(missing)}")
    images = []
    for path in paths:
        try:
            images.append(module.load_image(path))
        except (OSError, ValueError, EOFError) as exc:  # np.load: EOFError on an empty .npy
            raise CommandError(f"cannot read image {path!r}: {exc}") from None
    return images


def _batches(images):
    """One stacked batch when all images have one shape, else one per image."""
    import numpy as np
    shapes = {np.shape(image) for image in images}
    if len(shapes) == 1:
        return [np.stack(images)]
    return [np.stack([image]) for image in images]


# ------------------------------------------------------------------ train --

def _check_run_directory(out_dir, args):
    from nnlite.training import RunExistsError, check_run_directory
    if args.resume and args.overwrite:
        raise CommandError(f"--resume continues the run in {out_dir} and --overwrite replaces "
                           f"it; give one")
    try:
        check_run_directory(out_dir, resume=args.resume, overwrite=args.overwrite)
    except FileNotFoundError:
        last = os.path.join(out_dir, "last.h5")
        raise CommandError(f"--resume: no checkpoint to resume from: {last} does not exist "
                           f"(start without --resume, or pass the run's --out)") from None
    except RunExistsError as exc:
        raise CommandError(f"{out_dir} already holds a run ({exc.listing}); continue it with "
                           f"--resume, train into a new --out DIR, or replace it with "
                           f"--overwrite") from None


def _training_module_and_out_dir(args):
    """`nnlite train`'s recipe module and run folder, its numeric options and
    data checked (one process or several)."""
    _, module = _resolve(args.model, ["training_recipe"], "training recipe")
    for option, value in (("--steps", args.steps), ("--batch", args.batch),
                          ("--eval-every", args.eval_every)):
        _positive(option, value)
    clip = args.clip_grad_norm
    if clip is not None and not (math.isfinite(clip) and clip > 0):
        raise CommandError(f"--clip-grad-norm must be a positive finite number, got {clip}")
    if getattr(args, "init", None) is not None and args.resume:
        raise CommandError("--init starts a run from a checkpoint's weights and --resume "
                           "continues a run: give one of them")
    _check_trainable_data(module, args)
    return module, args.out or os.path.join("runs", args.model)


def _check_trainable_data(module, args):
    """Refuse --data that the recipe names as evaluation-only (a benchmark),
    and unknown --option keys, before a run directory is made."""
    eval_only = getattr(module, "EVAL_ONLY_DATA", {})
    if args.data in eval_only:
        raise CommandError(f"--data {args.data}: {eval_only[args.data]}")
    _recipe_options(module, getattr(args, "option", []))


@_reporting("train")
def run_train(args):
    from nnlite import distributed
    try:
        group = distributed.init()
    except (RuntimeError, ValueError) as exc:  # launched by mpiexec without mpi4py ...
        raise CommandError(str(exc)) from None
    if group.size > 1:
        from nnlite.cli_train_mpi import run_train_distributed
        _QUIET["rank"] = group.rank
        return run_train_distributed(args, group)
    from nnlite.training import Trainer
    module, out_dir = _training_module_and_out_dir(args)
    _check_run_directory(out_dir, args)  # before the recipe, which may take a while to build
    _writable_directory(out_dir, "--out")
    recipe = _recipe(module, args)
    _initialise(recipe.model, module, args)
    trainer = Trainer(recipe.model, recipe.optimizer, recipe.task, recipe.train_loader,
                      recipe.val_loader, steps=args.steps or recipe.steps, out_dir=out_dir,
                      scheduler=recipe.scheduler, eval_every=args.eval_every or recipe.eval_every,
                      log_every=recipe.log_every, device=args.device, seed=args.seed,
                      clip_grad_norm=args.clip_grad_norm)
    try:
        history = trainer.fit(resume=args.resume, overwrite=args.overwrite)
    except KeyboardInterrupt:
        print(f"\nnnlite train: interrupted; saved the state after step {trainer.step} to "
              f"{trainer.last_path}; continue with: {resume_command(args, out_dir)}",
              file=sys.stderr)
        return 130
    except OSError as exc:  # a checkpoint or report could not be written (disk full ...)
        where = f"{exc.filename}: " if exc.filename else ""
        raise CommandError(f"stopped after step {trainer.step}: {where}{_reason(exc)}",
                           status=1) from None
    _report_run(trainer, history, recipe.task.metric_name)
    return 0


def _report_run(trainer, history, name):
    """The closing lines of `nnlite train`."""
    from nnlite.training.trainer import evaluation_line
    if history["train"]:
        row = history["train"][-1]
        print(f"step {row['step']}: training loss {row['loss']:.4g}")
    if history["eval"]:
        if not trainer.progress:  # else the Trainer printed it as it evaluated
            print(evaluation_line(history["eval"][-1]))
        print(f"best {name} {trainer.best[name]:.4g} at step {trainer.best['step']}: "
              f"{trainer.best_path}")
    print(f"last checkpoint: {trainer.last_path}; curves: {trainer.curves_path}; "
          f"metrics: {trainer.metrics_path}")


# ------------------------------------------------------------------- eval --

@_reporting("eval")
def run_eval(args):
    import nnlite as nl
    builder, module = _resolve(args.model, ["training_recipe"], "training recipe")
    _positive("--batch", args.batch)
    _check_checkpoint(args.checkpoint)
    recipe = _recipe(module, args)
    if recipe.val_loader is None:
        raise CommandError(f"the {args.model} recipe has no validation data for --data "
                           f"{args.data or '(its default)'}")
    # the checkpoint's own shapes when the module can read them: a compact
    # model trained on one data set is evaluated on another
    model = _build_for(builder, module, args) \
        if callable(getattr(module, "build_for_checkpoint", None)) else recipe.model
    meta = _load_checkpoint(args.checkpoint, model, args.device, args.model)
    model.eval()
    with nl.no_grad():
        metrics = recipe.task.evaluate(model, recipe.val_loader)
    step = meta.get("step")
    print(f"{args.model} {args.checkpoint}" + (f" (step {step})" if step is not None else ""))
    for key, value in metrics.items():
        print(f"{key}: {value:.6g}")
    return 0


# ---------------------------------------------------------------- predict --

def _read_lexicon(path):
    from nnlite.data import load_lexicon  # decodes as training lexicons are (BOMs, UTF-8)
    try:
        words = load_lexicon(path)
    except OSError as exc:
        reason = f"cannot read {path!r}: {exc.strerror}" if exc.strerror else str(exc)
        raise CommandError(f"--lexicon: {reason}") from None
    except ValueError as exc:
        raise CommandError(f"--lexicon: {exc}") from None
    if not words:
        raise CommandError(f"--lexicon: {path!r} holds no words")
    return words


@_reporting("predict")
def run_predict(args):
    import nnlite as nl
    builder, module = _resolve(args.model, ["load_image", "predict_texts"], "prediction "
                                                                            "support")
    _positive("--beam", args.beam)
    lexicon = _read_lexicon(args.lexicon) if args.lexicon else None
    args.checkpoint, args.images = _checkpoint_and_images(args.model, module, args.inputs)
    _check_checkpoint(args.checkpoint)
    model = _build_for(builder, module, args)
    _load_checkpoint(args.checkpoint, model, args.device, args.model)
    images = _load_images(module, args.images)
    model.eval()
    if callable(getattr(module, "predict_boxes", None)):  # text and box in one pass
        for path, text, box in zip(args.images, *_texts_and_boxes(module, model, images)):
            print(f"{path}\t{text}\t" + ",".join(f"{v:.1f}" for v in box))
        return 0
    texts = []
    with nl.no_grad():
        for batch in _batches(images):
            texts += list(module.predict_texts(model, batch, beam=args.beam, lexicon=lexicon))
    for path, text in zip(args.images, texts):
        print(f"{path}\t{text}")
    return 0


def _texts_and_boxes(module, model, images):
    """([text], [box]) of a model that locates its text, a batch at a time."""
    import nnlite as nl
    texts, boxes = [], []
    with nl.no_grad():
        for batch in _batches(images):
            batch_texts, batch_boxes = module.predict_boxes(model, batch)
            texts += list(batch_texts)
            boxes += list(batch_boxes)
    return texts, boxes


# -------------------------------------------------------------- visualize --

@_reporting("visualize")
def run_visualize(args):
    import nnlite as nl
    from nnlite.training import plots
    _, module = _resolve(args.model, [], "visualisation")
    # a model that locates its text draws its box; a reader draws its attention
    needs = "predict_boxes" if callable(getattr(module, "predict_boxes", None)) \
        else "attention_masks"
    builder, module = _resolve(args.model, ["load_image", needs],
                               "attention masks or boxes to visualise")
    _check_checkpoint(args.checkpoint)
    model = builder()
    _load_checkpoint(args.checkpoint, model, args.device, args.model)
    images = _load_images(module, args.images)
    _writable_directory(args.out, "--out")
    model.eval()
    if needs == "predict_boxes":
        return _visualize_boxes(module, model, images, args)
    masks = []
    with nl.no_grad():
        for batch in _batches(images):
            try:
                masks += list(plots.check_masks(module.attention_masks(model, batch),
                                                len(batch)))
            except ValueError as exc:
                raise CommandError(str(exc), status=1) from None
    for path, image, image_masks in zip(args.images, images, masks):
        stem = os.path.splitext(os.path.basename(path))[0]
        try:
            os.makedirs(args.out, exist_ok=True)
            png, gif = plots.attention_pictures(
                image, image_masks, os.path.join(args.out, f"{stem}_attention.png"),
                os.path.join(args.out, f"{stem}_attention.gif"))
        except OSError as exc:  # the folder was writable a moment ago: disk full ...
            raise CommandError(f"--out {args.out}: cannot write the pictures of {path}: "
                               f"{_reason(exc)}", status=1) from None
        print(f"{path}: {png} {gif}")
    return 0


def _visualize_boxes(module, model, images, args):
    """DIR/<name>_box.png for each image: the box and the digits the model finds."""
    from nnlite.training import plots
    texts, boxes = _texts_and_boxes(module, model, images)
    for path, image, text, box in zip(args.images, images, texts, boxes):
        stem = os.path.splitext(os.path.basename(path))[0]
        try:
            os.makedirs(args.out, exist_ok=True)
            png = plots.box_picture(image, box, text, os.path.join(args.out, f"{stem}_box.png"))
        except OSError as exc:  # the folder was writable a moment ago: disk full ...
            raise CommandError(f"--out {args.out}: cannot write the picture of {path}: "
                               f"{_reason(exc)}", status=1) from None
        print(f"{path}: {png}")
    return 0
