"""Benchmark top-activating contexts (issue 29): what they cost to record, to store, to look up.

Prints one table; the recording ratio is measured side by side in one run:
1. one corpus forward with its statistics (`CorpusStats`) with top-k vs without, each batch run
   twice side by side (the order alternating), embedded Gemma-3-270M at the demo's settings
   (48 FLORES dev sentences of de, batch 16): the median of the paired ratios and the ratio of
   the totals (the commit, which writes the contexts, is not timed);
2. the stored size of the contexts of the demo's 8 corpora (zh ja en de fr es it pt), beside
   the rest of that store;
3. `neuron` for 10 neurons on that store (contexts of 8 languages read back): the command's
   Python call (`cli.main`, best of 3) and the whole command in a new process.

Usage: .venv/bin/python bench/bench_topk.py [--model embedded] [--n 48] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

DEMO_LANGS = ("zh", "ja", "en", "de", "fr", "es", "it", "pt")


def stored_bytes(path: Path, under: str) -> int:
    total = 0
    with h5py.File(path, "r") as f:

        def add(name, obj):
            nonlocal total
            if isinstance(obj, h5py.Dataset) and (under in name) == (under != ""):
                total += obj.id.get_storage_size()

        f.visititems(add)
    return total


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--n", type=int, default=48, help="FLORES sentences per language (demo: 48)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--only-rate", action="store_true", help="the recording rows only")
    args = parser.parse_args()

    from neuronoverlap.cli import main as cli
    from neuronoverlap.models import load_model
    from neuronoverlap.probes import CorpusStats, flores_sentences, open_writer, record_corpus

    model = load_model(args.model)
    folder = Path(tempfile.mkdtemp(prefix="bench_topk_"))
    sentences, params = flores_sentences("de", args.n)
    batches = [sentences[i : i + args.batch] for i in range(0, len(sentences), args.batch)]
    times: dict = {None: [], args.k: []}
    cpu: dict = {None: [], args.k: []}  # this process's CPU time: steadier than wall time on a shared machine
    for round_index in range(args.rounds):
        for b, batch in enumerate(batches):  # each batch twice, side by side, the order alternating
            for k in (None, args.k) if (round_index + b) % 2 == 0 else (args.k, None):
                stats = CorpusStats(model.n_layers, model.d_mlp, k)
                start, start_cpu = time.perf_counter(), time.process_time()
                model.forward_activations(batch, stats)
                stats.end_batch(len(batch))
                times[k].append(time.perf_counter() - start)
                cpu[k].append(time.process_time() - start_cpu)
    paired = np.array(times[args.k]) / np.array(times[None])
    paired_cpu = np.array(cpu[args.k]) / np.array(cpu[None])
    if args.only_rate:
        print(
            f"wall: median paired {np.median(paired):.3f}, totals {sum(times[args.k]) / sum(times[None]):.3f}"
        )
        print(
            f"cpu:  median paired {np.median(paired_cpu):.3f}, totals {sum(cpu[args.k]) / sum(cpu[None]):.3f}"
        )
        print(
            f"{len(paired)} pairs; median batch {np.median(times[None]):.2f} s wall, "
            f"{np.median(cpu[None]):.2f} s cpu"
        )
        return

    store = folder / "demo-corpora.h5"
    with open_writer(store, model) as writer:
        for lang in DEMO_LANGS:
            sentences, params = flores_sentences(lang, args.n)
            record_corpus(model, writer, lang, sentences, params, progress=False, top_k=args.k)
    contexts = stored_bytes(store, "contexts")
    everything = store.stat().st_size

    pairs = zip(range(0, 18, 2), range(100, 2000, 200), strict=False)
    neurons = [f"{layer}:{index}" for layer, index in pairs]
    neurons.append("17:2047")  # 10 neurons over 10 layers
    latency = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli(["neuron", str(store), *neurons]) == 0
        latency = min(latency, time.perf_counter() - start)
    command = [sys.executable, "-m", "neuronoverlap", "neuron", str(store), *neurons]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    whole = time.perf_counter() - start

    mib = 2**20
    print(f"model {args.model}, {args.n} sentences per language, k = {args.k}, {args.rounds} rounds")
    from neuronoverlap.versions import library_versions

    print(", ".join(f"{name} {version}" for name, version in sorted(library_versions().items())))
    print("| measure | value |")
    print("| --- | --- |")
    print(
        f"| forward + statistics per batch of {args.batch}, without top-k (median) | "
        f"{np.median(times[None]):.2f} s |"
    )
    print(f"| the same with top-k (median) | {np.median(times[args.k]):.2f} s |")
    print(f"| with / without, median of {len(paired)} paired batches | {np.median(paired):.3f} |")
    print(f"| with / without, total time | {sum(times[args.k]) / sum(times[None]):.3f} |")
    print(f"| with / without, CPU time of this process, median of pairs | {np.median(paired_cpu):.3f} |")
    print(f"| with / without, CPU time, totals | {sum(cpu[args.k]) / sum(cpu[None]):.3f} |")
    print(f"| contexts of {len(DEMO_LANGS)} corpora, stored | {contexts / mib:.2f} MiB |")
    print(f"| that store in all (corpora only) | {everything / mib:.2f} MiB |")
    print(
        f"| `neuron` for {len(neurons)} neurons, 8 languages' contexts, in process (best of 3) | "
        f"{latency:.2f} s |"
    )
    print(f"| the same as a command (`python -m neuronoverlap neuron`, start-up included) | {whole:.2f} s |")


if __name__ == "__main__":
    main()
