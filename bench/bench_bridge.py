"""Benchmark calibrated bridge selection (issue 13) and, optionally, the whole demo.

Rows (each optional):
1. --store: select-bridge on a recorded store (zh-ja, six candidates, default window):
   calibrated selection with R random sets and B bootstrap resamples, and without the bootstrap.
2. --synthetic-demo: the same on synthetic activations of the demo's shape (Gemma-3-270M:
   18 layers x 2048 neurons, window 6-11, 32 + 32 samples, |O_l| 30, |B_l| 4-9).
3. --llama: LLaMA-3-8B shape (32 layers x 14336 neurons, window 10-21, n = 1000 samples,
   |O_l| = |B_l| = 150, six bridges), synthetic. Measures --llama-layers window layers (default
   1) of one calibrated selection without the bootstrap and one bootstrap resample of one
   layer, and extrapolates to the 12 window layers and B resamples (printed as such).
4. --demo: the whole `neuronoverlap demo` in a fresh store, wall time by stage.

Usage (2 threads; run under `flock /work/notes/heavy.lock` on a shared machine):
    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_bridge.py --store out/demo.h5 --synthetic-demo
    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_bridge.py --llama
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BRIDGES = ["en", "de", "fr", "it", "pt", "es"]


def _timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def store_rows(path: str, pair: str, n_random: int, n_bootstrap: int) -> list[tuple[str, str, str]]:
    from neuronoverlap.bridge import select_bridge

    src, tgt = pair.split("-")
    rows = []
    for bootstrap in (0, n_bootstrap):
        result, seconds = _timed(
            lambda b=bootstrap: select_bridge(
                path, src, tgt, BRIDGES, n_random=n_random, n_bootstrap=b, progress=False
            )
        )
        sizes = sorted({s[1] for b in BRIDGES for s in result.set_sizes[b].values()})
        rows.append(
            (
                f"store {Path(path).name} {pair}: {n_random} random sets, {bootstrap} "
                f"bootstrap, layers {result.window[0]}-{result.window[-1]}",
                f"{seconds:.1f} s",
                f"|B_l| {sizes[0]}-{sizes[-1]}; chosen {result.chosen}, ranking {','.join(result.ranking())}",
            )
        )
    return rows


def synthetic(n_layers, d, window, n, o_size, b_sizes, seed=0):
    """Independent Gaussian activations [n, d] per window layer, and the sets."""
    from neuronoverlap.sets import NeuronSet

    rng = np.random.default_rng(seed)
    shape = (n_layers, d)
    acts = {layer: rng.standard_normal((n, d)) for layer in window}
    order = {layer: rng.permutation(d) for layer in window}
    overlap = NeuronSet.from_indices([(layer, j) for layer in window for j in order[layer][:o_size]], shape)
    bridges, start = {}, o_size
    for b, size in zip(BRIDGES, b_sizes, strict=True):
        bridges[b] = NeuronSet.from_indices(
            [(layer, j) for layer in window for j in order[layer][start : start + size]], shape
        )
        start += size
    return acts, overlap, bridges


def synthetic_demo_rows(n_random: int, n_bootstrap: int) -> list[tuple[str, str, str]]:
    from neuronoverlap.bridge import select_from_activations

    acts, overlap, bridges = synthetic(18, 2048, range(6, 12), 64, 30, [4, 5, 6, 7, 8, 9])
    _, seconds = _timed(
        lambda: select_from_activations(acts, overlap, bridges, n_random=n_random, n_bootstrap=n_bootstrap)
    )
    return [
        (
            f"synthetic demo shape (2048 neurons, n 64, 6 layers): {n_random} random sets, "
            f"{n_bootstrap} bootstrap",
            f"{seconds:.1f} s",
            "|O_l| 30, |B_l| 4-9",
        )
    ]


def llama_rows(n_random: int, n_bootstrap: int, layers: int) -> list[tuple[str, str, str]]:
    from neuronoverlap.bridge import select_from_activations

    window = list(range(10, 10 + layers))
    acts, overlap, bridges = synthetic(32, 14336, window, 1000, 150, [150] * 6)
    _, calibration = _timed(
        lambda: select_from_activations(acts, overlap, bridges, n_random=n_random, n_bootstrap=0)
    )
    one = {window[0]: acts[window[0]]}
    _, without = (
        (None, calibration)
        if layers == 1
        else _timed(lambda: select_from_activations(one, overlap, bridges, n_random=n_random, n_bootstrap=0))
    )
    _, with_one = _timed(
        lambda: select_from_activations(one, overlap, bridges, n_random=n_random, n_bootstrap=1)
    )
    per_layer = calibration / layers
    resample_layer = max(with_one - without, 0.0)
    return [
        (
            f"LLaMA-3-8B shape, calibrated selection, {layers} window layer(s) measured",
            f"{calibration:.0f} s",
            f"{per_layer:.0f} s per layer; {n_random} random sets",
        ),
        (
            "LLaMA-3-8B shape, calibrated selection, 12 window layers (extrapolated)",
            f"{12 * per_layer / 60:.1f} min",
            "measured per-layer time x 12",
        ),
        ("LLaMA-3-8B shape, one bootstrap resample of one layer", f"{resample_layer:.0f} s", "measured"),
        (
            f"LLaMA-3-8B shape, {n_bootstrap} bootstrap resamples x 12 layers (extrapolated)",
            f"{n_bootstrap * 12 * resample_layer / 3600:.1f} h",
            "measured resample time x 12 x B",
        ),
    ]


def demo_rows() -> list[tuple[str, str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "neuronoverlap",
                "demo",
                "--store",
                f"{tmp}/demo.h5",
                "--out",
                f"{tmp}/out",
                "--quiet",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - start
        timings = json.loads(Path(f"{tmp}/out/timings.json").read_text())
    rows = [(f"demo stage: {k}", f"{v:.0f} s", "") for k, v in timings.items()]
    rows.append(("demo wall time, process start to exit", f"{wall:.0f} s", "target < 900 s"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", default=None, help="a store holding the pair's probe sets")
    parser.add_argument("--pair", default="zh-ja")
    parser.add_argument("--random-sets", type=int, default=200)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--synthetic-demo", action="store_true")
    parser.add_argument("--llama", action="store_true")
    parser.add_argument("--llama-layers", type=int, default=1)
    parser.add_argument("--demo", action="store_true", help="also time a full demo run from scratch")
    args = parser.parse_args()

    import torch

    rows = []
    if args.store:
        rows += store_rows(args.store, args.pair, args.random_sets, args.bootstrap)
    if args.synthetic_demo:
        rows += synthetic_demo_rows(args.random_sets, args.bootstrap)
    if args.llama:
        rows += llama_rows(args.random_sets, args.bootstrap, args.llama_layers)
    if args.demo:
        rows += demo_rows()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, numpy {np.__version__}")
    print("| measure | value | note |")
    print("| --- | --- | --- |")
    for name, value, note in rows:
        print(f"| {name} | {value} | {note} |")


if __name__ == "__main__":
    main()
