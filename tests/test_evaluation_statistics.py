"""Bootstrap intervals (coverage in seeded simulations), Wilson, McNemar against scipy and brute
force, and the oracle comparison of a bridge ranking."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.results import oracle_comparison
from neuronoverlap.evaluation.statistics import (
    EXACT_BELOW,
    accuracy,
    bootstrap_ci,
    mcnemar_exact_pvalue,
    mcnemar_test,
    paired_bootstrap_ci,
    wilson_interval,
)


@pytest.mark.parametrize(("p", "n", "confidence"), [(0.3, 200, 0.95), (0.6, 120, 0.90)])
def test_bootstrap_ci_covers_true_proportion_at_nominal_rate(p, n, confidence):
    rng = np.random.default_rng(12345)
    reps = 1000
    covered = 0
    for rep in range(reps):
        hits = rng.random(n) < p
        low, high = bootstrap_ci(hits, confidence, n_resamples=2000, seed=rep)
        covered += low <= p <= high
    rate = covered / reps
    # Percentile bootstrap of a proportion is close to nominal at these sizes; the Monte Carlo
    # error of `rate` is about 0.007-0.01.
    assert confidence - 0.03 <= rate <= confidence + 0.025


def test_binomial_shortcut_matches_brute_force_resampling():
    rng = np.random.default_rng(7)
    hits = rng.random(60) < 0.35
    brute = np.array([hits[rng.integers(0, hits.size, hits.size)].mean() for _ in range(20000)])
    low, high = bootstrap_ci(hits, 0.9, n_resamples=20000, seed=3)
    b_low, b_high = np.quantile(brute, [0.05, 0.95])
    assert abs(low - b_low) <= 1 / 60 + 1e-9
    assert abs(high - b_high) <= 1 / 60 + 1e-9


def test_paired_bootstrap_covers_true_difference():
    rng = np.random.default_rng(99)
    reps, n = 600, 150
    # joint outcome probabilities of (a, b): both, only a, only b, neither
    probs = np.array([0.3, 0.1, 0.2, 0.4])
    true_difference = probs[2] - probs[1]
    covered = 0
    for rep in range(reps):
        kinds = rng.choice(4, size=n, p=probs)
        a = (kinds == 0) | (kinds == 1)
        b = (kinds == 0) | (kinds == 2)
        low, high = paired_bootstrap_ci(a, b, 0.95, n_resamples=2000, seed=rep)
        covered += low <= true_difference <= high
    assert 0.92 <= covered / reps <= 0.975


def test_paired_bootstrap_brute_force():
    rng = np.random.default_rng(5)
    a = rng.random(80) < 0.5
    b = a.copy()
    b[rng.choice(80, 20, replace=False)] ^= True
    idx = rng.integers(0, 80, size=(20000, 80))
    brute = b[idx].mean(1) - a[idx].mean(1)
    low, high = paired_bootstrap_ci(a, b, 0.95, n_resamples=20000, seed=1)
    b_low, b_high = np.quantile(brute, [0.025, 0.975])
    assert abs(low - b_low) <= 1 / 80 + 1e-9 and abs(high - b_high) <= 1 / 80 + 1e-9


def test_bootstrap_edge_cases():
    assert bootstrap_ci(np.zeros(50, bool)) == (0.0, 0.0)
    assert bootstrap_ci(np.ones(50, bool)) == (1.0, 1.0)
    assert all(math.isnan(x) for x in bootstrap_ci(np.array([], bool)))
    with pytest.raises(InputError):
        bootstrap_ci([0, 2, 1])
    with pytest.raises(InputError):
        bootstrap_ci([0, 1], confidence=1.5)
    with pytest.raises(InputError):
        paired_bootstrap_ci([0, 1], [1])


def test_bootstrap_is_seeded():
    hits = np.arange(100) % 3 == 0
    assert bootstrap_ci(hits, seed=4) == bootstrap_ci(hits, seed=4)


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (37, 120), (500, 1500)])
@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_wilson_matches_scipy(k, n, confidence):
    expected = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    low, high = wilson_interval(k, n, confidence)
    assert low == pytest.approx(expected.low, abs=1e-12)
    assert high == pytest.approx(expected.high, abs=1e-12)


def test_accuracy_summary():
    result = accuracy(np.array([1, 1, 0, 0, 1], bool))
    assert (result.n, result.n_hits, result.accuracy) == (5, 3, 0.6)
    assert result.ci_low <= 0.6 <= result.ci_high
    assert result.wilson_low < 0.6 < result.wilson_high


def brute_force_sign_test(only_a: int, only_b: int) -> float:
    """Two-sided p by enumerating every assignment of the discordant pairs to a or b under
    H0 (each with probability 1/2): the share at least as unbalanced as observed."""
    d = only_a + only_b
    observed = abs(only_a - only_b)
    extreme = sum(
        abs(sum(signs) - (d - sum(signs))) >= observed for signs in itertools.product((0, 1), repeat=d)
    )
    return extreme / 2**d


@pytest.mark.parametrize(
    ("only_a", "only_b"),
    [
        (0, 1),
        (1, 1),
        (0, 5),
        (2, 7),
        (3, 3),
        (1, 12),
        (6, 9),
    ],
)
def test_mcnemar_exact_against_brute_force_and_scipy(only_a, only_b):
    expected = brute_force_sign_test(only_a, only_b)
    assert mcnemar_exact_pvalue(only_a, only_b) == pytest.approx(expected, rel=1e-12)
    scipy_p = stats.binomtest(min(only_a, only_b), only_a + only_b, 0.5).pvalue
    assert mcnemar_exact_pvalue(only_a, only_b) == pytest.approx(scipy_p, rel=1e-12)


def paired_hits(both: int, only_a: int, only_b: int, neither: int):
    a = [1] * both + [1] * only_a + [0] * only_b + [0] * neither
    b = [1] * both + [0] * only_a + [1] * only_b + [0] * neither
    return np.array(a, bool), np.array(b, bool)


def test_mcnemar_counts_and_methods():
    a, b = paired_hits(10, 2, 9, 30)
    result = mcnemar_test(a, b)
    assert (result.n, result.only_a, result.only_b, result.method) == (51, 2, 9, "exact")
    assert result.difference == pytest.approx(7 / 51)
    assert result.pvalue == pytest.approx(stats.binomtest(2, 11, 0.5).pvalue)

    a, b = paired_hits(10, 30, 50, 10)
    result = mcnemar_test(a, b)
    assert result.method == "chi2"
    assert result.statistic == pytest.approx((20 - 1) ** 2 / 80)
    assert result.pvalue == pytest.approx(stats.chi2.sf((20 - 1) ** 2 / 80, 1))
    # The corrected chi-square approximates the exact test well at 80 discordant pairs.
    assert result.pvalue == pytest.approx(mcnemar_exact_pvalue(30, 50), abs=0.01)

    same = mcnemar_test(a, a)
    assert (same.pvalue, same.method, same.difference) == (1.0, "none", 0.0)


def test_mcnemar_balanced_discordance_is_no_evidence():
    """|only_a - only_b| <= 1 with the continuity correction: statistic 0, p = 1 (the formula in
    docs/evaluation.md, max(0, |b - c| - 1)^2 / (b + c)); without the max(0, .) a balanced
    table would give (0 - 1)^2 / d > 0."""
    for only_a, only_b in ((20, 20), (30, 31), (31, 30), (100, 100)):
        a, b = paired_hits(5, only_a, only_b, 5)
        result = mcnemar_test(a, b)
        assert result.method == "chi2"
        assert (result.statistic, result.pvalue) == (0.0, 1.0)
    a, b = paired_hits(5, 30, 32, 5)  # one step from balance: the correction leaves 1
    assert mcnemar_test(a, b).statistic == pytest.approx(1 / 62)
    # The exact test agrees on balance: the two-sided p is capped at 1.
    assert mcnemar_test(*paired_hits(0, 7, 7, 0)).pvalue == 1.0


def test_mcnemar_switches_to_chi2_at_threshold():
    a, b = paired_hits(0, EXACT_BELOW - 10, 9, 0)
    assert mcnemar_test(a, b).method == "exact"
    a, b = paired_hits(0, EXACT_BELOW - 9, 9, 0)
    assert mcnemar_test(a, b).method == "chi2"


def test_mcnemar_rejects_at_most_nominal_rate_under_null():
    rng = np.random.default_rng(2024)
    rejections = 0
    reps = 800
    for _ in range(reps):
        a = rng.random(60) < 0.5
        b = rng.random(60) < 0.5  # same accuracy, independent errors
        rejections += mcnemar_test(a, b).pvalue < 0.05
    assert rejections / reps <= 0.065


def test_oracle_comparison_with_ranking():
    acc = {"en": 0.40, "de": 0.45, "fr": 0.30, "es": 0.45}
    result = oracle_comparison(["en", "fr", "de", "es"], acc)
    assert result.oracle == "de"  # tie with es: the earlier in the ranking
    assert result.tied_best == ["de", "es"]
    assert result.selected == "en"
    assert result.selected_rank == 3
    assert result.gap == pytest.approx(0.05)
    assert result.by_accuracy == ["de", "es", "en", "fr"]


def test_oracle_comparison_perfect_and_reversed_rankings():
    acc = {"en": 0.5, "de": 0.4, "fr": 0.3}
    best = oracle_comparison(["en", "de", "fr"], acc)
    assert (best.selected_rank, best.gap, best.kendall_tau) == (1, 0.0, pytest.approx(1.0))
    worst = oracle_comparison(["fr", "de", "en"], acc)
    assert (worst.selected_rank, worst.kendall_tau) == (3, pytest.approx(-1.0))


def test_oracle_comparison_without_ranking_and_bad_rankings():
    result = oracle_comparison(None, {"fr": 0.2, "en": 0.3})
    assert (result.oracle, result.selected, result.selected_rank) == ("en", None, None)
    with pytest.raises(InputError, match="no accuracy"):
        oracle_comparison(["it"], {"en": 0.3})
    with pytest.raises(InputError, match="twice"):
        oracle_comparison(["en", "en"], {"en": 0.3})
    with pytest.raises(InputError):
        oracle_comparison([], {"en": 0.3})
    with pytest.raises(InputError):
        oracle_comparison(None, {})
