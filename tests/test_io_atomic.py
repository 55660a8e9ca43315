"""nnlite.io.atomic.atomic_path: the writer behind checkpoints, metrics.json
and the plots. A failed write leaves the old file and no temporary behind;
a finished one has the permissions open() would give (umask), not 0o600, or
those of the file it replaces; symbolic links are followed; a writer killed
mid-save leaves a temporary the next save removes; a SIGKILL at any moment
leaves a loadable checkpoint."""
import os
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

import nnlite as nl
from nnlite.io.atomic import atomic_path, remove_stale_temporaries, temporary_name
from nnlite.training.state import write_json_atomic


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_replaces_the_file_with_umask_permissions(tmp_path, umask_022):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_path(target) as temporary:
        with open(temporary, "w") as f:
            f.write("new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644
    assert os.listdir(tmp_path) == ["out.txt"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(target) as temporary:
            with open(temporary, "w") as f:
                f.write("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_checkpoints_and_metrics_are_readable_by_the_group(tmp_path, umask_022):
    model = nl.nn.Linear(3, 2)
    nl.io.save(tmp_path / "model.h5", model)
    write_json_atomic(tmp_path / "metrics.json", {"loss": [np.float64(1.0).item()]})
    for name in ("model.h5", "metrics.json"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644, name


def test_a_symlink_is_followed_not_replaced(tmp_path):
    real = tmp_path / "runs" / "model.h5"
    real.parent.mkdir()
    nl.io.save(real, nl.nn.Linear(3, 2))
    link = tmp_path / "latest.h5"
    link.symlink_to(real)
    model = nl.nn.Linear(3, 2)
    nl.io.save(link, model, step=7)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert nl.io.load(real, nl.nn.Linear(3, 2)) == {"step": 7}
    assert sorted(os.listdir(real.parent)) == ["model.h5"]  # the temporary went there, and away


def test_an_existing_file_keeps_its_mode(tmp_path, umask_022):
    path = tmp_path / "private.h5"
    nl.io.save(path, nl.nn.Linear(3, 2))
    os.chmod(path, 0o600)
    nl.io.save(path, nl.nn.Linear(3, 2))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    write_json_atomic(tmp_path / "shared.json", {})
    os.chmod(tmp_path / "shared.json", 0o664)
    write_json_atomic(tmp_path / "shared.json", {"a": 1})
    assert stat.S_IMODE(os.stat(tmp_path / "shared.json").st_mode) == 0o664


@pytest.mark.parametrize("length", [244, 250, 255])
def test_long_file_names_save_and_load(tmp_path, length):
    # 255 bytes is the file system's limit for the target's own name; the
    # temporary beside it used to add ~14 bytes to it and fail from 244 on.
    path = tmp_path / ("m" * (length - 3) + ".h5")
    nl.io.save(path, nl.nn.Linear(3, 2), step=1)
    assert nl.io.load(path, nl.nn.Linear(3, 2)) == {"step": 1}
    assert os.listdir(tmp_path) == [path.name]
    assert len(temporary_name(path.name, ".png").encode()) < 200


def dead_pid():
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    stale = tmp_path / temporary_name("model.h5", pid=dead_pid())
    stale.write_bytes(b"half a checkpoint")
    live = tmp_path / temporary_name("model.h5", pid=os.getpid())   # a save in progress
    live.write_bytes(b"being written")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        other = tmp_path / temporary_name("model.h5", pid=sleeper.pid)  # another live process
        other.write_bytes(b"being written elsewhere")
        foreign = tmp_path / ".model.h5.abcdefgh.tmp"   # not of our naming: never touched
        foreign.write_bytes(b"someone else's")
        nl.io.save(tmp_path / "model.h5", nl.nn.Linear(3, 2))
        assert sorted(os.listdir(tmp_path)) == sorted(
            ["model.h5", live.name, other.name, foreign.name])
    finally:
        sleeper.kill()
        sleeper.wait()
    assert remove_stale_temporaries(tmp_path) == [other.name]
    assert sorted(os.listdir(tmp_path)) == sorted(["model.h5", live.name, foreign.name])


SAVE_LOOP = """
import sys
import numpy as np
import nnlite as nl
path = sys.argv[1]
models = []
for value in (1.0, 2.0):
    model = nl.nn.Linear(1000, 1000)  # 4 MB: a save takes long enough to be hit
    for p in model.parameters():
        p.data[...] = value
    models.append(model)
nl.io.save(path, models[0], value=1.0)
print("saved", flush=True)
while True:
    for value, model in zip((2.0, 1.0), models[::-1]):
        nl.io.save(path, model, value=value)
"""


def test_a_checkpoint_survives_sigkill_at_any_moment_of_a_save(tmp_path):
    path = tmp_path / "ckpt.h5"
    script = tmp_path / "save_loop.py"
    script.write_text(SAVE_LOOP)
    delays = np.random.default_rng(0).uniform(0.0, 0.4, 4)
    for delay in delays:
        child = subprocess.Popen([sys.executable, str(script), str(path)],
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline() == "saved\n"
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        model = nl.nn.Linear(1000, 1000)
        meta = nl.io.load(path, model)  # intact: the old file or the new one
        assert meta["value"] in (1.0, 2.0)
        for p in model.parameters():
            assert np.all(p.numpy() == meta["value"])
    # A kill during a write leaves its temporary; the next save clears it.
    nl.io.save(path, nl.nn.Linear(2, 2))
    assert sorted(os.listdir(tmp_path)) == ["ckpt.h5", "save_loop.py"]
