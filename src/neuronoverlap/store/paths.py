"""Paths a command is given: a store (resolved to the file it names) and an output (never an
input store, a shard, or any HDF5 file).

One rule for every writer of a store: the store is the file a path resolves to, so two symlinks
to one store share one lock, one journal and one undo log, and a commit writes the target (a
link stays a link). One rule for every output option (`--json`, `--out`, a report, an export):
a path that is, or resolves to, an HDF5 file is refused before anything is written.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from neuronoverlap.errors import InputError

#: The HDF5 signature; HDF5 looks for it at 0, 512, 1024, 2048, ... (a user block before it).
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def resolve_store(path: str | Path, flag: str = "--store") -> Path:
    """The file `path` names, symlinks followed (the file need not exist yet). An empty path
    or a symlink loop is an `InputError`."""
    text = os.fspath(path)
    if not str(text).strip():
        raise InputError(f"{flag} is empty: give a store file, e.g. {flag} store/run.h5")
    try:
        return Path(text).expanduser().resolve(strict=False)
    except (RuntimeError, OSError) as exc:  # Python 3.11: RuntimeError("Symlink loop ...")
        reason = "a symlink loop" if "loop" in str(exc).lower() else (str(exc).splitlines() or ["?"])[0]
        raise InputError(f"{flag} {text} cannot be resolved ({reason}); give a store file") from None


def is_hdf5(path: str | Path) -> bool:
    """Whether `path` is a file holding the HDF5 signature where HDF5 looks for it."""
    try:
        with open(path, "rb") as fh:
            offset = 0
            while True:
                fh.seek(offset)
                head = fh.read(len(HDF5_SIGNATURE))
                if len(head) < len(HDF5_SIGNATURE):
                    return False
                if head == HDF5_SIGNATURE:
                    return True
                offset = 512 if offset == 0 else offset * 2
    except OSError:
        return False


def check_output(path: str | Path, flag: str, inputs: Iterable[str | Path] = ()) -> Path:
    """Refuse (InputError) an output path that is an input store, resolves to one, or is any
    HDF5 file (a store, a shard, a merged view); the path itself, unchanged, when it is safe.
    For an output folder, pass the folder: each of its files that a command writes is checked
    by the command with this same function."""
    if not str(os.fspath(path)).strip():
        raise InputError(f"{flag} is empty: give a file or folder to write")
    out = Path(path).expanduser()
    try:
        target = out.resolve(strict=False)
    except (RuntimeError, OSError):
        raise InputError(f"{flag} {path} cannot be resolved (a symlink loop)") from None
    for given in inputs:
        if given is None or not str(given).strip():
            continue
        try:
            same = Path(given).expanduser().resolve(strict=False) == target
        except (RuntimeError, OSError):
            same = False
        if same:
            raise InputError(
                f"{flag} {path} is the input store {given}: it would be overwritten; write elsewhere"
            )
    if target.is_file() and is_hdf5(target):
        raise InputError(
            f"{flag} {path} is an HDF5 file (a store or shard?): it would be overwritten; write elsewhere"
        )
    return out
