"""Properties of HSIC, CKA and the tests, checked with hypothesis on generated inputs."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from neuronoverlap.hsic import cka, hsic, hsic_test, pairwise_hsic

PSD_KERNELS = ["gaussian", "laplacian", "inverse_multiquadric", "linear", "polynomial"]
FEW = settings(max_examples=40, deadline=None)


@st.composite
def paired_samples(draw, min_samples=4, max_samples=24):
    """x [n, d_x] and y [n, d_y] with moderate finite values (ties and constants allowed)."""
    n = draw(st.integers(min_samples, max_samples))
    values = st.floats(-50, 50, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=64)
    x = draw(hnp.arrays(np.float64, (n, draw(st.integers(1, 3))), elements=values))
    y = draw(hnp.arrays(np.float64, (n, draw(st.integers(1, 3))), elements=values))
    return x, y


def scale_of(x, y, kernel):
    """Magnitude against which rounding is judged: sqrt(HSIC(x, x) HSIC(y, y))."""
    return np.sqrt(abs(hsic(x, x, kernel=kernel)) * abs(hsic(y, y, kernel=kernel))) + 1e-300


@FEW
@given(paired_samples(), st.sampled_from(PSD_KERNELS), st.sampled_from(["biased", "biased_n2", "unbiased"]))
def test_symmetric_in_x_and_y(pair, kernel, estimator):
    x, y = pair
    forward = hsic(x, y, kernel=kernel, estimator=estimator)
    backward = hsic(y, x, kernel=kernel, estimator=estimator)
    assert abs(forward - backward) <= 1e-10 * scale_of(x, y, kernel) + 1e-300
    assert np.isfinite(forward)


@FEW
@given(paired_samples(), st.sampled_from(PSD_KERNELS))
def test_biased_hsic_is_non_negative_with_psd_kernels(pair, kernel):
    x, y = pair
    assert hsic(x, y, kernel=kernel) >= -1e-10 * scale_of(x, y, kernel)


@FEW
@given(
    paired_samples(),
    st.sampled_from(PSD_KERNELS),
    st.sampled_from(["biased", "unbiased"]),
    st.randoms(use_true_random=False),
)
def test_invariant_to_permuting_samples_of_both(pair, kernel, estimator, random):
    x, y = pair
    order = list(range(len(x)))
    random.shuffle(order)
    same = hsic(x, y, kernel=kernel, estimator=estimator)
    shuffled = hsic(x[order], y[order], kernel=kernel, estimator=estimator)
    assert abs(same - shuffled) <= 1e-10 * scale_of(x, y, kernel) + 1e-300


@FEW
@given(paired_samples(), st.integers(-12, 12), st.sampled_from(["median", "gretton"]))
def test_median_gaussian_hsic_is_invariant_to_rescaling_x(pair, exponent, rule):
    # Scaling by a power of two is exact in floating point, so the invariance is exact too.
    x, y = pair
    scaled = hsic(x * 2.0**exponent, y, bandwidth=rule)
    assert scaled == hsic(x, y, bandwidth=rule)


@FEW
@given(st.integers(0, 2**32 - 1), st.floats(1e-3, 1e3), st.integers(5, 40))
def test_median_gaussian_hsic_is_invariant_to_any_rescaling(seed, factor, n):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((n, 2)), rng.standard_normal(n)
    y = y + np.sin(x[:, 0])
    assert np.isclose(hsic(x * factor, y), hsic(x, y), rtol=1e-9, atol=1e-15)
    assert np.isclose(
        hsic(x, y * factor, estimator="unbiased"), hsic(x, y, estimator="unbiased"), rtol=1e-9, atol=1e-15
    )


@FEW
@given(paired_samples(), st.sampled_from(PSD_KERNELS))
def test_cka_lies_in_the_unit_interval_and_is_one_on_identical_inputs(pair, kernel):
    x, y = pair
    value = cka(x, y, kernel=kernel)
    assert -1e-12 <= value <= 1 + 1e-12
    debiased = cka(x, y, kernel=kernel, debiased=True)
    assert -1 - 1e-9 <= debiased <= 1 + 1e-9
    itself = cka(x, x, kernel=kernel)
    assert itself == 0.0 or abs(itself - 1) <= 1e-9  # 0 only when x has no variation
    if np.ptp(x, axis=0).max() > 1e-3 * (np.abs(x).max() + 1):
        assert abs(itself - 1) <= 1e-9


@FEW
@given(
    paired_samples(min_samples=6),
    st.sampled_from(["permutation", "gamma"]),
    st.integers(1, 60),
    st.integers(0, 1000),
)
def test_pvalues_lie_in_zero_one(pair, method, n_permutations, seed):
    x, y = pair
    result = hsic_test(x, y, method=method, n_permutations=n_permutations, seed=seed)
    assert 0 < result.pvalue <= 1
    if method == "permutation":
        assert result.pvalue >= 1 / (n_permutations + 1)
        assert result.null_distribution.shape == (n_permutations,)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 6),
    st.integers(1, 6),
    st.integers(4, 20),
    st.sampled_from(["biased", "unbiased"]),
)
def test_pairwise_equals_per_pair_hsic(seed, n_a, n_b, n, estimator):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n_a, n)).round(1)  # rounding makes ties and repeated values
    B = rng.standard_normal((n_b, n)).round(1)
    expected = np.array([[hsic(a, b, estimator=estimator) for b in B] for a in A])
    np.testing.assert_allclose(pairwise_hsic(A, B, estimator=estimator), expected, rtol=1e-9, atol=1e-13)
