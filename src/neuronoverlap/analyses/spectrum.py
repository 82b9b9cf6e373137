"""The linguistic spectrum: cluster languages by neuron similarity and compare with taxonomy.

- neuron distance = 1 - similarity (cosine by default), hierarchical clustering
  (scipy.cluster.hierarchy, average linkage by default);
- cophenetic correlation: Pearson correlation between the neuron dendrogram's cophenetic
  distances and the registry's taxonomy distances (`languages.taxonomy_distance`);
- Mantel test between the neuron-distance and taxonomy-distance matrices: permute the
  languages of one matrix, p = (1 + #{r_b >= r}) / (1 + B), seeded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from jaxtyping import Float, Int
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform
from scipy.stats import rankdata

from neuronoverlap import options
from neuronoverlap.analyses.similarity import LanguageMatrix
from neuronoverlap.errors import InputError
from neuronoverlap.languages import taxonomy_distance
from neuronoverlap.options import DEFAULT_MANTEL_PERMUTATIONS
from neuronoverlap.stats.permutation import ALTERNATIVES, PermutationTestResult, permutation_pvalue

LINKAGES = options.LINKAGES
MANTEL_METHODS = ("pearson", "spearman")


def taxonomy_distances(codes: Sequence[str]) -> Float[np.ndarray, "lang lang"]:
    """The registry's taxonomy distance for every pair of `codes`."""
    return np.array([[taxonomy_distance(a, b) for b in codes] for a in codes], dtype=np.float64)


def check_distance(distance: np.ndarray, name: str = "distance matrix") -> np.ndarray:
    matrix = np.asarray(distance, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 3:
        raise InputError(f"a {name} is square over at least 3 languages; got {matrix.shape}")
    if not np.isfinite(matrix).all() or not np.allclose(matrix, matrix.T):
        raise InputError(f"a {name} must be finite and symmetric")
    return matrix


def similarity_to_distance(similarity: np.ndarray) -> Float[np.ndarray, "lang lang"]:
    """1 - similarity, symmetrised, zero diagonal, clipped at 0."""
    matrix = check_distance(1.0 - np.asarray(similarity, dtype=np.float64), "similarity matrix")
    matrix = np.clip((matrix + matrix.T) / 2, 0.0, None)
    np.fill_diagonal(matrix, 0.0)
    return matrix


def cluster_languages(distance: np.ndarray, linkage: str = "average") -> np.ndarray:
    """The scipy linkage matrix of hierarchical clustering on a distance matrix."""
    if linkage not in LINKAGES:
        raise InputError(f"unknown linkage {linkage!r}; use one of {', '.join(LINKAGES)}")
    matrix = check_distance(distance).copy()
    np.fill_diagonal(matrix, 0.0)
    return hierarchy.linkage(squareform(matrix, checks=False), method=linkage)


def cophenetic_correlation(linkage: np.ndarray, reference: np.ndarray) -> float:
    """Pearson correlation between a dendrogram's cophenetic distances and `reference`."""
    matrix = check_distance(reference).copy()
    np.fill_diagonal(matrix, 0.0)
    condensed = squareform(matrix, checks=False)
    cophenetic = hierarchy.cophenet(linkage)
    if np.ptp(condensed) == 0 or np.ptp(cophenetic) == 0:
        return float("nan")
    return float(np.corrcoef(cophenetic, condensed)[0, 1])


@dataclass(frozen=True)
class MantelResult(PermutationTestResult):
    """A Mantel test: the observed correlation, its permutation p-value and null draws."""

    method: str
    alternative: str
    seed: int

    @property
    def permutations(self) -> int:
        """The older name of n_permutations."""
        return self.n_permutations

    def to_dict(self) -> dict[str, Any]:
        """JSON fields (`from_dict` also reads the older key "permutations")."""
        return {
            "statistic": self.statistic,
            "pvalue": self.pvalue,
            "n_permutations": self.n_permutations,
            "method": self.method,
            "alternative": self.alternative,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> MantelResult:
        """Back from `to_dict` (no null draws), also from older JSON that has only "permutations"."""
        count = document.get("n_permutations", document.get("permutations"))
        return cls(
            document["statistic"],
            document["pvalue"],
            None,
            count,
            document["method"],
            document["alternative"],
            document["seed"],
        )


def _standardise(rows: np.ndarray) -> np.ndarray:
    centred = rows - rows.mean(axis=-1, keepdims=True)
    scale = np.sqrt((centred**2).sum(axis=-1, keepdims=True))
    return centred / scale


def check_mantel_options(method: str, alternative: str, n_permutations: int) -> None:
    if method not in MANTEL_METHODS:
        raise InputError(f"unknown Mantel method {method!r}; use {' or '.join(MANTEL_METHODS)}")
    if alternative not in ALTERNATIVES:
        raise InputError(f"unknown alternative {alternative!r}; use one of {', '.join(ALTERNATIVES)}")
    if n_permutations < 1:
        raise InputError("a Mantel test needs at least one permutation")


def permutation_orders(n: int, n_permutations: int, seed: int) -> Int[np.ndarray, "draw lang"]:
    """B random relabellings of n languages, drawn with `numpy.random.default_rng(seed)`."""
    rng = np.random.default_rng(seed)
    return rng.permuted(np.tile(np.arange(n), (n_permutations, 1)), axis=1)


def relabelled_upper(matrix: np.ndarray, orders: np.ndarray) -> Float[np.ndarray, "draw pair"]:
    """The upper triangle of `matrix` with rows and columns relabelled by each order."""
    upper = np.triu_indices(matrix.shape[0], k=1)
    return matrix[orders[:, :, None], orders[:, None, :]][:, upper[0], upper[1]]


def mantel_pvalue(null: np.ndarray, statistic: float, alternative: str) -> float:
    """The permutation p-value of a correlation (neuronoverlap.stats.permutation's rule, on the
    scale of a correlation, scale=1); "two-sided" compares sizes, #{|r_b| >= |r|}."""
    if alternative == "two-sided":
        return permutation_pvalue(np.abs(np.float64(statistic)), np.abs(null), "greater", scale=1.0)
    return permutation_pvalue(np.float64(statistic), null, alternative, scale=1.0)


def mantel_test(
    x: Float[np.ndarray, "lang lang"],
    y: Float[np.ndarray, "lang lang"],
    n_permutations: int = DEFAULT_MANTEL_PERMUTATIONS,
    seed: int = 0,
    method: str = "pearson",
    alternative: str = "greater",
) -> MantelResult:
    """Mantel test of association between two distance matrices over the same languages.

    The statistic is the Pearson (or Spearman) correlation of the upper triangles. The null
    draws B random relabellings of `y`'s languages (rows and columns together), so
    p = (1 + #{r_b >= r}) / (1 + B) for "greater" (#{r_b <= r} for "less", #{|r_b| >= |r|}
    for "two-sided").
    """
    check_mantel_options(method, alternative, n_permutations)
    a, b = check_distance(x), check_distance(y)
    if a.shape != b.shape:
        raise InputError(f"Mantel test of matrices of different sizes: {a.shape}, {b.shape}")
    n = a.shape[0]
    upper = np.triu_indices(n, k=1)
    if method == "spearman":
        a = squareform(rankdata(a[upper]), checks=False)
        b = squareform(rankdata(b[upper]), checks=False)
    first, second = a[upper], b[upper]
    if np.ptp(first) == 0 or np.ptp(second) == 0:
        raise InputError("a Mantel test needs distance matrices that are not constant")
    standard_first = _standardise(first)
    statistic = float(standard_first @ _standardise(second))
    permuted = relabelled_upper(b, permutation_orders(n, n_permutations, seed))
    null = _standardise(permuted) @ standard_first
    pvalue = mantel_pvalue(null, statistic, alternative)
    return MantelResult(statistic, pvalue, null, n_permutations, method, alternative, seed)


@dataclass(frozen=True)
class SpectrumResult:
    """Neuron-similarity clustering of languages compared with their taxonomy."""

    languages: list[str]
    neuron_distance: np.ndarray
    taxonomy_distance: np.ndarray
    neuron_linkage: np.ndarray
    taxonomy_linkage: np.ndarray
    cophenetic_vs_taxonomy: float  # neuron dendrogram vs taxonomy distances
    dendrogram_fit: float  # neuron dendrogram vs its own neuron distances
    mantel: MantelResult
    parameters: dict[str, Any] = field(default_factory=dict)


def language_spectrum(
    similarity: LanguageMatrix,
    linkage: str = "average",
    n_permutations: int = DEFAULT_MANTEL_PERMUTATIONS,
    seed: int = 0,
    mantel_method: str = "pearson",
) -> SpectrumResult:
    """Cluster the languages of a whole-model similarity matrix and compare with taxonomy."""
    if similarity.per_layer:
        raise InputError("the spectrum is built from a whole-model similarity matrix")
    codes = similarity.languages
    neuron = similarity_to_distance(similarity.values)
    taxonomy = taxonomy_distances(codes)
    neuron_linkage = cluster_languages(neuron, linkage)
    taxonomy_linkage = cluster_languages(taxonomy, linkage)
    return SpectrumResult(
        languages=list(codes),
        neuron_distance=neuron,
        taxonomy_distance=taxonomy,
        neuron_linkage=neuron_linkage,
        taxonomy_linkage=taxonomy_linkage,
        cophenetic_vs_taxonomy=cophenetic_correlation(neuron_linkage, taxonomy),
        dendrogram_fit=cophenetic_correlation(neuron_linkage, neuron),
        mantel=mantel_test(neuron, taxonomy, n_permutations, seed, mantel_method),
        parameters={
            "measure": similarity.measure,
            **similarity.parameters,
            "linkage": linkage,
            "n_permutations": n_permutations,
            "seed": seed,
            "mantel_method": mantel_method,
        },
    )
