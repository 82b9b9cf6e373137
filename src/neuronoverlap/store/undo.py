"""In-place commits made crash-safe by an undo log: a commit costs O(new data), not O(store).

A commit opens the store through `UndoFile` (h5py's file-object driver). Before HDF5 overwrites
any byte that existed when the commit began, the old bytes are appended to
`run.h5.undo-log-DO-NOT-DELETE` (named so nobody takes it for a leftover) and
fsynced; bytes past the old end of file are new and need no record. The commit point is the
removal of the undo log, after the store is fsynced. A kill at any moment leaves either no undo
log (the store is the old or the new one, whole) or one from which the old store is rebuilt
byte for byte: truncate to the recorded size, put back the saved bytes, newest first.

Undo log layout: MAGIC, the old size (u64, little-endian), then records of offset (u64),
length (u64), crc32 of the bytes (u32) and the bytes. A record cut short by a kill is ignored:
the overwrite it guards happens only after the record is on disk.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

from neuronoverlap.errors import InputError
from neuronoverlap.store import space

MAGIC = b"neuronoverlap-undo-1\n"
_SIZE = struct.Struct("<Q")
_RECORD = struct.Struct("<QQI")


#: Suffix of the undo log: the only copy of the bytes an interrupted commit overwrote.
UNDO_SUFFIX = ".undo-log-DO-NOT-DELETE"

#: The suffix of toolkits before that name (still rolled back).
LEGACY_UNDO_SUFFIX = ".undo"


def undo_path(store: Path) -> Path:
    """Where a commit of `store` writes its undo log."""
    return store.with_name(store.name + UNDO_SUFFIX)


def existing_undo(store: Path) -> Path | None:
    """The undo log of an interrupted commit of `store`, if there is one (either name)."""
    for suffix in (UNDO_SUFFIX, LEGACY_UNDO_SUFFIX):
        path = store.with_name(store.name + suffix)
        if path.is_file():
            return path
    return None


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in folder `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_undo(path: Path) -> tuple[int, list[tuple[int, bytes]]] | None:
    """(old size, records in write order), or None when the header is incomplete (then no byte
    of the store was written yet). A damaged record before the last is an `InputError`."""
    data = path.read_bytes()
    head = len(MAGIC) + _SIZE.size
    if len(data) < head:
        return None
    if not data.startswith(MAGIC):
        raise InputError(f"{path} is not an undo log of a neuronoverlap store (damaged)")
    (size,) = _SIZE.unpack_from(data, len(MAGIC))
    records, pos = [], head
    while pos + _RECORD.size <= len(data):
        offset, length, crc = _RECORD.unpack_from(data, pos)
        body = data[pos + _RECORD.size : pos + _RECORD.size + length]
        if len(body) < length:
            break  # cut short by a kill: its overwrite never happened
        if zlib.crc32(body) != crc:
            if pos + _RECORD.size + length == len(data):
                break  # the last record, torn
            raise InputError(f"undo log {path} is damaged (a record fails its crc32)")
        records.append((offset, body))
        pos += _RECORD.size + length
    return size, records


def old_bytes(size: int, records: list[tuple[int, bytes]], offset: int, data: bytes) -> bytes:
    """`data` read at `offset` of the store, as it was before the interrupted commit."""
    end = min(offset + len(data), size)
    if end <= offset:
        return b""
    out = bytearray(data[: end - offset])
    for start, body in reversed(records):  # the oldest record of a byte is applied last
        lo, hi = max(start, offset), min(start + len(body), end)
        if lo < hi:
            out[lo - offset : hi - offset] = body[lo - start : hi - start]
    return bytes(out)


def truncated_error(store: Path, have: int, recorded: int) -> InputError:
    """The one-line error of a store shorter than HDF5 (or its undo log) recorded."""
    journal = store.with_name(store.name + ".partial")
    kept = f"; the unfinished work in {journal} is kept" if journal.exists() else ""
    return InputError(
        f"{store} is not a readable HDF5 store: it is truncated ({have} of {recorded} bytes: copied "
        "in part, or cut by a full disk); "
        f"restore it from a copy, or move it aside and rerun the same command to record it again{kept}"
    )


def _covers(records: list[tuple[int, bytes]], lo: int, hi: int) -> bool:
    """Whether the records' byte ranges together cover [lo, hi)."""
    for start, body in sorted(records):
        if start > lo:
            break
        lo = max(lo, start + len(body))
    return lo >= hi


def check_length(store: Path, fh, size: int, records: list[tuple[int, bytes]] = ()) -> None:
    """An interrupted commit adds bytes, or cuts a tail it logged first (`UndoFile.truncate`): a
    store shorter than the undo log's old size, with the missing tail not in the log, was cut
    after it (refused, nothing rolled back: the log is kept for a restored copy)."""
    have = os.fstat(fh.fileno()).st_size
    if have < size and not _covers(list(records), have, size):
        raise truncated_error(store, have, size)


def roll_back(store: Path) -> bool:
    """Undo an interrupted commit of `store` (caller holds the writer's lock); True if one was."""
    log = existing_undo(store)
    if log is None:
        return False
    parsed = read_undo(log)
    if parsed is not None:
        size, records = parsed
        with open(store, "r+b") as fh:
            check_length(store, fh, size, records)
            for offset, body in reversed(records):
                fh.seek(offset)
                fh.write(body)
            fh.truncate(size)
            fh.flush()
            os.fsync(fh.fileno())
    log.unlink()
    fsync_dir(store.parent)
    return True


class UndoFile(io.RawIOBase):
    """The store opened for an in-place commit: every overwrite of an old byte is logged first."""

    def __init__(self, fh, log: Path, reserve: int = 0):
        """`reserve`: bytes of disk allocated for the log first (`space.reserve`)."""
        self.fh, self.log_path = fh, log
        self.size = os.fstat(fh.fileno()).st_size
        self.saved: list[tuple[int, int]] = []  # ranges already logged (old bytes kept)
        self.error: OSError | None = None  # the first OS error, for the caller to report
        self.writes_logged = 0
        self.dead = False  # set after a failed commit is rolled back: nothing more is written
        self.log = open(log, "wb")
        try:
            space.reserve(self.log, reserve, log, "the undo log of")
        except BaseException:
            self.log.close()
            log.unlink(missing_ok=True)
            raise
        self._log(MAGIC + _SIZE.pack(self.size))
        fsync_dir(log.parent)

    def _log(self, data: bytes) -> None:
        try:
            self.log.write(data)
            self.log.flush()
            os.fsync(self.log.fileno())
        except OSError as exc:
            self.error = self.error or exc
            raise

    def _covered(self, lo: int, hi: int) -> bool:
        return any(a <= lo and hi <= b for a, b in self.saved)

    # --- what h5py's file-object driver calls -------------------------------------------------
    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.fh.seek(offset, whence)

    def tell(self) -> int:
        return self.fh.tell()

    def readinto(self, buffer) -> int:
        return self.fh.readinto(buffer)

    def write(self, data) -> int:
        if self.dead:
            raise OSError("the commit was rolled back")
        data = bytes(data)
        pos = self.fh.tell()
        lo, hi = pos, min(pos + len(data), self.size)
        if lo < hi and not self._covered(lo, hi):
            self.fh.seek(lo)
            old = self.fh.read(hi - lo)
            self._log(_RECORD.pack(lo, len(old), zlib.crc32(old)) + old)
            self.saved.append((lo, hi))
            self.writes_logged += 1
            self.fh.seek(pos)
        try:
            return self.fh.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def truncate(self, size: int | None = None) -> int:
        """Cut the file at `size`. HDF5 shrinks a store whose freed space ends the file (a
        result replaced by a smaller one): the cut-off bytes are logged first, as they are now;
        any of them this commit overwrote has an older record, which a roll-back applies last."""
        size = self.fh.tell() if size is None else size
        if size < self.size and not self._covered(size, self.size):
            pos = self.fh.tell()
            self.fh.seek(size)
            tail = self.fh.read(self.size - size)
            self._log(_RECORD.pack(size, len(tail), zlib.crc32(tail)) + tail)
            self.saved.append((size, size + len(tail)))
            self.fh.seek(pos)
        return self.fh.truncate(size)

    def flush(self) -> None:
        self.fh.flush()

    def close_log(self) -> None:
        self.log.close()


class OldView(io.RawIOBase):
    """Read-only view of a store as it was before an interrupted commit (its undo log applied)."""

    def __init__(self, fh, size: int, records: list[tuple[int, bytes]]):
        self.fh, self.size, self.records, self.pos = fh, size, records, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset if whence == 0 else (self.pos + offset if whence == 1 else self.size + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer) -> int:
        self.fh.seek(self.pos)
        wanted = min(len(buffer), max(0, self.size - self.pos))
        data = old_bytes(self.size, self.records, self.pos, self.fh.read(wanted).ljust(wanted, b"\0"))
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)
