"""Hostile arguments to every entry point of nnlite._C, in subprocesses, so a
crash fails the test instead of killing pytest (tests/entry_point_fuzz.py
makes the calls). Each entry point must refuse what it cannot run with a
ValueError or TypeError naming itself, or run it; it must never crash, hang
or raise anything else."""
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = Path(__file__).with_name("entry_point_fuzz.py")
CASES_PER_PROCESS = 1500
SEEDS = range(4)  # 6,000 calls in all


@pytest.mark.parametrize("seed", SEEDS)
def test_entry_points_survive_hostile_arguments(seed):
    try:
        done = subprocess.run([sys.executable, "-W", "ignore", str(CHILD), str(seed),
                               str(CASES_PER_PROCESS)], capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired as exc:
        last = (exc.stdout or b"").decode(errors="replace").strip().splitlines()[-1:]
        pytest.fail(f"a call hung (no answer in 240 s); the last one started: {last}")
    lines = done.stdout.splitlines()
    calls = [line for line in lines if line.startswith("CALL ")]
    if done.returncode != 0:
        pytest.fail(f"the process died (exit {done.returncode}) during: {calls[-1:]}\n"
                    f"{done.stderr[-2000:]}")
    assert len(calls) == CASES_PER_PROCESS
    unexpected = [(call, outcome) for call, outcome in zip(lines[::2], lines[1::2])
                  if outcome.startswith("UNEXPECTED")]
    assert not unexpected, unexpected[:5]
    refused = [outcome for outcome in lines[1::2] if outcome.startswith("REFUSED")]
    unnamed = [r for r in refused if "ValueError" in r
               and not any(name in r for name in ("im2col", "col2im", "pool", "softmax", "ctc",
                                                  "lstm", "gru", "winograd", "dequant",
                                                  "direct_conv", "relu"))]
    assert not unnamed, f"errors that do not name the entry point: {unnamed[:5]}"
