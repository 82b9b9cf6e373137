"""Benchmark calibrated bridge selection (issue 13) and, optionally, the whole demo.

Rows (each optional):
1. --store: select-bridge on a recorded store (zh-ja, six candidates, default window):
   calibrated selection with R random sets and B bootstrap resamples, and without the bootstrap.
2. --synthetic-demo: the same on synthetic activations of the demo's shape (Gemma-3-270M:
   18 layers x 2048 neurons, window 6-11, 32 + 32 samples, |O_l| 30, |B_l| 4-9).
3. --llama: LLaMA-3-8B shape (32 layers x 14336 neurons, window 10-21, n = 1000 samples,
   |O_l| = |B_l| = 150, six bridges), synthetic. Measures --llama-layers window layers (default
   1) of one calibrated selection without the bootstrap and one bootstrap resample of one
   layer on --llama-columns of its columns, and extrapolates to all columns, the 12 window
   layers and B resamples (printed as such).
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


def llama_rows(
    n_random: int, n_bootstrap: int, layers: int, resample_columns: int
) -> list[tuple[str, str, str]]:
    import torch

    from neuronoverlap.bridge import select_from_activations
    from neuronoverlap.bridge.scoring import draw_sets, resample_units
    from neuronoverlap.hsic.reweighted import ReweightedScores

    window = list(range(10, 10 + layers))
    acts, overlap, bridges = synthetic(32, 14336, window, 1000, 150, [150] * 6)
    _, calibration = _timed(
        lambda: select_from_activations(acts, overlap, bridges, n_random=n_random, n_bootstrap=0)
    )
    per_layer = calibration / layers
    rows = [
        (
            f"LLaMA-3-8B shape, calibrated selection without bootstrap, {layers} window layer(s)",
            f"{calibration:.0f} s",
            f"{per_layer:.0f} s per layer; {n_random} random sets; measured",
        ),
        (
            "LLaMA-3-8B shape, calibrated selection without bootstrap, 12 window layers",
            f"{12 * per_layer / 60:.1f} min",
            "extrapolated: measured per-layer time x 12",
        ),
    ]
    if not n_bootstrap:
        return rows
    # One bootstrap resample of one layer, on the columns the bootstrap scores: the bridges'
    # and the calibration sets' (as bridge/scoring.py builds them).
    layer = window[0]
    rng = np.random.default_rng(0)
    rows_t = torch.from_numpy(np.ascontiguousarray(acts[layer].T))
    o_idx = overlap.layer(layer)
    pool = np.setdiff1d(np.arange(rows_t.shape[0]), o_idx)
    columns = np.unique(
        np.concatenate(
            [draw_sets(pool, 150, n_random, rng).ravel()] + [bridges[b].layer(layer) for b in bridges]
        )
    )
    measured = columns[:resample_columns]  # the cost is linear in the columns
    scores, setup = _timed(lambda: ReweightedScores(rows_t[o_idx], rows_t[measured], "reference"))
    n = rows_t.shape[1]
    units = np.tile(np.arange(n // 2), 2)
    counts = torch.from_numpy(np.bincount(resample_units(units, rng), minlength=n))
    _, resample = _timed(lambda: scores.score(counts))
    resample *= len(columns) / len(measured)
    setup *= len(columns) / len(measured)
    rows += [
        (
            f"LLaMA-3-8B shape, one bootstrap resample of one layer ({len(columns)} columns)",
            f"{resample:.0f} s",
            f"extrapolated from {len(measured)} columns, linear; set-up per layer {setup:.0f} s",
        ),
        (
            f"LLaMA-3-8B shape, {n_bootstrap} bootstrap resamples x 12 layers",
            f"{(n_bootstrap * resample + setup) * 12 / 3600:.1f} h",
            "extrapolated: measured resample and set-up times",
        ),
    ]
    return rows


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
    parser.add_argument(
        "--llama-columns",
        type=int,
        default=1000,
        help="columns of the measured bootstrap resample (extrapolated to all)",
    )
    parser.add_argument("--demo", action="store_true", help="also time a full demo run from scratch")
    args = parser.parse_args()

    import torch

    rows = []
    if args.store:
        rows += store_rows(args.store, args.pair, args.random_sets, args.bootstrap)
    if args.synthetic_demo:
        rows += synthetic_demo_rows(args.random_sets, args.bootstrap)
    if args.llama:
        rows += llama_rows(args.random_sets, args.bootstrap, args.llama_layers, args.llama_columns)
    if args.demo:
        rows += demo_rows()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, numpy {np.__version__}")
    print("| measure | value | note |")
    print("| --- | --- | --- |")
    for name, value, note in rows:
        print(f"| {name} | {value} | {note} |")


if __name__ == "__main__":
    main()
