"""The `nnlite` command line. Each subcommand is an add_<name>_command(subparsers)
function listed in COMMANDS; a new one (train, summary, ...) adds a function
and one entry there."""
import argparse
import os
import platform
import sys


def add_info_command(subparsers):
    parser = subparsers.add_parser(
        "info", help="versions, GPUs, kernel builds and the GPU memory budget",
        description="Report what nnlite finds on this machine: versions, GPUs, whether the "
                    "host kernels (nnlite._C) are built and the GPU kernels compile, and the "
                    "GPU memory budget.")
    parser.set_defaults(run=run_info)


def add_summary_command(subparsers):
    parser = subparsers.add_parser(
        "summary", help="layers, parameters, FLOPs and memory of a model vs a memory budget",
        description="Run one forward pass of a registered model (nnlite.models) and print "
                    "each layer's output shape, parameters, FLOPs and activation memory, the "
                    "totals, and whether it fits the memory budget (default: the TK1 "
                    "profile). The model is first built on the meta device (shapes only, "
                    "nothing allocated); when its parameters alone exceed the budget it stays "
                    "there and the forward is shapes only (layers with weights replaced by "
                    "their shape rules), unless --run asks for a real one. --checkpoint "
                    "describes the model saved in a checkpoint, compressed ones included "
                    "(`nnlite compress`), without reading its weights.")
    parser.add_argument("model", metavar="MODEL", help="a model name; see `nnlite summary "
                                                       "--list`", nargs="?")
    parser.add_argument("--list", action="store_true", help="list the model names and exit")
    parser.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    parser.add_argument("--train", action="store_true",
                        help="count training memory: gradients and what backward keeps")
    parser.add_argument("--memory", default=None, metavar="SIZE",
                        help="memory budget, e.g. 1.5GiB, 512MiB, 2GB (default: the TK1 "
                             "profile, 1.5 GiB)")
    parser.add_argument("--input-shape", default=None, metavar="C,H,W",
                        help="input shape without the batch (default: the model's)")
    parser.add_argument("--run", dest="forward", action=argparse.BooleanOptionalAction,
                        default=None,
                        help="force a real forward pass (--run; allocates the parameters) or "
                             "skip the forward (--no-run)")
    parser.add_argument("--size", default=None, metavar="SIZE",
                        help="for a model trained at several sizes (crnn, charnet, dictnet): "
                             "the size to describe (default: the size `nnlite train MODEL` "
                             "trains, compact; seed for the seed's network)")
    parser.add_argument("--checkpoint", default=None, metavar="FILE",
                        help="describe the model saved in this nnlite checkpoint (its layer "
                             "shapes and compression), not the registered default")
    parser.set_defaults(run=run_summary)


COMMANDS = (add_info_command, add_summary_command)

# train, eval, predict, visualize live in cli_train.py (they need nnlite.training)
from nnlite.cli_train import (add_eval_command, add_predict_command,  # noqa: E402
                              add_train_command, add_visualize_command)

COMMANDS += (add_train_command, add_eval_command, add_predict_command, add_visualize_command)

from nnlite.cli_compress import add_compress_command  # noqa: E402

COMMANDS += (add_compress_command,)


def build_parser():
    from nnlite._version import __version__
    parser = argparse.ArgumentParser(prog="nnlite", description="nnlite command line tools.")
    parser.add_argument("--version", action="version", version=f"nnlite {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for add_command in COMMANDS:
        add_command(subparsers)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        status = args.run(args) or 0
        sys.stdout.flush()  # here, where a closed pipe is caught, not at exit
        return status
    except BrokenPipeError:
        # The reader of stdout went away (`nnlite summary crnn | head`): as a
        # Unix tool, stop quietly. stdout is pointed at devnull so that the
        # interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, the status a shell gives a killed writer


# ------------------------------------------------------------------ info --

def run_info(args):
    for label, value in info_rows():
        print(f"{label:<15} {value}")
    return 0


def info_rows():
    import numpy
    from nnlite import blas_info, cuda
    from nnlite._version import __version__
    rows = [("nnlite", __version__),
            ("python", f"{platform.python_version()} ({sys.executable})"),
            ("numpy", numpy.__version__),
            ("cpu blas", blas_info.describe()),
            ("cupy", _cupy_version())]
    gpus = _gpus() if cuda.is_available() else []
    rows.append(("gpus", "; ".join(gpus) if gpus else f"none: {cuda.why_unavailable()}"))
    rows.append(("nnlite._C", _host_build()))
    rows.append(("cpu threads", _threads()))
    rows.append(("gpu kernels", _gpu_kernels() if gpus else "skipped: no GPU"))
    rows.append(("memory budget", _memory_budget()))
    return rows


def _cupy_version():
    try:
        import cupy
    except ImportError:
        return "not installed"
    except Exception as exc:  # installed but broken (e.g. CUDA libraries missing)
        return f"installed but fails to import: {type(exc).__name__}: {exc}"
    return cupy.__version__


def _gpus():
    import cupy
    found = []
    for index in range(cupy.cuda.runtime.getDeviceCount()):
        props = cupy.cuda.runtime.getDeviceProperties(index)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        found.append(f"{index}: {name}, {props['totalGlobalMem'] / 2**30:.1f} GiB, "
                     f"compute capability {props['major']}.{props['minor']}")
    return found


def _host_build():
    try:
        from nnlite import _C
    except ImportError as exc:
        return f"not built ({exc}); run `pip install -e .` in the repository"
    return f"built, {_C.__file__} (OpenMP threads: {_C.openmp_max_threads()})"


def _threads():
    from nnlite import threads
    try:
        return threads.describe()
    except ImportError as exc:
        return f"unknown ({exc})"


def _gpu_kernels():
    from nnlite.kernels import nvrtc
    results = nvrtc.compile_check()
    failed = {family: error for family, error in results.items() if error}
    if not failed:
        return f"compile with NVRTC: {', '.join(results)}"
    return "; ".join(f"{family} FAILED: {error}" for family, error in failed.items())


def _memory_budget():
    from nnlite import cuda
    tk1 = f"TK1 profile: {cuda.format_bytes(cuda.TK1_MEMORY_BUDGET)}"
    try:
        limit = cuda.get_memory_limit()
    except ValueError as exc:
        return f"invalid: {exc}"
    source = (f"from {cuda.MEMORY_LIMIT_ENV}" if os.environ.get(cuda.MEMORY_LIMIT_ENV, "").strip()
              else f"set {cuda.MEMORY_LIMIT_ENV} or nnlite.cuda.set_memory_limit")
    if limit is None:
        return f"unlimited ({source}; {tk1})"
    return f"{cuda.format_bytes(limit)} ({source}; {tk1})"


# --------------------------------------------------------------- summary --

def run_summary(args):
    from nnlite import cuda, models
    from nnlite.model_summary import summary
    if args.list or not args.model:
        names = models.available()
        print("\n".join(names) if names else "no models registered")
        return 0 if args.list else 2
    try:
        builder, input_shape = models.get(args.model)
    except KeyError:
        names = ", ".join(models.available()) or "none registered"
        print(f"nnlite summary: unknown model {args.model!r}; available models: {names}",
              file=sys.stderr)
        return 2
    sized = models.sizes(args.model)
    if args.size is not None or sized is not None:
        if sized is None:
            print(f"nnlite summary: --size: {args.model} is built and trained at one size "
                  f"(the seed's); --size applies to "
                  f"{', '.join(n for n in models.available() if models.sizes(n))}",
                  file=sys.stderr)
            return 2
        names, trained, build_sized = sized
        size = trained if args.size is None else args.size
        if size not in names:
            print(f"nnlite summary: --size {size!r}: {args.model} comes in sizes "
                  f"{', '.join(names)}", file=sys.stderr)
            return 2
        if args.checkpoint is None:
            builder = lambda: build_sized(size)  # noqa: E731 - built twice below
            print(f"{args.model} at size {size!r}"
                  + (f": the size `nnlite train {args.model}` trains" if size == trained else "")
                  + f" (sizes: {', '.join(names)}; choose with --size)")
    try:
        budget = None if args.memory is None else cuda.parse_bytes(args.memory)
    except ValueError as exc:
        print(f"nnlite summary: --memory: {exc}", file=sys.stderr)
        return 2
    if args.input_shape is not None:
        try:
            input_shape = tuple(int(n) for n in args.input_shape.split(","))
        except ValueError:
            print(f"nnlite summary: --input-shape must be sizes separated by commas, such "
                  f"as 1,32,128 (no batch); got {args.input_shape!r}", file=sys.stderr)
            return 2
    if args.batch <= 0:
        print(f"nnlite summary: --batch must be a positive int, got {args.batch}",
              file=sys.stderr)
        return 2
    try:
        model = _summary_model(args.model, builder, budget, args.forward, args.checkpoint)
    except (OSError, ValueError, KeyError) as exc:
        print(f"nnlite summary: {exc}", file=sys.stderr)
        return 2
    try:
        result = summary(model, input_shape, batch=args.batch, train=args.train,
                         memory=budget, run=args.forward)
    except (ValueError, RuntimeError, TypeError) as exc:
        # The model rejected the input (e.g. a CRNN height that does not reduce to 1).
        print(f"nnlite summary: {args.model} with input {(args.batch,) + input_shape} "
              f"failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(result)
    return 0


def _summary_model(name, builder, budget, forward, checkpoint):
    """The model to summarise: built on the meta device first (no parameter
    is allocated), kept there when its parameters alone exceed the budget or
    no forward is wanted, else built for real (materialised, for a checkpoint's
    model: a summary needs shapes, not the saved values)."""
    import nnlite as nl
    from nnlite import cuda
    budget = cuda.TK1_MEMORY_BUDGET if budget is None else budget
    if checkpoint is not None:
        from nnlite import compression
        if not os.path.isfile(checkpoint):
            raise OSError(f"--checkpoint {checkpoint!r} does not exist or is not a file")
        model = compression.build_for_checkpoint(name, checkpoint, device="meta")
        resident = _resident_bytes(model)
        if forward is False or (forward is None and resident > budget):
            return model
        return nl.nn.materialize(model)
    try:
        with nl.nn.meta():
            model = builder()
    except Exception:  # noqa: BLE001 - a builder that reads its values: build it for real
        return builder()
    if forward is False or (forward is None and _resident_bytes(model) > budget):
        return model
    return builder()


def _resident_bytes(model):
    """Parameters and buffers (a compressed layer's stored weights among them)."""
    return sum(int(t.data.nbytes) for t in list(model.parameters()) + list(model.buffers()))


if __name__ == "__main__":
    sys.exit(main())
