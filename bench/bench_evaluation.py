"""Benchmark the BLI evaluation on the embedded Gemma-3-270M: words per second, batched versus
one prompt at a time.

Runs `evaluate_bli` on the same seeded sample of en-de MUSE test words (paper prompts,
zero-shot and bridged through fr: three generations per word) with `--batch-size` prompts per
batch and with one prompt per batch. The two modes alternate for `--repeats` rounds and each
keeps its best time, so that both see the same machine load; the ratio is of those best times.
The table also gives the share of words whose answers agree between the two modes (left
padding changes float rounding, rarely the greedy answer) and both precision@1 values.

Usage: .venv/bin/python bench/bench_evaluation.py [--n 32] [--batch-size 16] [--repeats 2]
       [--threads N] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=32, help="source words (default: 32)")
    parser.add_argument("--batch-size", type=int, default=16, help="batched mode (default: 16)")
    parser.add_argument("--repeats", type=int, default=2, help="alternating rounds (default: 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import torch

    from neuronoverlap.evaluation.bli import evaluate_bli
    from neuronoverlap.models import load_model

    if args.threads:
        from neuronoverlap.threads import set_threads

        set_threads(args.threads)  # kept by load_model (torch.set_num_threads alone was reset by it)
    started = time.perf_counter()
    model = load_model("embedded", device=args.device)
    load_seconds = time.perf_counter() - started
    evaluate_bli(model, "en", "de", n=4, batch_size=4, progress=False, n_resamples=10)  # warm-up

    modes = {f"batched ({args.batch_size})": args.batch_size, "one at a time (1)": 1}
    best: dict[str, float] = {name: float("inf") for name in modes}
    results = {}
    for _ in range(args.repeats):
        for name, batch_size in modes.items():
            start = time.perf_counter()
            results[name] = evaluate_bli(
                model,
                "en",
                "de",
                ["fr"],
                n=args.n,
                seed=0,
                batch_size=batch_size,
                progress=False,
                n_resamples=10,
            )
            best[name] = min(best[name], time.perf_counter() - start)

    print(
        f"model {model.fingerprint()} on {args.device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}; "
        f"model load {load_seconds:.1f} s; load average at the end "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    print(
        f"en-de MUSE test, n = {args.n} words, zero-shot + bridged via fr (3 generations per "
        f"word), best of {args.repeats}"
    )
    print()
    print("| mode | seconds | words/s | prompts/s | p@1 zero-shot | p@1 via fr |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name in modes:
        seconds = best[name]
        result = results[name]
        print(
            f"| {name} | {seconds:.1f} | {args.n / seconds:.2f} | {3 * args.n / seconds:.1f} | "
            f"{result.accuracy_of('zero-shot'):.3f} | {result.accuracy_of('bridge:fr'):.3f} |"
        )
    batched, single = (results[name] for name in modes)
    same = sum(
        a.answer == b.answer
        for condition in ("zero-shot", "bridge:fr")
        for a, b in zip(
            batched.conditions[condition].records, single.conditions[condition].records, strict=True
        )
    )
    names = list(modes)
    print()
    print(
        f"speed-up of batching: {best[names[1]] / best[names[0]]:.2f}x; answers identical in "
        f"both modes: {same} of {2 * args.n}"
    )


if __name__ == "__main__":
    main()
