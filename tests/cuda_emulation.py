"""Run nnlite's CUDA kernels on the CPU, for the *_cuda_*_glue tests.

A stand-in CuPy (`fake_cupy`) built on NumPy replaces the real one. Its
RawModule takes the very source nnlite.kernels.nvrtc hands to NVRTC (the .cu
with its local includes inlined), compiles it with g++ into a ctypes library,
and launches each entry point in an emulator:

- __global__, __device__, __launch_bounds__ ... are defined away; blockIdx and
  threadIdx are thread-local globals, blockDim and gridDim globals.
- The blocks of a grid run one after another. Inside a block, every CUDA
  thread is an OS thread, but only one runs at a time: each runs alone up to
  its next __syncthreads (or its end) and hands over to the next thread; when
  all have arrived, the next phase starts. A barrier that some threads of a
  block skip (they exited while others wait) is reported as divergent.
- Every launch runs twice from the same inputs: blocks and threads in
  ascending order, then in descending order, and both results must agree
  bit for bit. So any two threads (or blocks) whose work between two barriers
  conflicts are run in both orders: a missing barrier, or two writers of one
  element, shows up as a difference.
- `__shared__` arrays are static (one per block, as the blocks run in turn);
  `extern __shared__` arrays point at a per-block buffer of the launch's
  shared_mem bytes, filled with 0xFF bytes (NaN) before each block, as are the
  arrays of the fake cupy.empty: a read of something never written shows.
- The launch binds its Python arguments to the parameters of the .cu entry
  point by position and checks each one: an int32 for `int`, an int64 for
  `long long`, a C-contiguous ndarray of the matching dtype for a pointer. A
  `const` array that no writable argument aliases must come back unchanged.

What it does not prove: fine-grained interleavings inside one barrier
interval, warp-synchronous behaviour, memory-model effects (visibility
without a barrier or fence), the device's own math library (g++ and libm
compute expf/logf here, as in the host build, where CUDA's may differ in the
last ulp), register and shared-memory limits, or NVRTC accepting the source
(tests/test_tk1_profile.py compiles it with nvcc).
"""
import atexit
import ctypes
import hashlib
import re
import shutil
import subprocess
import tempfile
import types
from pathlib import Path

import numpy as np
import pytest

from nnlite.kernels import nvrtc

CSRC = Path(__file__).resolve().parents[1] / "csrc"
MAX_SHARED_BYTES = 48 * 1024

_PROLOGUE = r"""
#include <pthread.h>
#include <semaphore.h>
#include <string.h>
#define __global__
#define __device__
#define __host__
#define __launch_bounds__(threads)
#define __forceinline__ inline
#define __shared__ static
struct emulated_dim3 { unsigned int x, y, z; };
static __thread emulated_dim3 blockIdx, threadIdx;
static emulated_dim3 blockDim, gridDim;
static unsigned char emulated_shared[MAX_SHARED_BYTES] __attribute__((aligned(16)));
static void __syncthreads();
"""

_SCHEDULER = r"""
namespace emulator {
typedef void (*body_fn)(void**);
// One block at a time. Position p of the run order is thread p (ascending) or
// blockDim.x - 1 - p (descending); exactly one thread holds the baton.
static body_fn body;
static void** args;
static unsigned threads;
static int descending;
static sem_t baton[1024];
static unsigned char exited[1024], exited_this_phase[1024];
static int divergent, abandoned;
static __thread unsigned position;

static void pass_baton(unsigned from) {
  for (unsigned p = from + 1; p < threads; ++p)
    if (!exited[p]) { sem_post(&baton[p]); return; }
  // Everyone ran this phase: it ends. Threads that ended while others wait at
  // a barrier mean a __syncthreads that not the whole block reached.
  unsigned waiting = 0, ended = 0;
  for (unsigned p = 0; p < threads; ++p) {
    waiting += !exited[p];
    ended += exited_this_phase[p];
    exited_this_phase[p] = 0;
  }
  if (waiting && ended) divergent = 1;
  for (unsigned p = 0; p < threads; ++p)
    if (!exited[p]) { sem_post(&baton[p]); return; }
}

static void* thread_main(void* arg) {
  position = (unsigned)(unsigned long)arg;
  threadIdx.x = descending ? threads - 1 - position : position;
  threadIdx.y = threadIdx.z = 0;
  sem_wait(&baton[position]);
  if (abandoned) return 0;  // not every thread of the block could start
  body(args);
  exited[position] = exited_this_phase[position] = 1;
  pass_baton(position);
  return 0;
}

// The argument packs the block (a per-OS-thread blockIdx) and the position.
static void* thread_main_for_block(void* packed) {
  const unsigned long bits = (unsigned long)packed;
  blockIdx.x = (unsigned)(bits >> 16); blockIdx.y = blockIdx.z = 0;
  return thread_main((void*)(bits & 0xFFFF));
}
}  // namespace emulator

static void __syncthreads() {
  emulator::pass_baton(emulator::position);
  sem_wait(&emulator::baton[emulator::position]);
}

// 0 on success, 1 for a divergent barrier, 2 when threads cannot start.
static int emulate_launch(emulator::body_fn body, void** args, unsigned blocks, unsigned threads,
                          int descending) {
  using namespace emulator;
  emulator::body = body; emulator::args = args; emulator::threads = threads;
  emulator::descending = descending; divergent = abandoned = 0;
  gridDim.x = blocks; gridDim.y = gridDim.z = 1;
  blockDim.x = threads; blockDim.y = blockDim.z = 1;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  pthread_t handles[1024];
  int status = 0;
  for (unsigned b = 0; b < blocks && !status; ++b) {
    const unsigned block = descending ? blocks - 1 - b : b;
    memset(emulated_shared, 0xFF, sizeof emulated_shared);
    for (unsigned p = 0; p < threads; ++p) {
      sem_init(&baton[p], 0, 0);
      exited[p] = exited_this_phase[p] = 0;
    }
    unsigned started = 0;
    for (; started < threads; ++started) {
      if (pthread_create(&handles[started], &attr, thread_main_for_block, (void*)(unsigned long)
                         (started | ((unsigned long)block << 16))) != 0) { status = 2; break; }
    }
    if (status) {
      abandoned = 1;
      for (unsigned p = 0; p < started; ++p) sem_post(&baton[p]);
    } else {
      sem_post(&baton[0]);
    }
    for (unsigned p = 0; p < started; ++p) pthread_join(handles[p], 0);
    for (unsigned p = 0; p < threads; ++p) sem_destroy(&baton[p]);
  }
  pthread_attr_destroy(&attr);
  return status ? status : divergent;
}
"""


_DTYPES = {"float": np.float32, "double": np.float64, "int": np.int32,
           "signed char": np.int8, "unsigned char": np.uint8, "unsigned short": np.uint16}
_SCALARS = {"int": (np.int32, ctypes.c_int), "long long": (np.int64, ctypes.c_longlong)}


def have_compiler():
    return shutil.which("g++") is not None


def entry_parameters(code, name):
    """[(declared type, name), ...] of entry point `name` in CUDA source
    `code`, NNL_ macros expanded, e.g. ("const float*", "gx"), ("long long", "units")."""
    signatures = nvrtc.entry_signatures(code)
    assert name in signatures, f"entry point {name} not found in the source"
    return signatures[name]


def family_source(family):
    """The source nnlite.kernels.nvrtc gives NVRTC for csrc/cuda/<family>.cu."""
    return nvrtc.load_source(f"cuda/{family}.cu")


def _translation_unit(code, names):
    code = re.sub(r"extern\s+__shared__\s+(\w+)\s+(\w+)\s*\[\s*\]\s*;",
                  r"\1* const \2 = (\1*)emulated_shared;", code)
    wrappers = []
    for name in names:
        unpacked = ", ".join(f"*({ctype}*)a[{i}]"
                             for i, (ctype, _) in enumerate(entry_parameters(code, name)))
        wrappers.append(f'static void body_{name}(void** a) {{ {name}({unpacked}); }}\n'
                        f'extern "C" int launch_{name}(void** a, unsigned blocks, '
                        f'unsigned threads, int descending) {{\n'
                        f'  return emulate_launch(body_{name}, a, blocks, threads, '
                        f'descending);\n}}\n')
    return (_PROLOGUE.replace("MAX_SHARED_BYTES", str(MAX_SHARED_BYTES)) + code + _SCHEDULER
            + "".join(wrappers))


_libraries = {}  # sha1 of the translation unit -> ctypes.CDLL
_build_dir = None


def compile_emulator(code, names):
    """The ctypes library of CUDA source `code` with launch_<name> for each of `names`."""
    global _build_dir
    if not have_compiler():
        pytest.skip("g++ not found on PATH: the CUDA emulator needs it")
    unit = _translation_unit(code, names)
    key = hashlib.sha1(unit.encode()).hexdigest()
    if key not in _libraries:
        if _build_dir is None:
            _build_dir = Path(tempfile.mkdtemp(prefix="nnlite_cuda_emulation_"))
            # Linux keeps a loaded library mapped after its file is removed.
            atexit.register(shutil.rmtree, _build_dir, ignore_errors=True)
        source, library = _build_dir / f"{key}.cpp", _build_dir / f"{key}.so"
        source.write_text(unit)
        done = subprocess.run(["g++", "-std=c++03", "-O1", "-shared", "-fPIC", "-pthread",
                               f"-I{CSRC}", str(source), "-o", str(library)],
                              capture_output=True, text=True)
        assert done.returncode == 0, f"g++ failed on the emulated source:\n{done.stderr}"
        _libraries[key] = ctypes.CDLL(str(library))
    return _libraries[key]


class Launch:
    """What one kernel launch was given: `bound` maps parameter names to values."""

    def __init__(self, name, grid, block, shared_mem, bound):
        self.name, self.grid, self.block, self.shared_mem = name, grid, block, shared_mem
        self.bound = bound


def bind(name, params, args):
    """({name: value}, ctypes values) of `args` checked against `params`."""
    assert len(args) == len(params), f"{name}: {len(args)} arguments for {params}"
    bound, c_args = {}, []
    for (ctype, pname), value in zip(params, args):
        if ctype.endswith("*"):
            element = ctype.replace("const", "").replace("*", "").strip()
            assert isinstance(value, np.ndarray), f"{name}: {pname} is {type(value)}"
            assert value.flags.c_contiguous, f"{name}: {pname} is not C-contiguous"
            assert value.dtype == _DTYPES[element], \
                f"{name}: {pname} is {value.dtype} for a {ctype} parameter"
            c_args.append(ctypes.c_void_p(value.ctypes.data))
        else:
            numpy_type, c_type = _SCALARS[ctype]
            assert type(value) is numpy_type, \
                f"{name}: {pname} is {type(value).__name__} for a {ctype} parameter"
            c_args.append(c_type(int(value)))
        bound[pname] = value
    return bound, c_args


class EmulatedModule:
    """A cupy.RawModule stand-in. `policy(launch)` checks a Launch against the
    family's launch rules and returns the (blocks, threads) to emulate it with."""
    policy = None
    launches = []

    def __init__(self, code, options):
        self.code = code

    def get_function(self, name):
        run = emulated_kernel(self.code, name, tuple(nvrtc.entry_signatures(self.code)))

        def launch(grid, block, args, shared_mem=0):
            bound = bind(name, entry_parameters(self.code, name), args)[0]
            assert len(grid) == 1 and len(block) == 1, f"{name}: grid {grid}, block {block}"
            assert 1 <= block[0] <= nvrtc.MAX_THREADS_PER_BLOCK, f"{name}: block {block}"
            assert 1 <= grid[0] <= 2**31 - 1 and 0 <= shared_mem <= MAX_SHARED_BYTES
            record = Launch(name, tuple(grid), tuple(block), shared_mem, bound)
            EmulatedModule.launches.append(record)
            run(*EmulatedModule.policy(record), args)
        return launch


def emulated_kernel(code, name, names=None):
    """run(blocks, threads, args): entry point `name` of CUDA source `code`
    (built with launch wrappers for `names`, default just `name`), emulated on
    that grid in both orders."""
    library = compile_emulator(code, names or (name,))
    params = entry_parameters(code, name)
    entry = getattr(library, f"launch_{name}")
    entry.restype = ctypes.c_int

    def run(blocks, threads, args):
        assert 1 <= threads <= 1024, f"{name}: {threads} threads"
        c_args = bind(name, params, args)[1]
        run_both_orders(name, entry, params, args, c_args, blocks, threads)
    return run


def run_both_orders(name, entry, params, args, c_args, blocks, threads):
    arrays = [(ctype, value) for (ctype, _), value in zip(params, args) if ctype.endswith("*")]
    writable = [a for ctype, a in arrays if not ctype.startswith("const")]
    read_only = [a for ctype, a in arrays if ctype.startswith("const")
                 and not any(np.shares_memory(a, w) for w in writable)]
    before = [a.copy() for a in writable]
    inputs = [a.copy() for a in read_only]
    holders = (ctypes.c_void_p * len(c_args))(
        *[ctypes.cast(ctypes.pointer(c), ctypes.c_void_p) for c in c_args])
    _check_status(name, entry(holders, blocks, threads, 0))
    ascending = [a.copy() for a in writable]
    for a, saved in zip(writable, before):
        a[...] = saved
    _check_status(name, entry(holders, blocks, threads, 1))
    for a, first in zip(writable, ascending):
        assert a.tobytes() == first.tobytes(), \
            f"{name}: the result depends on the order of blocks and threads"
    for a, saved in zip(read_only, inputs):
        assert a.tobytes() == saved.tobytes(), f"{name}: wrote into a const argument"


def _check_status(name, status):
    assert status != 1, f"{name}: a __syncthreads diverged (some threads of a block ended " \
        f"while others waited at it)"
    assert status == 0, f"{name}: the emulator could not start the threads of a block"


def _poisoned_empty(shape, dtype=float, order="C"):
    a = np.empty(shape, dtype=dtype, order=order)
    a.view(np.uint8)[...] = 0xFF  # NaN for floats, -1 for ints
    return a


def _poisoned_empty_like(a, dtype=None):
    return _poisoned_empty(a.shape, a.dtype if dtype is None else dtype)


def install_fake_cupy(monkeypatch, policy):
    """Route nnlite's GPU backend through the emulator; returns the list of
    Launch records the calls append to."""
    import nnlite.cuda
    from nnlite.kernels import launch
    EmulatedModule.policy = staticmethod(policy)
    EmulatedModule.launches = []
    fake = types.SimpleNamespace(
        __name__="cupy", ndarray=np.ndarray, ascontiguousarray=np.ascontiguousarray,
        empty=_poisoned_empty, zeros=np.zeros, empty_like=_poisoned_empty_like,
        zeros_like=np.zeros_like,
        RawModule=EmulatedModule,
        cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(getDevice=lambda: 0)))
    monkeypatch.setattr(nnlite.cuda, "ensure_initialized", lambda: fake)
    monkeypatch.setattr(launch, "on_device", lambda array: True)  # NumPy arrays play the GPU's
    monkeypatch.setattr(nvrtc, "_modules", {})
    return EmulatedModule.launches


class host_build:
    """Within `with host_build():` the kernels take the host path again, so a
    test can compare the emulated CUDA launch with the host build on the same
    NumPy arrays."""

    def __enter__(self):
        from nnlite.kernels import launch
        self._launch, self._saved = launch, launch.on_device
        launch.on_device = lambda array: False

    def __exit__(self, *exc):
        self._launch.on_device = self._saved
