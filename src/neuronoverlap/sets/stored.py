"""Neuron sets in the store: `/<model>/sets/<name>` (layout in docs/sets.md)."""

from __future__ import annotations

from collections.abc import Mapping

from neuronoverlap.errors import InputError
from neuronoverlap.sets.core import NeuronSet

SETS_GROUP = "sets"


def save_sets(writer, sets: Mapping[str, NeuronSet]) -> None:
    """Write (or replace) named sets into a store through its `StoreWriter`, in one commit."""
    shape = (writer.model.n_layers, writer.model.d_mlp)
    for name, neurons in sets.items():
        if "/" in name or not name:
            raise InputError(f"a neuron-set name cannot be empty or contain '/': {name!r}")
        if neurons.shape != shape:
            raise InputError(
                f"set {name!r} has model shape {neurons.shape}, the store's model is {shape}"
            )

    def fill(group) -> None:
        for name, neurons in sets.items():
            if name in group:
                del group[name]
            neurons.to_h5(group, name)

    writer.edit(SETS_GROUP, fill)


def load_set(store, name: str) -> NeuronSet:
    """A set saved by `save_sets`, from a `Store`."""
    names = store.group_names(SETS_GROUP)
    if name not in names:
        raise InputError(
            f"{store.path} has no neuron set {name!r} (it has: {', '.join(names) or 'none'})"
        )
    from neuronoverlap.store.reader import checked_attrs

    with store._file() as f:
        group = f[f"{store.group}/{SETS_GROUP}"]
        checked_attrs(group[name])
        return NeuronSet.from_h5(group, name)
