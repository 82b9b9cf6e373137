"""`neuronoverlap merge`: shard stores of one work plan joined into one store.

The compressed chunks of `mean` and `fires` are copied as they are (`read_direct_chunk` /
`write_direct_chunk`: no decompression, no recompression, fletcher32 kept), so the merged store
holds, chunk for chunk, the bytes a single-process run writes (the plan's units are chunk- and
batch-aligned, `plan.py`). `tokens` and the strings are small and copied as values. Shards of
other models or other plans, a unit missing or present twice, are refused before anything is
written; the merged store is written like any new store (a new file renamed into place).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py

from neuronoverlap.errors import InputError
from neuronoverlap.store import checksums, schema
from neuronoverlap.store.contexts import merge_top, stored_top, write_contexts
from neuronoverlap.store.plan import Plan, Unit
from neuronoverlap.store.probe_layout import STRING_DTYPE, STRING_FIELDS
from neuronoverlap.store.reader import checked_attrs, open_h5
from neuronoverlap.store.writer import ModelInfo, StoreWriter, _plain

#: Root attributes every shard of a merge must share.
SAME = ("model_name", "model_fingerprint", "activation_definition", "n_layers", "d_mlp", "plan_id")


def _shard_facts(path: Path) -> dict:
    with open_h5(path) as f:
        attrs = {k: _plain(v) for k, v in checked_attrs(f).items()}
        if "plan_id" not in attrs or schema.PLAN not in f:
            raise InputError(f"{path} is not a shard (no work plan); `probe --shard i/n` writes shards")
        try:
            plan = Plan.from_json(_plain(f[schema.PLAN][()]))
        except (InputError, OSError) as exc:
            raise InputError(f"shard {path}: {str(exc).splitlines()[0]}; record this shard again") from None
        group = f.get(f"{schema.model_group(attrs['model_name'])}/{schema.PROBES}")
        units = [
            Unit(name, a, b)
            for name in (sorted(group) if group is not None else [])
            for a, b in json.loads(checked_attrs(group[name]).get("units", "[]"))
        ]
    return {"path": path, "attrs": attrs, "plan": plan, "units": units}


def check_shards(shards: list[Path]) -> tuple[Plan, dict[Unit, Path], dict]:
    """The plan, the shard of each unit, and the root attributes; or an `InputError`."""
    if not shards:
        raise InputError("merge needs at least one shard")
    facts = [_shard_facts(Path(p)) for p in shards]
    first = facts[0]
    for other in facts[1:]:
        for key in SAME:
            if first["attrs"].get(key) != other["attrs"].get(key):
                what = "work plans" if key == "plan_id" else "models"
                raise InputError(
                    f"{first['path']} and {other['path']} are shards of different {what} "
                    f"({key}: {first['attrs'].get(key)!r} vs {other['attrs'].get(key)!r})"
                )
    plan, owner = first["plan"], {}
    for fact in facts:
        for unit in fact["units"]:
            if unit in owner:
                raise InputError(
                    f"unit {unit.name}[{unit.start}:{unit.stop}] is in {owner[unit]} and {fact['path']}"
                )
            owner[unit] = fact["path"]
    missing = [u for u in plan.units if u not in owner]
    if missing:
        u = missing[0]
        raise InputError(
            f"{len(missing)} of {len(plan.units)} units are in no shard given, first "
            f"{u.name}[{u.start}:{u.stop}]; record the missing shards (`probe --shard i/n`) and merge again"
        )
    stray = [u for u in owner if u not in plan.units]
    if stray:
        raise InputError(f"{owner[stray[0]]} holds a unit outside its plan: {stray[0]}")
    return plan, owner, first["attrs"]


def check_shards_whole(shards: list[Path]) -> None:
    """Every object of every shard read and checked (`verify`) before a byte is copied: merge
    copies compressed chunks as they are, so a damaged chunk would otherwise reach the store."""
    from neuronoverlap.store.verify import verify_store

    for shard in shards:
        report = verify_store(shard)
        if not report.ok:
            name, reason = next(iter(report.damaged.items()))
            raise InputError(
                f"shard {shard} is damaged ({len(report.damaged)} objects, first {name}: {reason}); "
                "record it again (`probe --shard i/n` with its index) and merge; nothing was written"
            )


def copy_chunks(src: h5py.Dataset, dst: h5py.Dataset, rows: tuple[int, int]) -> int:
    """Copy the stored (compressed) chunks of `src` whose first row is in `rows`; bytes copied."""
    copied = 0
    for i in range(src.id.get_num_chunks()):
        info = src.id.get_chunk_info(i)
        if rows[0] <= info.chunk_offset[0] < rows[1]:
            mask, data = src.id.read_direct_chunk(info.chunk_offset)
            dst.id.write_direct_chunk(info.chunk_offset, data, mask)
            copied += len(data)
    return copied


def source_facts(shard: Path, view: Path) -> dict:
    """What a view records of a shard, to refuse it when the shard is missing or changed: its
    path relative to the view, its size and its root checksum (renewed at every commit)."""
    with open_h5(shard) as f:
        digest = checksums.stored_digest(f)
    return {"file": os.path.relpath(shard, view.parent), "size": shard.stat().st_size, "sha256": digest}


def check_view(path: Path, sources_json: str) -> None:
    """Refuse a view whose shard files are missing or changed (HDF5 would read fill values)."""
    for source in json.loads(sources_json):
        shard = path.parent / source["file"]
        if not shard.is_file():
            raise InputError(
                f"{path} is a view of {shard}, which is missing; restore it or merge without --link"
            )
        try:
            with h5py.File(shard, "r") as f:
                digest = checksums.stored_digest(f)
        except OSError:
            digest = None
        if shard.stat().st_size != source["size"] or digest != source["sha256"]:
            raise InputError(
                f"{path} is a view of {shard}, which has changed since the view was made; merge again"
            )


def merge_shards(out: str | Path, shards: list[str | Path], link: bool = False) -> dict:
    """Write the store `out` (which must not exist) from `shards`; a summary. `link`: a view
    instead, whose `mean` and `fires` are HDF5 virtual datasets reading the shards' rows."""
    out = Path(out)
    if out.exists():
        raise InputError(f"{out} exists; merge writes a new store (give another path)")
    shards = [Path(p) for p in shards]
    plan, owner, attrs = check_shards(shards)
    check_shards_whole(shards)
    info = ModelInfo(
        attrs["model_name"],
        attrs["model_fingerprint"],
        int(attrs["n_layers"]),
        int(attrs["d_mlp"]),
        json.loads(attrs.get("model_config", "{}")),
    )
    summary = {"units": len(plan.units), "probe_sets": len(plan.sets), "chunk_bytes": 0}
    group_name = schema.model_group(info.name)

    def edit(model_group: h5py.Group) -> None:
        root = model_group.file
        root.create_dataset(schema.PLAN, data=plan.to_json(), dtype=STRING_DTYPE)
        root.attrs["plan_id"] = plan.plan_id
        root.attrs["merged_from"] = json.dumps([p.name for p in shards])
        probes = model_group.require_group(schema.PROBES)
        files = {p: h5py.File(p, "r") for p in shards}
        try:
            if link:
                root.attrs[schema.VIEW_SOURCES] = json.dumps([source_facts(p, out) for p in shards])
            for name, params in plan.sets.items():
                g = writer._create_probe_group(probes, name, params)
                layouts = {
                    stat: h5py.VirtualLayout(g[stat].shape, g[stat].dtype) for stat in ("mean", "fires")
                }
                for unit in (u for u in plan.units if u.name == name):
                    src = files[owner[unit]][f"{group_name}/{schema.PROBES}/{name}"]
                    rows = slice(*unit.rows)
                    for stat in ("mean", "fires"):
                        if link:
                            relative = os.path.relpath(owner[unit], out.parent)  # beside the view
                            source = h5py.VirtualSource(relative, src[stat].name, shape=src[stat].shape)
                            layouts[stat][rows] = source[rows]
                        else:
                            summary["chunk_bytes"] += copy_chunks(src[stat], g[stat], unit.rows)
                    g["tokens"][rows] = src["tokens"][rows]
                    for key in STRING_FIELDS:
                        checksums.check(src[key])
                        g[key][rows] = src[key][rows]
                if link:
                    for stat, layout in layouts.items():
                        del g[stat]
                        g.create_virtual_dataset(stat, layout, fillvalue=0)
                if "top_k" in params:  # top-activating contexts: the top-k of the shards' top-ks
                    owners = sorted({str(owner[u]) for u in plan.units if u.name == name})
                    key = f"{group_name}/{schema.PROBES}/{name}"
                    parts = [stored_top(files[Path(p)][key]) for p in owners]
                    top = merge_top(parts, int(params["top_k"]))
                    write_contexts(g, {f"top_{k}": v for k, v in top.items()}, unit="sample")
        finally:
            for f in files.values():
                f.close()

    with StoreWriter(out, info, toolkit_version=str(attrs.get("toolkit_version", "0"))) as writer:
        writer._rewrite(edit, sum(p.stat().st_size for p in shards))
    return summary
