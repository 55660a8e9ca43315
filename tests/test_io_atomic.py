"""nnlite.io.atomic.atomic_path: the writer behind checkpoints, metrics.json
and the plots. A failed write leaves the old file and no temporary behind;
a finished one has the permissions open() would give (umask), not 0o600."""
import os
import stat

import numpy as np
import pytest

import nnlite as nl
from nnlite.io.atomic import atomic_path
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
