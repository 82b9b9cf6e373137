"""Benchmark the probe recorder and the store (issue: probe recorder and HDF5 store).

Prints one table; ratios are measured side by side in one run:
1. recording (greedy generation, then one teacher-forced recording pass over prompt + answer)
   vs the same greedy generation alone, batch 16, interleaved batch by batch;
2. batched recording (batch 16) vs one prompt at a time (the reference code's strategy);
3. peak memory of recording 200 vs 2000 probe samples (separate processes, VmHWM);
4. time to read one layer of all samples back from the store.

Usage: .venv/bin/python bench/bench_recorder.py [--model embedded] [--n 64] [--big 2000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MEMORY_SCRIPT = r"""
import sys, time
from neuronoverlap.models import StopRule, load_model
from neuronoverlap.probes import open_writer, record_probe_set, translation_probe_sets
from neuronoverlap.store import Store
model_spec, n, store_path, max_new = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
model = load_model(model_spec)
fwd, _ = translation_probe_sets("en", "de", n, seed=0, split="all")
with open_writer(store_path, model) as writer:
    record_probe_set(model, writer, fwd, batch_size=16, stop=StopRule(max_new_tokens=max_new), progress=False)
peak_kib = int([l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1])
view = Store(store_path).probes("en", "de")
t = time.perf_counter(); layer = view.layer(model.n_layers // 2); read_s = time.perf_counter() - t
print(peak_kib, read_s, layer.shape[0])
"""


def timed(fn, repeats: int = 1) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--n", type=int, default=64, help="prompts for the throughput rows")
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--big", type=int, default=2000)
    parser.add_argument("--max-new-tokens", type=int, default=30)
    parser.add_argument("--stop-rule", default="quote", choices=["quote", "reference"])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    parser.add_argument("--skip-memory", action="store_true", help="only the throughput rows")
    args = parser.parse_args()

    import torch

    from neuronoverlap.models import StopRule, generate_greedy, load_model
    from neuronoverlap.probes import ProbeBatchStats, translation_probe_sets

    if args.threads:
        from neuronoverlap.threads import set_threads

        set_threads(args.threads)  # kept by load_model (torch.set_num_threads alone was reset by it)
    model = load_model(args.model)
    prompts = translation_probe_sets("en", "de", args.n, seed=0)[0].prompts
    stop = StopRule.named(args.stop_rule, max_new_tokens=args.max_new_tokens)
    batch = 16
    batches = [prompts[i : i + batch] for i in range(0, len(prompts), batch)]
    counted = sum(g.n_counted_tokens for b in batches for g in generate_greedy(model, b, stop))

    cpu_seconds = {False: 0.0, True: 0.0}

    def one_batch(b, record: bool) -> float:
        start, cpu_start = time.perf_counter(), time.process_time()
        stats = ProbeBatchStats(len(b), model.n_layers, model.d_mlp) if record else None
        generate_greedy(model, b, stop, stats)
        cpu_seconds[record] += time.process_time() - cpu_start
        return time.perf_counter() - start

    # Plain and recorded runs alternate batch by batch, so a change in the machine's load hits
    # both sides alike; each side keeps its best round.
    for b in batches:  # warm-up: every batch shape once, both ways
        one_batch(b, False)
        one_batch(b, True)
    print(f"KV cache: {model.kv_cache_status}", flush=True)
    cpu_seconds.update({False: 0.0, True: 0.0})
    plain_rounds, recorded_rounds = [], []
    for _ in range(args.rounds):
        plain_total = recorded_total = 0.0
        for b in batches:
            plain_total += one_batch(b, False)
            recorded_total += one_batch(b, True)
        plain_rounds.append(plain_total)
        recorded_rounds.append(recorded_total)
    # the median of the per-round ratios: robust to a round that another process slowed
    ratios = sorted(r / p for p, r in zip(plain_rounds, recorded_rounds, strict=True))
    ratio = ratios[len(ratios) // 2]
    t_plain, t_rec = min(plain_rounds), min(recorded_rounds)
    start = time.perf_counter()
    for p in prompts:
        generate_greedy(model, [p], stop, ProbeBatchStats(1, model.n_layers, model.d_mlp))
    t_single = time.perf_counter() - start

    rows = [
        ("plain greedy generation, no hooks (batch 16)", f"{counted / t_plain:,.0f} tok/s", ""),
        (
            "generate + teacher-forced recording pass (batch 16)",
            f"{counted / t_rec:,.0f} tok/s",
            f"{ratio:.2f}x plain generation, median of {len(ratios)} rounds "
            f"({ratios[0]:.2f}-{ratios[-1]:.2f}; target <= 1.10x)",
        ),
        (
            "the same, in process CPU seconds (all rounds)",
            f"{cpu_seconds[True]:.1f} s vs {cpu_seconds[False]:.1f} s",
            f"{cpu_seconds[True] / cpu_seconds[False]:.2f}x (less sensitive to other processes)",
        ),
        (
            "recorder, one prompt at a time",
            f"{counted / t_single:,.0f} tok/s",
            f"batched is {t_single / t_rec:.1f}x faster (target >= 5x)",
        ),
    ]

    if args.skip_memory:
        args.small = args.big = 0
    with tempfile.TemporaryDirectory() as tmp:
        measured = {}
        for n in (args.small, args.big) if args.small else ():
            out = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    MEMORY_SCRIPT,
                    args.model,
                    str(n),
                    str(Path(tmp) / f"m{n}.h5"),
                    str(args.max_new_tokens),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()
            measured[n] = (int(out[0]) / 1024, float(out[1]), int(out[2]))
        small, big = measured.get(args.small), measured.get(args.big)
        rows += (
            []
            if not small
            else [
                (f"peak RSS recording {args.small} samples", f"{small[0]:,.0f} MB", ""),
                (
                    f"peak RSS recording {args.big} samples",
                    f"{big[0]:,.0f} MB",
                    f"growth {big[0] - small[0]:+,.0f} MB (target < 100 MB)",
                ),
                (f"store read: one layer of {big[2]} samples", f"{big[1]:.3f} s", "target < 0.2 s"),
            ]
        )

    print(
        f"model: {model.name} ({model.n_layers} x {model.d_mlp}), stop rule {args.stop_rule}, "
        f"torch threads {torch.get_num_threads()}, "
        f"{args.n} prompts, max_new_tokens {args.max_new_tokens}"
    )
    width = max(len(r[0]) for r in rows)
    print(f"| {'measure'.ljust(width)} | value | note |")
    print(f"| {'-' * width} | --- | --- |")
    for name, value, note in rows:
        print(f"| {name.ljust(width)} | {value} | {note} |")


if __name__ == "__main__":
    main()
