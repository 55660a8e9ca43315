"""Data-parallel training across real processes: each test launches
`mpiexec -n 2` on tests/distributed_driver.py (the CLI with a small BatchNorm
MLP, tests/distributed_recipe.py) and compares with one process. Skipped
when mpi4py or mpiexec is missing (the `[mpi]` extra: pip install
-e ".[test,mpi]"); .ci/run installs it and runs this file after the suite.
Each job takes a second or two."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("mpi4py")
MPIEXEC = shutil.which("mpiexec") or shutil.which(os.path.join(os.path.dirname(sys.executable),
                                                                "mpiexec"))
if MPIEXEC is None:
    pytest.skip("no mpiexec on PATH (install the [mpi] extra)", allow_module_level=True)

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "distributed_driver.py")
JOB_SECONDS = 120  # a job that hangs fails the test instead of the suite


def launch(tmp_path, ranks, *args, env=None, check=True):
    """Run the driver on `ranks` processes (1: plain python, no mpiexec)."""
    command = [sys.executable, DRIVER, *args]
    if ranks > 1:
        command = [MPIEXEC, "-n", str(ranks)] + command
    full_env = {**os.environ, "NNLITE_NUM_THREADS": "1", **(env or {})}
    for variable in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE"):
        full_env.pop(variable, None)  # pytest itself may run under mpiexec
    result = subprocess.run(command, cwd=tmp_path, env=full_env, capture_output=True, text=True,
                            timeout=JOB_SECONDS)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} exited {result.returncode}:\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def train(tmp_path, ranks, out, *options, env=None):
    weights = tmp_path / f"{out}.npy"
    result = launch(tmp_path, ranks, "cli", "train", "dtoy", "--out", out, *options,
                    env={"DTOY_WEIGHTS": str(weights), **(env or {})})
    assert f"parameters agree on {ranks} ranks" in result.stdout
    history = json.loads((tmp_path / out / "metrics.json").read_text())
    return np.load(weights), history, result


def test_two_ranks_match_one_process_on_the_global_batch(tmp_path):
    one, one_history, _ = train(tmp_path, 1, "one", "--batch", "16")
    two, two_history, result = train(tmp_path, 2, "two", "--batch", "16", "--sync-bn")
    assert "weights agree on 2 ranks" in result.stdout  # SyncBatchNorm: buffers agree too
    # float32 sums in another order (each rank sums its half, then the halves
    # are added) differ in the last bits; Adam carries that over 12 steps
    np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-5)
    for a, b in zip(one_history["train"], two_history["train"]):
        assert a["step"] == b["step"]
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["accuracy"] == pytest.approx(b["accuracy"], rel=1e-6)
    # rank 0 alone printed and wrote
    assert result.stdout.count("step 12: training loss") == 1
    assert result.stdout.count("nnlite.distributed: 2 ranks") == 1
    assert sorted(os.listdir(tmp_path / "two")) == ["best.h5", "curves.png", "last.h5",
                                                    "metrics.json"]


def test_batchnorm_statistics_are_per_rank_by_default(tmp_path):
    one, _, _ = train(tmp_path, 1, "one")
    two, _, _ = train(tmp_path, 2, "two")  # parameters agree across ranks all the same
    assert np.abs(two - one).max() > 1e-4


def test_two_identical_runs_are_bit_identical(tmp_path):
    first, first_history, _ = train(tmp_path, 2, "a", env={"DTOY_DROPOUT": "0.3"})
    second, second_history, _ = train(tmp_path, 2, "b", env={"DTOY_DROPOUT": "0.3"})
    assert first.tobytes() == second.tobytes()
    assert first_history["train"] == second_history["train"]


def test_broadcast_makes_ranks_agree_from_different_seeds(tmp_path):
    result = launch(tmp_path, 2, "broadcast")
    assert "initial weights before the broadcast DIFFER on 2 ranks" in result.stdout
    assert "weights after the broadcast agree on 2 ranks" in result.stdout


def test_distributed_data_parallel_module(tmp_path):
    result = launch(tmp_path, 2, "ddp")
    assert "ddp parameters agree on 2 ranks" in result.stdout
    distance = float(result.stdout.split("ddp distance to one process ")[1].split()[0])
    assert distance < 1e-5


def test_resume_restores_every_rank(tmp_path):
    dropout = {"DTOY_DROPOUT": "0.3"}  # each rank's own random stream must resume too
    whole, whole_history, _ = train(tmp_path, 2, "whole", env=dropout)
    train(tmp_path, 2, "split", "--steps", "6", env=dropout)
    resumed, split_history, _ = train(tmp_path, 2, "split", "--resume", env=dropout)
    assert whole.tobytes() == resumed.tobytes()
    assert whole_history["train"] == split_history["train"]


@pytest.mark.parametrize("mode, expected", [
    ("raise", "nnlite train: rank 1 failed at step 3: RuntimeError: injected failure"),
    ("hang", "rank 0: gradient reduction (bucket 1 of 1, round 3) during step 3 did not "
             "complete within 2 s; nothing arrived from rank 1"),
    ("exit", "during step 3 did not complete within 2 s; nothing arrived from rank 1"),
])
def test_a_rank_that_dies_ends_the_job_with_its_rank_and_step(tmp_path, mode, expected):
    start = time.monotonic()
    result = launch(tmp_path, 2, "cli", "train", "dtoy", "--out", "run", check=False,
                    env={"NNLITE_TEST_FAIL": f"1,3,{mode}", "NNLITE_DIST_TIMEOUT": "2"})
    elapsed = time.monotonic() - start
    assert result.returncode != 0
    assert expected in result.stderr, result.stderr[-3000:]
    assert elapsed < 30


def test_ctrl_c_stops_every_rank_after_one_step_and_resumes(tmp_path):
    whole, _, _ = train(tmp_path, 2, "whole")
    mark = tmp_path / "started"
    env = {**os.environ, "NNLITE_NUM_THREADS": "1", "DTOY_STEP_SECONDS": "0.3",
           "DTOY_MARK": str(mark)}
    job = subprocess.Popen([MPIEXEC, "-n", "2", sys.executable, DRIVER, "cli", "train", "dtoy",
                            "--out", "cut"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + JOB_SECONDS
        while not mark.exists() and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        job.send_signal(signal.SIGINT)  # mpiexec forwards it to every rank
        out, err = job.communicate(timeout=JOB_SECONDS)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode != 0
    assert "nnlite train: interrupted; saved the state after step" in err
    resumed, _, _ = train(tmp_path, 2, "cut", "--resume")
    assert whole.tobytes() == resumed.tobytes()


@pytest.mark.slow
def test_mpiexec_trains_the_crnn(tmp_path):
    """`mpiexec -n 2 nnlite train crnn` (two steps, a global batch of 4)."""
    nnlite = shutil.which("nnlite") or os.path.join(os.path.dirname(sys.executable), "nnlite")
    env = {**os.environ, "NNLITE_NUM_THREADS": "1"}
    result = subprocess.run([MPIEXEC, "-n", "2", nnlite, "train", "crnn", "--steps", "2",
                             "--eval-every", "2", "--batch", "4", "--out", "crnn"],
                            cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=JOB_SECONDS)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("step 2: training loss") == 1
    assert (tmp_path / "crnn" / "last.h5").exists()
