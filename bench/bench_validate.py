"""Benchmark the validation study's evaluation (`evaluation.validation.run_study`) with and
without prefix reuse, side by side: generations per second, their ratio, and peak RSS.

Runs the study protocol (one-word lines, 5 non-identical examples, `--seeds` example seeds) on
`--n` seeded test words of each pair, zero-shot and through every bridge, into a fresh cache
folder each time (so everything is generated): for each thread count in `--threads`, first
reading every prompt whole (`prefix_cache=False`), then reading each few-shot prefix once
(`prefix_cache=True`), and checks that both give the same answers. Generations only: the
study's gold log-probs are off here (`StudyConfig.logprob=False`). A word costs seeds x
(1 + 2 x bridges) generations (zero-shot, step 1 and step 2 per bridge). The table scales the
measured time to 1000 words; the HSIC selection (probe recording) is not included. Peak RSS is
the process's high-water mark so far (it only grows).

Usage: .venv/bin/python bench/bench_validate.py [--model embedded] [--pairs de-fr]
       [--bridges en,it] [--n 16] [--seeds 1] [--batch-size 16] [--threads 1,2] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
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
    parser.add_argument("--threads", default="1,2", help="torch thread counts to run (default: 1,2)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import torch
    import transformers

    from neuronoverlap.evaluation.generation_cache import GenerationCache
    from neuronoverlap.evaluation.validation import StudyConfig, run_study
    from neuronoverlap.models import load_model

    model = load_model(args.model, device=args.device)
    pairs = [tuple(p.split("-")) for p in args.pairs.split(",")]
    bridges = args.bridges.split(",")
    config = StudyConfig(
        example_seeds=tuple(range(args.seeds)), n=args.n, batch_size=args.batch_size, logprob=False
    )
    counted = {"n": 0}
    original = GenerationCache.generate

    def counting(self, *a, **k):
        result = original(self, *a, **k)
        counted["n"] = self.n_generated
        return result

    GenerationCache.generate = counting

    def timed(prefix_cache: bool):
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            runs = run_study(model, pairs, bridges, out, config, progress=False, prefix_cache=prefix_cache)
            seconds = time.perf_counter() - started
        return runs, seconds, counted["n"]

    print(
        f"model {model.fingerprint()}, {args.device}, torch {torch.__version__}, transformers "
        f"{transformers.__version__}, {platform.processor() or platform.machine()}, "
        f"{model.kv_cache_status}; load average before {os.getloadavg()[0]:.2f}"
    )
    print(
        f"pairs {args.pairs}, bridges {args.bridges}, {args.n} words/pair, {args.seeds} seed(s), "
        f"batch {args.batch_size}"
    )
    print(
        "| threads | prefix reuse | generations | seconds | generations/s | s per 1000 words "
        "| speed-up | same answers | peak RSS (MB) | load (1 min) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        whole, whole_seconds, generations = timed(False)
        reused, reused_seconds, _ = timed(True)
        words = sum(len(r.words) for r in whole.values())
        same = {k: r.seeds for k, r in whole.items()} == {k: r.seeds for k, r in reused.items()}
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        for label, seconds in (("no", whole_seconds), ("yes", reused_seconds)):
            ratio = whole_seconds / seconds
            print(
                f"| {threads} | {label} | {generations} | {seconds:.1f} | {generations / seconds:.2f} | "
                f"{1000 * seconds / words:.0f} | {ratio:.2f}x | {'yes' if same else 'NO'} | {rss:.0f} | "
                f"{os.getloadavg()[0]:.2f} |"
            )


if __name__ == "__main__":
    main()
