"""The Ray executor: a pool of Ray Core actors over the pending units of a work plan.

Each actor loads the model once (one torch thread per CPU worker; one GPU each with
`--device cuda`) and writes its own shard store (`run.shard-<i>-of-<N>.h5`, committed unit by
unit and crash-safe like any store), so nothing larger than a unit's name and a status travels
through Ray. An actor that dies (its process killed, its machine lost) is replaced by a new
actor on the same shard file, and its unit is submitted again: the new actor resumes the unit
from the blocks its predecessor had journaled. When every unit is recorded the shards are merged
into the store (`merge`: chunks copied as they are) and removed.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from neuronoverlap.errors import InputError
from neuronoverlap.scale.units import Job, open_shard, record_unit, shard_path
from neuronoverlap.store.merge import merge_shards
from neuronoverlap.store.plan import Unit

#: The Ray versions this executor is tested with (pyproject: the `ray` extra).
RAY_RANGE = ">=2.40,<3"
INSTALL_HINT = f"pip install 'neuronoverlap[ray]' (ray{RAY_RANGE})"


#: How long the actors may take to start (each loads the model once) before it is an error.
READY_TIMEOUT_S = 600.0

#: How long connecting to --ray-address may take.
CONNECT_TIMEOUT_S = 10.0


def _check_reachable(address: str | None) -> None:
    """A host:port address must accept a connection (Ray itself retries for minutes)."""
    import socket

    if not address or address in ("auto", "local") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"--ray-address {address}: give HOST:PORT (e.g. 10.0.0.1:6379) or 'auto'")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise InputError(
            f"--ray-address {address}: no Ray cluster answers there ({exc.strerror or exc}); "
            "start one with `ray start --head` or leave --ray-address out"
        ) from None


def _start_ray(ray, address: str | None, workers: int, gpus: int) -> None:
    """Join or start Ray; refuse at once when it cannot give `workers` actors their CPUs and
    GPUs (Ray would wait for them forever)."""
    _check_reachable(address)
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            reason = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise InputError(f"cannot start or join Ray (--ray-address {address}): {reason}") from None
    free = ray.available_resources()
    for kind, each in (("CPU", 1), ("GPU", gpus)):
        have = int(free.get(kind, 0))
        if each and workers * each > have:
            raise InputError(
                f"--workers {workers} needs {workers * each} {kind}s, Ray has {have} free; "
                f"use --workers {max(have // each, 1)} or fewer"
            )


def import_ray():
    try:
        import ray
    except ImportError:
        raise InputError(f"--executor ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


class UnitRecorder:
    """One worker: the model, loaded once, and the writer of its shard store."""

    def __init__(self, job: Job, index: int, count: int, threads: int = 1):
        import torch

        from neuronoverlap.models import load_model

        torch.set_num_threads(threads)
        self.job, self.model = job, load_model(job.model_spec, device=job.device, dtype=job.dtype)
        deadline = time.monotonic() + 30
        while True:  # a replaced actor's process may hold the shard's lock for a moment
            try:
                self.writer = open_shard(self.model, job, job.plan, index, count)
                break
            except InputError as exc:
                if "lock held" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def pid(self) -> int:
        return os.getpid()

    def record(self, name: str, start: int, stop: int) -> str:
        return record_unit(self.model, self.writer, self.job, Unit(name, start, stop), progress=False)

    def close(self) -> None:
        self.writer.close()


def run_on_ray(
    job: Job,
    workers: int,
    address: str | None = None,
    report: Callable[[str, int, Unit, dict[int, int]], None] | None = None,
) -> dict:
    """Record every unit of `job`'s plan on `workers` Ray actors, then merge into `job.store`.

    `report(event, worker, unit, pids)` is called with event 'done' or 'lost' for each unit
    (`pids`: the process id of each worker's actor now).
    Returns a summary: units, actors replaced, seconds to start the actors, seconds in all.
    """
    ray = import_ray()
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if job.store.exists():
        raise InputError(
            f"{job.store} exists; --executor ray records into a new store (give another --store)"
        )
    started = time.perf_counter()
    gpus = 1 if str(job.device).startswith("cuda") else 0
    _start_ray(ray, address, workers, gpus)
    actor_class = ray.remote(num_cpus=1, num_gpus=gpus, max_restarts=0)(UnitRecorder)
    plan = job.plan
    actors = {i: actor_class.remote(job, i, workers) for i in range(workers)}
    try:
        ready = ray.get([a.pid.remote() for a in actors.values()], timeout=READY_TIMEOUT_S)
    except ray.exceptions.GetTimeoutError:
        for actor in actors.values():
            ray.kill(actor)
        raise InputError(
            f"{workers} Ray actors did not start within {READY_TIMEOUT_S:.0f} s (each loads the model); "
            "use fewer --workers or check the cluster (`ray status`)"
        ) from None
    pids = dict(zip(actors, ready, strict=True))
    ready_s = time.perf_counter() - started
    pending, in_flight, replaced = list(plan.units), {}, 0
    while pending or in_flight:
        busy = {worker for worker, _ in in_flight.values()}
        for worker in (w for w in actors if w not in busy):
            if pending:
                unit = pending.pop(0)
                in_flight[actors[worker].record.remote(unit.name, unit.start, unit.stop)] = (worker, unit)
        (ref,), _ = ray.wait(list(in_flight), num_returns=1)
        worker, unit = in_flight.pop(ref)
        try:
            ray.get(ref)
            event = "done"
        except ray.exceptions.RayActorError:  # the actor's process or node is gone
            event, replaced = "lost", replaced + 1
            pending.insert(0, unit)
            actors[worker] = actor_class.remote(job, worker, workers)
        except ray.exceptions.RayTaskError as exc:  # an error in the recording itself
            cause = exc.as_instanceof_cause()
            raise InputError(str(cause).splitlines()[-1] if str(cause) else repr(cause)) from None
        if event == "lost":
            pids[worker] = ray.get(actors[worker].pid.remote())
        if report is not None:
            report(event, worker, unit, dict(pids))
    ray.get([a.close.remote() for a in actors.values()])
    for actor in actors.values():
        ray.kill(actor)
    shards = [shard_path(job.store, i, workers) for i in range(workers)]
    shards = [p for p in shards if p.exists()]
    summary = merge_shards(job.store, shards)
    for path in shards:  # merged and published: the shards are intermediates
        path.unlink()
        shutil.rmtree(path.with_name(path.name + ".partial"), ignore_errors=True)
        Path(str(path) + ".lock").unlink(missing_ok=True)
    return {
        **summary,
        "workers": workers,
        "replaced": replaced,
        "ready_s": ready_s,
        "total_s": time.perf_counter() - started,
    }
