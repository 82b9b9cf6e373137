"""Free space before a write, and OS errors during one, as one-line `StorageError`s.

HDF5 can crash the process (a segmentation fault) when the disk fills while it writes a new
group, so a commit checks first that the free space covers what it will write, then *reserves*
that space (`reserve`: Linux fallocate past the end of the file, its size unchanged): the disk
filling up while HDF5 writes (another process) then cannot reach HDF5. An OS error that still
happens (a file system without fallocate, permissions) becomes a `StorageError` naming the path
and the free space needed.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
from pathlib import Path

from neuronoverlap.errors import StorageError

#: Slack added to every estimate: HDF5 metadata of new objects, npz headers, file-system blocks.
MARGIN_BYTES = 256 * 2**10


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def free_bytes(directory: Path) -> int:
    return shutil.disk_usage(directory).free


def needed(new_bytes: int) -> int:
    """Free space asked for before writing `new_bytes`: the bytes, 10% and `MARGIN_BYTES`."""
    return int(new_bytes * 1.1) + MARGIN_BYTES


def ensure_free_space(path: Path, need: int, what: str) -> None:
    """Refuse (StorageError) to write `path` when its folder has less than `need` bytes free."""
    free = free_bytes(path.parent)
    if free < need:
        raise StorageError(
            f"not enough free space for {what} {path}: needs {_mib(need)}, "
            f"{_mib(free)} free in {path.parent}; free some space and rerun the same command "
            "(nothing stored was changed)"
        )


def undo_reserve(old_size: int) -> int:
    """Space reserved for the undo log of an in-place commit of a store of `old_size` bytes: the
    old metadata HDF5 overwrites (about 10 KiB measured on small stores), bounded generously."""
    return MARGIN_BYTES + old_size // 200


_FALLOC_FL_KEEP_SIZE = 1


def _fallocate():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.fallocate
    except (OSError, AttributeError):  # not Linux/glibc: the free-space check stands alone
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong)
    function.restype = ctypes.c_int
    return function


def reserve(fh, nbytes: int, path: Path, what: str) -> None:
    """Allocate `nbytes` of disk past the end of the open file `fh` without changing its size,
    so that writing them cannot fail for lack of space (whoever fills the disk meanwhile). No
    space: a `StorageError` before anything is written. A file system that cannot (EOPNOTSUPP):
    nothing reserved, the free-space check stands."""
    fallocate = _fallocate()
    if fallocate is None or nbytes <= 0:
        return
    fd = fh.fileno()
    if fallocate(fd, _FALLOC_FL_KEEP_SIZE, os.fstat(fd).st_size, nbytes) == 0:
        return
    code = ctypes.get_errno()
    if code in (errno.ENOSPC, errno.EDQUOT):
        free = free_bytes(path.parent)
        raise StorageError(
            f"not enough free space for {what} {path}: needs {_mib(nbytes)}, {_mib(free)} free in "
            f"{path.parent}; free some space and rerun the same command (nothing stored was changed)"
        )


def release(fh) -> None:
    """Give back what `reserve` allocated past the file's end and was not written."""
    fd = fh.fileno()
    size = os.fstat(fd).st_size
    os.ftruncate(fd, size + 1)  # a shrink frees the blocks past the new end; size + 1 -> size
    os.ftruncate(fd, size)


def storage_error(exc: Exception, path: Path, need: int, what: str) -> StorageError:
    """A one-line error for an OS error while writing `path` (which needed about `need` bytes).
    HDF5 reports some failed writes (on flushing or closing a file) as a RuntimeError that
    quotes the errno: a full disk there reads the same as an OSError's."""
    text = str(exc)
    code = getattr(exc, "errno", None)
    if code is None and ("errno = 28" in text or "No space left on device" in text):
        code = errno.ENOSPC
    if code in (errno.ENOSPC, errno.EDQUOT):
        reason = os.strerror(code)
    else:
        reason = getattr(exc, "strerror", None) or (text.splitlines() or [type(exc).__name__])[0]
    try:
        free = _mib(free_bytes(path.parent))
    except OSError:
        free = "unknown"
    hint = (
        f"needs about {_mib(need)} free, {free} free in {path.parent}; free some space and"
        if code in (errno.ENOSPC, errno.EDQUOT)
        else "fix that and"
    )
    return StorageError(
        f"{what} {path} failed: {reason}; {hint} rerun the same command (nothing stored was changed)"
    )
