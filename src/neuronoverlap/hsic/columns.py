"""One overlap set against every neuron of a layer, so that any neuron set is a column subset.

Bridge calibration scores hundreds of random neuron sets of a layer against the same overlap
set O_l. The pairwise score S[i, j] of overlap neuron i and layer neuron j does not depend on
which set j is drawn into as long as the kernels do not depend on the set (the bandwidth comes
from O_l alone, or from each neuron itself), so S is computed once per layer, and the max-mean
score of a set J is read off S[:, J]:

    max_mean(J) = (mean_i max_{j in J} S_ij + mean_{j in J} max_i S_ij) / 2,

with the column maxima max_i S_ij computed once for every neuron.

Pairwise scores ("kind"):
- "reference": the reference code's S_ij = tr(K_i H L_j) on z-scored rows (see reference.py),
  with one Gaussian bandwidth from O_l alone: the median of the Euclidean distances between
  O_l's distinct z-scored rows (torch's median: the lower middle value), or sqrt(2 (n - 1)),
  the distance between two uncorrelated z-scored rows, when O_l has a single neuron. The
  reference's own bandwidth pools O's and B's distances, so it changes with the candidate.
- "cka": pairwise CKA (normalised biased HSIC), Gaussian kernels with each neuron's own median
  bandwidth.
"""

from __future__ import annotations

import math

from jaxtyping import Float, Int
from torch import Tensor

from neuronoverlap import options
from neuronoverlap.errors import InputError
from neuronoverlap.hsic.kernels import Gaussian
from neuronoverlap.hsic.pairwise import (
    MEMORY_BUDGET_BYTES,
    cka_from_inner_products,
    feature_count,
    pairwise_inner_products,
)
from neuronoverlap.hsic.reference import (
    BANDWIDTH_EPSILON,
    _upper_distances,
    reference_zscore,
    zscored_products,
)

SCORE_KINDS = options.SCORE_KINDS


def overlap_bandwidth(zscored_overlap: Float[Tensor, "neuron sample"]) -> float:
    """The Gaussian bandwidth of the "reference" kind, from O_l's z-scored rows alone."""
    n_o, n = zscored_overlap.shape
    if n_o < 2:
        return math.sqrt(2 * (n - 1)) + BANDWIDTH_EPSILON
    return float(_upper_distances(zscored_overlap).median()) + BANDWIDTH_EPSILON


def overlap_scores(
    overlap_rows: Float[Tensor, "overlap sample"],
    layer_rows: Float[Tensor, "neuron sample"],
    kind: str = "reference",
    memory_budget_bytes: int = MEMORY_BUDGET_BYTES,
) -> Float[Tensor, "overlap neuron"]:
    """S[i, j]: pairwise score of overlap neuron i and layer neuron j (module docstring)."""
    if kind not in SCORE_KINDS:
        raise InputError(f"unknown pairwise score {kind!r}; use one of {', '.join(SCORE_KINDS)}")
    # O's features are kept whole (the layer's are built a block at a time): at least half the
    # budget for them, so that they are not rebuilt for every block of the layer.
    n = overlap_rows.shape[1]
    overlap_bytes = overlap_rows.shape[0] * feature_count(n, True) * overlap_rows.element_size()
    memory_budget_bytes = max(memory_budget_bytes, 4 * overlap_bytes)
    if kind == "reference":
        zscored_o, zscored_layer = reference_zscore(overlap_rows), reference_zscore(layer_rows)
        # The layer is the big side: its features are built in blocks, O's are kept whole.
        return zscored_products(zscored_layer, zscored_o, overlap_bandwidth(zscored_o), memory_budget_bytes).T
    kernel = Gaussian("median")
    inner, norms_layer, norms_o = pairwise_inner_products(
        layer_rows, overlap_rows, kernel, kernel, "biased", memory_budget_bytes, with_norms=True
    )
    return cka_from_inner_products(inner, norms_layer, norms_o).T


def set_scores(
    scores: Float[Tensor, "overlap neuron"],
    columns: Int[Tensor, "set size"],
    column_max: Float[Tensor, " neuron"] | None = None,
) -> Float[Tensor, " set"]:
    """max-mean score of each set of columns (equal sizes) from the overlap-vs-layer matrix."""
    if column_max is None:
        column_max = scores.amax(dim=0)
    row_part = scores[:, columns].amax(dim=2).mean(dim=0)  # [set]
    return 0.5 * (row_part + column_max[columns].mean(dim=1))
