"""`verify_store`: read every dataset of a store and check every checksum.

A dataset is damaged when reading it fails (a fletcher32 chunk mismatch, an unreadable heap) or
its sha256 does not match; a group is damaged when the sha256 of its attributes does not match
or one of its attributes cannot be read. Objects written before checksums are listed as having
none (read whole, attributes and data, but unchecked). Any failure to read an object is one line
naming it, never a crash. A file that is not a store, a store of an unknown schema version, and
a `merge --link` view whose shards moved or changed are refused (one line, exit code 2).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from neuronoverlap.errors import InputError
from neuronoverlap.store import checksums, schema, undo
from neuronoverlap.store.paths import resolve_store
from neuronoverlap.store.reader import open_h5

#: Bytes read at a time from a large dataset (bounded memory on stores of full-size models).
READ_BYTES = 64 * 2**20


@dataclass
class VerifyReport:
    path: Path
    checked: list[str] = field(default_factory=list)
    damaged: dict[str, str] = field(default_factory=dict)  # name -> reason
    no_checksum: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.damaged

    def lines(self) -> list[str]:
        out = [f"damaged      {name}: {reason}" for name, reason in self.damaged.items()]
        out += [f"no checksum  {name}" for name in self.no_checksum]
        out += [f"note         {note}" for note in self.notes]
        out.append(
            f"{self.path}: {len(self.checked)} objects checked, {len(self.damaged)} damaged, "
            f"{len(self.no_checksum)} without a checksum"
        )
        return out


def _read_all(ds: h5py.Dataset) -> None:
    """Read every chunk of `ds` (fletcher32 is checked on each), in bounded pieces."""
    if ds.shape is None or ds.ndim == 0 or ds.size == 0:
        ds[()]
        return
    row_bytes = max(1, int(np.prod(ds.shape[1:])) * ds.dtype.itemsize)
    step = max(1, READ_BYTES // row_bytes)
    for start in range(0, ds.shape[0], step):
        ds[start : start + step]


def _reason(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0] or type(exc).__name__


def _check(obj, report: VerifyReport, name: str | None = None) -> None:
    name = name or obj.name
    report.checked.append(name)
    try:
        if isinstance(obj, h5py.Dataset) and not checksums.covers_data(obj):
            _read_all(obj)
        if checksums.stored_digest(obj) is None:
            for key in obj.attrs:  # every attribute read, even with no checksum to compare
                obj.attrs[key]
            if isinstance(obj, h5py.Dataset) and checksums.covers_data(obj):
                obj[()]
            report.no_checksum.append(name)
        elif checksums.digest(obj) != checksums.stored_digest(obj):
            report.damaged[name] = "sha256 checksum mismatch"
    except Exception as exc:  # whatever a damaged file makes h5py raise: one line, no crash
        report.damaged[name] = _reason(exc)


def _unit_rows(obj) -> list[tuple[int, int]] | None:
    """The rows a shard's probe-set dataset holds (its group's `units`), None when it is whole."""
    units = obj.parent.attrs.get("units")
    return None if units is None else [tuple(u) for u in json.loads(_text(units))]


def _check_chunks(obj, report: VerifyReport, name: str, owners: dict[int, str]) -> None:
    """The chunk index of a chunked dataset: every chunk where it belongs (each grid position
    once, on the grid, all of them: a whole dataset has every chunk written, a shard's the rows
    of its units) and no two chunks of the file at one address. fletcher32 checks a chunk's
    bytes, not which position it is read for: a damaged index could serve another chunk."""
    if not isinstance(obj, h5py.Dataset) or obj.chunks is None or obj.is_virtual or obj.size == 0:
        return
    try:
        grid = [-(-size // chunk) for size, chunk in zip(obj.shape, obj.chunks, strict=True)]
        rows = _unit_rows(obj) if obj.parent.attrs.get("units") is not None else None
        wanted = int(np.prod(grid))
        if rows is not None:
            step = obj.chunks[0]
            starts = {k for a, b in rows if b > a for k in range(a // step, (b - 1) // step + 1)}
            wanted = len(starts) * int(np.prod(grid[1:]))
        seen, problems = set(), []
        for i in range(obj.id.get_num_chunks()):
            info = obj.id.get_chunk_info(i)
            offset = tuple(info.chunk_offset)
            bad = offset in seen or any(
                o % c or o >= s for o, c, s in zip(offset, obj.chunks, obj.shape, strict=True)
            )
            if bad:
                problems.append(f"chunk {i} at {offset} out of place")
            seen.add(offset)
            other = owners.setdefault(info.byte_offset, f"{name}{list(offset)}")
            if other != f"{name}{list(offset)}":
                problems.append(f"chunk at {offset} shares its address with {other}")
        if len(seen) != wanted:
            problems.append(f"{len(seen)} chunks stored, {wanted} expected")
        if problems:
            report.damaged[name] = "chunk index damaged: " + "; ".join(problems[:3])
    except Exception as exc:
        report.damaged.setdefault(name, _reason(exc))


def _objects(f: h5py.File, report: VerifyReport) -> list[tuple[str, object]]:
    """Every object reachable from the root, by walking the groups one link at a time: a damaged
    link or object header is reported (its name) and the walk goes on with the others."""
    found, todo = [], [("/", f)]
    while todo:
        where, group = todo.pop()
        try:
            names = list(group.keys())
        except Exception as exc:
            report.damaged[f"{where} (its list of members)"] = _reason(exc)
            continue
        for key in names:
            shown = key.decode("utf-8", "backslashreplace") if isinstance(key, bytes) else str(key)
            path = f"{where.rstrip('/')}/{shown}"
            try:
                if isinstance(key, bytes):  # h5py gives bytes for a name that is not UTF-8
                    raise OSError("its name is not UTF-8 (a damaged link)")
                obj = group[key]
                if not isinstance(obj, (h5py.Group, h5py.Dataset)):
                    raise OSError(f"a {type(obj).__name__} where a store holds groups and datasets only")
            except Exception as exc:
                report.damaged[path] = _reason(exc)
                report.checked.append(path)
                continue
            found.append((path, obj))
            if isinstance(obj, h5py.Group):
                todo.append((path, obj))
            _check_members(path, obj, report)
    return found


#: Members every probe set and corpus group holds (a renamed or lost link is damage); groups may
#: hold more (later layouts add datasets), which is not checked.
_REQUIRED = {
    schema.PROBES: (
        {"mean", "tokens", "prompts", "generations", "source_words", "target_words"},
        ("fires", "prob"),
    ),
    schema.CORPORA: ({"fire_count", "value_sum", "n_tokens", "n_sentences"}, ()),
}


def _check_members(path: str, obj, report: VerifyReport) -> None:
    parts = path.strip("/").split("/")
    if len(parts) != 3 or parts[1] not in _REQUIRED or not isinstance(obj, h5py.Group):
        return
    required, one_of = _REQUIRED[parts[1]]
    try:
        have = set(obj.keys())
    except Exception:
        return  # reported by the walk
    missing = sorted(required - have) + ([one_of[0]] if one_of and not have & set(one_of) else [])
    if missing:
        report.damaged.setdefault(path, f"lacks {', '.join(missing)} (a lost or renamed link)")


def _check_identity(f: h5py.File, path: Path) -> None:
    """A neuronoverlap store of a schema version this toolkit knows; else an `InputError`."""
    try:
        attrs = set(f.attrs)
        version = f.attrs.get("schema_version")
    except Exception as exc:
        raise InputError(f"{path}: the root attributes cannot be read ({_reason(exc)})") from None
    if "model_fingerprint" not in attrs or version is None:
        raise InputError(f"{path} is an HDF5 file but not a neuronoverlap store")
    if int(version) not in schema.READABLE_VERSIONS:
        known = ", ".join(map(str, schema.READABLE_VERSIONS))
        raise InputError(
            f"{path} has store schema {int(version)}, which this toolkit does not know (it reads {known})"
        )


def verify_store(path: str | Path) -> VerifyReport:
    """Check every object of the store at `path` (an unreadable file is an `InputError`)."""
    report = VerifyReport(Path(path))
    if undo.existing_undo(Path(path)) is not None:
        report.notes.append(
            f"{undo.existing_undo(Path(path)).name}: a commit was interrupted; this is the store as it was "
            "before it (the next writer restores it on disk); do not delete the undo log"
        )
    with open_h5(path) as f:
        _check_identity(f, Path(path))
        _check(f, report)
        owners: dict[int, str] = {}
        for name, obj in _objects(f, report):
            _check(obj, report, name)
            _check_chunks(obj, report, name, owners)
        try:  # h5py's own walk reads the groups' symbol tables another way
            f.visititems(lambda *_: None)
        except Exception as exc:
            report.damaged["(file structure)"] = _reason(exc)
        if schema.VIEW_SOURCES in f.attrs:
            _check_view_sources(f, Path(path), report)
        try:
            merged = schema.PLAN in f and "shard_index" not in f.attrs
        except Exception:
            merged = False
        if merged and "/" + schema.PLAN not in report.damaged:
            _check_merged(f, report)
        if not report.damaged:  # top-activating contexts: order, empty slots, indices in range
            from neuronoverlap.store.contexts import contexts_problems

            for problem in contexts_problems(f):
                name, _, reason = problem.partition(": ")
                report.damaged[name] = reason
    return report


def _check_view_sources(f: h5py.File, path: Path, report: VerifyReport) -> None:
    """A `merge --link` view reads its shards: each must be where, and as, it was recorded."""
    from neuronoverlap.store.merge import check_view

    try:
        check_view(resolve_store(path, "store"), _text(f.attrs[schema.VIEW_SOURCES]))
    except InputError as exc:
        report.damaged["/ (view sources)"] = str(exc)
    except Exception as exc:
        report.damaged["/ (view sources)"] = _reason(exc)


def _check_merged(f: h5py.File, report: VerifyReport) -> None:
    """A merged store holds every probe set of its plan, whole (no shard's part)."""
    from neuronoverlap.store.plan import Plan

    try:
        plan = Plan.from_json(_text(f[schema.PLAN][()]))
    except Exception as exc:
        report.damaged["/" + schema.PLAN] = _reason(exc)
        return
    group = f"{schema.model_group(_text(f.attrs['model_name']))}/{schema.PROBES}"
    for name, params in plan.sets.items():
        key = f"{group}/{name}"
        try:
            if key not in f:
                report.damaged["/" + key] = "in the work plan but not in the store"
            elif "units" in f[key].attrs or f[key]["tokens"].shape[0] != int(params["n_samples"]):
                report.damaged["/" + key] = "incomplete: not every unit of the work plan is in it"
        except Exception as exc:
            report.damaged.setdefault("/" + key, _reason(exc))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def verify_shards(paths: list[str | Path]) -> tuple[list[VerifyReport], str]:
    """Every shard verified, then the list checked: one work plan and model, each unit of the
    plan in exactly one shard (an `InputError` naming the first problem otherwise)."""
    from neuronoverlap.store.merge import check_shards

    reports = [verify_store(p) for p in paths]
    plan, owner, _ = check_shards([Path(p) for p in paths])
    return reports, f"{len(paths)} shards hold all {len(owner)} units of work plan {plan.plan_id[:12]}"
