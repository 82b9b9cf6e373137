"""Accuracy with confidence intervals, and the paired comparison of two conditions.

- `bootstrap_ci`: percentile bootstrap of a proportion. Resampling n Bernoulli outcomes with
  replacement is the same as drawing the number of hits from Binomial(n, k/n), so the bootstrap
  draws that count directly (exact, and memory does not grow with n).
- `paired_bootstrap_ci`: the same for the difference of two accuracies on the same items: the
  four (a, b) outcome kinds are resampled together, from a multinomial.
- `wilson_interval`: the Wilson score interval, for reading a 0/n or n/n result, where every
  bootstrap resample gives the same value and the percentile interval collapses to a point.
- `mcnemar_test`: McNemar's test on the discordant pairs, exact (two-sided binomial) when there
  are fewer than `exact_below` of them, else the chi-square with continuity correction,
  max(0, |only_a - only_b| - 1)^2 / (only_a + only_b) (0 for balanced discordance: p = 1).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from jaxtyping import Bool
from scipy import stats

from neuronoverlap.errors import InputError

#: Fewer discordant pairs than this: McNemar's exact binomial test (a common rule of thumb).
EXACT_BELOW = 25


def _as_hits(hits) -> Bool[np.ndarray, " item"]:
    array = np.asarray(hits)
    if array.ndim != 1:
        raise InputError(f"expected a 1-d sequence of hits, got shape {array.shape}")
    if array.size and not np.isin(array, (0, 1)).all():
        raise InputError("hits must be booleans or 0/1")
    return array.astype(bool)


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise InputError(f"confidence must be between 0 and 1, got {confidence}")


def bootstrap_ci(
    hits: Bool[np.ndarray, " item"],
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int | np.random.Generator = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the accuracy `mean(hits)`; (nan, nan) for no items."""
    _check_confidence(confidence)
    array = _as_hits(hits)
    n = array.size
    if n == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = rng.binomial(n, array.mean(), size=n_resamples) / n
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return (float(low), float(high))


def paired_bootstrap_ci(
    hits_a: Bool[np.ndarray, " item"],
    hits_b: Bool[np.ndarray, " item"],
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int | np.random.Generator = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `mean(hits_b) - mean(hits_a)`, items resampled in pairs."""
    _check_confidence(confidence)
    a, b = _paired(hits_a, hits_b)
    n = a.size
    if n == 0:
        return (math.nan, math.nan)
    kinds = np.array([(a & b).sum(), (a & ~b).sum(), (~a & b).sum(), (~a & ~b).sum()]) / n
    counts = np.random.default_rng(seed).multinomial(n, kinds, size=n_resamples)
    differences = (counts[:, 2] - counts[:, 1]) / n
    alpha = (1 - confidence) / 2
    low, high = np.quantile(differences, [alpha, 1 - alpha])
    return (float(low), float(high))


def wilson_interval(n_hits: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion n_hits / n; (nan, nan) for n = 0."""
    _check_confidence(confidence)
    if not 0 <= n_hits <= n:
        raise InputError(f"need 0 <= hits <= n, got {n_hits} of {n}")
    if n == 0:
        return (math.nan, math.nan)
    z = float(stats.norm.ppf(1 - (1 - confidence) / 2))
    p = n_hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's test of two conditions on the same items.

    `only_a`: items condition a got right and b wrong; `only_b` the reverse. `difference` is
    accuracy(b) - accuracy(a) = (only_b - only_a) / n. `method` is "exact" (two-sided binomial
    on the discordant pairs), "chi2" (with continuity correction) or "none" (no discordant pair:
    p = 1).
    """

    n: int
    only_a: int
    only_b: int
    statistic: float
    pvalue: float
    method: str

    @property
    def difference(self) -> float:
        return (self.only_b - self.only_a) / self.n if self.n else math.nan

    def to_dict(self) -> dict:
        return {**asdict(self), "difference": self.difference}


def _paired(hits_a, hits_b) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_hits(hits_a), _as_hits(hits_b)
    if a.shape != b.shape:
        raise InputError(f"paired hits differ in length: {a.size} and {b.size}")
    return a, b


def mcnemar_exact_pvalue(only_a: int, only_b: int) -> float:
    """Two-sided exact p-value: twice the smaller binomial tail of Binomial(only_a + only_b,
    1/2), capped at 1."""
    total = only_a + only_b
    if total == 0:
        return 1.0
    return float(min(1.0, 2 * stats.binom.cdf(min(only_a, only_b), total, 0.5)))


def mcnemar_test(
    hits_a: Bool[np.ndarray, " item"],
    hits_b: Bool[np.ndarray, " item"],
    exact_below: int = EXACT_BELOW,
) -> McNemarResult:
    """McNemar's test: does condition b get a different share of items right than condition a?"""
    a, b = _paired(hits_a, hits_b)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    discordant = only_a + only_b
    if discordant == 0:
        return McNemarResult(a.size, 0, 0, 0.0, 1.0, "none")
    if discordant < exact_below:
        statistic = float(min(only_a, only_b))
        return McNemarResult(a.size, only_a, only_b, statistic, mcnemar_exact_pvalue(only_a, only_b), "exact")
    statistic = max(0, abs(only_a - only_b) - 1) ** 2 / discordant
    return McNemarResult(a.size, only_a, only_b, float(statistic), float(stats.chi2.sf(statistic, 1)), "chi2")


@dataclass(frozen=True)
class Accuracy:
    """An accuracy with its bootstrap and Wilson intervals."""

    n: int
    n_hits: int
    accuracy: float
    ci_low: float
    ci_high: float
    wilson_low: float
    wilson_high: float
    confidence: float

    def to_dict(self) -> dict:
        return asdict(self)


def accuracy(
    hits: Bool[np.ndarray, " item"],
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int | np.random.Generator = 0,
) -> Accuracy:
    """Accuracy of `hits` with both intervals."""
    array = _as_hits(hits)
    n, k = array.size, int(array.sum())
    low, high = bootstrap_ci(array, confidence, n_resamples, seed)
    w_low, w_high = wilson_interval(k, n, confidence)
    return Accuracy(n, k, k / n if n else math.nan, low, high, w_low, w_high, confidence)
