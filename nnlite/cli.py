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


COMMANDS = (add_info_command,)


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
    return args.run(args) or 0


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


def _gpu_kernels():
    from nnlite.kernels import cuda as cuda_kernels
    results = cuda_kernels.compile_check()
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


if __name__ == "__main__":
    sys.exit(main())
