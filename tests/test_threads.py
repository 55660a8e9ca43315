"""nnlite's one thread setting governs both CPU pools: the OpenMP team of
nnlite._C and NumPy's BLAS."""
import os
import subprocess
import sys

import pytest
from threadpoolctl import threadpool_info

import nnlite as nl
from nnlite.kernels.launch import host_library


def blas_threads():
    """The thread counts of NumPy's BLAS, the one nnlite's GEMMs run on. Other
    BLAS libraries may load later (numba imports SciPy, which brings its own
    OpenBLAS); nnlite never calls them, and set_num_threads does not reach a
    library loaded after it ran."""
    pools = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    numpy_pools = [pool for pool in pools if "numpy" in pool["filepath"]]
    return {pool["num_threads"] for pool in numpy_pools or pools}


def test_set_num_threads_sets_both_pools():
    before = nl.get_num_threads()
    try:
        nl.set_num_threads(1)
        assert nl.get_num_threads() == 1
        assert host_library().openmp_max_threads() == 1
        assert blas_threads() == {1}
        nl.set_num_threads(3)
        assert host_library().openmp_max_threads() == 3 and blas_threads() == {3}
    finally:
        nl.set_num_threads(before)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "two", True, 10**6])
def test_bad_thread_counts_are_refused(bad):
    with pytest.raises(ValueError, match=r"set_num_threads: expected a whole number of threads"):
        nl.set_num_threads(bad)


def run_child(code, env=None, affinity=None):
    environment = {k: v for k, v in os.environ.items() if k != "NNLITE_NUM_THREADS"}
    environment.update(env or {})
    prefix = f"import os; os.sched_setaffinity(0, {affinity!r}); " if affinity else ""
    done = subprocess.run([sys.executable, "-c", prefix + code], env=environment,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


COUNT = ("import nnlite, threadpoolctl; from nnlite.kernels.launch import host_library; "
         "print(nnlite.get_num_threads(), host_library().openmp_max_threads(), "
         "sorted({p['num_threads'] for p in threadpoolctl.threadpool_info() "
         "if p['user_api'] == 'blas'}))")


def test_environment_variable_sets_the_default():
    assert run_child(COUNT, env={"NNLITE_NUM_THREADS": "1"}).stdout.split() == ["1", "1", "[1]"]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs os.sched_setaffinity")
def test_default_is_the_cores_this_process_may_run_on():
    """Under an affinity mask of one core (taskset, a container's CPU set),
    both pools use one thread, whatever the machine's core count."""
    assert run_child(COUNT, affinity={sorted(os.sched_getaffinity(0))[0]}).stdout.split() == \
        ["1", "1", "[1]"]


def test_malformed_environment_variable_warns_and_uses_the_cores():
    done = run_child("import nnlite", env={"NNLITE_NUM_THREADS": "many"})
    assert "NNLITE_NUM_THREADS: expected a whole number of threads" in done.stderr


def test_recurrent_steps_run_blas_at_one_thread_and_restore_it(monkeypatch):
    # Each step's small recurrent GEMM at 2+ BLAS threads waits at BLAS's
    # barriers for descheduled threads on a shared machine (a CRNN step: 6.1 s
    # against 2.1 s at one thread, load 4 on 2 cores).
    import numpy as np
    from nnlite.functional import rnn_sequence
    seen = []
    real = rnn_sequence.cells.lstm_cell_forward

    def recording(*args):
        seen.append(blas_threads())
        return real(*args)

    monkeypatch.setattr(rnn_sequence.cells, "lstm_cell_forward", recording)
    before = nl.get_num_threads()
    try:
        nl.set_num_threads(2)
        lstm = nl.nn.LSTM(8, 4)
        lstm(nl.tensor(np.ones((3, 2, 8), dtype=np.float32)))
        assert seen == [{1}] * 3
        assert blas_threads() == {2}
    finally:
        nl.set_num_threads(before)


def test_split_matmul_hands_out_fixed_pieces():
    # Pieces are claimed dynamically, but their bounds are fixed: the same bits
    # every time, and the same values as one matmul.
    import numpy as np
    from nnlite.threads import split_matmul
    rng = np.random.default_rng(0)
    a = rng.standard_normal((37, 300), dtype=np.float32)
    b = rng.standard_normal((300, 3000), dtype=np.float32)
    stack_a = rng.standard_normal((16, 40, 300), dtype=np.float32)
    stack_b = rng.standard_normal((16, 300, 200), dtype=np.float32)
    before = nl.get_num_threads()
    try:
        nl.set_num_threads(2)
        first = split_matmul(a, b)
        assert all(split_matmul(a, b).tobytes() == first.tobytes() for _ in range(5))
        np.testing.assert_allclose(first, a @ b, rtol=1e-4, atol=1e-3)
        stacked = split_matmul(stack_a, stack_b)
        np.testing.assert_allclose(stacked, stack_a @ stack_b, rtol=1e-4, atol=1e-3)
        assert blas_threads() == {2}
    finally:
        nl.set_num_threads(before)


def test_every_gemm_of_linear_and_rnn_layers_runs_blas_at_one_thread(monkeypatch):
    # A small product split by a 2-thread BLAS waited 100 ms at its barriers
    # on a busy 2-core machine where one thread took 0.15 ms (a linear layer's
    # weight gradient). Every GEMM of a Function goes through functional.gemm.
    import numpy as np
    seen = []
    real = np.matmul

    def recording(*args, **kwargs):
        seen.append(blas_threads())
        return real(*args, **kwargs)

    before = nl.get_num_threads()
    try:
        nl.set_num_threads(2)
        monkeypatch.setattr(np, "matmul", recording)
        x = nl.tensor(np.ones((5, 3, 8), dtype=np.float32), requires_grad=True)
        layer = nl.nn.Linear(8, 4)
        lstm = nl.nn.LSTM(4, 6)
        out, _ = lstm(layer(x))
        out.sum().backward()
        monkeypatch.undo()
        # linear: forward, input and weight gradients; LSTM: input projection,
        # 5 recurrent steps forward and back, input and weight gradients
        assert len(seen) >= 7 and all(threads_seen == {1} for threads_seen in seen), seen
        assert blas_threads() == {2}
        assert x.grad.shape == (5, 3, 8)
    finally:
        nl.set_num_threads(before)
