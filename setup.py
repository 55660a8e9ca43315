"""Build of the host (CPU) twin of the kernels, nnlite._C, with pybind11.

Everything declarative lives in pyproject.toml; this file exists because the
extension and the `models/ -> nnlite.models` mapping need code.
"""
import glob
import sys

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import find_packages, setup

# The host sources compile in parallel, one per core (NNLITE_BUILD_JOBS=N to
# choose); setuptools alone compiles one file at a time.
ParallelCompile("NNLITE_BUILD_JOBS", default=0).install()

# Every kernel family adds one csrc/host/<family>.cpp; module.cpp binds them all.
HOST_SOURCES = sorted(glob.glob("csrc/host/*.cpp"))


def subpackages(root, prefix):
    return [prefix] + [prefix + "." + name for name in find_packages(root)]


# -fno-wrapv undoes the -fwrapv that Python's own build flags add: with signed
# overflow defined to wrap, GCC cannot prove that n * hidden + j walks memory
# contiguously and leaves the kernels' inner loops scalar (measured: the fused
# LSTM cell took 105 us instead of 18 us per step at N=32, H=128). The kernels
# never rely on signed wrap-around.
# -fno-trapping-math: nnlite never enables floating-point traps, and without it
# GCC keeps the selects of branch-free math (csrc/nnlite/rnn.cuh) as branches.
# Neither flag changes a result, unlike -ffast-math.
compile_args = ["-O3", "-fno-wrapv", "-fno-trapping-math"]
link_args = []
if sys.platform != "win32":
    # OpenMP parallelises the outermost independent loop of each host kernel.
    compile_args += ["-fopenmp"]
    link_args += ["-fopenmp"]

ext = Pybind11Extension(
    "nnlite._C",
    HOST_SOURCES,
    include_dirs=["csrc"],
    extra_compile_args=compile_args,
    extra_link_args=link_args,
    cxx_std=11,
)

setup(
    packages=subpackages("nnlite", "nnlite") + subpackages("models", "nnlite.models"),
    package_dir={"nnlite.models": "models"},
    ext_modules=[ext],
    cmdclass={"build_ext": build_ext},
    zip_safe=False,
)
