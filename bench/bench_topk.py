"""Benchmark top-activating contexts (issue 29): what they cost to record, to store, to look up.

Prints one table; the recording ratio is measured side by side in one run:
1. `record_corpus` of one language with top-k vs without, interleaved round by round (best of
   the rounds each), embedded Gemma-3-270M at the demo's settings (48 FLORES dev sentences,
   batch 16);
2. the stored size of the contexts of the demo's 8 corpora (zh ja en de fr es it pt), beside
   the rest of that store;
3. `neuron` for 10 neurons on that store (contexts of 8 languages read back), wall time of the
   command's Python call (`cli.main`), best of 3.

Usage: .venv/bin/python bench/bench_topk.py [--model embedded] [--n 48] [--rounds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

import h5py

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
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--k", type=int, default=8)
    args = parser.parse_args()

    from neuronoverlap.cli import main as cli
    from neuronoverlap.models import load_model
    from neuronoverlap.probes import flores_sentences, open_writer, record_corpus

    model = load_model(args.model)
    folder = Path(tempfile.mkdtemp(prefix="bench_topk_"))
    sentences, params = flores_sentences("de", args.n)
    best = {None: float("inf"), args.k: float("inf")}
    for round_index in range(args.rounds):
        for k in (None, args.k) if round_index % 2 == 0 else (args.k, None):
            path = folder / f"rate-{round_index}-{k}.h5"
            start = time.perf_counter()
            with open_writer(path, model) as writer:
                record_corpus(model, writer, "de", sentences, params, progress=False, top_k=k)
            best[k] = min(best[k], time.perf_counter() - start)

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

    mib = 2**20
    print(f"model {args.model}, {args.n} sentences per language, k = {args.k}, {args.rounds} rounds")
    print("| measure | value |")
    print("| --- | --- |")
    print(f"| record_corpus de, without top-k (best) | {best[None]:.2f} s |")
    print(f"| record_corpus de, with top-k (best) | {best[args.k]:.2f} s |")
    print(f"| ratio with / without | {best[args.k] / best[None]:.3f} |")
    print(f"| contexts of {len(DEMO_LANGS)} corpora, stored | {contexts / mib:.2f} MiB |")
    print(f"| that store in all (corpora only) | {everything / mib:.2f} MiB |")
    print(f"| `neuron` for {len(neurons)} neurons, 8 languages' contexts (best of 3) | {latency:.2f} s |")


if __name__ == "__main__":
    main()
