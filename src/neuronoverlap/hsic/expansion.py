"""The reference kind's scores through an exact finite expansion of its Gaussian kernel.

For scalars x, y and bandwidth s,

    exp(-(x - y)^2 / (2 s^2)) = sum_k phi_k(x) phi_k(y),   phi_k(x) = exp(-x^2/(2 s^2)) (x/s)^k / sqrt(k!).

Truncated after degree D, a Gram entry is off by at most t^(D+1) / (D+1)! with t = max|x|^2 / s^2
over the neuron's samples (Lagrange's remainder of e^(xy/s^2); the two Gaussian factors cancel
its e^t because 2|xy| <= x^2 + y^2). The reference kind z-scores every row and takes a bandwidth
that is a distance between n-dimensional rows, about sqrt(2 (n - 1)); so t <= (n - 1)/s^2 is
about 1/2 at worst and about 0.01 for ordinary rows, and 7-16 features per neuron reproduce its
Gram matrices to below float64 rounding (ENTRY_TOLERANCE). A neuron is then [n, D + 1] numbers
instead of the n(n+1)/2 of its Gram triangle.

With features Phi_i [n, r] of neuron i and Psi_j of neuron j, sample weights c (ones, or the
draw counts of a bootstrap resample; m = sum c), weighted means phi_i = Phi_i^T c / m and
centred features Phi~_i = Phi_i - 1 phi_i^T,

    M_ij = Phi~_i^T diag(c) Psi~_j                       [r, r]
    S_ij = tr(K_i H L_j) = ||M_ij||_F^2 + m phi_i^T M_ij psi_j

(reference.py: <H K H, H L H> + m <c_K, c_L>), the resample's own Gram matrices and centring,
with no cancellation between large terms; samples a resample does not draw (c = 0, about 37%)
are left out of the product. All M_ij of two neuron sets are one matrix product.
A's and B's rows may have different degrees (M_ij is then [r_a, r_b]). When r_a r_b would exceed
the triangle's n/2 numbers per pair, the triangle is cheaper and `reference_degrees` says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from jaxtyping import Float
from torch import Tensor

#: Bound on every truncated Gram entry (entries lie in [0, 1]): far below float64 rounding.
ENTRY_TOLERANCE = 1e-18
#: Hold at most this much of M at once (columns are taken in blocks).
BLOCK_BYTES = 256 << 20
#: Past this degree the Gram triangle is used instead (t of about 25 and more).
MAX_DEGREE = 96


def degree_for(t: float, tolerance: float = ENTRY_TOLERANCE) -> int | None:
    """The least D with t^(D+1) / (D+1)! <= tolerance (t >= 0), or None past MAX_DEGREE."""
    degree, term = 0, t  # term = t^(D+1) / (D+1)!
    while term > tolerance:
        degree += 1
        if degree > MAX_DEGREE or not math.isfinite(term):
            return None
        term *= t / (degree + 1)
    return degree


def reference_degrees(
    zscored_a: Float[Tensor, "neuron_a sample"], zscored_b: Float[Tensor, "neuron_b sample"], sigma: float
) -> tuple[int, int] | None:
    """Expansion degrees for A's and B's rows (each from its largest |z|), or None where the
    product of their feature counts exceeds the n/2 numbers per pair of the Gram triangle."""
    n = zscored_a.shape[1]
    degrees = tuple(
        degree_for(float(rows.abs().max()) ** 2 / sigma**2) if rows.numel() else 0
        for rows in (zscored_a, zscored_b)
    )
    if None in degrees or (degrees[0] + 1) * (degrees[1] + 1) > n // 2:
        return None
    return degrees


def gaussian_features(
    rows: Float[Tensor, "neuron sample"], sigma: float, degree: int
) -> Float[Tensor, "neuron feature sample"]:
    """phi_0..phi_D of every sample of every row (module docstring); samples last, so that a
    neuron's features are contiguous rows of the matrix product."""
    scaled = rows / sigma
    features = torch.empty(rows.shape[0], degree + 1, rows.shape[1], dtype=rows.dtype, device=rows.device)
    torch.exp(-0.5 * scaled.square(), out=features[:, 0])
    for k in range(1, degree + 1):
        torch.mul(features[:, k - 1], scaled, out=features[:, k]).div_(math.sqrt(k))
    return features


def _centred(features: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
    means = features @ weights / weights.sum()  # [neuron, feature]
    return features - means[..., None], means


def scores_from_features(
    features_a: Float[Tensor, "neuron_a feature sample"],
    features_b: Float[Tensor, "neuron_b feature sample"],
    weights: Float[Tensor, " sample"] | None = None,
) -> Float[Tensor, "neuron_a neuron_b"]:
    """S_ij = tr(K_i H L_j) of every pair, under sample weights (module docstring)."""
    if weights is not None and bool((weights == 0).any()):  # a resample: only drawn samples count
        drawn = torch.nonzero(weights).squeeze(1)
        features_a, features_b, weights = features_a[..., drawn], features_b[..., drawn], weights[drawn]
    (n_a, r_a, n), (n_b, r_b, _) = features_a.shape, features_b.shape
    if weights is None:
        weights = features_a.new_ones(n)
    m = float(weights.sum())
    centred_a, means_a = _centred(features_a, weights)
    centred_b, means_b = _centred(features_b, weights)
    left = (centred_a * weights).reshape(n_a * r_a, n)
    products = (left @ centred_b.reshape(n_b * r_b, n).T).view(n_a, r_a, n_b, r_b)
    scores = products.square().sum(dim=(1, 3))
    scores += m * torch.einsum("ap,apbq,bq->ab", means_a, products, means_b)
    return scores


def column_block(n_a: int, n: int, r_a: int, r_b: int, itemsize: int, block_bytes: int = BLOCK_BYTES) -> int:
    """Columns per block: their features, the block of M and its square within block_bytes."""
    return max(1, block_bytes // ((n * r_b + 2 * n_a * r_a * r_b) * itemsize))


def blockwise_scores(
    features_a: Float[Tensor, "neuron_a feature sample"],
    n_b: int,
    features_b: Callable[[int, int], Tensor],
    block: int,
    weights: Float[Tensor, " sample"] | None = None,
) -> Float[Tensor, "neuron_a neuron_b"]:
    """scores_from_features against B's columns a block at a time; features_b(start, stop)
    gives the features of columns start:stop (built, or sliced from kept ones)."""
    out = features_a.new_empty(features_a.shape[0], n_b)
    for start in range(0, n_b, block):
        stop = min(n_b, start + block)
        out[:, start:stop] = scores_from_features(features_a, features_b(start, stop), weights)
    return out


def expanded_reference_scores(
    zscored_a: Float[Tensor, "neuron_a sample"],
    zscored_b: Float[Tensor, "neuron_b sample"],
    sigma: float,
    degrees: tuple[int, int],
    weights: Float[Tensor, " sample"] | None = None,
    block_bytes: int = BLOCK_BYTES,
) -> Float[Tensor, "neuron_a neuron_b"]:
    """S_ij for z-scored rows; the smaller side's features are built once, the larger side's a
    block at a time (S is symmetric in the two sides: tr(K H L) = tr(L H K))."""
    if zscored_a.shape[0] > zscored_b.shape[0]:
        return expanded_reference_scores(zscored_b, zscored_a, sigma, degrees[::-1], weights, block_bytes).T
    n_a, n = zscored_a.shape
    block = column_block(n_a, n, degrees[0] + 1, degrees[1] + 1, zscored_a.element_size(), block_bytes)
    return blockwise_scores(
        gaussian_features(zscored_a, sigma, degrees[0]),
        zscored_b.shape[0],
        lambda start, stop: gaussian_features(zscored_b[start:stop], sigma, degrees[1]),
        block,
        weights,
    )
