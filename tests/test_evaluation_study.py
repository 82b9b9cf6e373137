"""The study's statistics on simulated accuracies: the held-out-half oracle (regret ~0 for a
perfect selector, the expected regret for a random one, no bias under the null where the
in-sample oracle gap is biased), Kendall's tau-b against scipy, and its permutation test (exact
against Monte Carlo, calibrated under the null, powerful on a planted association)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.study import (
    PairData,
    _split_weights,
    debiased,
    held_out_regret,
    kendall_tau_b,
    pool,
    pooled_kendall_tau,
    simulate_pair,
    typology_choice,
)

SEPARATED = [0.6, 0.3, 0.25, 0.2, 0.3, 0.35]  # en is best by 25 points


def test_perfect_selector_has_no_regret_and_random_has_the_expected_one():
    rng = np.random.default_rng(0)
    pair = simulate_pair(SEPARATED, 600, rng, difficulty_sd=0.0, scores=lambda p: p)
    result = held_out_regret(pair, n_splits=200)
    assert result["hsic"] == pytest.approx(0.0, abs=1e-3)  # scores = true accuracies
    assert result["top2:hsic"] == pytest.approx(1.0)
    # random: the mean over bridges of (best - bridge), on the words measured
    acc = pair.hits.mean(axis=1)
    assert result["random"] == pytest.approx(acc.max() - acc.mean(), abs=0.01)
    assert result["random"] == pytest.approx(max(SEPARATED) - np.mean(SEPARATED), abs=0.03)
    worst = simulate_pair(SEPARATED, 600, rng, difficulty_sd=0.0, scores=lambda p: -p)
    assert held_out_regret(worst)["hsic"] == pytest.approx(0.6 - 0.2, abs=0.04)


def test_held_out_oracle_is_unbiased_under_the_null_where_the_in_sample_gap_is_not():
    """Six bridges of equal true accuracy, item difficulty shared: any fixed choice has true
    regret 0. The held-out regret averages to 0; the in-sample gap (max - chosen) does not."""
    rng = np.random.default_rng(1)
    held_out, in_sample = [], []
    for _ in range(300):
        pair = simulate_pair([0.3] * 6, 100, rng, scores=lambda p: np.arange(6.0))
        held_out.append(held_out_regret(pair, n_splits=20)["hsic"])
        acc = pair.hits.mean(axis=1)
        in_sample.append(acc.max() - acc[-1])
    assert abs(np.mean(held_out)) < 0.005
    assert np.mean(in_sample) > 0.03  # the 0.041 at n = 100


def test_step1_rule_reads_only_the_selection_half():
    rng = np.random.default_rng(2)
    pair = simulate_pair(SEPARATED, 400, rng, difficulty_sd=0.0)
    pair.step1 = pair.hits.copy()  # step 1 as informative as step 2 on the same words
    pair.step1[1, :5] = np.nan
    result = held_out_regret(pair)
    assert result["step-1"] == pytest.approx(0.0, abs=0.005)
    assert "hsic" not in result  # no selection scores


def test_pool_reports_every_rule_with_an_interval():
    rng = np.random.default_rng(3)
    pairs = [
        simulate_pair(SEPARATED, 300, rng, scores=lambda p: p, src=s, tgt=t)
        for s, t in (("fi", "hu"), ("sw", "tl"), ("id", "he"))
    ]
    summary = pool(pairs, n_splits=50, n_bootstrap=300)
    hsic, random = summary.rules["hsic"], summary.rules["random"]
    assert hsic["n_pairs"] == 3 and hsic["share_top2"] == pytest.approx(1.0)
    assert hsic["ci_low"] <= hsic["mean_regret"] <= hsic["ci_high"]
    assert random["ci_low"] > 0.1 and hsic["ci_high"] < random["ci_low"]
    assert summary.tau.tau > 0.5 and summary.tau.exact is False  # 720^3 permutations
    assert summary.tau.pvalue < 0.01
    with pytest.raises(InputError, match="twice"):
        pool([pairs[0], pairs[0]])


@pytest.mark.slow
def test_pooled_regret_interval_covers_zero_under_the_null():
    """Equal bridges: every fixed rule's true regret is 0; its 90% interval covers 0 in about
    90% of simulated six-pair studies."""
    rng = np.random.default_rng(4)
    names = [("fi", "hu"), ("sw", "tl"), ("id", "he"), ("ar", "ja"), ("zh", "fi"), ("hu", "sw")]
    covered = 0
    reps = 150
    for _ in range(reps):
        pairs = [
            simulate_pair([0.3] * 6, 100, rng, scores=lambda p: np.arange(6.0), src=s, tgt=t)
            for s, t in names
        ]
        ci = pool(pairs, n_splits=10, n_bootstrap=300, confidence=0.9).rules["hsic"]
        covered += ci["ci_low"] <= 0 <= ci["ci_high"]
    assert 0.82 <= covered / reps <= 0.98


def test_typology_choice():
    assert typology_choice("de", "es", ["en", "fr", "it", "pt"]) == "fr"  # Romance, first listed
    assert typology_choice("de", "fr", ["en", "it", "pt", "es"]) == "it"
    assert typology_choice("zh", "ja", ["de", "en", "fr"]) == "en"  # nothing near: English
    assert typology_choice("fr", "sw", ["de", "en", "it"]) == "it"  # nearest the source


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=2, max_size=8))
def test_kendall_tau_b_matches_scipy(points):
    x, y = zip(*points, strict=True)
    expected = stats.kendalltau(x, y).statistic
    got = kendall_tau_b(x, y)
    if np.isnan(expected):
        assert np.isnan(got)
    else:
        assert got == pytest.approx(expected, abs=1e-12)


def test_permutation_test_exact_matches_brute_force_and_monte_carlo():
    scores = {"a": [0.1, 0.5, 0.2, 0.9], "b": [3.0, 1.0, 2.0]}
    accuracies = {"a": [0.2, 0.4, 0.4, 0.5], "b": [0.1, 0.3, 0.2]}
    exact = pooled_kendall_tau(scores, accuracies)
    assert exact.exact and exact.n_permutations == 24 * 6
    observed = (kendall_tau_b(scores["a"], accuracies["a"]) + kendall_tau_b(scores["b"], accuracies["b"])) / 2
    brute = [
        (
            kendall_tau_b(np.array(scores["a"])[list(pa)], accuracies["a"])
            + kendall_tau_b(np.array(scores["b"])[list(pb)], accuracies["b"])
        )
        / 2
        for pa in itertools.permutations(range(4))
        for pb in itertools.permutations(range(3))
    ]
    assert exact.tau == pytest.approx(observed)
    assert exact.pvalue == pytest.approx(np.mean(np.array(brute) >= observed - 1e-12))
    monte_carlo = pooled_kendall_tau(scores, accuracies, n_permutations=20_000, exact_below=0)
    assert not monte_carlo.exact
    assert monte_carlo.pvalue == pytest.approx(exact.pvalue, abs=0.015)


def test_permutation_test_calibrated_under_the_null_and_powerful_on_a_planted_effect():
    rng = np.random.default_rng(5)
    null_p, planted_p = [], []
    for _ in range(300):
        acc = {k: rng.random(4) for k in "abc"}
        null_p.append(pooled_kendall_tau({k: rng.random(4) for k in "abc"}, acc).pvalue)
        planted = {k: acc[k] + rng.normal(0, 0.15, 4) for k in "abc"}
        planted_p.append(pooled_kendall_tau(planted, acc).pvalue)
    null_p = np.array(null_p)
    assert np.mean(null_p <= 0.05) <= 0.08 and np.mean(null_p <= 0.2) >= 0.12  # ~uniform
    assert np.mean(np.array(planted_p) <= 0.05) > 0.6


def test_bad_pair_data():
    with pytest.raises(InputError, match="bridges x words"):
        PairData("de", "fr", ["en", "it"], np.zeros((3, 5)))
    with pytest.raises(InputError, match="at least 2 words"):
        PairData("de", "fr", ["en"], np.zeros((1, 1)))
    with pytest.raises(InputError, match="scores"):
        PairData("de", "fr", ["en"], np.zeros((1, 4)), scores={"it": 1.0})


NAMES = [("fi", "hu"), ("sw", "tl"), ("id", "he"), ("ar", "ja"), ("zh", "fi"), ("hu", "sw"), ("he", "id")]


def test_paired_rule_difference_is_the_difference_of_regrets_and_finds_a_planted_one():
    rng = np.random.default_rng(5)
    pairs = [simulate_pair(SEPARATED, 300, rng, scores=lambda p: p, src=s, tgt=t) for s, t in NAMES[:4]]
    summary = pool(pairs, n_splits=20, n_bootstrap=300)
    d = summary.differences["hsic-random"]
    expected = summary.rules["random"]["mean_regret"] - summary.rules["hsic"]["mean_regret"]
    assert d["difference"] == pytest.approx(expected) and d["n_pairs"] == 4
    assert 0 < d["ci_low"] <= d["difference"] <= d["ci_high"]  # the perfect selector is better
    assert d["ci_low_pairs"] > 0
    same = summary.differences["hsic-english"]  # both pick en on every pair: difference 0
    assert same["difference"] == pytest.approx(0.0) and same["ci_low"] == same["ci_high"] == 0.0
    assert set(summary.differences) >= {"hsic-english", "hsic-random", "english-random"}


def test_the_pairs_and_words_interval_is_wider_when_pairs_disagree():
    """A selector right on half the pairs and wrong on the others: resampling pairs shows the
    spread between pairs that the words-only interval (pairs fixed) cannot."""
    rng = np.random.default_rng(6)
    pairs = []
    for i, (s, t) in enumerate(NAMES[:6]):
        scores = (lambda p: p) if i % 2 else (lambda p: -p)
        pairs.append(simulate_pair(SEPARATED, 400, rng, difficulty_sd=0.0, scores=scores, src=s, tgt=t))
    rule = pool(pairs, n_splits=10, n_bootstrap=400).rules["hsic"]
    words, both = rule["ci_high"] - rule["ci_low"], rule["ci_high_pairs"] - rule["ci_low_pairs"]
    assert both > 2 * words
    assert rule["ci_low_pairs"] <= rule["mean_regret"] <= rule["ci_high_pairs"]


@pytest.mark.parametrize("n", [40, 301])
def test_a_resampled_half_is_as_noisy_as_a_real_half_and_independent_of_the_other(n):
    """A real half is n // 2 words from the population, independent of the other half; in a
    bootstrap resample each half must be n // 2 draws from the sample, independent of the other
    (halving the words with their bootstrap counts as weights gave a half 1.5 times the variance
    and the halves a correlation of -0.33, which shifted the intervals of regret and hit). Every
    halving of a rep halves the same resample."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=n)
    reps, splits = 4000, 2
    wa, wb = _split_weights(n, reps, splits, rng, True)
    assert wa.sum(axis=1) == pytest.approx(n // 2) and wb.sum(axis=1) == pytest.approx(n - n // 2)
    same_resample = (wa + wb).reshape(reps, splits, n)
    assert (same_resample == same_resample[:, :1]).all()
    mean_a, mean_b = (wa @ x) / wa.sum(axis=1) - x.mean(), (wb @ x) / wb.sum(axis=1) - x.mean()
    real_half_variance = x.var() / (n // 2)
    assert mean_a.var() / real_half_variance == pytest.approx(1.0, abs=0.1)
    assert abs(np.corrcoef(mean_a, mean_b)[0, 1]) < 0.06
    # without resampling, the words themselves are halved (the point estimate's halvings)
    wa, wb = _split_weights(n, 1, 50, rng, False)
    assert ((wa + wb) == 1).all() and (wa.sum(axis=1) == n // 2).all()


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.lists(st.floats(-1, 1), min_size=1, max_size=9), min_size=1, max_size=4),
    st.lists(st.floats(-1, 1), min_size=4, max_size=4),
)
def test_debiased_draws_have_the_estimate_as_their_median(rows, estimates):
    width = max(map(len, rows))
    draws = np.array([row + [math.nan] * (width - len(row)) for row in rows])
    moved = debiased(draws, np.array(estimates[: len(rows)]))
    assert np.isnan(moved).tolist() == np.isnan(draws).tolist()
    for row, estimate in zip(moved, estimates, strict=False):
        assert np.nanmedian(row) == pytest.approx(estimate, abs=1e-9)
    same_shift = np.nanmax(moved - draws, axis=1) - np.nanmin(moved - draws, axis=1)
    assert np.allclose(same_shift, 0, atol=1e-9)  # a shift only: the spread is kept
