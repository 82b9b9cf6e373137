"""Recording probe sets as a work plan: one shard in this process (`--shard I/N`, e.g. one
Slurm array task each) or on a pool of Ray actors, joined by `merge` (docs/cluster.md)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from neuronoverlap.options import ProbeOptions
from neuronoverlap.pipeline.model import ModelSource
from neuronoverlap.pipeline.recording import build_probe_sets


def probe_job(
    store: str | Path,
    pairs: Sequence[tuple[str, str]],
    source: ModelSource,
    options: ProbeOptions,
    data_dir=None,
):
    """The recording of `pairs` as a `scale.Job` (prompts and options, no model)."""
    from neuronoverlap.scale import Job

    return Job(
        store=Path(store),
        probe_sets=build_probe_sets(pairs, options, data_dir),
        batch_size=options.batch_size,
        stop=options.stop(),
        count=options.count,
        mean_dtype=options.mean_dtype,
        top_k=options.top_k,
        model_spec=source.resolve(store),
        device=source.device,
        dtype=source.dtype,
    )


def record_probe_shard(
    store: str | Path,
    pairs: Sequence[tuple[str, str]],
    shard: str,
    model=None,
    options: ProbeOptions = ProbeOptions(),  # noqa: B008 (frozen)
    data_dir=None,
    progress: bool = True,
    report: Callable | None = None,
) -> list:
    """Record shard 'I/N' of the work plan of `pairs` into STORE.shard-I-of-N.h5; returns its
    units (none when the plan has fewer units than shards)."""
    from neuronoverlap.scale import record_shard
    from neuronoverlap.store.plan import parse_shard

    index, count = parse_shard(shard)
    source = ModelSource.of(model)
    job = probe_job(store, pairs, source, options, data_dir)
    if not job.plan.shard(index, count):
        return []
    return record_shard(source.load(store), job, index, count, progress=progress, report=report)


def record_probes_on_ray(
    store: str | Path,
    pairs: Sequence[tuple[str, str]],
    workers: int = 2,
    address: str | None = None,
    model=None,
    options: ProbeOptions = ProbeOptions(),  # noqa: B008 (frozen)
    data_dir=None,
    report: Callable | None = None,
) -> dict:
    """Record `pairs` on `workers` Ray actors (each loads the model once) into a new `store`."""
    from neuronoverlap.scale.ray_executor import run_on_ray

    job = probe_job(store, pairs, ModelSource.of(model), options, data_dir)
    return run_on_ray(job, workers, address, report=report)
