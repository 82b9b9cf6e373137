"""Where overlap neurons sit: per-layer counts for every pair, and early/middle/final thirds.

Thirds of n layers: b = round(n / 3) = (n + 1) // 3; early = [0, b), middle = [b, n - b),
final = [n - b, n). The split is symmetric: 18 layers -> 6/6/6, 32 -> 11/10/11.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from jaxtyping import Float, Int

from neuronoverlap.errors import InputError
from neuronoverlap.sets import NeuronSet, check_same_shape
from neuronoverlap.sets.builders import overlap_from_corpus

THIRDS = ("early", "middle", "final")


def layer_thirds(n_layers: int) -> dict[str, range]:
    """The early, middle and final thirds of `n_layers` layers (see the module docstring)."""
    if n_layers < 1:
        raise InputError(f"a model has at least one layer; got {n_layers}")
    edge = (n_layers + 1) // 3
    return {
        "early": range(0, edge),
        "middle": range(edge, n_layers - edge),
        "final": range(n_layers - edge, n_layers),
    }


def third_of_each_layer(n_layers: int) -> list[str]:
    """The third ("early", "middle", "final") each layer belongs to."""
    names = [""] * n_layers
    for name, layers in layer_thirds(n_layers).items():
        for layer in layers:
            names[layer] = name
    return names


def pairwise_overlaps(sets: Mapping[str, NeuronSet]) -> dict[str, NeuronSet]:
    """A_a & A_b for every pair a < b in the given order, keyed "a-b"."""
    codes = list(sets)
    if len(codes) < 2:
        raise InputError("pairwise overlaps need at least two languages")
    check_same_shape(*sets.values())
    return {f"{a}-{b}": overlap_from_corpus(sets[a], sets[b]) for a, b in combinations(codes, 2)}


@dataclass(frozen=True)
class LayerwiseOverlap:
    """Overlap neurons per layer for a list of pairs (or of any named sets)."""

    pairs: list[str]
    counts: Int[np.ndarray, "pair layer"]
    d_mlp: int

    @property
    def n_layers(self) -> int:
        return self.counts.shape[1]

    @property
    def shares(self) -> Float[np.ndarray, "pair layer"]:
        """Counts as a share of the layer's d_mlp neurons."""
        return self.counts / self.d_mlp

    def third_counts(self) -> Int[np.ndarray, "pair third"]:
        """Overlap neurons in the early, middle and final thirds (columns in THIRDS order)."""
        thirds = layer_thirds(self.n_layers)
        return np.stack([self.counts[:, list(thirds[name])].sum(axis=1) for name in THIRDS], axis=1)

    def third_shares(self) -> Float[np.ndarray, "pair third"]:
        """Share of each pair's overlap neurons in each third (0 for an empty overlap)."""
        counts = self.third_counts().astype(np.float64)
        total = counts.sum(axis=1, keepdims=True)
        return np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)

    def rows(self) -> list[dict[str, object]]:
        """Long-format rows: pair, layer, third, count, share_of_d_mlp."""
        third = third_of_each_layer(self.n_layers)
        return [
            {
                "pair": pair,
                "layer": layer,
                "third": third[layer],
                "count": int(self.counts[p, layer]),
                "share_of_d_mlp": float(self.shares[p, layer]),
            }
            for p, pair in enumerate(self.pairs)
            for layer in range(self.n_layers)
        ]


def layerwise_overlap(overlaps: Mapping[str, NeuronSet]) -> LayerwiseOverlap:
    """Per-layer counts of each named overlap set, e.g. from `pairwise_overlaps` or O(s,t)."""
    if not overlaps:
        raise InputError("no overlap set given")
    n_layers, d_mlp = check_same_shape(*overlaps.values())
    counts = np.stack([s.per_layer_counts() for s in overlaps.values()])
    return LayerwiseOverlap(list(overlaps), counts, d_mlp)
