"""The GPU backend of `nnlite.kernels.launch`: csrc/cuda/<family>.cu compiled by
NVRTC (through CuPy) at first use, cached per device, and launched.

The entry points' parameter lists are read from the source itself, so the
Python ints of a launch are converted to the C types the kernel declares
(int or long long), with a range check, and a wrong argument count fails here
rather than on the device. CuPy is imported only when a kernel is first
called, never at import time.
"""
import re
import threading
import warnings
from pathlib import Path

import numpy as np

from nnlite.kernels.launch import dtype_suffix

NVRTC_OPTIONS = ("-std=c++03",)
# The numbers of csrc/nnlite/portable.cuh (the TK1 limits and the grid-stride
# launch shape); a test keeps them in step.
MAX_THREADS_PER_BLOCK = 1024
MAX_SHARED_BYTES = 48 * 1024
GRID_THREADS = 256
MAX_GRID_BLOCKS = 65535
MIN_THREADS_PER_BLOCK = 32  # one warp: fewer threads would leave lanes idle anyway

FAMILIES = ("softmax", "rnn", "ctc", "conv", "pool", "winograd", "dequant", "direct_conv",
            "activation")

_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"]+)"')
_ENTRY = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?'
                    r'(\w+)\s*\(([^)]*)\)')
_MACRO = re.compile(r"#define (NNL_\w+)[ \t]+((?:.*\\\n)*.*)")
_SCALAR_TYPES = {"int": np.int32, "long long": np.int64}
_lock = threading.Lock()
_modules = {}  # (family, device id) -> {entry point name: cupy.RawKernel}
_signatures = {}  # family -> {entry point name: [(C type, name), ...]}
_scalar_plans = {}  # (entry point name, parameters) -> _scalar_plan


def csrc_dir():
    """The kernel sources: <repo>/csrc, next to the nnlite package of a checkout
    or an editable install."""
    root = Path(__file__).resolve().parents[2] / "csrc"
    if not (root / "cuda").is_dir():
        raise FileNotFoundError(
            f"nnlite.kernels.nvrtc: kernel sources not found at {root}; the GPU backend "
            f"compiles csrc/cuda/*.cu at run time, so nnlite must be installed from a source "
            f"checkout with `pip install -e .`")
    return root


def load_source(relpath, root=None):
    """csrc/<relpath> with its quoted #includes inlined, recursively and once each.

    NVRTC gets one self-contained string, and because CuPy keys its on-disk
    kernel cache on that string, editing any header recompiles the kernel.
    #line directives keep compiler messages pointing at the real files.
    """
    out = []
    _inline(Path(root) if root is not None else csrc_dir(), relpath, None, set(), out)
    return "".join(out)


def _inline(root, relpath, includer, seen, out):
    if relpath in seen:
        return
    seen.add(relpath)
    path = root / relpath
    if not path.is_file():
        where = f" (included from {includer})" if includer else ""
        raise FileNotFoundError(f"nnlite.kernels.nvrtc: {relpath}{where} not found under {root}")
    out.append(f'#line 1 "{relpath}"\n')
    for lineno, line in enumerate(path.read_text().splitlines(keepends=True), start=1):
        match = _INCLUDE.match(line)
        if match is None:
            out.append(line if line.endswith("\n") else line + "\n")
            continue
        _inline(root, match.group(1), relpath, seen, out)
        out.append(f'#line {lineno + 1} "{relpath}"\n')


def entry_signatures(code):
    """{entry point name: [(declared C type, parameter name), ...]} of the
    extern "C" kernels in CUDA source `code`, NNL_ macros expanded, e.g.
    ("const float*", "gx"), ("long long", "units")."""
    macros = {name: body.replace("\\\n", " ") for name, body in _MACRO.findall(code)}
    signatures = {}
    for name, params in _ENTRY.findall(code):
        for macro, body in macros.items():
            params = re.sub(rf"\b{macro}\b", body, params)
        parsed = []
        for declaration in params.split(","):
            words = declaration.replace("*", " * ").split()
            parsed.append((" ".join(words[:-1]).replace(" *", "*"), words[-1]))
        signatures[name] = parsed
    return signatures


def family_signatures(family):
    """entry_signatures of csrc/cuda/<family>.cu, parsed once."""
    if family not in _signatures:
        _signatures[family] = entry_signatures(load_source(f"cuda/{family}.cu"))
    return _signatures[family]


def family_of(name):
    """The family whose .cu defines entry point `name` (with its dtype suffix)."""
    for family in FAMILIES:
        if name in family_signatures(family):
            return family
    raise KeyError(f"nnlite.kernels.nvrtc: no csrc/cuda/*.cu defines the entry point {name}")


def _cupy():
    from nnlite import cuda
    return cuda.ensure_initialized()


def _compile(cupy, family):
    source = load_source(f"cuda/{family}.cu")
    with warnings.catch_warnings():
        # CuPy warns that its bundled CCCL headers need C++11; we include none.
        warnings.filterwarnings("ignore", message=".*CCCL requires")
        try:
            module = cupy.RawModule(code=source, options=NVRTC_OPTIONS)
            # get_function triggers the (lazy) compilation, inside the filter.
            return {name: module.get_function(name) for name in family_signatures(family)}
        except Exception as exc:
            raise RuntimeError(f"nnlite.kernels.nvrtc: compiling csrc/cuda/{family}.cu with "
                               f"NVRTC {' '.join(NVRTC_OPTIONS)} failed:\n{exc}") from exc


def _kernel(family, name):
    cupy = _cupy()
    key = (family, cupy.cuda.runtime.getDevice())
    kernels = _modules.get(key)
    if kernels is None:
        with _lock:
            kernels = _modules.get(key)
            if kernels is None:
                kernels = _modules[key] = _compile(cupy, family)
    return kernels[name]


def compile_check():
    """{family: None if csrc/cuda/<family>.cu compiles and links here, else the error}."""
    results = {}
    for family in FAMILIES:
        try:
            _kernel(family, next(iter(family_signatures(family))))
            results[family] = None
        except Exception as exc:  # reported, not raised: this feeds `nnlite info`
            results[family] = f"{type(exc).__name__}: {exc}"
    return results


def block_threads(width):
    """Threads of a one-block-per-item kernel: a power of two (the block
    reductions need one) covering `width`, within [one warp, the TK1 cap];
    wider items are strided by the block."""
    threads = MIN_THREADS_PER_BLOCK
    while threads < width and threads < MAX_THREADS_PER_BLOCK:
        threads *= 2
    return threads


def launch_shape(work, itemsize):
    """(blocks, threads, dynamic shared bytes) of a launch.Grid or launch.Blocks."""
    if hasattr(work, "total"):
        return max(1, min(MAX_GRID_BLOCKS, -(-work.total // GRID_THREADS))), GRID_THREADS, 0
    threads = block_threads(work.width)
    return work.count, threads, threads * work.shared_per_thread * itemsize


def _scalar_plan(params):
    """[(position, name, numpy type, min, max)] of the int parameters in `params`."""
    plan = []
    for position, (ctype, pname) in enumerate(params):
        scalar = _SCALAR_TYPES.get(ctype)
        if scalar is not None:
            limits = np.iinfo(scalar)
            plan.append((position, pname, scalar, int(limits.min), int(limits.max)))
    return plan


def _converted(name, params, args):
    if len(args) != len(params):
        raise TypeError(f"{name}: {len(args)} arguments for the {len(params)} parameters "
                        f"{', '.join(p for _, p in params)}")
    # Planned once per parameter list: np.iinfo on every launch cost more than
    # the rest of the launch's Python (about 1 us per int argument).
    key = (name, tuple(params))
    plan = _scalar_plans.get(key)
    if plan is None:
        plan = _scalar_plans[key] = _scalar_plan(params)
    converted = list(args)
    for position, pname, scalar, low, high in plan:
        value = int(args[position])
        if not low <= value <= high:
            raise ValueError(f"{name}: {pname} = {value} does not fit the kernel's "
                             f"{params[position][0]}")
        converted[position] = scalar(value)
    return tuple(converted)


def launch(name, dtype, work, args):
    """Launch `name`_<f32|f64> with `args` on the grid `work` describes."""
    entry = f"{name}_{dtype_suffix(dtype)}"
    family = family_of(entry)
    blocks, threads, shared = launch_shape(work, np.dtype(dtype).itemsize)
    if blocks == 0:
        return
    args = _converted(entry, family_signatures(family)[entry], args)
    _kernel(family, entry)((blocks,), (threads,), args, shared_mem=shared)
