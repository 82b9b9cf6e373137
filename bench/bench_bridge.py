"""Benchmark calibrated bridge selection (issue 13) and, optionally, the whole demo.

Rows (each optional):
1. --store: select-bridge on a recorded store (zh-ja, six candidates, default window):
   calibrated selection with R random sets and B bootstrap resamples, and without the bootstrap.
2. --synthetic-demo: the same on synthetic activations of the demo's shape (Gemma-3-270M:
   18 layers x 2048 neurons, window 6-11, 32 + 32 samples, |O_l| 30, |B_l| 4-9).
3. --llama: LLaMA-3-8B shape (window of 12 layers x 14336 neurons, n = 1000 samples,
   |O_l| = |B_l| = 150, six bridges), synthetic: O_l against --llama-columns of a layer's
   neurons, one bridge's reference score, the random sets' scores and one bootstrap resample
   of those columns are measured and extrapolated to the whole selection (printed as such).
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


def llama_rows(n_random: int, n_bootstrap: int, columns_measured: int) -> list[tuple[str, str, str]]:
    """LLaMA-3-8B shape, measured on part of one layer and extrapolated (the costs are linear in
    the columns and the layers)."""
    import torch

    from neuronoverlap.bridge.scoring import draw_sets, resample_units
    from neuronoverlap.hsic.columns import overlap_scores, set_scores
    from neuronoverlap.hsic.reference import reference_bridge_score
    from neuronoverlap.hsic.reweighted import ReweightedScores

    d, n, size, layers = 14336, 1000, 150, 12
    rng = np.random.default_rng(0)
    rows = torch.from_numpy(rng.standard_normal((columns_measured + 2 * size, n)))
    overlap, bridge = rows[:size], rows[size : 2 * size]
    part = rows[2 * size :]
    # O_l against c columns costs a + b c: measured at c/4 and c, extrapolated to 14336
    _, quarter = _timed(lambda: overlap_scores(overlap, part[: columns_measured // 4], "reference"))
    matrix, s_seconds = _timed(lambda: overlap_scores(overlap, part, "reference"))
    slope = (s_seconds - quarter) / (columns_measured - columns_measured // 4)
    _, ref_seconds = _timed(lambda: reference_bridge_score(overlap, bridge, memory_budget_bytes=4 << 30))
    sets = torch.from_numpy(draw_sets(np.arange(columns_measured), size, 2 * n_random, rng))
    _, set_seconds = _timed(lambda: set_scores(matrix, sets))
    per_layer = s_seconds + slope * (d - columns_measured) + 6 * set_seconds
    rows_out = [
        (
            f"LLaMA-3-8B shape: O_l (150) against {columns_measured} of a layer's 14336 neurons, n 1000",
            f"{s_seconds:.1f} s",
            "measured",
        ),
        (
            "LLaMA-3-8B shape: reference score of one bridge (150 x 150) in one layer",
            f"{ref_seconds:.1f} s",
            "measured",
        ),
        (
            "LLaMA-3-8B shape: calibrated selection of six bridges, 12 layers, no bootstrap",
            f"{layers * per_layer / 60:.1f} min",
            f"extrapolated: {per_layer:.0f} s per layer (linear in the columns from "
            f"{columns_measured // 4} and {columns_measured}; {2 * n_random} random sets per bridge)",
        ),
        (
            "  the same with the reference scores (with_reference, the default)",
            f"{layers * (per_layer + 6 * ref_seconds) / 60:.1f} min",
            "extrapolated: + 6 reference scores per layer",
        ),
    ]
    if n_bootstrap:
        weights = ReweightedScores(overlap, part, "reference")  # its set-up is once per layer
        counts = torch.from_numpy(
            np.bincount(resample_units(np.tile(np.arange(n // 2), 2), rng), minlength=n)
        )
        _, resample = _timed(lambda: weights.score(counts))
        covered = d * (1 - np.exp(-n_random * size / d))  # distinct columns the random sets hit
        per_resample = resample * covered / columns_measured
        rows_out.append(
            (
                f"LLaMA-3-8B shape: {n_bootstrap} bootstrap resamples x 12 layers",
                f"{n_bootstrap * layers * per_resample / 3600:.1f} h",
                f"extrapolated: one resample of {columns_measured} columns {resample:.1f} s, "
                f"x {covered:.0f} columns / {columns_measured}",
            )
        )
    return rows_out


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
    parser.add_argument(
        "--llama-columns",
        type=int,
        default=1000,
        help="layer neurons measured at LLaMA shape (extrapolated to 14336)",
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
        rows += llama_rows(args.random_sets, args.bootstrap, args.llama_columns)
    if args.demo:
        rows += demo_rows()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, numpy {np.__version__}")
    print("| measure | value | note |")
    print("| --- | --- | --- |")
    for name, value, note in rows:
        print(f"| {name} | {value} | {note} |")


if __name__ == "__main__":
    main()
