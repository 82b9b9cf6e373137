"""Store benchmarks at LLaMA-3-8B shapes ([sample, 32, 14336]), each printing a table.

commit: one probe set committed into a store that holds (almost) nothing and into one that
already holds --filler-gb of data.

    flock /work/notes/heavy.lock env OMP_NUM_THREADS=1 PYTHONPATH=src \\
        .venv/bin/python bench/bench_store.py commit --filler-gb 10 --samples 16

writer: CPU seconds to compress and write per-sample statistics, schema 1 (float32 `prob`) vs
schema 2 (uint16 `fires`), and float32 vs float16 `mean`; MB/s of raw float32 statistics per
core (the recorder's output). Synthetic LLaMA-3-8B shapes, or a real store's probe sets:

    ... bench/bench_store.py writer --samples 32
    ... bench/bench_store.py writer --from-store store/gemma.h5

merge: `merge` of shards (chunks copied as they are): MB/s of compressed chunks.

    ... bench/bench_store.py merge --samples 256

ray: the Ray executor's overhead on this machine with tiny-llama: Ray start-up, actors ready
(model loaded), a no-op actor call, each actor's memory, and the wall time of a --samples
probe-set pair on 2 workers against the in-process executor.

    ... bench/bench_store.py ray --samples 512

The filler is one uncompressed dataset (written at disk speed; what a commit costs must not
depend on what the store holds, whatever it is). The probe set has LLaMA-3-8B shapes
([samples, 32, 14336] float32 `mean` and `prob`, gzip 1 + fletcher32 as the
writer stores them). The copy-on-write commit of schema 1 cost at least a copy of the whole
store: its time is given by timing `shutil.copyfile` of the filled store.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from neuronoverlap.store import StoreWriter
from neuronoverlap.store.writer import ModelInfo

INFO = ModelInfo("llama-3-8b-shapes", "synthetic", n_layers=32, d_mlp=14336)


def journal_probe_set(writer: StoreWriter, name: str, n: int, rng: np.random.Generator) -> int:
    params = {"src": name, "tgt": "x", "n_samples": n}
    journal = writer.probe_journal(name, "x", params)
    tokens = rng.integers(20, 60, size=n).astype(np.int32)
    shape = (n, INFO.n_layers, INFO.d_mlp)
    fires = rng.binomial(tokens[:, None, None], 0.3, size=shape)
    words = np.array([f"w{i}" for i in range(n)], dtype=str)
    journal.add_block(
        0,
        mean=rng.normal(size=shape).astype(np.float32),
        prob=(fires / tokens[:, None, None]).astype(np.float32),
        tokens=tokens,
        prompts=words,
        generations=words,
        source_words=words,
        target_words=words,
    )
    return 2 * int(np.prod(shape)) * 4


def fill(path: Path, gigabytes: float) -> None:
    rows = int(gigabytes * 2**30 / (INFO.d_mlp * 4))
    step = 2**14

    def write(group: h5py.Group) -> None:
        ds = group.create_dataset(
            "filler", shape=(rows, INFO.d_mlp), dtype="float32", chunks=(256, INFO.d_mlp)
        )
        block = np.ones((step, INFO.d_mlp), dtype=np.float32)
        for start in range(0, rows, step):
            ds[start : start + step] = block[: rows - start]

    with StoreWriter(path, INFO) as writer:
        writer.edit("results", write, new_bytes=rows * INFO.d_mlp * 4)


def commit_times(path: Path, n: int, rounds: int, rng) -> list[float]:
    times = []
    with StoreWriter(path, INFO) as writer:
        for r in range(rounds):
            name = f"p{path.stat().st_size % 997}-{r}"
            journal_probe_set(writer, name, n, rng)
            started = time.perf_counter()
            writer.finish_probe_set(name, "x")
            times.append(time.perf_counter() - started)
    return times


def synthetic(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, fires, tokens) shaped like a recording: per-neuron firing rates, ~40 tokens."""
    tokens = rng.integers(20, 60, size=n).astype(np.int32)
    rate = rng.beta(0.5, 2.0, size=(1, INFO.n_layers, INFO.d_mlp))
    fires = rng.binomial(tokens[:, None, None], rate).astype(np.uint16)
    mean = (rng.normal(size=fires.shape) * 0.1).astype(np.float32)
    return mean, fires, tokens


def recorded(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, fires, tokens) of every probe set of a real store (schema 1 or 2), concatenated."""
    from neuronoverlap.store import Store

    store = Store(path)
    views = [store.probes(*name.split("-")) for name in store.probe_sets()]
    mean = np.concatenate([v.array("mean") for v in views])
    tokens = np.concatenate([v.tokens() for v in views])
    prob = np.concatenate([v.array("probability") for v in views])
    fires = np.rint(prob.astype(np.float64) * np.maximum(tokens, 1)[:, None, None]).astype(np.uint16)
    return mean, fires, tokens


def bench_writer(args) -> None:
    rng = np.random.default_rng(0)
    mean, fires, tokens = recorded(args.from_store) if args.from_store else synthetic(args.samples, rng)
    prob = (fires / np.maximum(tokens, 1)[:, None, None]).astype(np.float32)
    raw = prob.nbytes  # float32 statistics as the recorder hands them over
    chunks = (min(64, prob.shape[0]), 1, prob.shape[2])
    cases = [
        ("prob float32 (schema 1)", prob, {}),
        ("fires uint16 (schema 2)", fires, {"shuffle": True}),
        ("mean float32", mean, {}),
        ("mean float16 (opt-in)", mean.astype(np.float16), {}),
    ]
    source = f"recorded in {args.from_store}" if args.from_store else "synthetic"
    print(
        f"{source}: {prob.shape} samples x layers x neurons, {raw / 2**20:.0f} MiB raw float32 per statistic"
    )
    print(f"{'dataset':>26} {'CPU s':>8} {'MB/s/core':>10} {'stored MiB':>11} {'ratio':>7}")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for label, data, extra in cases:
            times = []
            for r in range(args.rounds):
                path = Path(tmp, f"w{r}.h5")
                started = time.process_time()
                with h5py.File(path, "w") as f:
                    f.create_dataset(
                        "x",
                        data=data,
                        chunks=chunks,
                        compression="gzip",
                        compression_opts=1,
                        fletcher32=True,
                        **extra,
                    )
                times.append(time.process_time() - started)
                stored = path.stat().st_size
                path.unlink()
            cpu = statistics.median(times)
            print(
                f"{label:>26} {cpu:>8.2f} {raw / 1e6 / cpu:>10.1f} "
                f"{stored / 2**20:>11.1f} {raw / stored:>7.2f}"
            )
        err = np.abs(mean.astype(np.float16).astype(np.float64) - mean)
        normal = np.abs(mean) >= 2.0**-14  # float16's normal range
        rel = err[normal] / np.abs(mean[normal])
        print(
            f"float16 mean ({source}): max abs error {err.max():.2e} "
            f"(|mean| up to {np.abs(mean).max():.2f}); "
            f"max relative error {rel.max():.2e} where |mean| >= 2^-14; {1 - normal.mean():.2%} of values "
            f"below that (abs error {err[~normal].max() if (~normal).any() else 0:.1e} there)"
        )


def bench_merge(args) -> None:
    from neuronoverlap.store.merge import merge_shards
    from neuronoverlap.store.plan import Plan

    rng = np.random.default_rng(0)
    names = ["a-b", "b-a"]
    sets = {
        name: {"src": name[0], "tgt": name[2], "n_samples": args.samples, "batch_size": 16} for name in names
    }
    plan = Plan.of(sets)
    shards = 2
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        paths = []
        for index in range(shards):
            path = Path(tmp, f"run.shard-{index}-of-{shards}.h5")
            paths.append(path)
            shard = {"plan": plan.to_json(), "index": index, "count": shards}
            with StoreWriter(path, INFO, shard=shard) as writer:
                for unit in plan.shard(index, shards):
                    n = unit.stop - unit.start
                    mean, fires, tokens = synthetic(n, rng)
                    src, tgt = unit.name.split("-")
                    journal = writer.unit_journal(src, tgt, sets[unit.name], unit.rows)
                    words = np.array([f"w{i}" for i in range(n)], dtype=str)
                    journal.add_block(
                        0,
                        mean=mean,
                        prob=(fires / tokens[:, None, None]).astype(np.float32),
                        tokens=tokens,
                        prompts=words,
                        generations=words,
                        source_words=words,
                        target_words=words,
                    )
                    writer.finish_unit(src, tgt, unit.rows)
        out = Path(tmp, "merged.h5")
        started = time.perf_counter()
        summary = merge_shards(out, paths)
        wall = time.perf_counter() - started
        mb = summary["chunk_bytes"] / 1e6
        print(f"{len(plan.units)} units, {shards} shards, {mb:.0f} MB of compressed chunks")
        print(f"merge: {wall:.2f} s wall, {mb / wall:.0f} MB/s (includes fsync and the small datasets)")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_ray(args) -> None:
    import os

    import ray
    import torch

    from neuronoverlap.models import StopRule, load_model
    from neuronoverlap.probes import translation_probe_sets
    from neuronoverlap.scale.ray_executor import UnitRecorder, run_on_ray
    from neuronoverlap.scale.units import Job, run_in_process

    torch.set_num_threads(1)
    sets = translation_probe_sets("de", "es", args.samples, seed=0)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        job = Job(
            Path(tmp, "single.h5"),
            sets,
            batch_size=16,
            stop=StopRule(max_new_tokens=4),
            model_spec="tiny-llama",
        )
        model = load_model("tiny-llama")
        started = time.perf_counter()
        run_in_process(model, job, progress=False)
        local_s = time.perf_counter() - started
        started = time.perf_counter()
        env = {k: "1" for k in ("OMP_NUM_THREADS", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
        init_s = time.perf_counter() - started
        probe = ray.remote(num_cpus=1)(UnitRecorder).remote(
            Job(**{**job.__dict__, "store": Path(tmp, "p.h5")}), 0, 1
        )
        ray.get(probe.pid.remote())
        started = time.perf_counter()
        for _ in range(200):
            ray.get(probe.pid.remote())
        call_ms = (time.perf_counter() - started) / 200 * 1e3
        rss = _rss_mib(ray.get(probe.pid.remote()))
        ray.kill(probe)
        ray_job = Job(**{**job.__dict__, "store": Path(tmp, "ray.h5")})
        summary = run_on_ray(ray_job, workers=2)
        ray.shutdown()
        print(
            f"in-process ({os.cpu_count()} CPUs here, 1 torch thread): {local_s:.1f} s "
            f"for {2 * args.samples} samples"
        )
        print(
            f"ray.init (local, 2 CPUs): {init_s:.1f} s; a no-op actor call: {call_ms:.2f} ms; "
            f"one actor with tiny-llama loaded: {rss:.0f} MiB RSS"
        )
        print(
            f"ray, 2 workers: {summary['total_s']:.1f} s in all ({summary['units']} units), "
            "actors ready after "
            f"{summary['ready_s']:.1f} s; speed-up over in-process {local_s / summary['total_s']:.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", nargs="?", default="commit", choices=["commit", "writer", "merge", "ray"])
    parser.add_argument("--filler-gb", type=float, default=10.0)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=None, help="folder for the stores (default: a temporary one)")
    parser.add_argument(
        "--from-store", default=None, help="writer: the statistics of this store's probe sets"
    )
    args = parser.parse_args()
    if args.bench == "writer":
        return bench_writer(args)
    if args.bench == "merge":
        return bench_merge(args)
    if args.bench == "ray":
        return bench_ray(args)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        empty, full = Path(tmp, "empty", "run.h5"), Path(tmp, "full", "run.h5")
        with StoreWriter(empty, INFO) as writer:
            writer.put_json("results", "note", {"empty": True})
        started = time.perf_counter()
        fill(full, args.filler_gb)
        fill_s = time.perf_counter() - started
        rows = []
        for label, path in (("empty", empty), (f"{args.filler_gb:g} GB", full)):
            size = path.stat().st_size
            times = commit_times(path, args.samples, args.rounds, rng)
            rows.append((label, size, times))
        started = time.perf_counter()
        shutil.copyfile(full, Path(tmp, "copy.h5"))
        copy_s = time.perf_counter() - started
        raw = 2 * args.samples * INFO.n_layers * INFO.d_mlp * 4
        print(f"probe set: {args.samples} samples x 32 x 14336, {raw / 2**20:.0f} MiB raw (mean + prob)")
        print(f"filler written in {fill_s:.1f} s")
        print(f"{'store holds':>12} {'store bytes':>14} {'commit s (median)':>18} {'all rounds':>24}")
        for label, size, times in rows:
            rounds = ", ".join(f"{t:.2f}" for t in times)
            print(f"{label:>12} {size:>14,} {statistics.median(times):>18.2f} {rounds:>24}")
        ratio = statistics.median(rows[1][2]) / statistics.median(rows[0][2])
        print(f"ratio full/empty: {ratio:.3f}")
        print(f"copy of the filled store (schema-1 commit's extra cost): {copy_s:.1f} s")


if __name__ == "__main__":
    main()
