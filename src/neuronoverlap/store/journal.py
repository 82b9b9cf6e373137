"""The crash-safe journal beside a store: committed blocks not yet merged into the HDF5 file.

A store `run.h5` has its journal in `run.h5.partial/`. Each committed block is one `.npz`
written to a temporary name, flushed to disk and renamed into place, so a block file either
exists whole or not at all, whatever moment the process is killed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from neuronoverlap.errors import InputError
from neuronoverlap.store import space
from neuronoverlap.store.undo import fsync_dir

_BLOCK_NAME = re.compile(r"block-\d{9}\.npz")

#: The array in every block and state file that names the journal's parameters (sha256 of its
#: params.json): a file left by another run (a kill during a discard) is never read as this one's.
PARAMS_KEY = "params_sha256"

#: Suffix of a journal being discarded: renamed first (atomic), then deleted.
DISCARDED = ".discarded"


def _atomic_write(path: Path, size: int, write) -> None:
    """`write(fh)` into a temporary name, fsync, rename into place. Free space is checked first;
    on an OS error the temporary file is removed, so `path` is as it was (whole or absent)."""
    # The temporary name starts with a dot and ends in ".partial": no glob of blocks matches it,
    # so a file cut short by a kill during this write is never read as a committed block.
    tmp = path.with_name("." + path.name + ".partial")
    need = space.needed(size)
    space.ensure_free_space(path, need, "writing")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise space.storage_error(exc, path, need, "writing") from None


def atomic_write_bytes(path: Path, data: bytes) -> None:
    _atomic_write(path, len(data), lambda fh: fh.write(data))


def atomic_write_json(path: Path, document, *, indent: int | None = None) -> None:
    """`document` as UTF-8 JSON (non-ASCII kept, a final newline), written whole or not at all;
    the folder is created if missing. For every resumable JSON file (caches, draws, screening)."""
    make_dirs(path.parent)
    text = json.dumps(document, ensure_ascii=False, indent=indent) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_npz(path: Path, **arrays: np.ndarray) -> None:
    size = sum(np.asarray(a).nbytes for a in arrays.values())
    _atomic_write(path, size, lambda fh: np.savez(fh, **arrays))


@contextmanager
def _damage_is_input_error(path: Path, what: str = "journal file") -> Iterator[None]:
    """A file that cannot be read (damaged, cut short by hand) is a one-line error."""
    try:
        yield
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise InputError(
            f"{what} {path} is damaged ({reason}); delete it and rerun the same command "
            "(the work it held is recomputed)"
        ) from None


def read_json(path: Path, what: str = "journal file") -> dict:
    """The JSON object in `path`; a damaged file (or not an object) is a one-line `InputError`
    naming it as `what`."""
    with _damage_is_input_error(path, what):
        value = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(value, dict):
        raise InputError(f"{what} {path} is damaged (not a JSON object); delete it and rerun")
    return value


def make_dirs(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise space.storage_error(exc, path, space.MARGIN_BYTES, "creating the folder") from None


def remove_empty_dirs(root: Path) -> None:
    """Remove the folders under `root` (and `root`) that hold no file, deepest first."""
    if not root.is_dir():
        return
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(folder.iterdir()):
            folder.rmdir()
    if not any(root.iterdir()):
        root.rmdir()


class Journal:
    """One unit of work (a probe set, a unit of a work plan, a corpus) in progress: its
    parameters and blocks. `first`: the sample its first block starts at (blocks are numbered
    from 0 within the journal)."""

    def __init__(self, root: Path, kind: str, name: str, first: int = 0):
        self.dir, self.first = root / kind / name, first

    def exists(self) -> bool:
        return (self.dir / "params.json").is_file()

    def start(self, params: dict) -> None:
        make_dirs(self.dir)
        atomic_write_bytes(self.dir / "params.json", json.dumps(params, sort_keys=True).encode())

    def params(self) -> dict:
        return read_json(self.dir / "params.json")

    def params_digest(self) -> str:
        """sha256 of the journal's params.json (what each of its files carries)."""
        path = self.dir / "params.json"
        with _damage_is_input_error(path):
            return hashlib.sha256(path.read_bytes()).hexdigest()

    def _check_params(self, path: Path, data) -> None:
        """Refuse a block or state file written under other parameters (files of an older
        journal left by a kill during its discard, or copied by hand)."""
        if PARAMS_KEY not in data.files:  # written before blocks carried it
            return
        if str(data[PARAMS_KEY]) != self.params_digest():
            raise InputError(
                f"journal file {path} was recorded with other parameters than "
                f"{self.dir / 'params.json'} (left by another run); delete it and rerun the same "
                "command (the work it held is recomputed)"
            )

    def block_paths(self) -> list[Path]:
        """Committed blocks (`block-<start>.npz`) in sample order: the run of blocks from sample
        0 on without a gap (a block after a gap, one deleted by hand, is recomputed)."""
        return self._prefix()[0]

    def n_committed(self) -> int:
        """Samples in the committed blocks (reads only each block's `tokens`)."""
        return self._prefix()[1]

    def _prefix(self) -> tuple[list[Path], int]:
        names = sorted(p for p in self.dir.glob("block-*.npz") if _BLOCK_NAME.fullmatch(p.name))
        paths, total = [], 0
        for path in names:
            if int(path.name[len("block-") : -len(".npz")]) != total:
                break
            with _damage_is_input_error(path), np.load(path, allow_pickle=False) as data:
                self._check_params(path, data)
                total += int(data["tokens"].shape[0])
            paths.append(path)
        return paths, total

    def add_block(self, start: int, **arrays: np.ndarray) -> None:
        """Commit the block of samples from `start` on (a sample number, not journal-relative)."""
        path = self.dir / f"block-{start - self.first:09d}.npz"
        atomic_save_npz(path, **arrays, **{PARAMS_KEY: np.array(self.params_digest())})

    def load_block(self, path: Path, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
        """The arrays of one block; a block that lacks one of `required` is damaged."""
        self.check_block(path, required)
        with _damage_is_input_error(path), np.load(path, allow_pickle=False) as data:
            self._check_params(path, data)
            return {k: data[k] for k in data.files if k != PARAMS_KEY}

    def check_block(self, path: Path, required: tuple[str, ...]) -> None:
        """Refuse a block without one of the `required` arrays (reads only the zip directory)."""
        with _damage_is_input_error(path), np.load(path, allow_pickle=False) as data:
            missing = [k for k in required if k not in data.files]
        if missing:
            raise InputError(
                f"journal file {path} is damaged (no {', '.join(missing)}); delete it and rerun "
                "the same command (the work it held is recomputed)"
            )

    def save_state(self, **arrays: np.ndarray) -> None:
        atomic_save_npz(self.dir / "state.npz", **arrays, **{PARAMS_KEY: np.array(self.params_digest())})

    def load_state(self) -> dict[str, np.ndarray] | None:
        path = self.dir / "state.npz"
        return self.load_block(path) if path.is_file() else None

    def discard(self) -> None:
        """Remove the journal: renamed aside first (one atomic step), so a kill never leaves
        some of its blocks without its params.json; `remove_discarded` finishes the job."""
        if not self.dir.exists():
            return
        aside = self.dir.with_name("." + self.dir.name + DISCARDED)
        shutil.rmtree(aside, ignore_errors=True)
        try:
            os.rename(self.dir, aside)  # a rename needs no space: it does not fail on a full disk
        except OSError:
            aside = self.dir
        shutil.rmtree(aside, ignore_errors=True)


def remove_discarded(root: Path) -> None:
    """Finish the discards a kill interrupted (the caller holds the writer's lock)."""
    if root.is_dir():
        for path in root.glob(f"*/.*{DISCARDED}"):
            shutil.rmtree(path, ignore_errors=True)
