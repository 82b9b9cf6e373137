"""The null: random neuron sets matched to a named set, layer by layer and band by band.

The band rule (default `n_bands=10`): in each layer, neurons are ranked by activation
probability (the share of tokens on which they fire, e.g. averaged over the store's FLORES
corpora) and cut into `n_bands` bands of equal count. A random set has, in every (layer, band)
cell, as many neurons as the named set has there, drawn uniformly without replacement from all of
the cell's neurons (the named set's own members included: the null is "a set drawn like this one
at random", under which the named set and its random sets are exchangeable and the p-value is
exact). Switching off an always-on neuron is not like switching off a rare one; the bands keep
that alike between a set and its null. `n_bands=1` (or no probabilities) draws uniformly within
each layer: same size per layer, same layers.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float, Int

from neuronoverlap.errors import InputError
from neuronoverlap.sets import NeuronSet


def probability_bands(
    probability: Float[np.ndarray, "layer neuron"] | None, shape: tuple[int, int], n_bands: int
) -> Int[np.ndarray, "layer neuron"]:
    """Each neuron's band in its layer: 0 (lowest activation probability) .. n_bands - 1."""
    if n_bands < 1:
        raise InputError(f"the number of bands must be at least 1, got {n_bands}")
    if probability is None or n_bands == 1:
        return np.zeros(shape, dtype=np.int64)
    probability = np.asarray(probability, dtype=np.float64)
    if probability.shape != shape:
        raise InputError(f"activation probabilities have shape {probability.shape}; the model is {shape}")
    if n_bands > shape[1]:
        raise InputError(f"{n_bands} bands for {shape[1]} neurons per layer")
    ranks = np.argsort(np.argsort(probability, axis=1, kind="stable"), axis=1, kind="stable")
    return ranks * n_bands // shape[1]


def random_sets(
    named: NeuronSet,
    n_sets: int,
    *,
    probability: Float[np.ndarray, "layer neuron"] | None = None,
    n_bands: int = 10,
    seed: int | np.random.Generator = 0,
) -> Int[np.ndarray, "set member"]:
    """`n_sets` random sets matched to `named` (module docstring), as flat neuron ids
    layer * d_mlp + neuron, one row per set (`as_neuron_set` turns a row into a `NeuronSet`)."""
    if n_sets < 1:
        raise InputError(f"the null needs at least one random set, got {n_sets}")
    if len(named) == 0:
        raise InputError("cannot match random sets to an empty set")
    rng = np.random.default_rng(seed)
    bands = probability_bands(probability, named.shape, n_bands)
    flat_bands = (np.arange(named.shape[0])[:, None] * n_bands + bands).ravel()
    members = named.mask.ravel()
    columns = []
    for cell in np.unique(flat_bands[members]):
        in_cell = flat_bands == cell
        wanted = int((in_cell & members).sum())
        pool = np.flatnonzero(in_cell)
        keys = rng.random((n_sets, len(pool)))
        picks = np.argpartition(keys, wanted - 1, axis=1)[:, :wanted] if wanted < len(pool) else None
        columns.append(pool[picks] if picks is not None else np.tile(pool, (n_sets, 1)))
    return np.sort(np.concatenate(columns, axis=1), axis=1)


def as_neuron_set(
    row: Int[np.ndarray, " member"], shape: tuple[int, int], label: str | None = None
) -> NeuronSet:
    mask = np.zeros(shape[0] * shape[1], dtype=bool)
    mask[row] = True
    return NeuronSet(mask.reshape(shape), label)


def empirical_pvalue(
    observed: float, null: Float[np.ndarray, " draw"], alternative: str = "greater"
) -> float:
    """(1 + #{null at least as extreme}) / (1 + B): the permutation rule of `stats.permutation`."""
    from neuronoverlap.stats.permutation import permutation_pvalue

    return float(permutation_pvalue(float(observed), np.asarray(null, dtype=np.float64), alternative))


def z_score(observed: float, null: Float[np.ndarray, " draw"]) -> float:
    """(observed - mean(null)) / sd(null); nan for a null without spread."""
    null = np.asarray(null, dtype=np.float64)
    spread = float(null.std(ddof=1)) if len(null) > 1 else 0.0
    return float((observed - null.mean()) / spread) if spread > 0 else float("nan")
