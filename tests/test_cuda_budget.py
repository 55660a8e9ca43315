"""nnlite.cuda: size parsing and the GPU memory budget. The allocator logic is
exercised against a stand-in pool, so it is tested without a GPU too."""
import pytest

from nnlite import cuda
from nnlite.errors import OutOfMemoryError


@pytest.fixture
def fresh_budget(monkeypatch):
    """Forget any limit, so the environment variable is read again."""
    monkeypatch.setattr(cuda, "_limit", None)
    monkeypatch.setattr(cuda, "_limit_resolved", False)
    monkeypatch.delenv(cuda.MEMORY_LIMIT_ENV, raising=False)


@pytest.mark.parametrize("text, nbytes", [
    (1073741824, 2**30), ("1073741824", 2**30), ("1.5GiB", 3 * 2**29), ("512MiB", 2**29),
    ("2GB", 2 * 10**9), ("2 gb", 2 * 10**9), ("64k", 64000), ("1e3", 1000), ("0", 0),
])
def test_parse_bytes(text, nbytes):
    assert cuda.parse_bytes(text) == nbytes


@pytest.mark.parametrize("text", ["", "lots", "1.5 GiBs", "-1", "GiB", True])
def test_parse_bytes_rejects_nonsense(text):
    with pytest.raises((ValueError, TypeError), match="parse_bytes"):
        cuda.parse_bytes(text)


def test_tk1_constant_and_default():
    assert cuda.TK1_MEMORY_BUDGET == 1.5 * 2**30
    assert cuda.format_bytes(cuda.TK1_MEMORY_BUDGET) == "1.50 GiB"


def test_limit_from_env_and_explicit_setting_wins(fresh_budget, monkeypatch):
    assert cuda.get_memory_limit() is None
    monkeypatch.setattr(cuda, "_limit_resolved", False)
    monkeypatch.setenv(cuda.MEMORY_LIMIT_ENV, "512MiB")
    assert cuda.get_memory_limit() == 2**29
    cuda.set_memory_limit("1GiB")
    assert cuda.get_memory_limit() == 2**30
    cuda.set_memory_limit(None)
    assert cuda.get_memory_limit() is None


def test_bad_env_value_names_the_variable(fresh_budget, monkeypatch):
    monkeypatch.setenv(cuda.MEMORY_LIMIT_ENV, "lots")
    with pytest.raises(ValueError, match="NNLITE_GPU_MEMORY_LIMIT='lots' is not a size"):
        cuda.get_memory_limit()


class FakePool:
    """The three methods of cupy's MemoryPool that the allocator uses."""

    def __init__(self, used=0, cached=0):
        self.used, self.cached, self.freed = used, cached, False

    def used_bytes(self):
        return self.used

    def total_bytes(self):
        return self.used + self.cached

    def free_all_blocks(self):
        self.cached, self.freed = 0, True

    def malloc(self, nbytes):
        self.used += nbytes
        return nbytes


def test_allocator_enforces_budget(fresh_budget):
    cuda.set_memory_limit("1MiB")
    pool = FakePool(used=2**19)
    allocate = cuda._make_budget_allocator(pool)
    assert allocate(2**18) == 2**18
    with pytest.raises(OutOfMemoryError) as error:
        allocate(2**19)
    message = str(error.value)
    assert "512.00 KiB" in message and "768.00 KiB in use" in message \
        and "budget 1.00 MiB" in message


def test_allocator_frees_cache_before_crossing_budget(fresh_budget):
    cuda.set_memory_limit(4096)
    pool = FakePool(used=1024, cached=2048)
    cuda._make_budget_allocator(pool)(2048)
    assert pool.freed and pool.used == 3072


def test_allocator_without_budget_passes_through(fresh_budget):
    pool = FakePool(used=10**12)
    assert cuda._make_budget_allocator(pool)(10**12) == 10**12


def test_availability_never_raises():
    assert isinstance(cuda.is_available(), bool)
    assert cuda.device_count() >= 0
    assert (cuda.why_unavailable() is None) == cuda.is_available()
    cuda.synchronize()


def test_ensure_initialized_installs_the_budget_allocator_once(fresh_budget, monkeypatch):
    """With a stand-in CuPy, so the first-use path runs on every machine."""
    import sys
    import types
    installed, pool = [], FakePool()
    fake = types.SimpleNamespace(
        cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1),
                                   set_allocator=installed.append),
        get_default_memory_pool=lambda: pool)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(cuda, "_unavailable_reason", cuda._UNKNOWN)
    monkeypatch.setattr(cuda, "_initialized", False)
    monkeypatch.setenv(cuda.MEMORY_LIMIT_ENV, "1KiB")
    assert cuda.ensure_initialized() is fake and cuda.ensure_initialized() is fake
    assert len(installed) == 1 and cuda.get_memory_limit() == 1024
    with pytest.raises(OutOfMemoryError, match="budget 1.00 KiB"):
        installed[0](2048)


@pytest.mark.cuda
def test_budget_raises_on_device(fresh_budget):
    cupy = cuda.ensure_initialized()
    cuda.set_memory_limit(cuda.memory_allocated() + 2**20)
    try:
        kept = cupy.empty(2**18, dtype=cupy.float32)  # exactly 1 MiB: fits
        with pytest.raises(OutOfMemoryError, match="would exceed nnlite's memory budget"):
            cupy.empty(1024, dtype=cupy.float32)
        del kept
    finally:
        cuda.set_memory_limit(None)


def test_the_allocator_records_the_pools_peak(monkeypatch):
    # max_memory_allocated is what the pool had in use at its fullest: it grows
    # at allocations only, and reset_peak_memory_stats starts it from now.
    import nnlite.cuda as cuda

    class Pool:
        def __init__(self):
            self.used = 0

        def used_bytes(self):
            return self.used

        def total_bytes(self):
            return self.used

        def malloc(self, nbytes):
            self.used += nbytes
            return nbytes

    pool = Pool()
    monkeypatch.setattr(cuda, "_limit", None)
    monkeypatch.setattr(cuda, "_peak_bytes", 0)
    monkeypatch.setattr(cuda, "is_available", lambda: True)
    monkeypatch.setattr(cuda, "memory_allocated", lambda: pool.used)
    allocate = cuda._make_budget_allocator(pool)
    allocate(1000)
    allocate(500)
    assert cuda.max_memory_allocated() == 1500
    pool.used = 200  # frees happen in the pool, unseen by the allocator
    assert cuda.max_memory_allocated() == 1500
    cuda.reset_peak_memory_stats()
    assert cuda.max_memory_allocated() == 200
    allocate(100)
    assert cuda.max_memory_allocated() == 300


@pytest.mark.cuda
def test_training_summary_measures_the_gpu_peak():
    import nnlite as nl
    model = nl.nn.Sequential(nl.nn.Conv2d(1, 8, 3, padding=1), nl.nn.ReLU(),
                             nl.nn.Flatten(), nl.nn.Linear(8 * 16 * 16, 10)).to("cuda")
    report = nl.summary(model, (1, 16, 16), batch=4, train=True)
    assert report.totals["peak_measured_by"] == "CuPy pool"
    peak = report.totals["training_peak_bytes"]
    # At least what the graph keeps plus the gradients, as on the CPU.
    assert peak >= report.totals["kept_for_backward_bytes"]
    assert "measured, CuPy pool" in str(report)
