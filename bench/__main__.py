"""python -m bench [--device cpu|cuda|all] [--filter NAME] [--all] [--json PATH]
                   [--compare torch] [--repeat N]"""
import argparse
import platform
import sys

from bench import harness


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all",
                        help="where to run (default: every device present)")
    parser.add_argument("--filter", default=None, help="only cases whose name or shape contains this")
    parser.add_argument("--all", action="store_true",
                        help="also the long cases: whole networks (--filter model) and the "
                             "large layers of every seed network (minutes on a CPU)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also save all figures")
    parser.add_argument("--compare", action="append", choices=["torch"], default=[],
                        help="require a comparison (fails if it is not installed); PyTorch "
                             "is included automatically whenever it imports")
    parser.add_argument("--repeat", type=int, default=50, help="timed runs per implementation")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs first")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.warmup < 0:
        parser.error(f"--repeat must be >= 1 and --warmup >= 0; got {args.repeat}, {args.warmup}")
    if "torch" in args.compare and harness.torch_or_none() is None:
        parser.error("--compare torch: PyTorch is not installed here (pip install -e '.[torch]')")
    return parser, args


def main(argv=None):
    import nnlite.cuda
    from nnlite import blas_info
    from tqdm import tqdm
    parser, args = parse_args(argv)
    gpu = nnlite.cuda.is_available()
    if args.device == "cuda" and not gpu:
        parser.error(f"--device cuda: no usable GPU here ({nnlite.cuda.why_unavailable()})")
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or gpu]
    cases = harness.build_cases(devices, args.filter, include_long=args.all)
    if not cases:
        parser.error(f"--filter {args.filter!r} matches no case")
    total = sum(len(case.impls) for case in cases)
    with tqdm(total=total, desc="bench", unit="impl", leave=False, file=sys.stderr) as bar:
        results = harness.run_cases(cases, args.repeat, args.warmup, progress=bar)
    if "cpu" in devices:
        # CPU GEMMs (conv2d, the RNN projections) run on NumPy's BLAS; its kernel
        # choice moves the torch ratios, so it is printed beside them.
        print(f"cpu blas: {blas_info.describe()}")
    for device in devices:
        print(harness.format_table(results, device), end="\n\n")
    if args.json:
        meta = {"repeat": args.repeat, "warmup": args.warmup, "devices": devices,
                "python": platform.python_version(), "machine": platform.machine(),
                "cpu_blas": blas_info.describe()}
        harness.write_json(args.json, results, meta)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
