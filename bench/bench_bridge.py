"""Benchmark bridge scoring and the main job (issue: bridge selection and the demo).

1. Bridge scoring of one pair with six candidates on a store of the embedded model: wall time
   and time per (layer, candidate) for the reference pairwise score, pairwise CKA and the
   set-level score, each with the same number of permutations.
2. With --demo: the whole `neuronoverlap demo` in a fresh store, wall time by stage.

Usage: .venv/bin/python bench/bench_bridge.py [--store store/demo.h5] [--pair zh-ja] [--demo]
(the store must hold the pair's probe sets: `neuronoverlap demo` or `select-bridge` records them)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", default="store/demo.h5")
    parser.add_argument("--pair", default="zh-ja")
    parser.add_argument("--bridges", default="en,de,fr,it,pt,es")
    parser.add_argument("--permutations", type=int, default=200)
    parser.add_argument("--demo", action="store_true", help="also time a full demo run from scratch")
    args = parser.parse_args()

    import torch

    from neuronoverlap.bridge import select_bridge
    from neuronoverlap.store import Store

    src, tgt = args.pair.split("-")
    bridges = args.bridges.split(",")
    store = Store(args.store)
    rows = []
    for method in ("reference", "cka", "set"):
        start = time.perf_counter()
        result = select_bridge(
            store, src, tgt, bridges, method=method, n_permutations=args.permutations, progress=False
        )
        seconds = time.perf_counter() - start
        cells = len(result.window) * len(bridges)
        rows.append(
            (
                f"{method}: {len(bridges)} bridges x layers {result.window[0]}-{result.window[-1]}",
                f"{seconds:.2f} s",
                f"{1000 * seconds / cells:.0f} ms per (layer, bridge); "
                f"chosen {result.chosen}, ranking {','.join(result.ranking())}",
            )
        )

    demo_rows = []
    if args.demo:
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
        demo_rows = [(f"demo stage: {k}", f"{v:.0f} s", "") for k, v in timings.items()]
        demo_rows.append(("demo wall time, process start to exit", f"{wall:.0f} s", "target < 900 s"))

    print(
        f"store: {store.path} ({store.model_name}, n_samples "
        f"{store.probes(src, tgt).n_samples}+{store.probes(tgt, src).n_samples}), "
        f"{args.permutations} permutations, torch threads {torch.get_num_threads()}"
    )
    print("| measure | value | note |")
    print("| --- | --- | --- |")
    for name, value, note in rows + demo_rows:
        print(f"| {name} | {value} | {note} |")


if __name__ == "__main__":
    main()
