"""A `NeuronSet` in an HDF5 file: one dataset plus attributes, readable with plain h5py.

In a store the sets live under `/<model>/sets/<name>`: `StoreWriter.put_sets` and
`Store.neuron_set` read and write them there; any h5py group works with the two functions below.

Layout (docs/sets.md): dataset `name` is either
  - "indices": int32 [n, 2], the members' (layer, neuron) rows sorted by layer then neuron, or
  - "packed":  uint8 [n_layers, ceil(d_mlp / 8)], `np.packbits(mask, axis=1)` (big bit order);
attributes: `kind` = "neuron_set", `format_version` = 1, `layout`, `model_shape` = [n_layers,
d_mlp], `size` (member count), `label` (when set), `metadata` (a JSON object as a string), plus
any caller attributes. `layout="auto"` picks whichever is smaller.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import h5py
import numpy as np

from neuronoverlap.errors import InputError
from neuronoverlap.sets.core import NeuronSet

KIND = "neuron_set"
FORMAT_VERSION = 1
LAYOUTS = ("auto", "indices", "packed")
RESERVED_ATTRS = ("kind", "format_version", "layout", "model_shape", "size", "label", "metadata")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"metadata value of type {type(value).__name__} is not JSON-serialisable")


def metadata_json(metadata: Mapping[str, Any]) -> str:
    """The metadata as a JSON object (numpy scalars and arrays converted)."""
    return json.dumps(dict(metadata), default=_json_default, ensure_ascii=False, sort_keys=True)


def choose_layout(neurons: NeuronSet, layout: str = "auto") -> str:
    if layout not in LAYOUTS:
        raise InputError(f"unknown neuron-set layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    if layout != "auto":
        return layout
    index_bytes = len(neurons) * 2 * 4
    packed_bytes = neurons.n_layers * -(-neurons.d_mlp // 8)
    return "indices" if index_bytes <= packed_bytes else "packed"


def write_neuron_set(
    neurons: NeuronSet,
    group: h5py.Group,
    name: str,
    attrs: Mapping[str, Any] | None = None,
    layout: str = "auto",
) -> h5py.Dataset:
    """Write `neurons` as dataset `group[name]` (which must not exist yet); returns it."""
    extra = dict(attrs or {})
    clash = sorted(set(extra) & set(RESERVED_ATTRS))
    if clash:
        raise InputError(f"attribute names reserved by the neuron-set layout: {', '.join(clash)}")
    if name in group:
        raise InputError(f"{group.name}/{name} already exists in the HDF5 file")
    chosen = choose_layout(neurons, layout)
    if chosen == "indices":
        data = neurons.to_indices().astype(np.int32).reshape(-1, 2)
    else:
        data = np.packbits(neurons.mask, axis=1)
    dataset = group.create_dataset(name, data=data)
    dataset.attrs["kind"] = KIND
    dataset.attrs["format_version"] = FORMAT_VERSION
    dataset.attrs["layout"] = chosen
    dataset.attrs["model_shape"] = np.asarray(neurons.shape, dtype=np.int64)
    dataset.attrs["size"] = len(neurons)
    if neurons.label is not None:
        dataset.attrs["label"] = neurons.label
    dataset.attrs["metadata"] = metadata_json(neurons.metadata)
    for key, value in extra.items():
        dataset.attrs[key] = value
    return dataset


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_neuron_set(node: h5py.Dataset | h5py.Group, name: str | None = None) -> NeuronSet:
    """Read the set stored in dataset `node`, or in `node[name]` when `node` is a group."""
    if isinstance(node, h5py.Group):
        if name is None:
            raise InputError(f"reading a neuron set from group {node.name} needs its name")
        if name not in node:
            raise InputError(f"no neuron set {name!r} in {node.name}")
        node = node[name]
    if not isinstance(node, h5py.Dataset) or _text(node.attrs.get("kind", "")) != KIND:
        raise InputError(f"{node.name} is not a neuron set written by neuronoverlap")
    version = int(node.attrs.get("format_version", 0))
    if version != FORMAT_VERSION:
        raise InputError(f"{node.name}: neuron-set format version {version} is not supported")
    shape = tuple(int(d) for d in node.attrs["model_shape"])
    layout = _text(node.attrs["layout"])
    data = node[()]
    if layout == "indices":
        neurons = NeuronSet.from_indices(np.asarray(data, dtype=np.int64).reshape(-1, 2), shape)
    elif layout == "packed":
        if data.shape != (shape[0], -(-shape[1] // 8)):
            raise InputError(f"{node.name}: packed mask shape {data.shape} does not fit {shape}")
        neurons = NeuronSet(np.unpackbits(data, axis=1, count=shape[1]).astype(bool))
    else:
        raise InputError(f"{node.name}: unknown neuron-set layout {layout!r}")
    label = _text(node.attrs["label"]) if "label" in node.attrs else None
    metadata = json.loads(_text(node.attrs.get("metadata", "{}")))
    if len(neurons) != int(node.attrs.get("size", len(neurons))):
        raise InputError(f"{node.name}: stored size does not match its members")
    return NeuronSet(neurons.mask, label, metadata)
