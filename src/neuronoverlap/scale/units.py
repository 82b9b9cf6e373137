"""What every executor runs: the units of a work plan recorded into one shard store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from neuronoverlap import __version__
from neuronoverlap.models import NeuronModel, StopRule
from neuronoverlap.options import ProbeOptions
from neuronoverlap.probes.prompts import ProbeSet
from neuronoverlap.probes.recorder import model_info, probe_params, record_probe_set
from neuronoverlap.store import StoreWriter
from neuronoverlap.store.plan import Plan, Unit


def shard_path(store: Path, index: int, count: int) -> Path:
    """Shard `index` of `count` of `store`: 'run.shard-0-of-4.h5' beside 'run.h5'."""
    store = Path(store)
    return store.with_name(f"{store.stem}.shard-{index}-of-{count}{store.suffix or '.h5'}")


@dataclass
class Job:
    """A recording command as data (small: prompts and options, no model, no arrays)."""

    store: Path
    probe_sets: list[ProbeSet]
    batch_size: int = 16
    stop: StopRule = field(default_factory=StopRule)
    count: str = ProbeOptions.count
    mean_dtype: str = "float32"
    top_k: int | None = None
    model_spec: str = "embedded"
    device: str = "cpu"
    dtype: str = "float32"

    @property
    def plan(self) -> Plan:
        return Plan.of(
            {
                ps.name: probe_params(
                    ps,
                    self.batch_size,
                    self.stop,
                    self.count,
                    self.mean_dtype,
                    top_k=self.top_k,
                    dtype=self.dtype,
                    device=self.device,
                )
                for ps in self.probe_sets
            }
        )


def open_shard(model: NeuronModel, job: Job, plan: Plan, index: int, count: int) -> StoreWriter:
    shard = {"plan": plan.to_json(), "index": index, "count": count}
    path = shard_path(job.store, index, count)
    return StoreWriter(path, model_info(model), toolkit_version=__version__, shard=shard)


def record_unit(model: NeuronModel, writer: StoreWriter, job: Job, unit: Unit, progress: bool) -> str:
    probe_set = next(ps for ps in job.probe_sets if ps.name == unit.name)
    return record_probe_set(
        model,
        writer,
        probe_set,
        batch_size=job.batch_size,
        stop=job.stop,
        progress=progress,
        count=job.count,
        mean_dtype=job.mean_dtype,
        rows=unit.rows,
        top_k=job.top_k,
    )


def record_shard(
    model: NeuronModel,
    job: Job,
    index: int,
    count: int,
    progress: bool = True,
    report: Callable[[Unit, str, Path], None] | None = None,
) -> list[Unit]:
    """Record the units of shard `index` of `count` (every count-th unit of the plan) into its
    shard store, in plan order; resumable like any recording. Returns the units."""
    plan = job.plan
    units = plan.shard(index, count)
    if not units:
        return []
    with open_shard(model, job, plan, index, count) as writer:
        for unit in units:
            status = record_unit(model, writer, job, unit, progress)
            if report is not None:
                report(unit, status, writer.path)
    return units


def set_status(unit_statuses: list[str]) -> str:
    """A probe set's status from its units': 'already stored', 'recorded', or 'resumed'."""
    for status in ("already stored", "recorded"):
        if all(s == status for s in unit_statuses):
            return status
    return "resumed"


def run_in_process(
    model: NeuronModel,
    job: Job,
    progress: bool = True,
    report: Callable[[Unit, str], None] | None = None,
) -> dict[str, str]:
    """The in-process executor (the default, and the oracle of the others): every unit of the
    plan, in plan order, recorded into `job.store` with the plan's batches; each probe set is
    committed once, after its last unit. Resumable from the journal at any unit or batch.

    `report(unit, status)` after each unit, with its probe set's status so far (final at the
    set's last unit). Returns each probe set's status ('recorded', 'resumed', 'already stored').
    """
    done: dict[str, list[str]] = {}
    with StoreWriter(job.store, model_info(model), toolkit_version=__version__) as writer:
        for unit in job.plan.units:
            done.setdefault(unit.name, []).append(record_unit(model, writer, job, unit, progress))
            if report is not None:
                report(unit, set_status(done[unit.name]))
    return {name: set_status(statuses) for name, statuses in done.items()}
