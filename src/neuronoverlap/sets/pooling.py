"""Pooling per-sample statistics into one value per neuron: the library's one weighted mean.

"tokens": each sample weighted by its token count, as if the samples were one corpus (for
probabilities: total fires / total tokens); "samples": each sample counted once. A total
weight of 0 (no tokens at all) pools to 0, not NaN.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float

from neuronoverlap.errors import InputError

WEIGHTING = ("tokens", "samples")


class WeightedMean:
    """A running weighted mean over blocks of samples [sample, *shape] (read a chunk at a time)."""

    def __init__(self, weighting: str = "tokens"):
        if weighting not in WEIGHTING:
            raise InputError(f"unknown weighting {weighting!r}; use one of {', '.join(WEIGHTING)}")
        self.weighting = weighting
        self.total: np.ndarray | float = 0.0
        self.weight = 0.0

    def add(self, block: Float[np.ndarray, " sample *shape"], tokens: Float[np.ndarray, " sample"]) -> None:
        """Add the samples of `block`, whose token counts are `tokens`."""
        weights = np.asarray(tokens, dtype=np.float64)
        if self.weighting == "samples":
            weights = np.ones_like(weights)
        self.total = self.total + np.tensordot(weights, np.asarray(block, dtype=np.float64), axes=1)
        self.weight += float(weights.sum())

    def result(self) -> Float[np.ndarray, " *shape"]:
        """sum_s w_s x_s / max(sum_s w_s, 1)."""
        return np.asarray(self.total / max(self.weight, 1.0))


def pooled_mean(
    values: Float[np.ndarray, " sample *shape"],
    tokens: Float[np.ndarray, " sample"],
    weighting: str = "tokens",
) -> Float[np.ndarray, " *shape"]:
    """The weighted mean over samples of `values` (module docstring) in one call."""
    pool = WeightedMean(weighting)
    pool.add(values, tokens)
    return pool.result()
