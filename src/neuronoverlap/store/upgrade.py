"""`neuronoverlap store-upgrade`: a schema-1 or schema-2 store rewritten as schema 3, losslessly.

Schema 3 adds optional top-activating `contexts` to corpora and probe sets (store/contexts.py);
they cannot be made without the model, so an upgraded store holds none (readers say so, with a
hint to record them) and only its version changes.

Schema 1 kept each probe sample's activation probability as float32 `prob`; schema 2 keeps the
integer fire counts `fires` (`counts.py`). The counts are recovered exactly from `prob` and
`tokens` and checked; a store whose probabilities are not exact counts / tokens is refused and
left as it is. Everything else is copied as it is (HDF5 object copy). The new file is written
beside the store, fsynced and renamed over it under the writer's lock, so a kill leaves the
old store; objects without a checksum (a store older than checksums) stay unsealed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py

from neuronoverlap.errors import InputError
from neuronoverlap.store import checksums, counts, schema, space
from neuronoverlap.store.paths import resolve_store
from neuronoverlap.store.reader import open_h5
from neuronoverlap.store.writer import StoreWriter, _now, _plain
from neuronoverlap.versions import library_versions


def _convert_probe_set(group: h5py.Group) -> None:
    """Replace `prob` of a copied probe-set group by its exact `fires`."""
    prob, tokens = group["prob"], group["tokens"][()]
    fires = group.create_dataset(
        "fires",
        shape=prob.shape,
        dtype=counts.FIRES_DTYPE,
        chunks=prob.chunks,
        compression=schema.COMPRESSION,
        compression_opts=schema.COMPRESSION_LEVEL,
        shuffle=True,
        fletcher32=True,
    )
    step = prob.chunks[0] if prob.chunks else schema.CHUNK_ROWS
    for start in range(0, prob.shape[0], step):
        rows = slice(start, start + step)
        fires[rows] = counts.fires_from_probability(prob[rows], tokens[rows], f"{group.name}/prob")
    del group["prob"]


def upgrade_store(path: str | Path) -> tuple[int, list[str]]:
    """Rewrite the store at `path` as the current schema. Returns (the old version, probe sets
    converted from probabilities to fire counts)."""
    path = resolve_store(path, "store")  # a link: its target rewritten, the link kept
    with open_h5(path) as f:
        if "model_fingerprint" not in f.attrs:
            raise InputError(f"{path} is an HDF5 file but not a neuronoverlap store; nothing to upgrade")
        version = int(f.attrs.get("schema_version", 0))
    if version == schema.SCHEMA_VERSION:
        return version, []
    if version not in schema.READABLE_VERSIONS:
        raise InputError(f"{path} has store schema {version}; store-upgrade converts schemas 1 and 2 only")
    tmp = path.with_name(path.name + ".tmp")
    converted: list[str] = []
    with StoreWriter.for_existing(path, upgrading=True):
        need = space.needed(path.stat().st_size)
        space.ensure_free_space(path, need, "upgrading")
        tmp.unlink(missing_ok=True)
        try:
            with open(tmp, "w+b") as raw, h5py.File(path, "r") as src:
                space.reserve(raw, need, path, "upgrading")  # before HDF5 writes (commit.py)
                with h5py.File(raw, "w") as dst:
                    _copy_upgraded(src, dst, version, converted)
                raw.flush()
                space.release(raw)
                os.fsync(raw.fileno())
            os.replace(tmp, path)
        except (OSError, RuntimeError) as exc:
            tmp.unlink(missing_ok=True)
            raise space.storage_error(exc, path, need, "upgrading") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return version, converted


def _copy_upgraded(src: h5py.File, dst: h5py.File, version: int, converted: list[str]) -> None:
    """Copy `src` into `dst` as schema 2 (probe sets' `prob` as `fires`; names in `converted`)."""
    checksums.check(src)
    legacy = checksums.unsealed(src) - {"/"}
    for key, value in src.attrs.items():
        dst.attrs[key] = value
    for key in src:
        src.copy(src[key], dst, name=key)
    model = schema.model_group(str(_plain(src.attrs["model_name"])))
    probes = dst.get(f"{model}/{schema.PROBES}")
    for name in sorted(probes) if probes is not None else []:
        if "prob" in probes[name]:
            _convert_probe_set(probes[name])
            converted.append(name)
    dst.attrs["schema_version"] = schema.SCHEMA_VERSION
    dst.attrs["upgraded_from_schema"] = version
    dst.attrs["modified"] = _now()
    dst.attrs["modified_with"] = json.dumps(library_versions(), sort_keys=True)
    checksums.seal_new(dst, legacy)
