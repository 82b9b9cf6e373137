"""Free space before a write, and OS errors during one, as one-line `StorageError`s.

HDF5 can crash the process (a segmentation fault) when the disk fills while it writes a new
group, so a commit checks first that the free space covers the copy of the store and the new
data; an OS error that still happens (another process filling the disk, permissions) becomes a
`StorageError` naming the path and the free space needed.
"""

from __future__ import annotations

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
