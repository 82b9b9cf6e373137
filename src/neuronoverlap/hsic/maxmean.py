"""Permutation test of the max-mean bridge score between two neuron sets.

H0: the samples of B are exchangeable with respect to A (no dependence between the sets). The
null is drawn by permuting B's samples, the same permutation for all of B's neurons (keeping
the dependence within B), and recomputing the whole pairwise matrix and its max-mean score.
Permuting samples permutes each centred Gram matrix, and bandwidths, z-scores and norms do not
change, so each null matrix is one gather of B's stored Gram triangles and one matrix product:
O(B n_a n_b n^2 / 2) work, vectorised over chunks of permutations and of B's neurons.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from neuronoverlap.errors import InputError
from neuronoverlap.hsic.estimators import normaliser
from neuronoverlap.hsic.independence import draw_permutations
from neuronoverlap.hsic.inputs import check_estimator
from neuronoverlap.hsic.kernels import Bandwidth, Gaussian, make_kernel
from neuronoverlap.hsic.pair_layout import layout_pairs, pair_positions
from neuronoverlap.hsic.pairwise import (
    MEMORY_BUDGET_BYTES,
    feature_weights,
    features_in_chunks,
    neuron_pair,
)
from neuronoverlap.hsic.reference import reference_zscore, shared_bandwidth
from neuronoverlap.stats.permutation import PermutationTestResult, permutation_pvalue

#: The pairwise scores a max-mean test can be taken over (the bridge scoring's `score`).
SCORES = ("reference", "hsic", "cka")


@dataclass(frozen=True)
class MaxMeanTestResult(PermutationTestResult):
    """Observed max-mean score, its permutation p-value and null distribution [n_permutations]."""

    score: str
    n: int
    n_a: int
    n_b: int
    seed: int | None

    @property
    def mode(self) -> str:
        """The older name of score."""
        return self.score


def _inverse_norms(squared_norms: Tensor) -> Tensor:
    norms = squared_norms.clamp(min=0).sqrt()
    safe = torch.where(norms > 0, norms, torch.ones_like(norms))
    return torch.where(norms > 0, 1 / safe, torch.zeros_like(norms))


def score_operands(
    rows_a: Tensor,
    rows_b: Tensor,
    score: str,
    kernel,
    bandwidth: Bandwidth,
    estimator: str,
    memory_budget_bytes: int = MEMORY_BUDGET_BYTES,
    reference_sigma: float | None = None,
) -> tuple[Float[Tensor, "neuron_a feature"], Float[Tensor, "neuron_b feature"]]:
    """(left, right) with pairwise score matrix = left @ right.T for the chosen pairwise score.

    reference_sigma: the "reference" score's Gaussian bandwidth (default: the reference's
    shared bandwidth of A and B)."""
    n = rows_a.shape[1]
    row_mean_term = score == "reference"
    weights = feature_weights(n, rows_a.dtype, rows_a.device, row_mean_term)
    if score == "reference":
        rows_a, rows_b = reference_zscore(rows_a), reference_zscore(rows_b)
        sigma = shared_bandwidth(rows_a, rows_b) if reference_sigma is None else reference_sigma
        kernel_a = kernel_b = Gaussian(float(sigma))
        estimator = "biased"
    else:
        kernel_a = kernel_b = make_kernel(kernel, bandwidth)
    norms_a, norms_b = (
        (rows_a.new_zeros(rows_a.shape[0]), rows_b.new_zeros(rows_b.shape[0]))
        if score == "cka"
        else (None, None)
    )
    left = features_in_chunks(rows_a, kernel_a, estimator, row_mean_term, memory_budget_bytes, norms_a)
    right = features_in_chunks(rows_b, kernel_b, estimator, row_mean_term, memory_budget_bytes, norms_b)
    if score == "hsic":
        left = left / normaliser(n, estimator)
    elif score == "cka":  # the squared norms gram_features computed while building them
        left = left * _inverse_norms(norms_a)[:, None]
        right = right * _inverse_norms(norms_b)[:, None]
    return left * weights, right


def permuted_feature_index(
    orders: Int[Tensor, "permutation sample"], n_features: int
) -> Int[Tensor, "permutation feature"]:
    """Where each feature of a neuron's reordered Gram matrix comes from in its stored features.

    Diagonal entry a of the reordered matrix is diagonal entry order[a]; the pair (a, b) is
    the pair (order[a], order[b]), stored where pair_layout puts it; row-mean entries (when
    present) move with order itself.
    """
    n = orders.shape[1]
    first, second = layout_pairs(n, orders.device)
    position = n + pair_positions(orders[:, first], orders[:, second], n)
    parts = [orders, position]
    if n_features > n + first.shape[0]:
        parts.append(n + first.shape[0] + orders)
    return torch.cat(parts, dim=1)


def permuted_max_mean(
    left: Float[Tensor, "neuron_a feature"],
    right: Float[Tensor, "neuron_b feature"],
    orders: Int[Tensor, "permutation sample"],
    memory_budget_bytes: int = MEMORY_BUDGET_BYTES,
) -> Float[Tensor, " permutation"]:
    """max-mean score of left @ (right with B's samples reordered by each order).T."""
    n_a, n_b, n_features = left.shape[0], right.shape[0], right.shape[1]
    item = right.element_size()
    orders = orders.to(right.device)
    half = max(1, memory_budget_bytes // 2)
    b_chunk = int(min(n_b, max(1, half // (n_features * item))))
    per_permutation = b_chunk * n_features * item + n_a * b_chunk * item
    p_chunk = int(min(orders.shape[0], max(1, half // per_permutation)))
    out = torch.empty(orders.shape[0], dtype=right.dtype, device=right.device)
    for start in range(0, orders.shape[0], p_chunk):
        order = orders[start : start + p_chunk]
        count = order.shape[0]
        index = permuted_feature_index(order, n_features).reshape(-1)
        row_max = torch.full((count, n_a), -torch.inf, dtype=right.dtype, device=right.device)
        column_max_sum = torch.zeros(count, dtype=right.dtype, device=right.device)
        for b_start in range(0, n_b, b_chunk):
            block = right[b_start : b_start + b_chunk]
            gathered = block.index_select(1, index).reshape(block.shape[0] * count, n_features)
            scores = (left @ gathered.T).reshape(n_a, block.shape[0], count)
            row_max = torch.maximum(row_max, scores.amax(dim=1).T)
            column_max_sum += scores.amax(dim=0).sum(dim=0)
        out[start : start + count] = 0.5 * (row_max.mean(dim=1) + column_max_sum / n_b)
    return out


def max_mean_test(
    A,
    B,
    score: str = "reference",
    n_permutations: int = 1000,
    seed: int | None = 0,
    *,
    kernel="gaussian",
    bandwidth: Bandwidth = "median",
    estimator: str = "biased",
    memory_budget_bytes: int = MEMORY_BUDGET_BYTES,
    device: str | torch.device | None = None,
) -> MaxMeanTestResult:
    """Permutation p-value of the max-mean score of A [n_a, n] and B [n_b, n].

    score: "reference" (reference_bridge_score), "hsic" (pairwise_hsic with kernel, bandwidth,
    estimator) or "cka" (pairwise_cka; estimator "unbiased" gives debiased CKA).
    p = (1 + #{null >= observed}) / (1 + n_permutations).
    """
    if score not in SCORES:
        raise InputError(f"unknown max-mean score {score!r}; choose one of {', '.join(SCORES)}")
    if int(n_permutations) != n_permutations or n_permutations < 1:
        raise InputError(f"n_permutations must be a positive integer, got {n_permutations!r}")
    rows_a, rows_b = neuron_pair(A, B, device)
    n = rows_a.shape[1]
    check_estimator("biased" if score == "reference" else estimator, n)
    left, right = score_operands(rows_a, rows_b, score, kernel, bandwidth, estimator, memory_budget_bytes)
    identity = torch.arange(n)[None]
    observed = permuted_max_mean(left, right, identity, memory_budget_bytes)
    orders = draw_permutations(n, int(n_permutations), seed)[0]
    null = permuted_max_mean(left, right, orders, memory_budget_bytes)
    pvalue = permutation_pvalue(observed, null[None])
    return MaxMeanTestResult(
        statistic=float(observed[0]),
        pvalue=float(pvalue[0]),
        null_distribution=null.cpu().numpy(),
        score=score,
        n=n,
        n_a=rows_a.shape[0],
        n_b=rows_b.shape[0],
        n_permutations=int(n_permutations),
        seed=seed,
    )
