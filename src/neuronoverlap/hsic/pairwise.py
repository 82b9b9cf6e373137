"""Neuron-level HSIC: every pair of two neuron sets at once, and set-level (multivariate) HSIC.

A neuron set is a matrix [n_neurons, n_samples]: each row one neuron's activations over the
same n samples. For rows a_i of A and b_j of B, pairwise HSIC_ij = <Kc_i, Lc_j> / norm with
Kc_i the centred Gram matrix of the scalar samples a_i (its own median bandwidth by default).
Since <Kc, Lc> = sum_{a<=b} w_ab Kc_ab Lc_ab (w = 1 on the diagonal, 2 above it), each centred
Gram matrix is stored as its diagonal and its n(n-1)/2 pair values, n(n+1)/2 numbers
("features", built and centred directly in that form, laid out as in pair_layout.py), and all
n_a x n_b values come from
one matrix product per block of neurons. Blocks are sized so that what is held at once stays
under `memory_budget_bytes` (default 1 GiB), whatever the number of neurons.
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from neuronoverlap.errors import InputError
from neuronoverlap.hsic.estimators import NO_VARIATION_EPSILONS, hsic, normaliser
from neuronoverlap.hsic.independence import HSICTestResult, hsic_test
from neuronoverlap.hsic.inputs import (
    as_rows,
    as_tensor,
    check_estimator,
    check_same_samples,
    common_dtype,
)
from neuronoverlap.hsic.kernels import (
    Bandwidth,
    Gaussian,
    InverseMultiquadric,
    Kernel,
    Laplacian,
    Linear,
    Polynomial,
    make_kernel,
    pair_bandwidth,
    power_of_two_scale,
)
from neuronoverlap.hsic.pair_layout import (
    add_pair_row_sums,
    fill_pairs,
    layout_pairs,
    subtract_pair_sums,
)

MEMORY_BUDGET_BYTES = 1 << 30
BUILD_BYTES = 128 << 20
# Gram triangles held per neuron while building: its features and, off the CPU, the median
# selection's working copy (on a CPU the selection runs in place).
GRAM_COPIES = 2
NUMPY_DTYPES = {torch.float64: np.float64, torch.float32: np.float32}


def new_buffer(like: Tensor, *shape: int) -> Tensor:
    """An uninitialised buffer of like's dtype and device. On a CPU it is numpy's: numpy asks
    the kernel for transparent huge pages for large arrays, which makes the first touch of
    tens of MB about 3x cheaper than torch's allocation (see docs/performance.md)."""
    if like.device.type == "cpu" and like.dtype in NUMPY_DTYPES:
        return torch.from_numpy(np.empty(shape, dtype=NUMPY_DTYPES[like.dtype]))
    return like.new_empty(shape)


def neuron_pair(A, B, device=None) -> tuple[Tensor, Tensor]:
    """Checked neuron sets [n_a, n] and [n_b, n] of one dtype on one device."""
    rows_a = as_rows(A, "A", device)
    rows_b = as_rows(B, "B", device=rows_a.device)
    rows_a, rows_b = common_dtype(rows_a, rows_b)
    check_same_samples(rows_a.shape[1], rows_b.shape[1], "A and B")
    return rows_a, rows_b


def feature_count(n: int, row_mean_term: bool = False) -> int:
    return n + n * (n - 1) // 2 + (n if row_mean_term else 0)


def feature_weights(
    n: int, dtype: torch.dtype, device: torch.device, row_mean_term: bool = False
) -> Float[Tensor, " feature"]:
    """Weights turning a dot product of features into <Kc, Lc> (+ n <c_K, c_L>)."""
    weights = torch.full((feature_count(n, row_mean_term),), 2.0, dtype=dtype, device=device)
    weights[:n] = 1.0
    if row_mean_term:
        weights[-n:] = float(n)
    return weights


def _squared_difference(second: Tensor, first: Tensor, out: Tensor) -> None:
    torch.sub(second, first, out=out).square_()


def _kernel_values(rows: Tensor, kernel: Kernel, diagonal: Tensor, pairs: Tensor) -> None:
    """Write each neuron's Gram diagonal and pair values (laid out as in pair_layout.py)."""
    if isinstance(kernel, Gaussian | Laplacian | InverseMultiquadric):
        scale = power_of_two_scale(rows[:, :, None])  # exact, keeps squares in range
        scaled = rows / scale[:, None]
        fill_pairs(scaled, pairs, _squared_difference)
        # On a CPU the median is selected in place, which reorders each row's pair values;
        # filling them again costs less than selecting on a copy.
        in_place = isinstance(kernel.bandwidth, str) and rows.device.type == "cpu"
        sigma = pair_bandwidth(kernel.bandwidth, pairs, scale, overwrite=in_place)[:, None]
        if in_place:
            fill_pairs(scaled, pairs, _squared_difference)
        kernel.of_squared(pairs, sigma)
        diagonal.copy_(kernel.of_squared(torch.zeros_like(diagonal), sigma))
    elif isinstance(kernel, Linear | Polynomial):
        fill_pairs(rows, pairs, torch.mul)
        kernel.of_products(pairs)
        diagonal.copy_(kernel.of_products(rows.square()))
    else:
        grams, _ = kernel.gram(rows[:, :, None])
        first, second = layout_pairs(rows.shape[1], rows.device)
        pairs.copy_(grams[:, first, second])
        diagonal.copy_(grams.diagonal(dim1=1, dim2=2))


def gram_features(
    rows: Float[Tensor, "neuron sample"],
    kernel: Kernel,
    estimator: str,
    row_mean_term: bool = False,
    out: Tensor | None = None,
    norms: Tensor | None = None,
    centre: bool = True,
) -> Float[Tensor, "neuron feature"]:
    """Each neuron's centred Gram matrix as [diagonal (n), pair values (n(n-1)/2)].

    Centred as the estimator says (double centring, or U-centring with a zero diagonal); a
    Gram matrix with no variation gives zeros (see estimators.centre_gram). row_mean_term
    appends the raw Gram's row means minus their mean (n numbers), the extra term of the
    reference code's one-sided centring (see reference.py). out: where to write them; norms:
    where to write each centred Gram matrix's squared Frobenius norm. centre=False leaves the
    Gram matrix uncentred (its diagonal zeroed for the unbiased estimator) and a constant
    neuron's features zero: <K, Lc> = <Kc, Lc> when Lc is centred (see pairwise_hsic).
    """
    count, n = rows.shape
    features = new_buffer(rows, count, feature_count(n, row_mean_term)) if out is None else out
    diagonal, pairs = features[:, :n], features[:, n : n + n * (n - 1) // 2]
    _kernel_values(rows, kernel, diagonal, pairs)
    if not centre:
        if row_mean_term or norms is not None:
            raise ValueError("uncentred features have no row-mean term or norms")
        if estimator == "unbiased":
            diagonal.zero_()
        constant = rows.amax(dim=1) == rows.amin(dim=1)
        if bool(constant.any()):
            features[constant] = 0
        return features
    if isinstance(kernel, Gaussian | Laplacian | InverseMultiquadric):
        scale = torch.ones_like(diagonal[:, 0])  # k(x, x) = 1 >= |k(x, x')|
    else:
        scale = torch.stack(
            [diagonal.amax(dim=1), -diagonal.amin(dim=1), pairs.amax(dim=1), -pairs.amin(dim=1)]
        ).amax(dim=0)
    row_sums = diagonal.clone()
    add_pair_row_sums(pairs, row_sums)
    if row_mean_term:
        row_means = row_sums / n
        features[:, -n:] = row_means - row_means.mean(dim=1, keepdim=True)
    if estimator == "unbiased":
        means = (row_sums - diagonal) / (n - 2)
        constant = (row_sums - diagonal).sum(dim=1) / ((n - 1) * (n - 2))
        diagonal.zero_()
    else:
        means = row_sums / n
        constant = means.mean(dim=1)
        diagonal.sub_(2 * means).add_(constant[:, None])
    subtract_pair_sums(pairs, means - 0.5 * constant[:, None])  # Kc_ab = K_ab - m_a - m_b + c
    squared_norms = (
        torch.linalg.vector_norm(diagonal, dim=1).square()
        + 2 * torch.linalg.vector_norm(pairs, dim=1).square()
    )
    flat = squared_norms.sqrt() <= NO_VARIATION_EPSILONS * n * torch.finfo(rows.dtype).eps * scale
    if bool(flat.any()):
        features[flat, : n + n * (n - 1) // 2] = 0
        squared_norms[flat] = 0
    if norms is not None:
        norms.copy_(squared_norms)
    return features


def building_bytes(n_samples: int, itemsize: int) -> int:
    """Memory held per neuron while its Gram features are built."""
    return GRAM_COPIES * feature_count(n_samples) * itemsize


def build_chunk_size(n_samples: int, itemsize: int, memory_budget_bytes: int) -> int:
    """Neurons whose Gram features are built at once: within a quarter of the budget and
    BUILD_BYTES."""
    return max(1, min(memory_budget_bytes // 4, BUILD_BYTES) // building_bytes(n_samples, itemsize))


def features_in_chunks(
    rows: Tensor,
    kernel: Kernel,
    estimator: str,
    row_mean_term: bool,
    memory_budget_bytes: int,
    norms: Tensor | None = None,
    centre: bool = True,
) -> Tensor:
    """gram_features of all rows, built a chunk of neurons at a time (norms, centre as there)."""
    chunk = build_chunk_size(rows.shape[1], rows.element_size(), memory_budget_bytes)
    out = new_buffer(rows, rows.shape[0], feature_count(rows.shape[1], row_mean_term))
    for start in range(0, rows.shape[0], chunk):
        gram_features(
            rows[start : start + chunk],
            kernel,
            estimator,
            row_mean_term,
            out=out[start : start + chunk],
            norms=None if norms is None else norms[start : start + chunk],
            centre=centre,
        )
    return out


def _weighted_products(left: Tensor, right: Tensor, n: int, row_mean_term: bool) -> Tensor:
    """left @ diag(feature_weights) @ right.T without forming the weighted copy."""
    triangle = n * (n - 1) // 2
    product = torch.addmm(
        left[:, :n] @ right[:, :n].T, left[:, n : n + triangle], right[:, n : n + triangle].T, alpha=2.0
    )
    if row_mean_term:
        product.addmm_(left[:, -n:], right[:, -n:].T, alpha=float(n))
    return product


def pairwise_inner_products(
    rows_a: Float[Tensor, "neuron_a sample"],
    rows_b: Float[Tensor, "neuron_b sample"],
    kernel_a: Kernel,
    kernel_b: Kernel,
    estimator: str,
    memory_budget_bytes: int = MEMORY_BUDGET_BYTES,
    with_norms: bool = False,
    row_mean_term: bool = False,
    centre_a: bool = True,
):
    """<Kc_i, Lc_j> (+ n <c_i, c_j>) for all pairs -> [n_a, n_b] (and squared norms).

    centre_a=False computes <K_i, Lc_j> instead, equal to <Kc_i, Lc_j> (see pairwise_hsic).
    Memory: B's features are kept whole if they fit in half the budget (else rebuilt per block
    of A), A's in blocks of a quarter, and the building temporaries take the last quarter.
    """
    n, item = rows_a.shape[1], rows_a.element_size()
    features_per_neuron = feature_count(n, row_mean_term)
    block = max(1, (memory_budget_bytes // 4) // (features_per_neuron * item))
    out = torch.empty(rows_a.shape[0], rows_b.shape[0], dtype=rows_a.dtype, device=rows_a.device)
    norms_a = torch.zeros(rows_a.shape[0], dtype=rows_a.dtype, device=rows_a.device)
    norms_b = torch.zeros(rows_b.shape[0], dtype=rows_b.dtype, device=rows_b.device)

    def features(rows: Tensor, kernel: Kernel, norms: Tensor, centre: bool = True) -> Tensor:
        return features_in_chunks(
            rows, kernel, estimator, row_mean_term, memory_budget_bytes, norms if with_norms else None, centre
        )

    b_blocks = [(start, min(rows_b.shape[0], start + block)) for start in range(0, rows_b.shape[0], block)]
    cached_b = None
    if rows_b.shape[0] * features_per_neuron * item <= memory_budget_bytes // 2:
        cached_b = features(rows_b, kernel_b, norms_b)
        b_blocks = [(0, rows_b.shape[0])]
    for a_start in range(0, rows_a.shape[0], block):
        a_stop = min(rows_a.shape[0], a_start + block)
        left = features(rows_a[a_start:a_stop], kernel_a, norms_a[a_start:a_stop], centre_a)
        for b_start, b_stop in b_blocks:
            right = cached_b
            if right is None:
                right = features(rows_b[b_start:b_stop], kernel_b, norms_b[b_start:b_stop])
            out[a_start:a_stop, b_start:b_stop] = _weighted_products(left, right, n, row_mean_term)
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
    each neuron gets its own bandwidth. Centring is a projection, so <Kc, Lc> = <K, Lc>: with a
    kernel bounded by 1 (Gaussian, Laplacian, inverse multiquadric) only B's Gram matrices are
    centred, which loses no accuracy there and saves about a third of A's work; a constant
    neuron of A still gives exactly 0.
    """
    rows_a, rows_b = neuron_pair(A, B, device)
    n = rows_a.shape[1]
    check_estimator(estimator, n)
    kernel_a, kernel_other = _kernels(kernel, bandwidth, kernel_b)
    bounded = isinstance(kernel_a, Gaussian | Laplacian | InverseMultiquadric)
    inner = pairwise_inner_products(
        rows_a, rows_b, kernel_a, kernel_other, estimator, memory_budget_bytes, centre_a=not bounded
    )
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
        rows_a, rows_b, kernel_a, kernel_other, estimator, memory_budget_bytes, with_norms=True
    )
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
    return hsic_test(
        samples_a,
        samples_b,
        kernel,
        method,
        n_permutations,
        seed,
        bandwidth=bandwidth,
        estimator=estimator,
        kernel_y=kernel_b,
    )
