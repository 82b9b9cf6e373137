"""Ray overhead on a long run: the embedded model recording one job in-process and on one Ray
worker, side by side, printing a table (wall time, start-up, per-unit scheduling, peak memory).

Both record the same work plan (a de-es probe-set pair of --samples each, batch 16, the quote
stop rule) with ONE torch thread: the Ray worker sets one thread (`UnitRecorder`), and so does
the in-process run, so their compute is the same and the difference is what Ray costs. Each
runs in its own process, one after the other (the in-process one first), so peak memory is each
one's own. The Ray run's store is checked to hold the in-process store's chunks, byte for byte.

    flock /work/notes/heavy.lock env OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \\
        PYTHONPATH=src .venv/bin/python bench/bench_ray.py --samples 720
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _status_mib(pid: int, key: str) -> float:
    """VmRSS / VmHWM (peak) of process `pid`, in MiB (0 when it is gone)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0.0
    for line in lines:
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _job(store: Path, samples: int):
    from neuronoverlap.models import StopRule
    from neuronoverlap.probes import translation_probe_sets
    from neuronoverlap.scale.units import Job

    sets = translation_probe_sets("de", "es", samples, seed=0)
    stop = StopRule.named("quote", max_new_tokens=16)
    return Job(store, sets, batch_size=16, stop=stop, model_spec="embedded")


def _durations(start: float, stamps: list[float]) -> list[float]:
    return [b - a for a, b in zip([start, *stamps[:-1]], stamps, strict=True)]


def part_local(store: Path, samples: int) -> dict:
    import torch

    from neuronoverlap.models import load_model
    from neuronoverlap.scale.units import run_in_process

    torch.set_num_threads(1)
    started = time.perf_counter()
    model = load_model("embedded")
    loaded = time.perf_counter()
    stamps: list[float] = []
    run_in_process(
        model, _job(store, samples), progress=False, report=lambda u, s: stamps.append(time.perf_counter())
    )
    ended = time.perf_counter()
    return {
        "wall_s": ended - started,
        "startup_s": loaded - started,
        "units_s": stamps[-1] - loaded,
        "tail_s": ended - stamps[-1],
        "unit_s": _durations(loaded, stamps),
        "peak_mib": {"this process": _status_mib(os.getpid(), "VmHWM")},
        "threads": torch.get_num_threads(),
    }


def part_ray(store: Path, samples: int) -> dict:
    import psutil
    import ray

    from neuronoverlap.scale.ray_executor import run_on_ray

    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": ENV})
    initialised = time.perf_counter()
    stamps, peak = [], {"worker": 0.0, "ray processes": 0.0}

    def report(event, worker, unit, pids):
        stamps.append(time.perf_counter())
        pid = pids[worker]
        peak["worker"] = max(peak["worker"], _status_mib(pid, "VmHWM"))
        others = [p.pid for p in psutil.Process().children(recursive=True) if p.pid != pid]
        peak["ray processes"] = max(peak["ray processes"], sum(_status_mib(p, "VmRSS") for p in others))

    summary = run_on_ray(_job(store, samples), workers=1, report=report)
    ended = time.perf_counter()

    @ray.remote(num_cpus=1)
    class Noop:
        def ping(self) -> int:
            return 0

    actor = Noop.remote()
    ray.get(actor.ping.remote())
    t = time.perf_counter()
    for _ in range(200):
        ray.get(actor.ping.remote())
    call_ms = (time.perf_counter() - t) / 200 * 1e3
    ray.kill(actor)
    ray.shutdown()
    ready = initialised + summary["ready_s"]
    return {
        "wall_s": ended - started,
        "startup_s": ready - started,
        "init_s": initialised - started,
        "units_s": stamps[-1] - ready,
        "tail_s": ended - stamps[-1],
        "unit_s": _durations(ready, stamps),
        "replaced": summary["replaced"],
        "call_ms": call_ms,
        "peak_mib": {"driver": _status_mib(os.getpid(), "VmHWM"), **peak},
        "ray": ray.__version__,
    }


def same_chunks(a: Path, b: Path) -> bool:
    """Every dataset's values and every raw chunk of the probe sets of `a` and `b` equal."""
    import h5py

    def read(path):
        out = {}

        def add(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()].tobytes() if obj.dtype.kind != "O" else repr(obj[()].tolist())
                for i in range(obj.id.get_num_chunks() if obj.chunks else 0):
                    offset = obj.id.get_chunk_info(i).chunk_offset
                    out[f"{name}@{offset}"] = obj.id.read_direct_chunk(offset)

        with h5py.File(path, "r") as f:
            f["/".join([next(iter(f)), "probes"])].visititems(add)
        return out

    return read(a) == read(b)


def _row(name: str, local: str, ray: str) -> str:
    return f"| {name} | {local} | {ray} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=720, help="samples per probe set (two sets)")
    parser.add_argument("--dir", default=None, help="folder for the stores (default: a temporary one)")
    parser.add_argument("--part", choices=["local", "ray"], default=None, help=argparse.SUPPRESS)
    parser.add_argument("--store", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        part = part_local if args.part == "local" else part_ray
        print(json.dumps(part(Path(args.store), args.samples)))
        return
    results = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for part in ("local", "ray"):
            store = Path(tmp, f"{part}.h5")
            argv = [
                sys.executable,
                __file__,
                "--part",
                part,
                "--store",
                str(store),
                "--samples",
                str(args.samples),
            ]
            out = subprocess.run(argv, env={**os.environ, **ENV}, capture_output=True, text=True, check=False)
            if out.returncode != 0:
                sys.exit(f"{part} failed:\n{out.stderr[-3000:]}")
            results[part] = json.loads(out.stdout.strip().splitlines()[-1])
        identical = same_chunks(Path(tmp, "local.h5"), Path(tmp, "ray.h5"))
    local, ray = results["local"], results["ray"]
    n_units = len(local["unit_s"])
    per_unit = [r - lo for r, lo in zip(ray["unit_s"], local["unit_s"], strict=True)]
    overhead = ray["wall_s"] - local["wall_s"]
    print(f"embedded Gemma-3-270M, de-es both ways, {args.samples} samples each, {n_units} units, batch 16")
    print(
        f"in-process: {local['threads']} torch thread; Ray {ray['ray']}: 1 worker of 1 torch thread, 2 CPUs"
    )
    print("| measure | in-process | Ray, 1 worker |")
    print("| --- | --- | --- |")
    print(_row("wall time", f"{local['wall_s']:.1f} s", f"{ray['wall_s']:.1f} s"))
    print(
        _row(
            "start-up",
            f"{local['startup_s']:.1f} s (model load)",
            f"{ray['startup_s']:.1f} s (ray.init {ray['init_s']:.1f} s, then the actor's start, model load)",
        )
    )
    print(_row("recording the units", f"{local['units_s']:.1f} s", f"{ray['units_s']:.1f} s"))
    print(
        _row(
            "per unit (median)",
            f"{statistics.median(local['unit_s']):.2f} s",
            f"{statistics.median(ray['unit_s']):.2f} s; Ray minus in-process: median "
            f"{statistics.median(per_unit) * 1e3:+.0f} ms, sum {sum(per_unit):+.1f} s",
        )
    )
    print(_row("per-unit scheduling (a no-op actor call)", "-", f"{ray['call_ms']:.2f} ms"))
    print(_row("after the last unit", f"{local['tail_s']:.2f} s (close)", f"{ray['tail_s']:.2f} s (merge)"))
    peaks = lambda d: ", ".join(f"{k} {v:.0f}" for k, v in d.items())  # noqa: E731
    print(_row("peak memory, MiB", peaks(local["peak_mib"]), peaks(ray["peak_mib"])))
    print(
        _row(
            "Ray's overhead",
            "-",
            f"{overhead:+.1f} s = {100 * overhead / ray['wall_s']:.1f}% of its wall time",
        )
    )
    print(
        f"stores identical chunk for chunk: {'yes' if identical else 'NO'}; "
        f"actors replaced: {ray['replaced']}"
    )


if __name__ == "__main__":
    main()
