"""The BridgeX-ICL reference code's HSIC bridge score, reproduced (reference-compatible mode).

The reference (bridge_hsic.py, `compute_hsic`) scores two neuron sets A [n_a, n], B [n_b, n]:
1. z-score each row: (row - mean) / (std + 1e-6), with the sample (n-1) standard deviation;
2. one shared bandwidth: sigma = median of the concatenated Euclidean distances between rows,
   all n_a^2 distances within A (diagonal zeros and both orders included) and all n_b^2 within
   B (never between A and B), taking torch.median's lower middle value, plus 1e-6;
3. one Gaussian Gram matrix per neuron over its n scalar samples, exp(-(z_a - z_b)^2/(2 sigma^2));
4. S_ij = tr(K_i H L_j), computed as trace((K_i H)(H L_j)): H appears once (H H = H), so
   only one side of each Gram matrix is centred, and there is no 1/(n-1)^2 normalisation;
5. score = (mean_i max_j S_ij + mean_j max_i S_ij) / 2 (see `max_mean_score`).

Since tr(K H L) = <H K H, H L H> + n <c_K, c_L>, with c_K the row means of K minus its grand
mean, S_ij is (n-1)^2 times the biased HSIC plus n times a dot product of Gram row means that
is not part of HSIC; both parts are computed here from centred quantities (no cancellation).

How the default mode (`pairwise_hsic`) differs: each neuron gets its own median bandwidth (of
its own sample distances, not of distances between neurons), Gram matrices are centred on both
sides (true HSIC), values are normalised by (n-1)^2 so that they compare across sample sizes,
and no z-scoring is needed (Gaussian HSIC with a median bandwidth is invariant to shifting and
rescaling a neuron). The reference's shared sigma is a distance between n-dimensional rows,
about sqrt(2 (n-1)), far larger than the scalar differences its kernels see, so its kernels
work in their quadratic regime and, to first order,
    S_ij ~ [(n-1)^2 rho_ij^2 + (n/4) sum_a q_a(z_i) q_a(z_j)] / sigma^4,   q(z) = z^2 - mean(z^2):
squared Pearson correlation plus a covariance of squared z-scores (the one-sided centring's
term); for jointly Gaussian neurons about 3 rho^2 / 8. Distances are computed exactly here,
without torch.cdist's matrix-product shortcut, so values agree with the reference up to rounding.
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from neuronoverlap.hsic.expansion import expanded_reference_scores, reference_degrees
from neuronoverlap.hsic.inputs import check_min_samples
from neuronoverlap.hsic.kernels import Gaussian
from neuronoverlap.hsic.pairwise import (
    MEMORY_BUDGET_BYTES,
    max_mean_score,
    neuron_pair,
    pairwise_inner_products,
)

STD_EPSILON = 1e-6
BANDWIDTH_EPSILON = 1e-6


def reference_zscore(rows: Float[Tensor, "neuron sample"]) -> Float[Tensor, "neuron sample"]:
    """(row - mean) / (sample std + 1e-6), as the reference does; constant rows become zeros."""
    return (rows - rows.mean(dim=1, keepdim=True)) / (rows.std(dim=1, keepdim=True) + STD_EPSILON)


def _lower_median_with_duplicates(upper_values: Tensor, zeros_on_diagonal: int) -> Tensor:
    """torch.median of {0 x zeros_on_diagonal} + {each upper value twice}, without building it."""
    total = zeros_on_diagonal + 2 * upper_values.numel()
    rank = (total + 1) // 2  # 1-based rank of torch.median's (lower) middle value
    if rank <= zeros_on_diagonal:
        return upper_values.new_zeros(())
    position = (rank - zeros_on_diagonal + 1) // 2  # 1-based rank among the upper values
    return upper_values.kthvalue(position).values


def _upper_distances(rows: Tensor) -> Tensor:
    distances = torch.cdist(rows, rows, compute_mode="donot_use_mm_for_euclid_dist")
    first, second = torch.triu_indices(rows.shape[0], rows.shape[0], 1, device=rows.device)
    return distances[first, second]


def shared_bandwidth(
    zscored_a: Float[Tensor, "neuron_a sample"], zscored_b: Float[Tensor, "neuron_b sample"]
) -> Tensor:
    """The reference's sigma from z-scored rows (step 2 of the module docstring)."""
    upper = torch.cat([_upper_distances(zscored_a), _upper_distances(zscored_b)])
    diagonal = zscored_a.shape[0] + zscored_b.shape[0]
    if upper.numel() == 0:
        return upper.new_tensor(BANDWIDTH_EPSILON)
    return _lower_median_with_duplicates(upper, diagonal) + BANDWIDTH_EPSILON


def _reference_pair(A, B, device) -> tuple[Tensor, Tensor]:
    """neuron_pair, with the two samples the reference's z-scores (sample std) need."""
    rows_a, rows_b = neuron_pair(A, B, device)
    check_min_samples(rows_a.shape[1], 2, "the reference HSIC (z-scores by the sample std)")
    return rows_a, rows_b


def reference_bandwidth(A, B, *, device: str | torch.device | None = None) -> float:
    """The shared Gaussian bandwidth the reference code uses for A [n_a, n] and B [n_b, n]."""
    rows_a, rows_b = _reference_pair(A, B, device)
    return float(shared_bandwidth(reference_zscore(rows_a), reference_zscore(rows_b)))


def zscored_products(
    zscored_a: Float[Tensor, "neuron_a sample"],
    zscored_b: Float[Tensor, "neuron_b sample"],
    sigma: float,
    memory_budget_bytes: int = MEMORY_BUDGET_BYTES,
) -> Float[Tensor, "neuron_a neuron_b"]:
    """S_ij = tr(K_i H L_j) of z-scored rows under one Gaussian bandwidth: through the kernel's
    exact finite expansion where it is cheaper (expansion.py), else from Gram triangles."""
    degrees = reference_degrees(zscored_a, zscored_b, sigma)
    if degrees is not None:
        return expanded_reference_scores(zscored_a, zscored_b, sigma, degrees)
    return triangle_products(zscored_a, zscored_b, sigma, memory_budget_bytes)


def triangle_products(
    zscored_a: Float[Tensor, "neuron_a sample"],
    zscored_b: Float[Tensor, "neuron_b sample"],
    sigma: float,
    memory_budget_bytes: int = MEMORY_BUDGET_BYTES,
) -> Float[Tensor, "neuron_a neuron_b"]:
    """The same S_ij from Gram triangles: the exact path, at any bandwidth."""
    kernel = Gaussian(sigma)
    return pairwise_inner_products(
        zscored_a, zscored_b, kernel, kernel, "biased", memory_budget_bytes, row_mean_term=True
    )


def reference_inner_products(
    rows_a: Tensor, rows_b: Tensor, memory_budget_bytes: int = MEMORY_BUDGET_BYTES
) -> Tensor:
    """S_ij = tr(K_i H L_j) = <H K_i H, H L_j H> + n <c_i, c_j>, reference z-scores and sigma."""
    zscored_a, zscored_b = reference_zscore(rows_a), reference_zscore(rows_b)
    sigma = float(shared_bandwidth(zscored_a, zscored_b))
    return zscored_products(zscored_a, zscored_b, sigma, memory_budget_bytes)


def reference_pairwise_hsic(
    A,
    B,
    *,
    memory_budget_bytes: int = MEMORY_BUDGET_BYTES,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """The reference's unnormalised pairwise matrix S_ij = tr(K_i H L_j) -> [n_a, n_b]."""
    rows_a, rows_b = _reference_pair(A, B, device)
    return reference_inner_products(rows_a, rows_b, memory_budget_bytes).cpu().numpy()


def reference_bridge_score(
    A,
    B,
    *,
    memory_budget_bytes: int = MEMORY_BUDGET_BYTES,
    device: str | torch.device | None = None,
) -> float:
    """The reference code's bridge score: max_mean_score of reference_pairwise_hsic(A, B)."""
    return max_mean_score(
        reference_pairwise_hsic(A, B, memory_budget_bytes=memory_budget_bytes, device=device)
    )
