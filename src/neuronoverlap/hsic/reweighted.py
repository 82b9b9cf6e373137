"""Overlap-vs-columns pairwise scores under integer sample weights, the kernels held fixed.

A bootstrap resample that draws sample u c_u times has Gram matrices K' = K[idx][:, idx]. When
the kernel (z-scores, bandwidth) is fixed on the full sample, every score of the resample is a
reweighting of the full-sample Gram matrices by the counts c (sum c = n):

    W_ij   = sum_uv c_u c_v K^i_uv L^j_uv,      m^K_u = (1/n) sum_v c_v K_uv,   g^K = (1/n) c.m^K
    tr(K' H L')           = W_ij - n sum_u c_u m^K_u m^L_u                         ("reference")
    n^2 HSIC_b(K', L')    = W_ij - 2n sum_u c_u m^K_u m^L_u + n^2 g^K g^L          (for "cka",
    divided by the same expression's square roots for (K, K) and (L, L)).

W is one matrix product of the weighted O Gram matrices with the columns' Gram matrices, which
are built once (or, past `memory_budget_bytes`, once per block and resample) from the
full-sample bandwidths. The kernels are those of `hsic/columns.py` on the full sample.

The "reference" kind's kernels have a finite expansion (expansion.py) wherever their bandwidth
is large against the z-scores, as it is for every ordinary layer: there a resample weights the
full-sample features instead, a product of [n, |O| r] by [n, columns r] with r about 7-16.
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor

from neuronoverlap.hsic.columns import overlap_bandwidth
from neuronoverlap.hsic.expansion import (
    blockwise_scores,
    column_block,
    gaussian_features,
    reference_degrees,
)
from neuronoverlap.hsic.kernels import Gaussian, pair_median_bandwidth, power_of_two_scale
from neuronoverlap.hsic.pairwise import cka_from_inner_products
from neuronoverlap.hsic.reference import reference_zscore

DENSE_BUDGET_BYTES = 1 << 30


def _grams(rows: Float[Tensor, "neuron sample"], sigma: Tensor) -> Float[Tensor, "neuron u v"]:
    """exp(-(x_u - x_v)^2 / (2 sigma^2)) per neuron (sigma: one per neuron)."""
    return Gaussian(1.0).of_squared((rows[:, :, None] - rows[:, None, :]).square_(), sigma[:, None, None])


def _median_sigma(rows: Float[Tensor, "neuron sample"]) -> Tensor:
    """Each neuron's median-heuristic bandwidth (as Gaussian("median") computes it)."""
    scale = power_of_two_scale(rows[:, :, None])
    scaled = rows / scale[:, None]
    n = rows.shape[1]
    first, second = torch.triu_indices(n, n, 1)
    pairs = (scaled[:, first] - scaled[:, second]).square()
    return pair_median_bandwidth(pairs, "median") * scale


class _ExpandedColumns:
    """The "reference" kind through the kernel's finite expansion (expansion.py): a resample
    weights the full-sample features by its counts. The columns' features are kept while they
    fit the budget, else rebuilt a block at a time for each resample."""

    def __init__(self, zscored_o: Tensor, zscored_c: Tensor, sigma: float, degrees, budget: int):
        self.sigma, self.degrees, self.zscored_c = sigma, degrees, zscored_c
        self.features_o = gaussian_features(zscored_o, sigma, degrees[0])
        n_o, n = zscored_o.shape
        r_o, r_c = degrees[0] + 1, degrees[1] + 1
        self.block = column_block(n_o, n, r_o, r_c, zscored_o.element_size())
        keeps = zscored_c.shape[0] * n * r_c * zscored_c.element_size() <= budget
        self.features_c = gaussian_features(zscored_c, sigma, degrees[1]) if keeps else None

    def score(self, counts: Tensor) -> Tensor:
        def columns(start: int, stop: int) -> Tensor:
            if self.features_c is not None:
                return self.features_c[start:stop]
            return gaussian_features(self.zscored_c[start:stop], self.sigma, self.degrees[1])

        weights = counts.to(self.features_o.dtype)
        return blockwise_scores(self.features_o, self.zscored_c.shape[0], columns, self.block, weights)


class ReweightedScores:
    """score(counts) -> [n_o, n_columns] pairwise scores of the resample with those counts."""

    def __init__(
        self,
        overlap_rows: Tensor,
        column_rows: Tensor,
        kind: str,
        memory_budget_bytes: int = DENSE_BUDGET_BYTES,
        bandwidth: float | None = None,
    ):
        """bandwidth: the "reference" kind's shared bandwidth when it is not that of
        `overlap_rows` (e.g. a superset of several resamples' overlap sets, scored with the
        full-sample O_l's bandwidth)."""
        self.kind = kind
        self.expanded = None
        if kind == "reference":
            overlap_rows, column_rows = reference_zscore(overlap_rows), reference_zscore(column_rows)
            sigma = overlap_bandwidth(overlap_rows) if bandwidth is None else bandwidth
            degrees = reference_degrees(overlap_rows, column_rows, sigma)
            if degrees is not None:
                self.expanded = _ExpandedColumns(
                    overlap_rows, column_rows, sigma, degrees, memory_budget_bytes
                )
                return
            self.sigma_o = overlap_rows.new_full((overlap_rows.shape[0],), sigma)
            self.sigma_c = column_rows.new_full((column_rows.shape[0],), sigma)
        else:
            self.sigma_o, self.sigma_c = _median_sigma(overlap_rows), _median_sigma(column_rows)
        self.rows_c = column_rows
        n = column_rows.shape[1]
        self.first, self.second = torch.triu_indices(n, n, 1)
        self.parts_o = self._parts(_grams(overlap_rows, self.sigma_o))
        per_column = 3 * n * n * column_rows.element_size()  # dense, triangle and its square
        self.block = max(1, memory_budget_bytes // per_column)
        self.cached = (
            self._parts(_grams(column_rows, self.sigma_c)) if column_rows.shape[0] <= self.block else None
        )

    def _parts(self, grams: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """(dense Gram matrices, [diagonal, upper triangle] features, their squares for cka)."""
        triangle = torch.cat([grams.diagonal(dim1=1, dim2=2), grams[:, self.first, self.second]], dim=1)
        return grams, triangle, triangle.square() if self.kind == "cka" else None

    def _blocks(self):
        if self.cached is not None:
            yield 0, self.cached
            return
        for start in range(0, self.rows_c.shape[0], self.block):
            stop = start + self.block
            yield start, self._parts(_grams(self.rows_c[start:stop], self.sigma_c[start:stop]))

    def score(self, counts: Int[Tensor, " sample"]) -> Float[Tensor, "overlap column"]:
        """The scores of the resample that draws sample u counts[u] times."""
        if self.expanded is not None:
            return self.expanded.score(counts)
        c = counts.to(self.parts_o[0].dtype)
        n = float(c.sum())
        weights = torch.cat([c.square(), 2 * c[self.first] * c[self.second]])
        grams_o, triangle_o, squares_o = self.parts_o
        left = triangle_o * weights
        means_o = grams_o @ c / n
        totals_o = means_o @ c / n
        n_o, n_c = grams_o.shape[0], self.rows_c.shape[0]
        inner = torch.empty(n_o, n_c, dtype=c.dtype)
        norms_c = torch.empty(n_c, dtype=c.dtype)
        factor = 1.0 if self.kind == "reference" else 2.0
        for start, (grams, triangle, squares) in self._blocks():
            stop = start + grams.shape[0]
            means_c = grams @ c / n
            block = left @ triangle.T
            block -= factor * n * (means_o * c) @ means_c.T
            if self.kind == "cka":
                totals_c = means_c @ c / n
                block += n * n * totals_o[:, None] * totals_c[None, :]
                norms_c[start:stop] = (
                    squares @ weights - 2 * n * means_c.square() @ c + n * n * totals_c.square()
                )
            inner[:, start:stop] = block
        if self.kind == "reference":
            return inner
        norms_o = squares_o @ weights - 2 * n * means_o.square() @ c + n * n * totals_o.square()
        return cka_from_inner_products(inner, norms_o, norms_c)
