"""The one permutation p-value rule: bounds, monotonicity, ties, scipy agreement, calibration."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats

from neuronoverlap.analyses import mantel_test
from neuronoverlap.errors import InputError
from neuronoverlap.hsic import hsic_test, max_mean_test
from neuronoverlap.stats import PermutationTestResult, permutation_pvalue, tie_tolerance

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, allow_subnormal=False)
nulls = arrays(np.float64, st.integers(1, 60), elements=finite)


@settings(max_examples=200, deadline=None)
@given(null=nulls, statistic=finite, alternative=st.sampled_from(["greater", "less", "two-sided"]))
def test_pvalue_lies_between_one_over_b_plus_one_and_one(null, statistic, alternative):
    p = permutation_pvalue(statistic, null, alternative)
    assert 1 / (len(null) + 1) - 1e-15 <= p <= 1.0
    assert isinstance(p, float)


@settings(max_examples=200, deadline=None)
@given(null=nulls, a=finite, b=finite)
def test_pvalue_is_monotone_in_the_statistic(null, a, b):
    low, high = min(a, b), max(a, b)
    assert permutation_pvalue(high, null) <= permutation_pvalue(low, null)
    assert permutation_pvalue(high, null, "less") >= permutation_pvalue(low, null, "less")


@settings(max_examples=200, deadline=None)
@given(null=nulls, index=st.integers(0, 59))
def test_ties_count_as_extreme_even_through_rounding(null, index):
    value = null[index % len(null)]
    # the brute force with the documented rule: a draw within the tie tolerance of T is a tie
    brute = (1 + np.sum(null >= value - tie_tolerance(value))) / (1 + len(null))
    assert permutation_pvalue(value, null) == pytest.approx(brute, abs=1e-15)
    # T computed another way, 10 relative ulps past the equal null draw: still a tie
    eps = np.finfo(np.float64).eps
    assert permutation_pvalue(value + 10 * eps * abs(value), null) >= brute - 1e-15
    brute_less = (1 + np.sum(null <= value + tie_tolerance(value))) / (1 + len(null))
    assert permutation_pvalue(value - 10 * eps * abs(value), null, "less") >= brute_less - 1e-15
    # and 1000 relative ulps past it: not a tie any more
    if value != 0 and np.all((null <= value) | (null > value + 1e-10 * abs(value))):
        strictly = (np.sum(null > value) + 1) / (1 + len(null))
        assert permutation_pvalue(value + 1000 * eps * abs(value), null) == pytest.approx(strictly)


def test_tie_scale_covers_statistics_near_zero():
    null = np.array([1e-15, -1.0, 2.0])
    assert permutation_pvalue(0.0, null) == 0.75  # 1e-15 >= 0 anyway
    assert permutation_pvalue(2e-15, null) == 0.5  # relative to |T| ~ 0: no tie
    assert permutation_pvalue(2e-15, null, scale=1.0) == 0.75  # unit-scale terms: a tie


@settings(max_examples=50, deadline=None)
@given(null=arrays(np.float64, (3, 20), elements=finite), statistic=arrays(np.float64, 3, elements=finite))
def test_torch_and_numpy_and_batches_agree(null, statistic):
    for alternative in ("greater", "less", "two-sided"):
        batch = permutation_pvalue(statistic, null, alternative)
        tensor = permutation_pvalue(torch.from_numpy(statistic), torch.from_numpy(null), alternative)
        assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float64
        np.testing.assert_array_equal(batch, tensor.numpy())
        single = [permutation_pvalue(statistic[i], null[i], alternative) for i in range(3)]
        np.testing.assert_array_equal(batch, single)


@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
@pytest.mark.parametrize("n_resamples", [99, np.inf])  # random draws / every permutation (exact)
def test_agrees_with_scipy_permutation_test(alternative, n_resamples):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(7)
    y = 0.5 * x + rng.standard_normal(7)

    def statistic(a):
        return np.corrcoef(a, y)[0, 1]

    reference = stats.permutation_test(
        (x,),
        statistic,
        permutation_type="pairings",
        n_resamples=n_resamples,
        alternative=alternative,
        random_state=0,
        vectorized=False,
    )
    exact = np.isinf(n_resamples)
    ours = permutation_pvalue(reference.statistic, reference.null_distribution, alternative, exact=exact)
    assert ours == pytest.approx(reference.pvalue, rel=1e-12)


def test_calibrated_under_the_null():
    """Independent x, y: P(p <= k / (B + 1)) = k / (B + 1) exactly; 4000 tests of B = 99."""
    rng = np.random.default_rng(0)
    tests, n, draws = 4000, 12, 99
    x = rng.standard_normal((tests, n))
    y = rng.standard_normal((tests, n))
    orders = rng.permuted(np.tile(np.arange(n), (tests, draws, 1)), axis=2)
    observed = np.einsum("tn,tn->t", x, y)
    null = np.einsum("tbn,tn->tb", np.take_along_axis(x[:, None, :].repeat(draws, 1), orders, 2), y)
    pvalues = permutation_pvalue(observed, null)
    for level in (0.01, 0.05, 0.2, 0.5):
        share = np.mean(pvalues <= level + 1e-12)
        bound = 4 * np.sqrt(level * (1 - level) / tests)
        assert abs(share - level) < bound, (level, share)
    assert stats.kstest(pvalues, "uniform").pvalue > 1e-3


def test_bad_input_is_an_input_error():
    with pytest.raises(InputError, match="alternative"):
        permutation_pvalue(0.0, np.zeros(3), "bigger")
    with pytest.raises(InputError, match="null draw"):
        permutation_pvalue(0.0, np.zeros(0))


def test_the_library_tests_share_the_result_shape():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((30, 2))
    distance = np.abs(np.subtract.outer(*(2 * [rng.standard_normal(6)])))
    results = [
        hsic_test(x, x[:, :1] ** 2, n_permutations=19),
        max_mean_test(x.T, (x**2).T, n_permutations=19),
        mantel_test(distance, distance**2, n_permutations=19),
    ]
    for result in results:
        assert isinstance(result, PermutationTestResult)
        assert result.n_permutations == 19 and result.null_distribution.shape == (19,)
        recomputed = permutation_pvalue(np.float64(result.statistic), result.null_distribution)
        assert result.pvalue == pytest.approx(recomputed, abs=1e-12)
