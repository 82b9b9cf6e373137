"""Neuron-level HSIC: every pair of two neuron sets at once, and set-level (multivariate) HSIC.

A neuron set is a matrix [n_neurons, n_samples]: each row one neuron's activations over the
same n samples. For rows a_i of A and b_j of B, pairwise HSIC_ij = <Kc_i, Lc_j> / norm with
Kc_i the centred Gram matrix of the scalar samples a_i (its own median bandwidth by default).
Since <Kc, Lc> = sum_{a<=b} w_ab Kc_ab Lc_ab (w = 1 on the diagonal, 2 above it), each centred
Gram matrix is stored as its upper triangle, n(n+1)/2 numbers, and all n_a x n_b values come
from one matrix product per chunk of neurons. Chunks are sized so that the Gram matrices held at
once stay under `memory_budget_bytes` (default 1 GiB), whatever the number of neurons.
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from neuronoverlap.errors import InputError
from neuronoverlap.hsic.estimators import centre_gram, hsic, normaliser
from neuronoverlap.hsic.independence import HSICTestResult, hsic_test
from neuronoverlap.hsic.inputs import (
    as_rows,
    as_tensor,
    check_estimator,
    check_same_samples,
    common_dtype,
)
from neuronoverlap.hsic.kernels import Bandwidth, Kernel, make_kernel

MEMORY_BUDGET_BYTES = 1 << 30
GRAM_COPIES = 4  # distances, Gram, centred Gram and its triangle, per neuron while building


def neuron_pair(A, B, device=None) -> tuple[Tensor, Tensor]:
    """Checked neuron sets [n_a, n] and [n_b, n] of one dtype on one device."""
    rows_a = as_rows(A, "A", device)
    rows_b = as_rows(B, "B", device=rows_a.device)
    rows_a, rows_b = common_dtype(rows_a, rows_b)
    check_same_samples(rows_a.shape[1], rows_b.shape[1], "A and B")
    return rows_a, rows_b


def upper_triangle(n: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Row and column indices of the upper triangle with its diagonal, row-major."""
    return tuple(torch.triu_indices(n, n, 0, device=device))


def feature_weights(
    n: int, dtype: torch.dtype, device: torch.device, row_mean_term: bool = False
) -> Float[Tensor, " feature"]:
    """Weights turning a dot product of features into <Kc, Lc> (+ n <c_K, c_L>)."""
    rows, cols = upper_triangle(n, device)
    weights = torch.where(rows == cols, 1.0, 2.0).to(dtype)
    if row_mean_term:
        weights = torch.cat([weights, torch.full((n,), float(n), dtype=dtype, device=device)])
    return weights


def gram_features(
    rows: Float[Tensor, "neuron sample"], kernel: Kernel, estimator: str,
    row_mean_term: bool = False,
) -> Float[Tensor, "neuron feature"]:
    """Each neuron's centred Gram matrix as its upper triangle, n(n+1)/2 numbers.

    row_mean_term appends the Gram's row means minus its grand mean (n numbers), the extra
    term of the reference code's one-sided centring (see reference.py).
    """
    n = rows.shape[1]
    grams, _ = kernel.gram(rows[:, :, None])
    centred = centre_gram(grams, estimator)
    tri_rows, tri_cols = upper_triangle(n, rows.device)
    features = centred[:, tri_rows, tri_cols]
    if row_mean_term:
        row_means = grams.mean(dim=2)
        features = torch.cat([features, row_means - row_means.mean(dim=1, keepdim=True)], dim=1)
    return features


def neurons_per_chunk(n_samples: int, itemsize: int, memory_budget_bytes: int) -> int:
    """How many neurons' Gram matrices fit in half the budget."""
    per_neuron = GRAM_COPIES * n_samples * n_samples * itemsize
    return max(1, (memory_budget_bytes // 2) // per_neuron)


def pairwise_inner_products(
    rows_a: Float[Tensor, "neuron_a sample"],
    rows_b: Float[Tensor, "neuron_b sample"],
    kernel_a: Kernel,
    kernel_b: Kernel,
    estimator: str,
    memory_budget_bytes: int = MEMORY_BUDGET_BYTES,
    with_norms: bool = False,
    row_mean_term: bool = False,
):
    """<Kc_i, Lc_j> (+ n <c_i, c_j>) for all pairs -> [n_a, n_b] (and squared norms)."""
    n = rows_a.shape[1]
    chunk = neurons_per_chunk(n, rows_a.element_size(), memory_budget_bytes)
    weights = feature_weights(n, rows_a.dtype, rows_a.device, row_mean_term)
    out = torch.empty(rows_a.shape[0], rows_b.shape[0], dtype=rows_a.dtype, device=rows_a.device)
    norms_a = torch.empty(rows_a.shape[0], dtype=rows_a.dtype, device=rows_a.device)
    norms_b = torch.empty(rows_b.shape[0], dtype=rows_b.dtype, device=rows_b.device)
    b_starts = range(0, rows_b.shape[0], chunk)
    cached_b = None
    if len(b_starts) == 1:
        cached_b = gram_features(rows_b, kernel_b, estimator, row_mean_term)
        norms_b[:] = cached_b.square() @ weights
    for a_start in range(0, rows_a.shape[0], chunk):
        a_stop = min(rows_a.shape[0], a_start + chunk)
        left = gram_features(rows_a[a_start:a_stop], kernel_a, estimator, row_mean_term)
        norms_a[a_start:a_stop] = left.square() @ weights
        left = left * weights
        for b_start in b_starts:
            b_stop = min(rows_b.shape[0], b_start + chunk)
            right = cached_b
            if right is None:
                right = gram_features(rows_b[b_start:b_stop], kernel_b, estimator, row_mean_term)
                if a_start == 0:
                    norms_b[b_start:b_stop] = right.square() @ weights
            out[a_start:a_stop, b_start:b_stop] = left @ right.T
    if with_norms:
        return out, norms_a, norms_b
    return out


def max_mean_score(pairwise_matrix) -> float:
    """(mean over rows of the row maxima + mean over columns of the column maxima) / 2.

    The BridgeX-ICL aggregate of a pairwise [n_a, n_b] matrix: how well each neuron of one set
    is matched by its best partner in the other, symmetrised.
    """
    matrix = as_tensor(pairwise_matrix, "pairwise_matrix")
    if matrix.ndim != 2:
        raise InputError(f"pairwise_matrix must be 2-D [n_a, n_b], got shape {tuple(matrix.shape)}")
    return float(max_mean_of(matrix[None])[0])


def max_mean_of(matrices: Float[Tensor, "batch neuron_a neuron_b"]) -> Float[Tensor, " batch"]:
    """max_mean_score of each matrix in a stack."""
    return 0.5 * (matrices.amax(dim=2).mean(dim=1) + matrices.amax(dim=1).mean(dim=1))


def _kernels(kernel, bandwidth: Bandwidth, kernel_b) -> tuple[Kernel, Kernel]:
    kernel_a = make_kernel(kernel, bandwidth)
    return kernel_a, kernel_a if kernel_b is None else make_kernel(kernel_b, bandwidth)


def pairwise_hsic(
    A,
    B,
    kernel="gaussian",
    bandwidth: Bandwidth = "median",
    estimator: str = "biased",
    *,
    kernel_b=None,
    memory_budget_bytes: int = MEMORY_BUDGET_BYTES,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """HSIC between every row of A [n_a, n] and every row of B [n_b, n] -> [n_a, n_b].

    Entry (i, j) equals hsic(A[i], B[j], kernel, bandwidth, estimator): with the median rule
    each neuron gets its own bandwidth.
    """
    rows_a, rows_b = neuron_pair(A, B, device)
    n = rows_a.shape[1]
    check_estimator(estimator, n)
    kernel_a, kernel_other = _kernels(kernel, bandwidth, kernel_b)
    inner = pairwise_inner_products(rows_a, rows_b, kernel_a, kernel_other, estimator,
                                    memory_budget_bytes)
    return (inner / normaliser(n, estimator)).cpu().numpy()


def cka_from_inner_products(inner: Tensor, norms_a: Tensor, norms_b: Tensor) -> Tensor:
    """inner_ij / sqrt(norm_i norm_j), 0 where a neuron has no variation."""
    denominator = norms_a.clamp(min=0).sqrt()[:, None] * norms_b.clamp(min=0).sqrt()[None, :]
    safe = torch.where(denominator > 0, denominator, torch.ones_like(denominator))
    return torch.where(denominator > 0, inner / safe, torch.zeros_like(inner))


def pairwise_cka(
    A,
    B,
    kernel="gaussian",
    bandwidth: Bandwidth = "median",
    debiased: bool = False,
    *,
    kernel_b=None,
    memory_budget_bytes: int = MEMORY_BUDGET_BYTES,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """CKA (normalised HSIC) between every row of A and every row of B -> [n_a, n_b]."""
    rows_a, rows_b = neuron_pair(A, B, device)
    estimator = "unbiased" if debiased else "biased"
    check_estimator(estimator, rows_a.shape[1])
    kernel_a, kernel_other = _kernels(kernel, bandwidth, kernel_b)
    inner, norms_a, norms_b = pairwise_inner_products(
        rows_a, rows_b, kernel_a, kernel_other, estimator, memory_budget_bytes, with_norms=True)
    return cka_from_inner_products(inner, norms_a, norms_b).cpu().numpy()


def standardise_rows(rows: Float[Tensor, "neuron sample"]) -> Float[Tensor, "neuron sample"]:
    """z-score each row (sample standard deviation); a constant row becomes zeros."""
    centred = rows - rows.mean(dim=1, keepdim=True)
    if rows.shape[1] < 2:
        return torch.zeros_like(rows)
    spread = rows.std(dim=1, keepdim=True)
    safe = torch.where(spread > 0, spread, torch.ones_like(spread))
    return torch.where(spread > 0, centred / safe, torch.zeros_like(centred))


def _set_samples(A, B, standardise: bool, device) -> tuple[Tensor, Tensor]:
    rows_a, rows_b = neuron_pair(A, B, device)
    if standardise:
        rows_a, rows_b = standardise_rows(rows_a), standardise_rows(rows_b)
    return rows_a.T, rows_b.T


def set_hsic(
    A,
    B,
    kernel="gaussian",
    bandwidth: Bandwidth = "median",
    estimator: str = "biased",
    *,
    standardise: bool = True,
    kernel_b=None,
    device: str | torch.device | None = None,
) -> float:
    """Multivariate HSIC between two neuron sets: each sample is the vector of a set's neurons.

    standardise: z-score each neuron first, so that no neuron dominates the distances.
    """
    samples_a, samples_b = _set_samples(A, B, standardise, device)
    return hsic(samples_a, samples_b, kernel, bandwidth, estimator, kernel_y=kernel_b)


def set_hsic_test(
    A,
    B,
    kernel="gaussian",
    method: str = "permutation",
    n_permutations: int = 1000,
    seed: int | None = 0,
    *,
    bandwidth: Bandwidth = "median",
    estimator: str = "biased",
    standardise: bool = True,
    kernel_b=None,
    device: str | torch.device | None = None,
) -> HSICTestResult:
    """Independence test of two neuron sets (set-level HSIC, permutation or gamma p-value)."""
    samples_a, samples_b = _set_samples(A, B, standardise, device)
    return hsic_test(samples_a, samples_b, kernel, method, n_permutations, seed,
                     bandwidth=bandwidth, estimator=estimator, kernel_y=kernel_b)
