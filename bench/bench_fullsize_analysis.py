"""Estimate the full-size analysis's own cost (evaluation/fullsize_analysis.py) from short measured
runs, scaled to the study's pairs: the model-run parts on the given model (competence: greedy BLI
legs; latent: one lens forward per word; the FLORES statistics the store lacks: one forward per
sentence), and Test 2's mixed model at the study's full shape (a synthetic data set of the same
rows, pairs and words; `--mixed` fits, each the cost of one of the 201 fits).

Scaling (the study's defaults): P pairs with B candidates each (20 European pairs x 4, 10 composed
x 5); competence runs 2 legs x --predictor-n words per candidate; latent --predictor-n prompts
per pair; FLORES: 2 x L languages x 200 sentences (corpus and per-sentence statistics, where
missing); Test 2: 1 + 200 fits. HSIC_repaired is not timed here (it needs a store with the study's
probe sets; see docs/performance.md for the repaired selection's cost).

Usage (one thread; keep it short on a shared machine):
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_fullsize_analysis.py --model embedded --words 4
"""

from __future__ import annotations

import argparse
import time


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="tiny-llama")
    parser.add_argument("--pair", default="es-it")
    parser.add_argument("--bridge", default="en")
    parser.add_argument("--words", type=int, default=4, help="train words per measured leg / lens run")
    parser.add_argument("--sentences", type=int, default=8, help="FLORES sentences forwarded")
    parser.add_argument("--mixed", type=int, default=1, help="full-shape mixed-model fits timed (0: none)")
    parser.add_argument("--predictor-n", type=int, default=100)
    parser.add_argument("--languages", type=int, default=11, help="study languages without FLORES stats")
    args = parser.parse_args()

    import numpy as np

    from neuronoverlap.analyses.sentences import SentenceFireCounts
    from neuronoverlap.models import load_model
    from neuronoverlap.predictors.competence import leg_accuracy
    from neuronoverlap.predictors.latent import latent_profile
    from neuronoverlap.probes import flores_sentences

    src, tgt = args.pair.split("-")
    model = load_model(args.model)
    leg_accuracy(model, src, args.bridge, n=1, seed=0)  # warm-up (prefix cache, kernels)
    leg = _timed(lambda: leg_accuracy(model, src, args.bridge, n=args.words, seed=25)) / args.words
    lens = _timed(
        lambda: latent_profile(model, src, tgt, [args.bridge], n=args.words, seed=25, progress=False)
    )
    lens /= args.words
    sentences, _ = flores_sentences(src, args.sentences, "dev", None)
    counts = SentenceFireCounts(len(sentences), model.n_layers, model.d_mlp)
    forward = _timed(lambda: model.forward_activations(list(sentences), counts)) / len(sentences)

    candidates = 20 * 4 + 10 * 5
    rows = [
        ("competence (generations)", 2 * args.predictor_n * candidates, leg),
        ("latent (lens forwards)", 30 * args.predictor_n, lens),
        ("FLORES statistics (forwards)", 2 * args.languages * 200, forward),
    ]
    if args.mixed:
        from neuronoverlap.evaluation.mechanism import fit_mixed_logistic, word_rows
        from neuronoverlap.evaluation.study import PairData

        rng = np.random.default_rng(0)
        pairs, competence, hsic = [], {}, {}
        for i in range(30):
            bridges = [f"b{j}" for j in range(4 if i < 20 else 5)]
            p = rng.random(len(bridges)) * 0.3
            hits = (rng.random((len(bridges), 300, 3)) < p[:, None, None]).mean(axis=2)
            pair = PairData(f"s{i}", f"t{i}", bridges, hits)
            pairs.append(pair)
            competence[pair.name] = dict(zip(bridges, p, strict=True))
            hsic[pair.name] = dict(zip(bridges, rng.random(len(bridges)), strict=True))
        data = word_rows(pairs, competence, hsic, n_seeds=3)
        fit = np.mean(
            [_timed(lambda: fit_mixed_logistic(data, fit_method="L-BFGS-B")) for _ in range(args.mixed)]
        )
        rows.append((f"Test 2 fits ({len(data)} rows, L-BFGS-B)", 201, fit))
    print(f"model {args.model}, pair {args.pair}, bridge {args.bridge}, {args.words} words measured")
    print(f"{'part':<40} {'units':>8} {'s/unit':>8} {'hours':>7}")
    total = 0.0
    for name, units, per in rows:
        total += units * per
        print(f"{name:<40} {units:>8} {per:>8.3f} {units * per / 3600:>7.2f}")
    print(f"{'total (HSIC_repaired not included)':<40} {'':>8} {'':>8} {total / 3600:>7.2f}")


if __name__ == "__main__":
    main()
