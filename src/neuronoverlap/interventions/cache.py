"""A folder of finished intervention runs, so that a long experiment survives being killed.

Each run (one scoring of texts, one BLI evaluation, one attribution pass) is kept as an `.npz`
of named arrays under a key that hashes everything the run depends on: the model's fingerprint,
the neurons, the kind and its values, and the texts or the evaluation's settings. A rerun of
the same command reads the finished runs and computes only the missing ones; a changed setting
gives a new key, never a stale answer. Files are written to a temporary name and renamed, so a
kill leaves either a whole run or none.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from neuronoverlap.errors import InputError
from neuronoverlap.store.journal import atomic_save_npz


def _canonical(value: Any) -> Any:
    """JSON-ready stand-in of `value`: arrays by their dtype, shape and bytes' SHA-256."""
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        return {
            "array": hashlib.sha256(data.tobytes()).hexdigest(),
            "dtype": str(data.dtype),
            "shape": data.shape,
        }
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def run_key(**parts: Any) -> str:
    """A stable key of a run's inputs (order of keyword arguments does not matter)."""
    text = json.dumps(_canonical(parts), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class RunCache:
    """Finished runs in `folder` (None: nothing is kept, every run is computed)."""

    def __init__(self, folder: str | os.PathLike[str] | None):
        self.folder = Path(folder) if folder is not None else None
        if self.folder is not None:
            if self.folder.exists() and not self.folder.is_dir():
                raise InputError(f"run cache {self.folder} is not a folder")
            self.folder.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0

    def arrays(self, key: str, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """The run's named arrays: read from the folder, or computed and kept there."""
        if self.folder is None:
            self.misses += 1
            return compute()
        path = self.folder / f"{key}.npz"
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as data:
                    arrays = {name: data[name] for name in data.files}
                self.hits += 1
                return arrays
            except (OSError, ValueError, EOFError):  # a damaged file: compute the run again
                path.unlink(missing_ok=True)
        arrays = compute()
        atomic_save_npz(path, **arrays)  # the store journal's write: temp file, fsync, rename
        self.misses += 1
        return arrays

    def array(self, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        return self.arrays(key, lambda: {"value": np.asarray(compute())})["value"]
