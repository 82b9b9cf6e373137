"""A probe set's datasets in the store: their layout, and journal blocks written into them.
One rule for stores, shards and merges (`writer.py`, `merge.py`)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from neuronoverlap.errors import InputError
from neuronoverlap.store import counts, schema
from neuronoverlap.store.journal import Journal

#: HDF5's variable-length UTF-8 string type (prompts, generations, JSON documents).
STRING_DTYPE = h5py.string_dtype("utf-8")

#: The per-sample strings of a probe set.
STRING_FIELDS = ("prompts", "generations", "source_words", "target_words")


def unit_name(name: str, rows: tuple[int, int]) -> str:
    """Journal name of the samples `rows` of probe set `name`: 'de-fr@64-128'."""
    return f"{name}@{rows[0]}-{rows[1]}"


def probe_dataset_layout(params: dict, n: int, n_layers: int, d_mlp: int) -> dict[str, dict]:
    """Creation arguments of a probe set's datasets."""
    mean_dtype = params.get("mean_dtype", "float32")
    if mean_dtype not in schema.MEAN_DTYPES:
        raise InputError(f"mean_dtype {mean_dtype!r} is not one of {', '.join(schema.MEAN_DTYPES)}")
    chunked = {
        "shape": (n, n_layers, d_mlp),
        "chunks": (min(schema.CHUNK_ROWS, n), 1, d_mlp),
        "compression": schema.COMPRESSION,
        "compression_opts": schema.COMPRESSION_LEVEL,
        "fletcher32": True,
    }
    layout = {
        "mean": {**chunked, "dtype": mean_dtype, "shuffle": False},
        "fires": {**chunked, "dtype": counts.FIRES_DTYPE, "shuffle": True},
        "tokens": {"shape": (n,), "dtype": "int32", "fletcher32": True},
    }
    for key in STRING_FIELDS:
        layout[key] = {"shape": (n,), "dtype": STRING_DTYPE}
    return layout


def write_blocks(g: h5py.Group, journal: Journal, blocks: list[Path], row: int) -> int:
    """Write journal blocks into a probe set's datasets from sample `row` on; the row after."""
    mean_dtype = g["mean"].dtype
    required = ("mean", "tokens", *STRING_FIELDS)
    for path in blocks:
        journal.check_block(path, required)  # every block whole before the first byte is written
    for path in blocks:
        block = journal.load_block(path, required)
        size = block["tokens"].shape[0]
        rows = slice(row, row + size)
        g["mean"][rows] = block["mean"].astype(mean_dtype)
        g["fires"][rows] = counts.block_fires(block, f"journal block {path}")
        g["tokens"][rows] = block["tokens"]
        for key in STRING_FIELDS:
            # HDF5 strings cannot hold NUL: a model may generate one; keep it visible.
            g[key][rows] = [t.replace("\x00", "\ufffd") for t in block[key].tolist()]
        row += size
    return row


def top_state(top: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Top-k contexts from the journal, named as `contexts.write_contexts` takes them."""
    return {f"top_{name}": array for name, array in top.items()}
