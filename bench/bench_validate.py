"""Benchmark the validation study's evaluation (`evaluation.validation.run_study`): prompts per
second and the cost per pair and per 1000 test words.

Runs the study protocol (one-word lines, 5 non-identical examples, `--seeds` example seeds) on
`--n` seeded test words of each pair, zero-shot and through every bridge, into a fresh cache
folder (so everything is generated), and times it. A word costs seeds x (1 + 2 x bridges)
generations (zero-shot, step 1 and step 2 per bridge; step 1 is shared by pairs with the same
source only where their words coincide). The table scales the measured time linearly to 1000
words and to a full MUSE test split (1500 words); the HSIC selection (probe recording) is not
included.

Usage: .venv/bin/python bench/bench_validate.py [--model embedded] [--pairs de-fr]
       [--bridges en,it] [--n 16] [--seeds 1] [--batch-size 16] [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--pairs", default="de-fr")
    parser.add_argument("--bridges", default="en,it")
    parser.add_argument("--n", type=int, default=16, help="test words per pair (default: 16)")
    parser.add_argument("--seeds", type=int, default=1, help="example seeds (default: 1)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import torch
    import transformers

    from neuronoverlap.evaluation.validation import GenerationCache, StudyConfig, run_study
    from neuronoverlap.models import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.model, device=args.device)
    pairs = [tuple(p.split("-")) for p in args.pairs.split(",")]
    bridges = args.bridges.split(",")
    config = StudyConfig(example_seeds=tuple(range(args.seeds)), n=args.n, batch_size=args.batch_size)
    counted = {"n": 0}
    original = GenerationCache.generate

    def counting(self, *a, **k):
        result = original(self, *a, **k)
        counted["n"] = self.n_generated
        return result

    GenerationCache.generate = counting
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        runs = run_study(model, pairs, bridges, out, config, progress=False)
        seconds = time.perf_counter() - started
    words = sum(len(r.words) for r in runs.values())
    prompts = counted["n"]
    print(
        f"model {model.fingerprint()}, {args.device}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"{platform.processor() or platform.machine()}"
    )
    print(
        f"pairs {args.pairs}, bridges {args.bridges}, {args.n} words/pair, {args.seeds} seed(s), "
        f"batch {args.batch_size}"
    )
    print(
        "| words | generations | seconds | generations/s | s per word | s per 1000 words "
        "| s per pair (1500 words) |"
    )
    print("|---|---|---|---|---|---|---|")
    per_word = seconds / words
    print(
        f"| {words} | {prompts} | {seconds:.1f} | {prompts / seconds:.2f} | {per_word:.2f} | "
        f"{1000 * per_word:.0f} | {1500 * per_word:.0f} |"
    )


if __name__ == "__main__":
    main()
