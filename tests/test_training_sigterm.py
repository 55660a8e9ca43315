"""A SIGTERM (what `kill` and job schedulers send) stops a training run as
Ctrl-C does: the step in progress finishes or is rolled back, last.h5 is
saved, and the message gives the command that continues it. The process test
runs tests/distributed_driver.py alone (no mpiexec, no mpi4py needed)."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from nnlite.training import state

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "distributed_driver.py")
JOB_SECONDS = 120


def test_terminate_as_interrupt_raises_and_restores_the_handler():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        with state.terminate_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs between bytecodes: never reached
            raise AssertionError("SIGTERM was not raised as KeyboardInterrupt")
    assert signal.getsignal(signal.SIGTERM) is before


def test_an_ignored_sigterm_stays_ignored():
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with state.terminate_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_deferred_interrupt_holds_a_sigterm_until_the_block_ends():
    finished = []
    with pytest.raises(KeyboardInterrupt):
        with state.terminate_as_interrupt():
            with state.deferred_interrupt():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)
                finished.append(True)
    assert finished == [True]


def _driver(tmp_path, *args, env=None):
    full_env = {**os.environ, "NNLITE_NUM_THREADS": "1", **(env or {})}
    for variable in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE"):
        full_env.pop(variable, None)
    return [sys.executable, DRIVER, "cli", "train", "dtoy", *args], full_env


def test_sigterm_saves_the_run_and_the_printed_command_resumes_it(tmp_path):
    command, env = _driver(tmp_path, "--seed", "3", "--out", "whole",
                           env={"DTOY_WEIGHTS": str(tmp_path / "whole.npy")})
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=JOB_SECONDS)
    assert done.returncode == 0, done.stderr[-3000:]

    mark = tmp_path / "started"
    command, env = _driver(tmp_path, "--seed", "3", "--out", "cut",
                           env={"DTOY_STEP_SECONDS": "0.3", "DTOY_MARK": str(mark)})
    job = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + JOB_SECONDS
        while not mark.exists() and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        job.send_signal(signal.SIGTERM)
        out, err = job.communicate(timeout=JOB_SECONDS)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 130, err[-3000:]
    assert "nnlite train: interrupted; saved the state after step" in err
    assert "continue with: nnlite train dtoy --seed 3 --out cut --resume" in err
    assert (tmp_path / "cut" / "last.h5").exists()

    command, env = _driver(tmp_path, "--seed", "3", "--out", "cut", "--resume",
                           env={"DTOY_WEIGHTS": str(tmp_path / "cut.npy")})
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=JOB_SECONDS)
    assert done.returncode == 0, done.stderr[-3000:]
    assert np.load(tmp_path / "whole.npy").tobytes() == np.load(tmp_path / "cut.npy").tobytes()


def test_resume_command_repeats_what_the_run_does_not_store():
    import argparse

    from nnlite.cli_train import resume_command
    args = argparse.Namespace(model="attention_reader", data=None, batch=None, device="cpu",
                              seed=0, steps=None, eval_every=None, clip_grad_norm=1.0,
                              option=["conv_init=he", "model_options={'a': 1}"])
    assert resume_command(args, "runs/my run") == (
        "nnlite train attention_reader --clip-grad-norm 1.0 --option conv_init=he "
        "--option 'model_options={'\"'\"'a'\"'\"': 1}' --out 'runs/my run' --resume")
