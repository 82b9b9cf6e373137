"""Partial Mantel test and the control matrices of the spectrum: script and subword overlap.

Partial Mantel (Smouse, Long & Sokal 1986; permutation of residuals, Legendre & Legendre 2012
section 10.5): on the upper triangles, regress x and y on the controls (with an intercept); the
statistic is the Pearson correlation of the two residual vectors (Spearman: the same on ranks).
The null relabels the languages of x's residual matrix (rows and columns together, the draws of
`spectrum.permutation_orders`), residualises the relabelled matrix on the controls again and
correlates it with y's residuals; p = (1 + #{r_b as extreme}) / (1 + B) as in `mantel_test`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from jaxtyping import Float, Int
from scipy.spatial.distance import squareform
from scipy.stats import rankdata

from neuronoverlap.analyses.spectrum import (
    MantelResult,
    check_distance,
    check_mantel_options,
    mantel_pvalue,
    permutation_orders,
    relabelled_upper,
)
from neuronoverlap.errors import InputError
from neuronoverlap.languages import get_language
from neuronoverlap.options import DEFAULT_MANTEL_PERMUTATIONS


@dataclass(frozen=True)
class PartialMantelResult(MantelResult):
    """Partial Mantel test of x against y given the controls (named in `controls`)."""

    controls: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "controls": self.controls}


def _upper(matrix: np.ndarray, method: str) -> np.ndarray:
    values = matrix[np.triu_indices(matrix.shape[0], k=1)]
    return rankdata(values) if method == "spearman" else values


def _residualiser(controls: np.ndarray) -> np.ndarray:
    """The projection I - H onto the complement of [1, controls] (pairs x pairs)."""
    design = np.column_stack([np.ones(controls.shape[0]), controls])
    return np.eye(design.shape[0]) - design @ np.linalg.pinv(design)


def _correlate(rows: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row with `other` (0 where a row is constant)."""
    rows = rows - rows.mean(axis=-1, keepdims=True)
    other = other - other.mean()
    norms = np.linalg.norm(rows, axis=-1) * np.linalg.norm(other)
    return np.divide(rows @ other, norms, out=np.zeros(rows.shape[:-1]), where=norms > 1e-12)


def _residuals(
    x: np.ndarray, y: np.ndarray, controls: Mapping[str, np.ndarray], method: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x's and y's upper-triangle residuals on [1, controls], and the residualising projection."""
    if not controls:
        raise InputError("a partial Mantel test needs at least one control matrix")
    a, b = check_distance(x), check_distance(y)
    matrices = {name: check_distance(m, f"control matrix {name}") for name, m in controls.items()}
    if any(m.shape != a.shape for m in (b, *matrices.values())):
        raise InputError("a partial Mantel test compares matrices over the same languages")
    if a.shape[0] < 4:
        raise InputError("a partial Mantel test needs at least 4 languages")
    residualise = _residualiser(np.column_stack([_upper(m, method) for m in matrices.values()]))
    rx, ry = residualise @ _upper(a, method), residualise @ _upper(b, method)
    if np.linalg.norm(rx) < 1e-12 or np.linalg.norm(ry) < 1e-12:
        raise InputError("a matrix is fully explained by the controls: nothing left to test")
    return rx, ry, residualise


def partial_correlation(
    x: Float[np.ndarray, "lang lang"],
    y: Float[np.ndarray, "lang lang"],
    controls: Mapping[str, Float[np.ndarray, "lang lang"]],
    method: str = "pearson",
) -> float:
    """The partial Mantel statistic alone: correlation of x's and y's residuals on the controls."""
    rx, ry, _ = _residuals(x, y, controls, method)
    return float(_correlate(rx, ry))


def partial_mantel_test(
    x: Float[np.ndarray, "lang lang"],
    y: Float[np.ndarray, "lang lang"],
    controls: Mapping[str, Float[np.ndarray, "lang lang"]],
    n_permutations: int = DEFAULT_MANTEL_PERMUTATIONS,
    seed: int = 0,
    method: str = "pearson",
    alternative: str = "greater",
) -> PartialMantelResult:
    """Association of distance matrices x and y with the `controls` partialled out of both."""
    check_mantel_options(method, alternative, n_permutations)
    rx, ry, residualise = _residuals(x, y, controls, method)
    statistic = float(_correlate(rx, ry))
    orders = permutation_orders(len(x), n_permutations, seed)
    permuted = relabelled_upper(squareform(rx, checks=False), orders)
    null = _correlate(permuted @ residualise.T, ry)
    pvalue = mantel_pvalue(null, statistic, alternative)
    return PartialMantelResult(
        statistic, pvalue, null, n_permutations, method, alternative, seed, list(controls)
    )


# ---- control matrices ------------------------------------------------------------------------
def script_distances(codes: Sequence[str]) -> Float[np.ndarray, "lang lang"]:
    """0 for two languages written in the same ISO 15924 script, 1 otherwise (registry)."""
    scripts = [get_language(code).script for code in codes]
    return np.array([[float(s != t) for t in scripts] for s in scripts])


def token_type_counts(
    token_ids: Mapping[str, Int[np.ndarray, " token"]], exclude: Sequence[int] = ()
) -> tuple[list[str], Int[np.ndarray, "lang type"]]:
    """How often each token type occurs per language, over the types any language uses."""
    codes = list(token_ids)
    arrays = [np.asarray(token_ids[c], dtype=np.int64) for c in codes]
    arrays = [a[~np.isin(a, np.asarray(list(exclude), dtype=np.int64))] for a in arrays]
    types, inverse = np.unique(np.concatenate(arrays), return_inverse=True)
    counts = np.zeros((len(codes), types.size), dtype=np.int64)
    start = 0
    for i, array in enumerate(arrays):
        np.add.at(counts[i], inverse[start : start + array.size], 1)
        start += array.size
    return codes, counts


def subword_distances(counts: Int[np.ndarray, "lang type"]) -> Float[np.ndarray, "lang lang"]:
    """1 - weighted Jaccard of token-type counts: 1 - sum min(c_a, c_b) / sum max(c_a, c_b)."""
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.shape[0]
    distance = np.zeros((n, n))
    for i in range(n):
        low = np.minimum(counts[i], counts).sum(axis=1)
        high = np.maximum(counts[i], counts).sum(axis=1)
        distance[i] = 1.0 - np.divide(low, high, out=np.zeros(n), where=high > 0)
    np.fill_diagonal(distance, 0.0)
    return distance
