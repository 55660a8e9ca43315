"""`nnlite info` runs anywhere, GPU or not, and reports the essentials."""
import pytest

from nnlite import cli
from nnlite._version import __version__


def test_info_reports_version_and_host_build(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert __version__ in out
    assert "nnlite._C" in out and "built" in out
    for label in ("python", "numpy", "cupy", "gpus", "gpu kernels", "memory budget"):
        assert label in out, f"`nnlite info` lacks the {label!r} line:\n{out}"


def test_info_reports_a_bad_budget_instead_of_crashing(capsys, monkeypatch):
    from nnlite import cuda
    monkeypatch.setattr(cuda, "_limit_resolved", False)
    monkeypatch.setattr(cuda, "_limit", None)
    monkeypatch.setenv(cuda.MEMORY_LIMIT_ENV, "lots")
    assert cli.main(["info"]) == 0
    assert "invalid: NNLITE_GPU_MEMORY_LIMIT='lots'" in capsys.readouterr().out


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "info" in capsys.readouterr().out


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["--version"])
    assert stop.value.code == 0 and __version__ in capsys.readouterr().out


def test_cpu_blas_row_names_numpy_blas():
    from nnlite import blas_info
    rows = dict(cli.info_rows())
    name, _ = blas_info.numpy_blas()
    assert rows["cpu blas"].startswith(name or "unknown")


def test_cpu_blas_hint_only_for_avx2_kernels_on_avx512(monkeypatch):
    from nnlite import blas_info
    monkeypatch.setattr(blas_info, "numpy_blas", lambda: ("scipy-openblas", "0.3"))
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    monkeypatch.setattr(blas_info, "cpu_has_avx512", lambda: True)
    monkeypatch.setattr(blas_info, "openblas_core", lambda: "Haswell")
    assert "OPENBLAS_CORETYPE=SkylakeX" in blas_info.describe()
    monkeypatch.setattr(blas_info, "openblas_core", lambda: "SkylakeX")
    assert blas_info.describe() == "scipy-openblas 0.3, kernels: SkylakeX"
    monkeypatch.setattr(blas_info, "openblas_core", lambda: "Haswell")
    monkeypatch.setattr(blas_info, "cpu_has_avx512", lambda: False)
    assert blas_info.describe() == "scipy-openblas 0.3, kernels: Haswell"
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    assert "set by OPENBLAS_CORETYPE=Haswell" in blas_info.describe()
