"""Benchmark the bridge predictors (issue 27) against the validation study they join: each must
add at most 5% to the study's wall time.

One run, one model, side by side: the study's own work for one pair (`run_study`: zero-shot and
every bridge's two steps on --words test words, one example seed, a fresh cache) and each
predictor family on the same pair (`predictor_table`, the model families on --predictor-n train
words), on a fresh store holding the probe sets, corpora and per-sentence counts the store
families read. The study's time per (word, seed) and the model families' time per train word
are then scaled to a full-size study (--full-words test words, --full-seeds seeds,
--full-predictor-n train words): the printed share is predictor time / study time there.

Usage (2 threads; keep it short on a shared machine):
    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_predictors.py --model tiny-llama
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

FAMILIES = ("uriel", "latent", "competence", "neuron-sets", "representation")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="tiny-llama")
    parser.add_argument("--pair", default="de-fr")
    parser.add_argument("--bridges", default="en,it")
    parser.add_argument("--words", type=int, default=8, help="test words the study part evaluates")
    parser.add_argument("--predictor-n", type=int, default=8, help="train words of the model families")
    parser.add_argument("--full-words", type=int, default=1500, help="test words per pair, full size")
    parser.add_argument("--full-seeds", type=int, default=3)
    parser.add_argument("--full-predictor-n", type=int, default=100)
    parser.add_argument("--families", default=",".join(FAMILIES), help="predictor families timed")
    args = parser.parse_args()
    families = args.families.split(",")

    from neuronoverlap.analyses.sentences import record_sentence_counts
    from neuronoverlap.cli import main as cli
    from neuronoverlap.evaluation.validation import StudyConfig, run_study
    from neuronoverlap.models import load_model
    from neuronoverlap.predictors import predictor_table
    from neuronoverlap.probes import flores_sentences, open_writer
    from neuronoverlap.versions import library_versions

    src, tgt = args.pair.split("-")
    bridges = args.bridges.split(",")
    model = load_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "run.h5"
        common = ["--model", args.model, "--store", str(store), "--quiet"]
        for p in (
            []
            if not {"neuron-sets", "representation"} & set(families)
            else [f"{src}-{tgt}", *(f"{b}-{x}" for b in bridges for x in (src, tgt))]
        ):
            assert cli(["probe", "--pair", p, "-n", "4", "--max-new-tokens", "3", *common]) == 0
        langs = [src, tgt, *bridges] if {"neuron-sets", "representation"} & set(families) else []
        if langs:
            assert cli(["corpus", "--langs", ",".join(langs), "-n", "8", *common]) == 0
        with open_writer(store, model) as writer:
            for lang in langs:
                sentences, params = flores_sentences(lang, 8)
                record_sentence_counts(model, writer, lang, sentences, params, batch_size=8, progress=False)

        config = StudyConfig(example_seeds=(0,), n=args.words, n_bootstrap=10, n_splits=4)
        start = time.perf_counter()
        runs = run_study(model, [(src, tgt)], bridges, Path(tmp) / "study", config, progress=False)
        study = time.perf_counter() - start
        n_words = len(next(iter(runs.values())).words)
        per_word_seed = study / n_words
        full_study = per_word_seed * args.full_words * args.full_seeds

        rows = []
        for family in families:
            start = time.perf_counter()
            predictor_table(list(runs.values()), [family], model=model, store=store, n=args.predictor_n)
            took = time.perf_counter() - start
            scaled = (
                took * args.full_predictor_n / args.predictor_n
                if family in ("latent", "competence")
                else took
            )
            rows.append((family, took, scaled, scaled / full_study))

    print(f"model {args.model}, pair {args.pair}, bridges {args.bridges}; {library_versions()}")
    print(f"study part: {study:.1f} s for {n_words} words x 1 seed ({per_word_seed:.2f} s per word-seed);")
    print(f"full size: {args.full_words} words x {args.full_seeds} seeds -> {full_study:.0f} s")
    print(f"{'predictor':<16} {'measured s':>10} {'full-size s':>12} {'share of study':>15}")
    for family, took, scaled, share in rows:
        print(f"{family:<16} {took:>10.2f} {scaled:>12.1f} {share:>14.1%}")


if __name__ == "__main__":
    main()
