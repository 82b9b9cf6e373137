"""Top-activating contexts in a store (schema 3): the `contexts` group of a corpus or probe set.

    contexts/                 attrs: k, unit ('sentence' or 'sample'), sha256
        value     float32 [layer, neuron, k]   a sample's largest act_fn(gate), descending; -inf: empty
        sample    int32   [layer, neuron, k]   the FLORES sentence (or probe sample) index; -1: empty
        position  int32   [layer, neuron, k]   its token, counted from the sample's first token
        token_spans int32 [token, 2]           corpora: every token's characters [start, end) in
        text_tokens int32 [sentence]           its sentence; the sentences' token counts

Layout and size in docs/store.md; how the top-k is kept, `probes/topk.py`. The text itself is
not stored: a corpus's sentences are read back from FLORES-200 by index (checked against the
corpus's `data_sha256`).
"""

from __future__ import annotations

from collections.abc import Mapping

import h5py
import numpy as np

from neuronoverlap.errors import InputError
from neuronoverlap.store import schema

CONTEXTS = "contexts"
#: The arrays of a top-k, by name (their dataset names in a `contexts` group; `top_<name>` in a
#: journal's blocks and states).
FIELDS = TOP_FIELDS = ("value", "sample", "position")
SPAN_FIELDS = ("token_spans", "text_tokens")
HINT = "record contexts with `neuronoverlap corpus --top-k K` into a new store (schema 3)"


def empty_top(n_layers: int, d_mlp: int, k: int) -> dict[str, np.ndarray]:
    """A top-k holding nothing: every slot empty."""
    shape = (n_layers, d_mlp, k)
    return {
        "value": np.full(shape, -np.inf, dtype=np.float32),
        "sample": np.full(shape, -1, dtype=np.int32),
        "position": np.full(shape, -1, dtype=np.int32),
    }


def merge_top(parts: list[dict[str, np.ndarray]], k: int) -> dict[str, np.ndarray]:
    """The exact top-k of the union of `parts` (top-ks of disjoint sets of samples, any widths):
    (value descending, sample ascending); empty slots last."""
    if not parts:
        raise InputError("no top-k to merge")
    value = np.concatenate([p["value"] for p in parts], axis=-1).astype(np.float32)
    sample = np.concatenate([p["sample"] for p in parts], axis=-1).astype(np.int32)
    position = np.concatenate([p["position"] for p in parts], axis=-1).astype(np.int32)
    empty = value == -np.inf
    sample = np.where(empty, np.iinfo(np.int32).max, sample)  # empty slots after any sample
    order = np.lexsort((sample, -value), axis=-1)[..., :k]
    out = {
        "value": np.take_along_axis(value, order, -1),
        "sample": np.take_along_axis(sample, order, -1),
        "position": np.take_along_axis(position, order, -1),
    }
    if out["value"].shape[-1] < k:  # fewer candidates than k: pad with empty slots
        pad = empty_top(*out["value"].shape[:-1], k - out["value"].shape[-1])
        out = {name: np.concatenate([out[name], pad[name]], axis=-1) for name in FIELDS}
    return _clear_empty(out)


def _clear_empty(top: dict) -> dict:
    empty = top["value"] == -np.inf
    top["sample"] = np.where(empty, -1, top["sample"]).astype(np.int32)
    top["position"] = np.where(empty, -1, top["position"]).astype(np.int32)
    return top


def journal_top(journal, blocks: list, k: int) -> dict[str, np.ndarray]:
    """The exact top-k over a journal's blocks (each holds its own samples' top-k); only the
    top-k arrays are read."""
    from neuronoverlap.store.journal import _damage_is_input_error

    keys = tuple(f"top_{name}" for name in FIELDS)
    parts = []
    for path in blocks:
        journal.check_block(path, keys)
        with _damage_is_input_error(path), np.load(path, allow_pickle=False) as data:
            parts.append({name: data[f"top_{name}"] for name in FIELDS})
    return merge_top(parts, k)


def stored_top(group: h5py.Group) -> dict[str, np.ndarray]:
    """The whole top-k of a `contexts` group."""
    return {name: group[CONTEXTS][name][()] for name in FIELDS}


def write_contexts(group: h5py.Group, state: Mapping[str, np.ndarray], unit: str) -> None:
    """The `contexts` group of a corpus or probe set from a top-k (`top_value`, `top_sample`,
    `top_position`) and, for corpora, `token_spans` and `text_tokens`."""
    g = group.create_group(CONTEXTS)
    value = np.asarray(state["top_value"], dtype=np.float32)
    n_layers, d_mlp, k = value.shape
    g.attrs["k"] = k
    g.attrs["unit"] = unit
    chunks = (1, min(d_mlp, 1024), k)
    arrays = {
        "value": value,
        "sample": np.asarray(state["top_sample"], dtype=np.int32),
        "position": np.asarray(state["top_position"], dtype=np.int32),
    }
    for name, data in arrays.items():
        g.create_dataset(name, data=data, chunks=chunks, shuffle=True, fletcher32=True, **_gzip())
    for name in SPAN_FIELDS:
        if name in state:
            data = np.asarray(state[name], dtype=np.int32)
            g.create_dataset(name, data=data, shuffle=True, fletcher32=True, **_gzip())


def _gzip() -> dict:
    return {"compression": schema.COMPRESSION, "compression_opts": schema.COMPRESSION_LEVEL}


def has_contexts(group: h5py.Group) -> bool:
    return CONTEXTS in group


def read_top(group: h5py.Group, neurons: list[tuple[int, int]]) -> dict[str, np.ndarray]:
    """The top-k of `neurons` ((layer, neuron) pairs): each field [len(neurons), k]."""
    g = group[CONTEXTS]
    out = {name: [] for name in TOP_FIELDS}
    for layer, neuron in neurons:
        for name in TOP_FIELDS:
            out[name].append(g[name][layer, neuron])
    return {name: np.array(rows) for name, rows in out.items()}


def read_spans(group: h5py.Group) -> list[np.ndarray]:
    """Each sentence's token spans [token, 2] (corpora)."""
    g = group[CONTEXTS]
    if "token_spans" not in g:
        return []
    counts = g["text_tokens"][()]
    return np.split(g["token_spans"][()], np.cumsum(counts)[:-1]) if len(counts) else []


def check_contexts(group: h5py.Group, n_samples: int) -> list[str]:
    """What is wrong with a `contexts` group, beyond its checksums: shapes, order, indices."""
    g = group[CONTEXTS]
    problems = []
    shape = g["value"].shape
    if any(g[name].shape != shape for name in TOP_FIELDS) or len(shape) != 3 or shape[2] != g.attrs["k"]:
        return [f"{g.name}: value, sample and position differ in shape or from k"]
    value, sample, position = (g[name][()] for name in TOP_FIELDS)
    empty = value == -np.inf
    if np.any(value[..., 1:] > value[..., :-1]):  # compared, not subtracted: -inf - -inf is nan
        problems.append(f"{g.name}/value: not in descending order")
    if np.any(empty != (sample == -1)) or np.any(empty != (position == -1)):
        problems.append(f"{g.name}: empty slots disagree between value, sample and position")
    if np.any(sample[~empty] >= n_samples) or np.any(sample[~empty] < 0):
        return [*problems, f"{g.name}/sample: an index outside 0..{n_samples - 1}"]
    if np.any(position[~empty] < 0):
        problems.append(f"{g.name}/position: a negative token position")
    if "text_tokens" in g:
        counts = g["text_tokens"][()]
        if counts.shape != (n_samples,) or int(counts.sum()) != g["token_spans"].shape[0]:
            problems.append(f"{g.name}/text_tokens: does not match the samples or token_spans")
        elif np.any(position[~empty] >= counts[sample[~empty]]):
            problems.append(f"{g.name}/position: a token beyond its sentence")
    return problems


def contexts_problems(f: h5py.File) -> list[str]:
    """`check_contexts` of every corpus and probe set of a store that holds contexts."""
    model = f.attrs["model_name"]
    model = schema.model_group(model.decode() if isinstance(model, bytes) else str(model))
    problems = []
    for kind in (schema.CORPORA, schema.PROBES):
        groups = f.get(f"{model}/{kind}")
        for name in sorted(groups) if groups is not None else []:
            group = groups[name]
            if has_contexts(group):
                n = int(group["n_sentences"][()]) if kind == schema.CORPORA else group["tokens"].shape[0]
                problems += check_contexts(group, n)
    return problems


def require_contexts(group: h5py.Group, what: str, path) -> None:
    if not has_contexts(group):
        raise InputError(f"{path}: {what} has no top-activating contexts; {HINT}")
