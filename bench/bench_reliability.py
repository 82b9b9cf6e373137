"""What the reliability checks of issue 32 cost, each printing a table.

probe: a demo-size probe recording (the demo's pair, --n samples, the demo's generation length)
into a new store, with every added check timed inside the same run: the journal's parameter
hash (written into and checked on every block), the space reservation and its release around
each commit, the weights fingerprint (cached), the output-path rule and the store path's
resolution. Their sum is given as a share of the run's wall time (target <= 2%).

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python bench/bench_reliability.py probe --model embedded

verify: `verify` of a synthetic store of --gb gigabytes (probe sets of Gemma-3-270M's shape,
[samples, 18, 2048] float32 `mean` of random values and uint16 `fires`, as the writer stores
them: gzip 1, fletcher32); seconds and MB/s (target: 1 GB in <= 30 s).

    ... bench/bench_reliability.py verify --gb 1
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np


def _timed(owner, name: str, spent: dict) -> None:
    """Wrap `owner.name` so that the time spent in it is added to spent[name]."""
    real = getattr(owner, name)

    @functools.wraps(real)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - started

    setattr(owner, name, wrapper)


def bench_probe(model: str, n: int) -> None:
    from neuronoverlap.models import weights
    from neuronoverlap.options import DEMO_PAIR, DEMO_PROBES
    from neuronoverlap.pipeline import record_probes
    from neuronoverlap.store import journal, reader, space, writer

    spent: dict[str, float] = defaultdict(float)
    for owner, name in (
        (journal.Journal, "params_digest"),
        (journal.Journal, "_check_params"),
        (space, "reserve"),
        (space, "release"),
        (reader, "resolve_store"),
        (writer, "resolve_store"),
    ):
        _timed(owner, name, spent)
    pair = tuple(DEMO_PAIR.split("-"))
    options = DEMO_PROBES.__class__(n_samples=n, max_new_tokens=DEMO_PROBES.max_new_tokens)
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "run.h5"
        from neuronoverlap.models import load_model

        loaded = load_model(model)  # the load is not part of the recording's time
        started = time.perf_counter()
        record_probes(store, [pair], loaded, options, progress=False)
        total = time.perf_counter() - started
    added = sum(spent.values())
    if model == "embedded":  # what a checkpoint folder of this size costs to fingerprint
        from neuronoverlap.models.embedded import ensure_embedded_checkpoint

        folder = ensure_embedded_checkpoint()
        size = sum(p.stat().st_size for p in weights.weight_files(folder))
        with tempfile.TemporaryDirectory() as cache:
            import os

            os.environ["NEURONOVERLAP_CACHE"] = cache
            started = time.perf_counter()
            weights.weights_sha256(folder)
            first = time.perf_counter() - started
            started = time.perf_counter()
            weights.weights_sha256(folder)
            spent["weights_sha256 (cached)"] = time.perf_counter() - started
        print(f"weights_sha256 of a {size / 1e6:.0f} MB checkpoint folder: {first:.2f} s once, then cached")
        added = sum(spent.values())
    print(f"\nprobe recording {DEMO_PAIR} both ways, {n} samples each, {model}: {total:.2f} s wall")
    print(f"{'check':<22}{'seconds':>10}{'share':>9}")
    for name, seconds in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"{name:<22}{seconds:>10.4f}{seconds / total:>9.3%}")
    print(f"{'all added checks':<22}{added:>10.4f}{added / total:>9.3%}")


def _synthetic_store(path: Path, gigabytes: float) -> int:
    """A store of Gemma-3-270M-shape probe sets, about `gigabytes` GB on disk; its size."""
    from neuronoverlap.store import ModelInfo, StoreWriter
    from neuronoverlap.store.probe_layout import STRING_FIELDS, probe_dataset_layout

    n_layers, d_mlp, n = 18, 2048, 512
    info = ModelInfo("synthetic-gemma", "synthetic@0", n_layers, d_mlp)
    rng = np.random.default_rng(0)
    index = 0
    with StoreWriter(path, info) as writer:
        while not path.exists() or path.stat().st_size < gigabytes * 1e9:
            name = f"s{index}-t{index}"
            params = {"n_samples": n, "src": f"s{index}", "tgt": f"t{index}"}

            def fill(group, name=name, params=params):
                g = group.create_group(name)
                g.attrs["params"] = str(params)
                for key, kwargs in probe_dataset_layout(params, n, n_layers, d_mlp).items():
                    g.create_dataset(key, **kwargs)
                for start in range(0, n, 64):
                    rows = slice(start, start + 64)
                    g["mean"][rows] = rng.standard_normal((64, n_layers, d_mlp), dtype=np.float32)
                    g["fires"][rows] = rng.integers(0, 30, (64, n_layers, d_mlp), dtype=np.uint16)
                g["tokens"][...] = 30
                for key in STRING_FIELDS:
                    g[key][...] = [f"word {i}" for i in range(n)]

            writer.edit("probes", fill, new_bytes=n * n_layers * d_mlp * 6)
            index += 1
    return path.stat().st_size


def bench_verify(gigabytes: float, folder: str | None) -> None:
    from neuronoverlap.store.verify import verify_store

    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        path = Path(tmp) / "big.h5"
        started = time.perf_counter()
        size = _synthetic_store(path, gigabytes)
        built = time.perf_counter() - started
        started = time.perf_counter()
        report = verify_store(path)
        seconds = time.perf_counter() - started
    assert report.ok, report.damaged
    print(f"\nverify of a synthetic store ({built:.0f} s to write)")
    print(f"{'store GB':>9}{'objects':>9}{'seconds':>9}{'MB/s':>8}")
    print(f"{size / 1e9:>9.2f}{len(report.checked):>9}{seconds:>9.1f}{size / 1e6 / seconds:>8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("probe")
    p.add_argument("--model", default="embedded")
    p.add_argument("--n", type=int, default=32, help="samples per probe set (the demo's: 32)")
    p = sub.add_parser("verify")
    p.add_argument("--gb", type=float, default=1.0)
    p.add_argument("--folder", default=None, help="where to write the store (default: the temp folder)")
    args = parser.parse_args()
    if args.what == "probe":
        bench_probe(args.model, args.n)
    else:
        bench_verify(args.gb, args.folder)


if __name__ == "__main__":
    main()
