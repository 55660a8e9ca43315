"""`nnlite compress MODEL CHECKPOINT --out FILE`: a compressed checkpoint of a
trained model for a memory budget (nnlite.compression), with the size and the
memory verdict of batch-1 inference before and after (nl.summary)."""
import os
import sys

from nnlite.cli_train import CommandError, _reason, _reporting

METHOD_HELP = ("svd: low rank by truncated SVD; fp16: float16 weights; int8: int8 weights with "
               "a scale per output row; svd+int8 / svd+fp16: low rank, factors stored that way")


def add_compress_command(subparsers):
    from nnlite.compression import METHODS
    parser = subparsers.add_parser(
        "compress", help="compress a trained model's Linear layers for a memory budget",
        description="Load CHECKPOINT into MODEL, replace its Linear layers by low-rank "
                    "(truncated SVD) and/or float16 / int8 versions (float32 compute, "
                    "dequantised chunk by chunk before each GEMM), and save the result to "
                    "--out. Ranks are chosen so that batch-1 inference fits --budget unless "
                    "--rank gives them. Prints size and memory verdict before and after; "
                    "exits 1 when the result still does not fit. The output loads in "
                    "nnlite eval / predict / summary --checkpoint like any checkpoint.")
    parser.add_argument("model", metavar="MODEL", help="a registered model name")
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="the trained nnlite checkpoint")
    parser.add_argument("--out", required=True, metavar="FILE", help="the compressed checkpoint")
    parser.add_argument("--budget", default="1.5GiB", metavar="SIZE",
                        help="memory budget of batch-1 inference (default 1.5GiB, the TK1 "
                             "profile)")
    parser.add_argument("--method", default="svd+int8", choices=METHODS, help=METHOD_HELP +
                        " (default svd+int8)")
    parser.add_argument("--rank", action="append", default=None, metavar="LAYER=R",
                        help="rank of one layer for the svd methods (repeatable); layers "
                             "not named stay dense")
    parser.add_argument("--layers", default=None, metavar="A,B",
                        help="only these Linear layers (default: all)")
    parser.add_argument("--batch", type=int, default=1, help="batch size of the verdict (1)")
    parser.set_defaults(run=run_compress)


def _ranks(values):
    if not values:
        return None
    ranks = {}
    for value in values:
        name, sep, number = value.partition("=")
        try:
            ranks[name.strip()] = int(number)
        except ValueError:
            raise CommandError(f"--rank {value!r}: expected LAYER=RANK such as fc1=256") \
                from None
        if not sep or not name.strip():
            raise CommandError(f"--rank {value!r}: expected LAYER=RANK such as fc1=256")
    return ranks


def _verdict(label, result, budget):
    from nnlite.cuda import format_bytes
    totals = result.totals
    required = totals["required_bytes"]
    needs = "unknown" if required is None else format_bytes(required)
    fits = {True: "fits", False: "DOES NOT FIT", None: "unknown"}[result.fits]
    return (f"{label}: {totals['params']:,} parameters, {format_bytes(totals['param_bytes'])} "
            f"of weights; batch-{totals['batch']} inference needs {needs}: {fits} "
            f"{format_bytes(budget)}")


@_reporting("compress")
def run_compress(args):
    from nnlite import compression, cuda, io, models
    from nnlite.model_summary import summary
    try:
        _, input_shape = models.get(args.model)
    except KeyError:
        raise CommandError(f"unknown model {args.model!r}; available models: "
                           f"{', '.join(models.available())}") from None
    try:
        budget = cuda.parse_bytes(args.budget)
    except ValueError as exc:
        raise CommandError(f"--budget: {exc}") from None
    if args.batch <= 0:
        raise CommandError(f"--batch must be a positive int, got {args.batch}")
    ranks = _ranks(args.rank)
    if ranks is not None and not args.method.startswith("svd"):
        raise CommandError(f"--rank is for the svd methods, not --method {args.method}")
    layers = [n.strip() for n in args.layers.split(",")] if args.layers else None
    if not os.path.isfile(args.checkpoint):
        raise CommandError(f"checkpoint {args.checkpoint!r} does not exist or is not a file")
    out = os.path.abspath(args.out)
    if os.path.isdir(out):
        raise CommandError(f"--out {args.out}: is a directory; give a file name")
    if not os.path.isdir(os.path.dirname(out)) or not os.access(os.path.dirname(out), os.W_OK):
        raise CommandError(f"--out {args.out}: cannot write in {os.path.dirname(out)}")
    if os.path.exists(out) and os.path.samefile(args.checkpoint, out):
        raise CommandError("--out is the input checkpoint; write the compressed one elsewhere")
    try:
        model = compression.build_for_checkpoint(args.model, args.checkpoint)
        io.load(args.checkpoint, model)
    except (compression.CompressionError, io.CheckpointError, KeyError, ValueError,
            OSError) as exc:
        raise CommandError(f"cannot load {args.checkpoint!r} into {args.model}: {exc}") \
            from None
    model.eval()
    print(_verdict("before", summary(model, input_shape, batch=args.batch, memory=budget),
                   budget))
    try:
        report = compression.compress(model, args.method, ranks=ranks,
                                      budget=None if ranks else budget, layers=layers,
                                      input_shape=input_shape, batch=args.batch)
    except compression.CompressionError as exc:
        raise CommandError(str(exc), status=1) from None
    print(compression.report_text(report))
    after = summary(model, input_shape, batch=args.batch, memory=budget)
    print(_verdict("after", after, budget))
    try:
        io.save(out, model, compression=compression.describe(model), method=args.method,
                source=os.path.abspath(args.checkpoint))
    except OSError as exc:
        raise CommandError(f"--out {args.out}: {_reason(exc)}", status=1) from None
    print(f"wrote {args.out}: {cuda.format_bytes(os.path.getsize(out))} (input checkpoint "
          f"{cuda.format_bytes(os.path.getsize(args.checkpoint))})")
    if after.fits is False:
        print(f"nnlite compress: the compressed {args.model} still does not fit "
              f"{cuda.format_bytes(budget)}; try --method svd+int8 or smaller --rank values",
              file=sys.stderr)
        return 1
    return 0
