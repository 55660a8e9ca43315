"""Each entry point of nnlite._C takes exactly the arguments of the CUDA
extern "C" entry point of the same name, in the same order: same names, an
array where the kernel takes a pointer (of the same element type), an integer
where it takes int or long long. So the kernel modules build one argument
tuple for both backends (nnlite/kernels/launch.py)."""
import re

import pytest

from nnlite.kernels import nvrtc

_ELEMENT = {"float": "float32", "double": "float64", "int": "int32", "signed char": "int8",
            "unsigned char": "uint8", "unsigned short": "uint16"}


def cuda_entry_points():
    return [(family, name, params) for family in nvrtc.FAMILIES
            for name, params in nvrtc.family_signatures(family).items()]


def host_parameters(function):
    """[(name, annotation), ...] from the pybind11 signature line of `function`."""
    line = function.__doc__.splitlines()[0]
    inside = line[line.index("(") + 1:line.rindex(") ->")]
    return re.findall(r"(?:^|, )(\w+): ((?:[^,\[]|\[[^\]]*\])+)", inside)


@pytest.mark.parametrize("family, name, params", cuda_entry_points(),
                         ids=[name for _, name, _ in cuda_entry_points()])
def test_host_entry_point_takes_the_cuda_arguments(family, name, params):
    from nnlite import _C
    assert hasattr(_C, name), f"nnlite._C lacks {name}, which csrc/cuda/{family}.cu defines"
    host = host_parameters(getattr(_C, name))
    assert [p for p, _ in host] == [p for _, p in params], \
        f"{name}: host {[p for p, _ in host]} vs CUDA {[p for _, p in params]}"
    for (ctype, pname), (_, annotation) in zip(params, host):
        if ctype.endswith("*"):
            element = _ELEMENT[ctype.replace("const", "").replace("*", "").strip()]
            assert f"numpy.{element}" in annotation, f"{name}: {pname} is {annotation}"
        else:
            assert "SupportsInt" in annotation or annotation == "int", \
                f"{name}: {pname} is {annotation} for a {ctype}"


def test_every_host_kernel_has_a_cuda_twin():
    from nnlite import _C
    cuda = {name for _, name, _ in cuda_entry_points()}
    host = {name for name in dir(_C) if re.search(r"_f(32|64)$", name)}
    assert host == cuda
