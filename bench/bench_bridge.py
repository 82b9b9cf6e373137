"""Benchmark calibrated bridge selection (issue 13) and, optionally, the whole demo.

Rows (each optional):
1. --store: select-bridge on a recorded store (zh-ja, six candidates, default window):
   calibrated selection with R random sets and B bootstrap resamples, and without the bootstrap.
2. --synthetic-demo: the same on synthetic activations of the demo's shape (Gemma-3-270M:
   18 layers x 2048 neurons, window 6-11, 32 + 32 samples, |O_l| 30, |B_l| 4-9).
3. --llama: LLaMA-3-8B shape (window of 12 layers x 14336 neurons, n = 1000 samples,
   |O_l| = 150, |B_l| 140-165, six bridges), synthetic: the whole calibrated selection is run;
   its bootstrap is timed on --llama-resamples resamples and scaled to --bootstrap.
4. --repaired-demo (issue 26): the demo shape before and with the repaired defaults, side by
   side in one run (sets rebuilt per resample from synthetic firing probabilities).
5. --demo: the whole `neuronoverlap demo` in a fresh store, wall time by stage.

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


class SyntheticSets:
    """Synthetic firing probabilities for the 26 probe sets a selection of six bridges reads
    (demo shape), and the store path's set rule rebuilt on resamples of them (the work
    `bridge.loader.SetResampler` does on a real store)."""

    def __init__(self, n_layers, d, n_per_direction, seed=0):
        from neuronoverlap.bridge.loader import probe_pairs

        rng = np.random.default_rng(seed)
        self.n = n_per_direction
        self.values = {}
        # one firing profile shared by every probe set, a pair's own deviation and sample noise:
        # top-1% sets that mostly coincide, as on real activations (|B_l| of a few neurons)
        base = rng.uniform(0, 0.6, size=(n_layers, d))
        hot = rng.choice(n_layers * d, size=int(0.0115 * n_layers * d), replace=False)
        base.flat[hot] = 0.97
        for a, b in probe_pairs("zh", "ja", BRIDGES):
            own = base + 0.003 * rng.standard_normal((n_layers, d))
            for x, y in ((a, b), (b, a)):
                noise = 0.05 * rng.standard_normal((self.n, n_layers, d))
                self.values[(x, y)] = np.clip(own + noise, 0, 1).astype(np.float32)
        self.tokens = np.full(self.n, 12)

    def probe(self, x, y, samples=None):
        from neuronoverlap.sets import ProbeSamples

        chosen = np.arange(self.n) if samples is None else samples
        return ProbeSamples(f"{x}-{y}", self.values[(x, y)][chosen], self.tokens[chosen])

    def sets(self):
        from neuronoverlap.bridge.loader import sets_from_probes

        return sets_from_probes(self.probe, "zh", "ja", BRIDGES, 0.01, None)

    def __call__(self, samples, rng):
        from neuronoverlap.bridge.bootstrap import resample_units
        from neuronoverlap.bridge.loader import sets_from_probes

        chosen = {("zh", "ja"): samples[samples < self.n], ("ja", "zh"): samples[samples >= self.n] - self.n}
        units = np.tile(np.arange(self.n), 2)
        for key in self.values:
            if key not in chosen:
                drawn = resample_units(units, rng)
                chosen[key], chosen[key[::-1]] = drawn[drawn < self.n], drawn[drawn >= self.n] - self.n

        def probe_of(x, y):
            return self.probe(x, y, chosen[(x, y)])

        return sets_from_probes(probe_of, "zh", "ja", BRIDGES, 0.01, None)


def repaired_demo_rows(n_random: int, n_bootstrap: int) -> list[tuple[str, str, str]]:
    """Issue 26, side by side on the demo's shape (18 x 2048, window 6-11, 32 + 32 samples,
    sets from synthetic firing probabilities by the store path's rule): the selection before
    (calibrated z, layer pool, sets fixed, 2 draws: the fewest allowed) and with the repaired
    defaults (effect, matched pool, 5 draws, nuisance residualised, sets rebuilt per resample)."""
    from neuronoverlap.bridge import select_from_activations
    from neuronoverlap.sets.builders import pooled_scores

    rng = np.random.default_rng(1)
    window = range(6, 12)
    world = SyntheticSets(18, 2048, 32)
    overlap, bridges = world.sets()
    firing = pooled_scores([world.probe("zh", "ja"), world.probe("ja", "zh")])
    acts = {layer: rng.standard_normal((64, 2048)) for layer in window}
    nuisance = np.column_stack([rng.integers(8, 20, 64), np.repeat([0, 1], 32)]).astype(float)
    common = {"n_random": n_random, "n_bootstrap": n_bootstrap}
    before = lambda: select_from_activations(  # noqa: E731
        acts, overlap, bridges, method="calibrated", pool="layer", n_draws=2, **common
    )
    after = lambda: select_from_activations(  # noqa: E731
        acts,
        overlap,
        bridges,
        activity={layer: firing[layer] for layer in window},
        nuisance=nuisance,
        resample_sets=world,
        **common,
    )
    old, old_s = _timed(before)
    new, new_s = _timed(after)
    sizes = sorted({s[1] for b in BRIDGES for s in new.set_sizes[b].values()})
    o_sizes = sorted({s[0] for s in new.set_sizes[BRIDGES[0]].values()})
    shape = f"demo shape, synthetic sets (|O_l| {o_sizes[0]}-{o_sizes[-1]}, |B_l| {sizes[0]}-{sizes[-1]})"
    return [
        (
            f"{shape}: before (calibrated, layer pool, sets fixed, 2 draws), {n_random} random, "
            f"{n_bootstrap} bootstrap",
            f"{old_s:.1f} s",
            f"chosen {old.chosen}",
        ),
        (
            f"{shape}: repaired defaults (effect, matched pool, 5 draws, residualised, sets rebuilt)",
            f"{new_s:.1f} s",
            f"{new_s / old_s:.2f}x before, same run; chosen {new.chosen}",
        ),
    ]


def llama_rows(n_random: int, n_bootstrap: int, measured_resamples: int) -> list[tuple[str, str, str]]:
    """LLaMA-3-8B shape, synthetic: the whole calibrated selection of six bridges over a window
    of 12 layers is run (not extrapolated); the bootstrap is timed on `measured_resamples`
    resamples (the difference of two runs) and scaled to `n_bootstrap`."""
    from neuronoverlap.bridge import select_from_activations

    sizes = [140, 145, 150, 155, 160, 165]
    acts, overlap, bridges = synthetic(32, 14336, range(10, 22), 1000, 150, sizes)

    def run(resamples: int):
        return _timed(
            lambda: select_from_activations(
                acts, overlap, bridges, n_random=n_random, n_bootstrap=resamples, with_reference=True
            )
        )

    result, plain = run(0)
    rows_out = [
        (
            f"LLaMA-3-8B shape (12 layers x 14336 neurons, n 1000, |O_l| 150, |B_l| 140-165): "
            f"calibrated selection of six bridges, {n_random} random sets, reference scores, "
            "no bootstrap",
            f"{plain / 60:.1f} min",
            f"measured, whole; chosen {result.chosen}",
        )
    ]
    if n_bootstrap and measured_resamples:
        _, with_bootstrap = run(measured_resamples)
        per_resample = (with_bootstrap - plain) / measured_resamples
        rows_out.append(
            (
                f"  {n_bootstrap} bootstrap resamples (12 layers each)",
                f"{n_bootstrap * per_resample / 3600:.1f} h",
                f"{per_resample:.0f} s a resample, from a run with {measured_resamples} "
                f"({with_bootstrap / 60:.1f} min), scaled",
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
        "--repaired-demo", action="store_true", help="issue 26: before and after, side by side, demo shape"
    )
    parser.add_argument(
        "--llama-resamples",
        type=int,
        default=2,
        help="bootstrap resamples run at LLaMA shape (scaled to --bootstrap)",
    )
    parser.add_argument("--demo", action="store_true", help="also time a full demo run from scratch")
    args = parser.parse_args()

    import torch

    rows = []
    if args.store:
        rows += store_rows(args.store, args.pair, args.random_sets, args.bootstrap)
    if args.synthetic_demo:
        rows += synthetic_demo_rows(args.random_sets, args.bootstrap)
    if args.repaired_demo:
        rows += repaired_demo_rows(args.random_sets, args.bootstrap)
    if args.llama:
        rows += llama_rows(args.random_sets, args.bootstrap, args.llama_resamples)
    if args.demo:
        rows += demo_rows()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, numpy {np.__version__}")
    print("| measure | value | note |")
    print("| --- | --- | --- |")
    for name, value, note in rows:
        print(f"| {name} | {value} | {note} |")


if __name__ == "__main__":
    main()
