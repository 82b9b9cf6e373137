"""SHA-256 checksums for what fletcher32 does not cover: attributes, strings, scalars, JSON, sets.

Every group and dataset written by the toolkit carries an attribute `sha256`: the hash of its
other attributes (sorted by name) and, for a dataset without fletcher32 (variable-length
strings, contiguous scalars, JSON documents, neuron sets), of its data. Chunked numeric datasets
keep fletcher32 per chunk for their data (so reading one layer does not read the whole dataset);
their `sha256` covers their attributes. Stores written before checksums stay readable.
"""

from __future__ import annotations

import hashlib

import h5py
import numpy as np

from neuronoverlap.errors import InputError

ATTR = "sha256"


def _update(h, value) -> None:
    """Feed a value read from h5py into the hash, the same way whatever its type."""
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogatepass")
    if isinstance(value, bytes):
        h.update(b"b%d:" % len(value) + value)
        return
    array = np.asarray(value)
    if array.dtype.kind == "O":
        h.update(b"o%r:" % (array.shape,))
        for item in array.reshape(-1):
            _update(h, item)
        return
    h.update(f"a{array.dtype.str}{array.shape}:".encode())
    h.update(np.ascontiguousarray(array).tobytes())


def covers_data(obj) -> bool:
    """Whether `sha256` covers the data of `obj` (a dataset without fletcher32, not virtual)."""
    # A virtual dataset (a `merge --link` view) reads its shards' chunks, fletcher32 checked.
    return isinstance(obj, h5py.Dataset) and not obj.fletcher32 and not obj.is_virtual


def digest(obj: h5py.Group | h5py.Dataset, data=None) -> str:
    """The checksum of `obj`: its attributes, and its data when fletcher32 does not cover it
    (`data`, when given, is that data already read with `obj[()]`)."""
    h = hashlib.sha256()
    for key in sorted(k for k in obj.attrs if k != ATTR):
        _update(h, key)
        _update(h, obj.attrs[key])
    if covers_data(obj):
        _update(h, obj[()] if data is None else data)
    return h.hexdigest()


def seal(obj: h5py.Group | h5py.Dataset) -> None:
    obj.attrs[ATTR] = digest(obj)


def stored_digest(obj) -> str | None:
    if ATTR not in obj.attrs:
        return None
    value = obj.attrs[ATTR]
    return value.decode() if isinstance(value, bytes) else str(value)


def check(obj: h5py.Group | h5py.Dataset, data=None) -> None:
    """Raise an `InputError` naming `obj` when its checksum does not match (none: no check)."""
    expected = stored_digest(obj)
    if expected is not None and digest(obj, data) != expected:
        raise InputError(
            f"{obj.file.filename}: {obj.name} is damaged (sha256 checksum mismatch); "
            "run `neuronoverlap verify` on the store"
        )


def unsealed(f: h5py.File) -> set[str]:
    """Names of the objects that have no checksum (of a store written before checksums)."""
    names = {"/"} if ATTR not in f.attrs else set()
    f.visititems(lambda name, obj: names.add("/" + name) if ATTR not in obj.attrs else None)
    return names


def seal_new(f: h5py.File, legacy: set[str]) -> None:
    """Seal the root and every object without a checksum that is not in `legacy` (objects of an
    old store are left as they were: sealing them now would vouch for data never checked)."""
    seal(f)
    todo = []
    f.visititems(
        lambda name, obj: todo.append(obj) if ATTR not in obj.attrs and "/" + name not in legacy else None
    )
    for obj in todo:
        seal(obj)
