"""`NeuronSet`: an immutable set of MLP neurons (layer, index) of one model shape.

A boolean mask [n_layers, d_mlp] underneath. Set algebra (`| & - ^ ~`), subset tests
(`<= >= < >`), equality and hashing work on the mask only; `label` and `metadata` ride along
for reports and files but never change equality. Mixing two model shapes is an `InputError`;
`==` between two shapes is simply False.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
from jaxtyping import Bool, Int

from neuronoverlap.errors import InputError

#: The TransformerLens hook whose channel j in block l is neuron (l, j): the gate pre-activation.
DEFAULT_HOOK = "hook_pre"

_NAME = re.compile(r"^blocks\.(\d+)\.mlp\.(hook_[A-Za-z_]+)\[(\d+)\]$")


def _check_shape(shape: Iterable[int]) -> tuple[int, int]:
    dims = tuple(int(d) for d in shape)
    if len(dims) != 2 or min(dims) < 1:
        raise InputError(f"a model shape is (n_layers, d_mlp) with both >= 1; got {dims}")
    return dims  # type: ignore[return-value]


def check_same_shape(*sets: NeuronSet) -> tuple[int, int]:
    """The common model shape of `sets`; `InputError` if they differ."""
    shapes = sorted({s.shape for s in sets})
    if len(shapes) != 1:
        raise InputError(f"neuron sets of different model shapes: {', '.join(map(str, shapes))}")
    return shapes[0]


class NeuronSet:
    """A set of neurons (layer, neuron) over a model shape (n_layers, d_mlp).

    Args:
        mask: boolean (or 0/1) [n_layers, d_mlp]; True marks a member (copied).
        label: a name for reports and files (not part of equality).
        metadata: free-form provenance, likewise.

    Also built by `from_indices`, `from_names`, `empty` and `full`.

    >>> a = NeuronSet.from_indices([(0, 1), (1, 2)], shape=(2, 4), label="a")
    >>> b = NeuronSet.from_indices([(1, 2), (1, 3)], shape=(2, 4))
    >>> a
    <NeuronSet 'a': 2 of 2x4 neurons>
    >>> (a | b).to_list()                   # a.union(b)
    [(0, 1), (1, 2), (1, 3)]
    >>> (a & b).to_list(), (a - b).to_list()  # a.intersection(b), a.difference(b)
    ([(1, 2)], [(0, 1)])
    >>> (1, 2) in a, a & b <= a
    (True, True)
    """

    __slots__ = ("_mask", "_hash", "label", "metadata")

    def __init__(
        self,
        mask: Bool[np.ndarray, "layer neuron"],
        label: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ):
        array = np.asarray(mask)
        if array.ndim != 2 or 0 in array.shape:
            raise InputError(f"a neuron mask is 2-D [n_layers, d_mlp]; got shape {array.shape}")
        if array.dtype != np.bool_:
            if not np.isin(array, (0, 1)).all():
                raise InputError("a neuron mask holds only booleans (or 0/1)")
            array = array.astype(bool)
        array = array.copy()
        array.flags.writeable = False
        self._mask = array
        self._hash: int | None = None
        self.label = label
        self.metadata: dict[str, Any] = dict(metadata or {})

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_mask(
        cls,
        mask: Bool[np.ndarray, "layer neuron"],
        label: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> NeuronSet:
        """The set whose members are the True entries of `mask` (copied)."""
        return cls(mask, label, metadata)

    @classmethod
    def empty(cls, shape: tuple[int, int], label: str | None = None) -> NeuronSet:
        return cls(np.zeros(_check_shape(shape), dtype=bool), label)

    @classmethod
    def full(cls, shape: tuple[int, int], label: str | None = None) -> NeuronSet:
        return cls(np.ones(_check_shape(shape), dtype=bool), label)

    @classmethod
    def from_indices(
        cls,
        pairs: Iterable[tuple[int, int]] | Int[np.ndarray, "n 2"],
        shape: tuple[int, int],
        label: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> NeuronSet:
        """From (layer, neuron) pairs; duplicates are fine, out-of-range ones an `InputError`."""
        n_layers, d_mlp = _check_shape(shape)
        index = np.asarray(list(pairs) if not isinstance(pairs, np.ndarray) else pairs)
        if index.size == 0:
            index = np.zeros((0, 2), dtype=np.int64)
        if index.ndim != 2 or index.shape[1] != 2 or not np.issubdtype(index.dtype, np.integer):
            raise InputError("neuron indices are integer (layer, neuron) pairs")
        bad = (index[:, 0] < 0) | (index[:, 0] >= n_layers) | (index[:, 1] < 0)
        bad |= index[:, 1] >= d_mlp
        if bad.any():
            layer, neuron = index[np.argmax(bad)]
            raise InputError(f"neuron ({layer}, {neuron}) is outside the model shape ({n_layers}, {d_mlp})")
        mask = np.zeros((n_layers, d_mlp), dtype=bool)
        mask[index[:, 0], index[:, 1]] = True
        return cls(mask, label, metadata)

    @classmethod
    def from_names(
        cls,
        names: Iterable[str],
        shape: tuple[int, int],
        hook: str = DEFAULT_HOOK,
        label: str | None = None,
    ) -> NeuronSet:
        """From TransformerLens-style names `blocks.{layer}.mlp.{hook}[{neuron}]`."""
        pairs = []
        for name in names:
            match = _NAME.match(name.strip())
            if match is None or match.group(2) != hook:
                raise InputError(f"a neuron name reads 'blocks.<layer>.mlp.{hook}[<neuron>]'; got {name!r}")
            pairs.append((int(match.group(1)), int(match.group(3))))
        return cls.from_indices(pairs, shape, label)

    # ---- read-out -----------------------------------------------------------------------
    @property
    def mask(self) -> Bool[np.ndarray, "layer neuron"]:
        """The boolean mask (a read-only array)."""
        return self._mask

    @property
    def shape(self) -> tuple[int, int]:
        return self._mask.shape  # type: ignore[return-value]

    @property
    def n_layers(self) -> int:
        return self._mask.shape[0]

    @property
    def d_mlp(self) -> int:
        return self._mask.shape[1]

    def to_indices(self) -> Int[np.ndarray, "n 2"]:
        """Members as an int64 array of (layer, neuron) rows, sorted by layer then neuron."""
        return np.argwhere(self._mask).astype(np.int64)

    def to_list(self) -> list[tuple[int, int]]:
        return [(int(layer), int(neuron)) for layer, neuron in self.to_indices()]

    def to_names(self, hook: str = DEFAULT_HOOK) -> list[str]:
        """Members as `blocks.{layer}.mlp.{hook}[{neuron}]`, sorted like `to_indices`."""
        return [f"blocks.{layer}.mlp.{hook}[{neuron}]" for layer, neuron in self.to_list()]

    def layer(self, layer: int) -> Int[np.ndarray, " n"]:
        """Neuron indices of the members in `layer` (sorted)."""
        if not -self.n_layers <= layer < self.n_layers:
            raise InputError(f"layer {layer} is outside a model of {self.n_layers} layers")
        return np.flatnonzero(self._mask[layer])

    def per_layer_counts(self) -> Int[np.ndarray, " layer"]:
        return self._mask.sum(axis=1, dtype=np.int64)

    def with_label(self, label: str | None, **metadata: Any) -> NeuronSet:
        """The same members under a new label, metadata updated with `metadata`."""
        return NeuronSet(self._mask, label, {**self.metadata, **metadata})

    # ---- set protocol -------------------------------------------------------------------
    def __len__(self) -> int:
        return int(np.count_nonzero(self._mask))

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.to_list())

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, tuple) or len(item) != 2:
            return False
        layer, neuron = item
        if not (0 <= layer < self.n_layers and 0 <= neuron < self.d_mlp):
            return False
        return bool(self._mask[layer, neuron])

    def _other_mask(self, other: object) -> np.ndarray:
        if not isinstance(other, NeuronSet):
            raise TypeError(f"expected a NeuronSet, got {type(other).__name__}")
        if other.shape != self.shape:
            raise InputError(f"neuron sets of different model shapes: {self.shape} and {other.shape}")
        return other._mask

    def __or__(self, other: NeuronSet) -> NeuronSet:
        return NeuronSet(self._mask | self._other_mask(other))

    def __and__(self, other: NeuronSet) -> NeuronSet:
        return NeuronSet(self._mask & self._other_mask(other))

    def __sub__(self, other: NeuronSet) -> NeuronSet:
        return NeuronSet(self._mask & ~self._other_mask(other))

    def __xor__(self, other: NeuronSet) -> NeuronSet:
        return NeuronSet(self._mask ^ self._other_mask(other))

    def __invert__(self) -> NeuronSet:
        return NeuronSet(~self._mask)

    union = __or__
    intersection = __and__
    difference = __sub__
    symmetric_difference = __xor__
    complement = __invert__

    def issubset(self, other: NeuronSet) -> bool:
        return not (self._mask & ~self._other_mask(other)).any()

    def issuperset(self, other: NeuronSet) -> bool:
        return not (self._other_mask(other) & ~self._mask).any()

    def isdisjoint(self, other: NeuronSet) -> bool:
        return not (self._mask & self._other_mask(other)).any()

    def __le__(self, other: NeuronSet) -> bool:
        return self.issubset(other)

    def __ge__(self, other: NeuronSet) -> bool:
        return self.issuperset(other)

    def __lt__(self, other: NeuronSet) -> bool:
        return self.issubset(other) and len(self) < len(other)

    def __gt__(self, other: NeuronSet) -> bool:
        return self.issuperset(other) and len(self) > len(other)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NeuronSet):
            return NotImplemented
        return self.shape == other.shape and bool(np.array_equal(self._mask, other._mask))

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash((self.shape, np.packbits(self._mask).tobytes()))
        return self._hash

    def __repr__(self) -> str:
        label = f" {self.label!r}" if self.label else ""
        return f"<NeuronSet{label}: {len(self)} of {self.n_layers}x{self.d_mlp} neurons>"

    def to_frame(self):
        """Members as a pandas DataFrame (layer, neuron): `frames.neuron_set_frame`."""
        from neuronoverlap.frames import neuron_set_frame

        return neuron_set_frame(self)
