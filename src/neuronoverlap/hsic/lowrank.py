"""Permutation null statistics through truncated eigendecompositions (the fast path).

The null statistic of a permutation P is T_P = <Cx, P Cy P^T>, Cx and Cy the centred Gram
matrices. Write each as C = M - [unbiased] Diag(diag M), where M = H K H (biased estimators) or
M_ij = K_ij - a_i - a_j + c (unbiased: the U-centring's row means a and constant c, applied to
the whole of K, so that M's off-diagonal part is U(K)). M has the numerical rank of K plus two,
small for Gaussian kernels of low-dimensional data (about 20 for one neuron at any n). With
M = V diag(mu) V^T and My = U diag(lambda) U^T:

    T_P = sum_kl mu_k lambda_l (v_k . P u_l)^2  -  [unbiased] sum_i diag(Mx)_i diag(My)_P(i),

one small matrix product per permutation instead of a gather of n^2 entries. Eigen-components
are dropped (smallest |eigenvalue| first) while the dropped part's Frobenius norm stays below
1e-12 ||M||_F, so each T_P is exact to about 2e-12 ||Mx||_F ||My||_F, far below the spacing of
distinct null values; the observed statistic is computed the same way, so ties stay ties. The
decomposition is done in float64. The path is taken only when it is cheaper (see `worth_it`).
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor

TRUNCATION = 1e-12
CHUNK_BYTES = 8 << 20
RANK_PRODUCT_PER_SAMPLE = 2  # use the path when r_x * r_y <= 2 n
PERMUTATIONS_PER_SAMPLE = 1 / 8  # and when the eigendecompositions pay off: B >= n / 8


def base_matrix(gram: Tensor, centred: Tensor, estimator: str) -> Tensor:
    """M (see the module docstring) in float64; zero where the centred matrix is zero."""
    if estimator != "unbiased":
        return centred.double()
    gram = gram.double()
    n = gram.shape[-1]
    diagonal = gram.diagonal(dim1=-2, dim2=-1)
    row_sums = gram.sum(dim=-1) - diagonal
    total = row_sums.sum(dim=-1)
    means = row_sums / (n - 2)
    constant = total / ((n - 1) * (n - 2))
    base = gram - means[..., :, None] - means[..., None, :] + constant[..., None, None]
    no_variation = (centred == 0).all(dim=-1).all(dim=-1)
    return torch.where(no_variation[..., None, None], torch.zeros_like(base), base)


def truncated_eigen(
    matrices: Float[Tensor, "batch sample sample"],
) -> tuple[Float[Tensor, "batch rank"], Float[Tensor, "batch sample rank"]]:
    """Largest-|eigenvalue| components whose dropped tail is <= TRUNCATION in Frobenius norm."""
    values, vectors = torch.linalg.eigh(matrices)
    order = values.abs().argsort(dim=-1, descending=True)
    values = values.gather(-1, order)
    vectors = vectors.gather(-1, order[..., None, :].expand_as(vectors))
    squares = values.square()
    tail = squares.flip(-1).cumsum(-1).flip(-1)  # tail[k] = sum of squares from k on
    keep = tail > (TRUNCATION**2) * tail[..., :1]
    rank = max(1, int(keep.sum(dim=-1).max()))
    return values[..., :rank], vectors[..., :rank]


def worth_it(rank_x: int, rank_y: int, n: int, n_permutations: int) -> bool:
    return rank_x * rank_y <= RANK_PRODUCT_PER_SAMPLE * n and n_permutations >= PERMUTATIONS_PER_SAMPLE * n


def low_rank_inner_products(
    factors_x: tuple[Tensor, Tensor],
    factors_y: tuple[Tensor, Tensor],
    diagonals: tuple[Tensor, Tensor] | None,
    permutations: Int[Tensor, "batch permutation sample"],
) -> Float[Tensor, "batch permutation"]:
    """T_P for every batch element and each of its permutations, in float64."""
    values_x, vectors_x = factors_x
    values_y, vectors_y = factors_y
    batch, n, rank_y = vectors_y.shape
    rank_x = vectors_x.shape[-1]
    n_permutations = permutations.shape[1]
    permutations = permutations.to(vectors_y.device)
    weights = values_x[:, :, None] * values_y[:, None, :]  # [batch, rank_x, rank_y]
    transposed_x = vectors_x.transpose(-1, -2)  # [batch, rank_x, n]
    per_permutation = 8 * (n * rank_y + 2 * rank_x * rank_y + n)
    per_chunk = int(min(n_permutations, max(1, CHUNK_BYTES // per_permutation)))
    out = torch.empty(batch, n_permutations, dtype=torch.float64, device=vectors_y.device)
    for element in range(batch):
        for start in range(0, n_permutations, per_chunk):
            order = permutations[element, start : start + per_chunk]
            moved = vectors_y[element][order]  # [count, n, rank_y]: rows of U reordered
            products = torch.matmul(transposed_x[element], moved)  # [count, rank_x, rank_y]
            statistic = (products.square() * weights[element]).sum(dim=(-1, -2))
            if diagonals is not None:
                diagonal_x, diagonal_y = diagonals
                statistic -= diagonal_y[element][order] @ diagonal_x[element]
            out[element, start : start + per_chunk] = statistic
    return out


def low_rank_null(
    gram_x: Tensor,
    gram_y: Tensor,
    centred_x: Tensor,
    centred_y: Tensor,
    estimator: str,
    permutations: Int[Tensor, "batch permutation sample"],
) -> tuple[Tensor, Tensor] | None:
    """(observed, null) inner products by the fast path, or None where it would not pay off."""
    n, n_permutations = gram_x.shape[-1], permutations.shape[1]
    if n_permutations < PERMUTATIONS_PER_SAMPLE * n:
        return None
    base_x = base_matrix(gram_x, centred_x, estimator)
    base_y = base_matrix(gram_y, centred_y, estimator)
    factors_x, factors_y = truncated_eigen(base_x), truncated_eigen(base_y)
    if not worth_it(factors_x[0].shape[-1], factors_y[0].shape[-1], n, n_permutations):
        return None
    diagonals = None
    if estimator == "unbiased":
        diagonals = (base_x.diagonal(dim1=-2, dim2=-1), base_y.diagonal(dim1=-2, dim2=-1))
    identity = torch.arange(n, device=permutations.device).expand(gram_x.shape[0], 1, n)
    observed = low_rank_inner_products(factors_x, factors_y, diagonals, identity)[:, 0]
    null = low_rank_inner_products(factors_x, factors_y, diagonals, permutations)
    return observed.to(gram_x.dtype), null.to(gram_x.dtype)
