"""What `ProbeSetView.to_xarray()` reads: memory and time at LLaMA-3-8B shapes, printing a table.

A synthetic probe set of --samples samples x 32 layers x 14336 neurons (float32 `mean`, uint16
`fires`, written by the store's own writer) is read as an xarray Dataset: making the Dataset,
one layer of `mean`, 100 neurons of `prob` over every sample and layer, and the whole of `mean`
(`.values`), against `view.array("mean")`. Memory is tracemalloc's peak of Python and numpy
allocations for that step (HDF5's own chunk buffers are not counted).

    flock /work/notes/heavy.lock env OMP_NUM_THREADS=1 PYTHONPATH=src \\
        .venv/bin/python bench/bench_frames.py --samples 200
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from neuronoverlap.store import Store, StoreWriter
from neuronoverlap.store.writer import ModelInfo

INFO = ModelInfo("llama-3-8b-shapes", "synthetic", n_layers=32, d_mlp=14336)
BLOCK = 50


def write_probe_set(path: Path, n: int, rng: np.random.Generator) -> None:
    with StoreWriter(path, INFO) as writer:
        journal = writer.probe_journal("de", "en", {"src": "de", "tgt": "en", "n_samples": n})
        for start in range(0, n, BLOCK):
            size = min(BLOCK, n - start)
            tokens = rng.integers(20, 60, size=size).astype(np.int32)
            shape = (size, INFO.n_layers, INFO.d_mlp)
            fires = rng.binomial(tokens[:, None, None], 0.3, size=shape)
            words = np.array([f"w{start + i}" for i in range(size)], dtype=str)
            journal.add_block(
                start,
                mean=(rng.standard_normal(size=shape, dtype=np.float32) * 0.1),
                prob=(fires / tokens[:, None, None]).astype(np.float32),
                tokens=tokens,
                prompts=words,
                generations=words,
                source_words=words,
                target_words=words,
            )
        writer.finish_probe_set("de", "en")


def measure(step):
    tracemalloc.start()
    started = time.perf_counter()
    result = step()
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, seconds, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--dir", default=None, help="folder for the temporary store")
    args = parser.parse_args()
    import xarray

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "run.h5"
        write_probe_set(path, args.samples, np.random.default_rng(0))
        view = Store(path).probes("de", "en")
        raw = args.samples * INFO.n_layers * INFO.d_mlp * 4 / 2**20
        print(
            f"probe set {args.samples} x {INFO.n_layers} x {INFO.d_mlp}: {raw:.0f} MiB float32 per "
            f"statistic; xarray {xarray.__version__}"
        )
        ds, seconds, peak = measure(view.to_xarray)
        rows = [("to_xarray()", seconds, peak, 0)]
        steps = [
            ('ds["mean"].sel(layer=12).values', lambda: ds["mean"].sel(layer=12).values),
            ('ds["prob"].isel(neuron=slice(100)).values', lambda: ds["prob"].isel(neuron=slice(100)).values),
            ('ds["mean"].values', lambda: ds["mean"].values),
            ('view.array("mean")', lambda: view.array("mean")),
        ]
        for label, step in steps:
            result, seconds, peak = measure(step)
            rows.append((label, seconds, peak, result.nbytes / 2**20))
        print(f"{'step':>42} {'s':>7} {'peak MiB':>9} {'result MiB':>11}")
        for label, seconds, peak, size in rows:
            print(f"{label:>42} {seconds:7.2f} {peak:9.1f} {size:11.1f}")


if __name__ == "__main__":
    main()
