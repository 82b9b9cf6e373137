"""The identity of a checkpoint's weights: one SHA-256 over its weight files.

Two checkpoints of one folder name and config are told apart only by their weights, so a
store records this hash in its model fingerprint. Hashing 16 GB takes about a minute, so each
file's hash is computed once and cached by its resolved path, size and modification time
(`cache_dir()/weights-sha256.json`); a file rewritten in place gets a new size or mtime.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from neuronoverlap.models.paths import cache_dir

#: Files that hold a Hugging Face checkpoint's weights.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")

_CACHE_NAME = "weights-sha256.json"


def weight_files(checkpoint: Path) -> list[Path]:
    """The weight files of `checkpoint` (sorted by name; sub-folders are not read)."""
    return sorted(p for p in Path(checkpoint).iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(2**22), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_cache(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _write_cache(path: Path, cache: dict) -> None:
    """Best effort: a cache that cannot be written only costs a re-hash next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        pass


def weights_sha256(checkpoint: str | Path) -> str:
    """SHA-256 over the names and contents of `checkpoint`'s weight files (cached per file by
    size and mtime). A folder without weight files hashes its (empty) list: loading it fails."""
    cache_path = cache_dir() / _CACHE_NAME
    cache, changed = _read_cache(cache_path), False
    total = hashlib.sha256()
    for path in weight_files(Path(checkpoint)):
        stat = path.stat()
        key = str(path.resolve())
        entry = cache.get(key)
        if not (
            isinstance(entry, dict)
            and entry.get("size") == stat.st_size
            and entry.get("mtime_ns") == stat.st_mtime_ns
        ):
            entry = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": _file_sha256(path)}
            cache[key], changed = entry, True
        total.update(f"{path.name}\0{entry['sha256']}\n".encode())
    if changed:
        _write_cache(cache_path, cache)
    return total.hexdigest()


def parameters_sha256(module) -> str:
    """SHA-256 over a model object's parameters (names, dtypes, shapes and bytes): the identity
    of weights that were never a file (a model the user built or changed in memory)."""
    import torch

    total = hashlib.sha256()
    for name, tensor in sorted(module.named_parameters(), key=lambda item: item[0]):
        data = tensor.detach().to("cpu").contiguous().reshape(-1)
        total.update(f"{name}\0{data.dtype}\0{tuple(tensor.shape)}\n".encode())
        total.update(data.view(torch.uint8).numpy().tobytes())
    return total.hexdigest()
