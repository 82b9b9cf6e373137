"""A commit to the store file: all of an edit, or (a failure, a kill) none of it.

An existing store is edited in place under an undo log (`undo.py`), so a commit costs O(new
data); a new store is written to a temporary file renamed into place. Either way the free space
for the new data is reserved before HDF5 writes a byte (HDF5 may crash on a full disk), and a
storage failure becomes one line naming the file and the space it needed (`space.py`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path

import h5py

from neuronoverlap.errors import InputError
from neuronoverlap.store import space, undo

#: How long a commit waits for readers that hold the store open (then it is an error).
READER_WAIT_S = 120.0

#: HDF5's chunk cache while a commit writes (the default 1 MiB thrashes on probe datasets).
CHUNK_CACHE_BYTES = 64 * 2**20


def lock_out_readers(fh, path: Path) -> None:
    """Take the store file's flock exclusively: readers (shared) finish first, none starts."""
    deadline = time.monotonic() + READER_WAIT_S
    while True:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise InputError(
                    f"{path} has been held open by a reader for {READER_WAIT_S:.0f} s; close it "
                    "and rerun the same command (the finished work is kept in the journal)"
                ) from None
            time.sleep(0.05)


def commit_new(path: Path, fill: Callable[[h5py.File], None], new_bytes: int) -> None:
    """Create the store at `path` with what `fill` writes, through a temporary file renamed into
    place (`new_bytes` bounds what it writes, uncompressed)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)  # a file left by a killed run (the caller holds the store's lock)
    need = space.needed(new_bytes)
    space.ensure_free_space(path, need, "committing to")
    try:
        with open(tmp, "w+b") as fh:
            # The space is reserved before HDF5 writes a byte, so the file is written through
            # h5py's file-object driver, not created by HDF5.
            space.reserve(fh, need, path, "committing to")
            with h5py.File(fh, "w", rdcc_nbytes=CHUNK_CACHE_BYTES) as f:
                fill(f)
            fh.flush()
            space.release(fh)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # h5py: RuntimeError for some failed flushes
        tmp.unlink(missing_ok=True)
        raise space.storage_error(exc, path, need, "committing to") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def commit_in_place(path: Path, fill: Callable[[h5py.File], None], new_bytes: int) -> None:
    """Let `fill` edit the existing store at `path` in place, under an undo log: on any error or
    kill the store is put back byte for byte (`new_bytes` bounds what it adds)."""
    grow = space.needed(new_bytes)
    log_size = space.undo_reserve(path.stat().st_size)
    need = grow + log_size  # the new data and the undo log
    space.ensure_free_space(path, need, "committing to")
    log = undo.undo_path(path)
    try:
        fh = open(path, "r+b", buffering=0)  # unbuffered: nothing written after a roll-back
    except OSError as exc:
        raise space.storage_error(exc, path, need, "committing to") from None
    try:
        journal_log = None
        try:
            space.reserve(fh, grow, path, "committing to")  # before HDF5 writes a byte
            # The undo log exists before the exclusive lock is taken and until it is released:
            # a reader that finds the store locked with no undo log knows no commit holds it.
            journal_log = undo.UndoFile(fh, log, reserve=log_size)
            lock_out_readers(fh, path)
            with h5py.File(journal_log, "r+", rdcc_nbytes=CHUNK_CACHE_BYTES) as f:
                fill(f)
            fh.flush()
            space.release(fh)
            os.fsync(fh.fileno())
            journal_log.close_log()
            log.unlink()  # the commit point
            undo.fsync_dir(path.parent)
        except BaseException as exc:
            if journal_log is not None:
                journal_log.close_log()
                journal_log.dead = True  # HDF5 may still try to flush: refused
            undo.roll_back(path)
            with contextlib.suppress(OSError):
                space.release(fh)  # the reservation past the (old) end
            if isinstance(exc, (OSError, RuntimeError)):
                cause = (journal_log.error if journal_log is not None else None) or exc
                raise space.storage_error(cause, path, need, "committing to") from None
            raise
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()
