"""Commit cost against store size: one probe set of full-size shapes committed into a store that
holds (almost) nothing and into one that already holds --filler-gb of data.

    flock /work/notes/heavy.lock env OMP_NUM_THREADS=1 PYTHONPATH=src \\
        .venv/bin/python bench/bench_store.py --filler-gb 10 --samples 16

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
        ds = group.create_dataset("filler", shape=(rows, INFO.d_mlp), dtype="float32", chunks=(256, INFO.d_mlp))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filler-gb", type=float, default=10.0)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=None, help="folder for the stores (default: a temporary one)")
    args = parser.parse_args()
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
