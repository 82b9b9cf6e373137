"""Test 2's pair-bootstrap fits (evaluation/mechanism.py) started two ways, side by side on the
same resamples: "seeded" (statsmodels' random start from a seeded generator, the pre-registered
run's) and "full" (each resampled pair and word at the full fit's posterior). Prints the seconds
per fit and the HSIC coefficient each start reaches.

The data are synthetic at the full-size study's shape by default (30 pairs: 20 with 4 candidates,
10 with 5; 300 words; 3 example seeds; 117,000 rows): per pair, a bridge's hit probability is
logistic(log-odds of a uniform(0, 0.3) competence + a word effect N(0, 1)); the HSIC score is
noise. `--study OUT` fits a full-size study's own Test 2 rows instead (OUT: the output folder of
`python -m neuronoverlap.evaluation.fullsize`, with its analysis's scores.json), on the resamples
the analysis draws (seed 0), so the seeded column repeats the analysis's own fits; with
`--draws-file` (its tests-parts/KEY/test2-draws.json) each is checked against the draw kept there.
The fits run on one thread (OMP_NUM_THREADS=1 unless set).

Usage (one heavy job at a time on a shared machine):
    .venv/bin/python bench/bench_mixed_bootstrap.py --draws 3
    .venv/bin/python bench/bench_mixed_bootstrap.py --pairs 10 --words 100 --draws 3   # quick
    .venv/bin/python bench/bench_mixed_bootstrap.py --study OUT --draws-file FILE --draws 3
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def synthetic_rows(n_pairs: int, n_words: int, n_seeds: int, seed: int = 0):
    """`word_rows` of a simulated study (see the module docstring)."""
    import numpy as np

    from neuronoverlap.evaluation.mechanism import word_rows
    from neuronoverlap.evaluation.study import PairData

    rng = np.random.default_rng(seed)
    pairs, competence, hsic = [], {}, {}
    for i in range(n_pairs):
        bridges = [f"b{j}" for j in range(4 if i < 2 * n_pairs // 3 else 5)]
        p = rng.random(len(bridges)) * 0.3
        logit = np.log(p / (1 - p))[:, None] + rng.normal(0.0, 1.0, n_words)[None, :]
        prob = 1 / (1 + np.exp(-logit))
        hits = (rng.random((len(bridges), n_words, n_seeds)) < prob[:, :, None]).mean(axis=2)
        pair = PairData(f"s{i}", f"t{i}", bridges, hits)
        pairs.append(pair)
        competence[pair.name] = dict(zip(bridges, p, strict=True))
        hsic[pair.name] = dict(zip(bridges, rng.random(len(bridges)), strict=True))
    return word_rows(pairs, competence, hsic, n_seeds=n_seeds)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--words", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=3, help="example seeds (rows per word and bridge)")
    parser.add_argument("--draws", type=int, default=3, help="bootstrap resamples fitted both ways")
    parser.add_argument("--fit-method", default="L-BFGS-B", choices=("BFGS", "L-BFGS-B"))
    parser.add_argument("--study", default=None, help="a full-size study's output folder (real rows)")
    parser.add_argument("--draws-file", default=None, help="with --study: its Test 2 draws file")
    args = parser.parse_args()

    import json

    import numpy as np

    from neuronoverlap.evaluation.mechanism import _resample, fit_posterior, fit_start

    if args.study is None:
        rows = synthetic_rows(args.pairs, args.words, args.seeds)
    else:
        from neuronoverlap.evaluation.fullsize_tests import load_tests_inputs, second_test_rows

        read = load_tests_inputs(args.study)
        rows, _, _ = second_test_rows(read.pairs(), read.hsic, n_seeds=len(read.config["example_seeds"]))
    kept = {}
    if args.draws_file:
        kept = json.loads(open(args.draws_file, encoding="utf-8").read())["draws"]
    start = time.perf_counter()
    full = fit_posterior(rows, fit_method=args.fit_method, start=fit_start(0, None))
    full_s = time.perf_counter() - start
    names = list(dict.fromkeys(rows["pair"]))
    groups = {name: frame for name, frame in rows.groupby("pair", sort=False)}
    rng = np.random.default_rng(0)
    source = f"study {args.study}" if args.study else f"synthetic, {args.pairs} pairs, {args.words} words"
    print(
        f"{len(rows)} rows ({source}), {rows['word'].nunique()} words, {args.fit_method}, "
        f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; full fit {full_s:.1f} s"
    )
    columns = (
        ("draw", 4),
        ("seeded s", 9),
        ("full s", 7),
        ("ratio", 6),
        ("hsic seeded", 12),
        ("hsic full", 10),
    )
    print(" ".join(f"{name:>{width}}" for name, width in (*columns, ("|diff|", 8))))
    ratios, diffs = [], []
    for i in range(args.draws):
        frame = _resample(groups, rng.choice(names, size=len(names)))
        timings, coefficients = [], []
        for warm in (None, full):
            start = time.perf_counter()
            fit = fit_posterior(frame, fit_method=args.fit_method, start=fit_start(0, i), warm=warm)
            timings.append(time.perf_counter() - start)
            coefficients.append(fit.fixed["hsic"])
        ratios.append(timings[0] / timings[1])
        diffs.append(abs(coefficients[0] - coefficients[1]))
        print(
            f"{i:>4} {timings[0]:>9.1f} {timings[1]:>7.1f} {ratios[-1]:>6.2f} {coefficients[0]:>+12.5f} "
            f"{coefficients[1]:>+10.5f} {diffs[-1]:>8.1e}"
        )
        if str(i) in kept:
            same = kept[str(i)] == coefficients[0]
            print(f"     the analysis kept draw {i} as {kept[str(i)]:+.5f}; seeded fit equal to it: {same}")
    print(f"median ratio seeded / full: {np.median(ratios):.2f}; largest |diff| {max(diffs):.1e}")


if __name__ == "__main__":
    main()
