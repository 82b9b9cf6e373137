"""`verify_store`: read every dataset of a store and check every checksum.

A dataset is damaged when reading it fails (a fletcher32 chunk mismatch, an unreadable heap) or
its sha256 does not match; a group is damaged when the sha256 of its attributes does not match.
Objects written before checksums are listed as having none (readable, but unchecked).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from neuronoverlap.errors import InputError
from neuronoverlap.store import checksums, schema, undo
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


def _check(obj, report: VerifyReport) -> None:
    name = obj.name
    report.checked.append(name)
    try:
        if isinstance(obj, h5py.Dataset) and not checksums.covers_data(obj):
            _read_all(obj)
        if checksums.stored_digest(obj) is None:
            if isinstance(obj, h5py.Dataset) and checksums.covers_data(obj):
                obj[()]
            report.no_checksum.append(name)
        elif checksums.digest(obj) != checksums.stored_digest(obj):
            report.damaged[name] = "sha256 checksum mismatch"
    except OSError as exc:
        report.damaged[name] = str(exc).splitlines()[0]


def verify_store(path: str | Path) -> VerifyReport:
    """Check every object of the store at `path` (an unreadable file is an `InputError`)."""
    report = VerifyReport(Path(path))
    if undo.existing_undo(Path(path)) is not None:
        report.notes.append(
            f"{undo.existing_undo(Path(path)).name}: a commit was interrupted; this is the store as it was "
            "before it (the next writer restores it on disk); do not delete the undo log"
        )
    with open_h5(path) as f:
        _check(f, report)
        objects: list = []
        try:
            f.visititems(lambda _name, obj: objects.append(obj))
        except OSError as exc:  # a damaged object header: the objects after it are unreachable
            report.damaged["(file structure)"] = str(exc).splitlines()[0]
        for obj in objects:
            _check(obj, report)
        if schema.PLAN in f and "shard_index" not in f.attrs and "plan" not in report.damaged:
            _check_merged(f, report)
    return report


def _check_merged(f: h5py.File, report: VerifyReport) -> None:
    """A merged store holds every probe set of its plan, whole (no shard's part)."""
    from neuronoverlap.store.plan import Plan

    try:
        plan = Plan.from_json(_text(f[schema.PLAN][()]))
    except (InputError, ValueError, KeyError) as exc:
        report.damaged["/" + schema.PLAN] = str(exc)
        return
    group = f"{schema.model_group(_text(f.attrs['model_name']))}/{schema.PROBES}"
    for name, params in plan.sets.items():
        key = f"{group}/{name}"
        if key not in f:
            report.damaged["/" + key] = "in the work plan but not in the store"
        elif "units" in f[key].attrs or f[key]["tokens"].shape[0] != int(params["n_samples"]):
            report.damaged["/" + key] = "incomplete: not every unit of the work plan is in it"


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def verify_shards(paths: list[str | Path]) -> tuple[list[VerifyReport], str]:
    """Every shard verified, then the list checked: one work plan and model, each unit of the
    plan in exactly one shard (an `InputError` naming the first problem otherwise)."""
    from neuronoverlap.store.merge import check_shards

    reports = [verify_store(p) for p in paths]
    plan, owner, _ = check_shards([Path(p) for p in paths])
    return reports, f"{len(paths)} shards hold all {len(owner)} units of work plan {plan.plan_id[:12]}"
