"""Atomic file writing: write to a temporary file in the target's folder, then
os.replace it over the target, so a reader (or a crash) never sees a
half-written file and an existing file stays intact if writing fails."""
import contextlib
import os
import tempfile


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path, suffix=".tmp"):
    """Yields a temporary path beside `path`; on a clean exit the temporary
    file replaces `path`, on an exception it is removed. The result gets the
    permissions a plain open() would give (0o666 minus the umask), not
    mkstemp's owner-only 0o600."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".",
                                     suffix=suffix, dir=directory)
    os.close(fd)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~_current_umask())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
