"""Atomic file writing: write to a temporary file in the target's folder, then
os.replace it over the target, so a reader (or a crash) never sees a
half-written file and an existing file stays intact if writing fails.

Details a checkpoint writer gets wrong otherwise:

* a symbolic link is followed: its target is replaced, the link stays;
* an existing file keeps its permission bits (and, where allowed, its owner);
  a new one gets what open() would give (0o666 minus the umask);
* the temporary's name has a bounded length (a long target name would push it
  past the file system's 255-byte limit) and says who made it:
  ``.<start of the name>.<host tag>.<pid>.<random>.nnlite-tmp<suffix>``;
* a process killed while writing (SIGKILL, power loss) leaves its temporary
  behind; the next write into that folder removes such leftovers when they
  come from this host and their process is gone. A temporary whose process
  still runs (a save in progress elsewhere) is never touched.
"""
import contextlib
import os
import re
import secrets
import socket
import stat
import zlib

_MARKER = ".nnlite-tmp"
_STEM_BYTES = 64     # of the target's name, kept in the temporary's to help a human
_SUFFIX_BYTES = 32   # plots keep their extension: matplotlib picks the format by it
_TEMPORARY_NAME = re.compile(r"^\..*\.(?P<host>[0-9a-f]{8})\.(?P<pid>[0-9]{1,10})\."
                             r"[0-9a-f]{16}" + re.escape(_MARKER))


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _host_tag():
    # A pid means nothing on another machine sharing the folder (NFS).
    return f"{zlib.crc32(socket.gethostname().encode('utf8', 'replace')):08x}"


def _clip(text, limit):
    """The longest start of `text` whose UTF-8 encoding fits in `limit` bytes."""
    return text.encode("utf8", "surrogateescape")[:limit].decode("utf8", "ignore")


def temporary_name(target_name, suffix=".tmp", pid=None):
    """The name of a temporary for `target_name`, at most ~160 bytes long."""
    if len(suffix.encode("utf8", "surrogateescape")) > _SUFFIX_BYTES:
        suffix = ".tmp"
    pid = os.getpid() if pid is None else pid
    return (f".{_clip(target_name, _STEM_BYTES)}.{_host_tag()}.{pid}."
            f"{secrets.token_hex(8)}{_MARKER}{suffix}")


def _process_is_gone(pid):
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: it exists, under another user
        return False
    return False


def remove_stale_temporaries(directory):
    """Remove the temporaries in `directory` left by writers on this host whose
    process no longer runs; returns their names. Others are left alone."""
    if os.name != "posix":  # os.kill(pid, 0) is no existence test elsewhere
        return []
    host, removed = _host_tag(), []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMPORARY_NAME.match(entry.name)
        if match is None or match["host"] != host:
            continue
        pid = int(match["pid"])
        if pid <= 0 or not _process_is_gone(pid):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.remove(entry.path)
                removed.append(entry.name)
        except OSError:  # removed meanwhile by another writer, or not ours to remove
            pass
    return removed


def _create_temporary(directory, target_name, suffix):
    while True:
        temporary = os.path.join(directory, temporary_name(target_name, suffix))
        try:
            os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            return temporary
        except FileExistsError:  # 64 random bits: practically never
            continue


def _copy_mode_and_owner(temporary, target):
    try:
        existing = os.stat(target)
    except FileNotFoundError:
        os.chmod(temporary, 0o666 & ~_current_umask())
        return
    os.chmod(temporary, stat.S_IMODE(existing.st_mode))
    own = os.stat(temporary)
    if (own.st_uid, own.st_gid) != (existing.st_uid, existing.st_gid):
        try:
            os.chown(temporary, existing.st_uid, existing.st_gid)
        except OSError:  # only root may give a file away; keep ours
            pass


def _fsync_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # an error here means the data may not be on disk: raise it
    finally:
        os.close(fd)


def _fsync_directory(directory):
    # Makes the rename itself durable; not every platform can open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path, suffix=".tmp", durable=False):
    """Yields a temporary path beside `path` (beside its target if `path` is
    a symbolic link); on a clean exit the temporary replaces the target, on an
    exception it is removed. With durable=True the data is fsynced before the
    rename and the folder after it, so a power cut cannot leave an empty file
    under the target's name."""
    target = os.path.realpath(os.fspath(path))
    directory = os.path.dirname(target)
    remove_stale_temporaries(directory)
    temporary = _create_temporary(directory, os.path.basename(target), suffix)
    try:
        yield temporary
        _copy_mode_and_owner(temporary, target)
        if durable:
            _fsync_file(temporary)
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    if durable:
        _fsync_directory(directory)
