"""HSIC independence tests: permutation null, p-value formula, seeding, gamma, calibration."""

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.spatial.distance import pdist, squareform

from neuronoverlap.errors import InputError
from neuronoverlap.hsic import hsic, hsic_test, hsic_test_batch
from neuronoverlap.hsic.estimators import centre_gram
from neuronoverlap.hsic.independence import (
    draw_permutations,
    independence_test_grams,
    permuted_inner_products,
)
from neuronoverlap.hsic.kernels import make_kernel
from neuronoverlap.hsic.lowrank import low_rank_null


def gaussian_gram(x: np.ndarray) -> np.ndarray:
    x = x.reshape(len(x), -1)
    distances = squareform(pdist(x))
    sigma = np.median(pdist(x))
    return np.exp(-(distances**2) / (2 * sigma**2))


@pytest.fixture
def dependent_pair():
    rng = np.random.default_rng(11)
    x = rng.standard_normal(60)
    return x, 0.4 * x**2 + rng.standard_normal(60)


# ---------------------------------------------------------------- the permutation test


@pytest.mark.parametrize("estimator", ["biased", "biased_n2", "unbiased"])
@pytest.mark.parametrize("n,n_permutations", [(60, 30), (240, 40)])  # gather / eigen path
def test_null_statistics_are_the_hsic_of_permuted_samples(estimator, n, n_permutations):
    rng = np.random.default_rng(11)
    x = rng.standard_normal(n)
    y = 0.4 * x**2 + rng.standard_normal(n)
    result = hsic_test(x, y, n_permutations=n_permutations, seed=5, estimator=estimator)
    orders = draw_permutations(n, n_permutations, 5)[0].numpy()[:12]
    brute = [hsic(x, y[order], estimator=estimator) for order in orders]
    scale = hsic(x, x, estimator=estimator)  # null values are tiny: judge them on this scale
    np.testing.assert_allclose(result.null_distribution[:12], brute, rtol=0, atol=1e-10 * scale)
    assert result.statistic == pytest.approx(hsic(x, y, estimator=estimator), rel=1e-12)


@pytest.mark.parametrize("estimator", ["biased", "biased_n2", "unbiased"])
@pytest.mark.parametrize("kind", ["continuous", "ties", "two_dimensional", "binary"])
def test_eigendecomposition_path_equals_the_exact_gather_path(estimator, kind):
    rng = np.random.default_rng(len(kind))
    n = 200
    x = rng.standard_normal((n, 2 if kind == "two_dimensional" else 1))
    y = np.sin(2 * x[:, :1]) + rng.standard_normal((n, 1))
    if kind == "ties":
        x, y = x.round(1), y.round(0)
    if kind == "binary":
        x = (x > 0).astype(float)
    gram_x, _ = make_kernel("gaussian").gram(torch.from_numpy(x)[None])
    gram_y, _ = make_kernel("gaussian").gram(torch.from_numpy(y)[None])
    centred_x, centred_y = centre_gram(gram_x, estimator), centre_gram(gram_y, estimator)
    orders = draw_permutations(n, 100, 6)
    fast = low_rank_null(gram_x, gram_y, centred_x, centred_y, estimator, orders)
    if kind == "two_dimensional":  # rank of a 2-D Gaussian Gram: too high to pay off here
        assert fast is None
        return
    assert fast is not None
    observed, null = fast
    exact_null = permuted_inner_products(centred_x, centred_y, orders)
    scale = float(centred_x.norm() * centred_y.norm())
    assert abs(float(observed[0]) - float((centred_x * centred_y).sum())) <= 1e-10 * scale
    np.testing.assert_allclose(null.numpy(), exact_null.numpy(), rtol=0, atol=1e-10 * scale)
    fast_result = independence_test_grams(gram_x, gram_y, "permutation", estimator, 100, 6)
    exact_result = independence_test_grams(gram_x, gram_y, "permutation", estimator, 100, 6, fast_path=False)
    assert float(fast_result["pvalue"][0]) == float(exact_result["pvalue"][0])


def test_pvalue_is_one_plus_exceedances_over_one_plus_permutations(dependent_pair):
    x, y = dependent_pair
    result = hsic_test(x, y, n_permutations=200, seed=1)
    exceed = int((result.null_distribution >= result.statistic).sum())
    assert result.pvalue == pytest.approx((1 + exceed) / 201)
    assert 0 < result.pvalue <= 1
    assert result.method == "permutation" and result.n == 60 and result.n_permutations == 200
    assert result.kernel_x == "gaussian(bandwidth=median)"
    assert result.bandwidth_x == pytest.approx(np.median(pdist(x[:, None])))


def test_strong_dependence_gives_the_smallest_possible_pvalue():
    x = np.linspace(-2, 2, 80)
    result = hsic_test(x, x**2, n_permutations=99)
    assert result.pvalue == pytest.approx(1 / 100)


def test_permutations_are_seeded_and_reproducible(dependent_pair):
    x, y = dependent_pair
    first = hsic_test(x, y, n_permutations=50, seed=3)
    again = hsic_test(x, y, n_permutations=50, seed=3)
    other = hsic_test(x, y, n_permutations=50, seed=4)
    np.testing.assert_array_equal(first.null_distribution, again.null_distribution)
    assert first.pvalue == again.pvalue
    assert not np.array_equal(first.null_distribution, other.null_distribution)


def test_each_permutation_is_a_permutation():
    orders = draw_permutations(17, 40, 9, range(3)).numpy()
    assert orders.shape == (3, 40, 17)
    assert (np.sort(orders, axis=-1) == np.arange(17)).all()
    assert len({tuple(order) for order in orders.reshape(-1, 17)}) == 120


def test_batch_element_zero_matches_the_single_test_and_chunking_does_not_matter():
    rng = np.random.default_rng(2)
    xs = rng.standard_normal((5, 30, 2))
    ys = xs[:, :, :1] ** 2 + rng.standard_normal((5, 30, 1))
    batch = hsic_test_batch(xs, ys, n_permutations=40, seed=8)
    single = hsic_test(xs[0], ys[0], n_permutations=40, seed=8)
    assert batch.pvalue[0] == single.pvalue
    np.testing.assert_allclose(batch.null_distribution[0], single.null_distribution, rtol=1e-12)
    for element in range(5):
        assert batch.statistic[element] == pytest.approx(hsic(xs[element], ys[element]))
        orders = draw_permutations(30, 40, 8, range(element, element + 1))[0].numpy()
        brute = [hsic(xs[element], ys[element][order]) for order in orders]
        np.testing.assert_allclose(batch.null_distribution[element], brute, rtol=1e-10)


def test_constant_input_has_pvalue_one():
    x = np.random.default_rng(0).standard_normal(25)
    for estimator in ["biased", "unbiased"]:
        result = hsic_test(x, np.ones(25), n_permutations=20, estimator=estimator)
        assert result.statistic == 0.0 and result.pvalue == 1.0
    assert hsic_test(x, np.ones(25), method="gamma").pvalue == 1.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_permutation_test_matches_cpu(dependent_pair):
    x, y = dependent_pair
    on_cpu = hsic_test(x, y, n_permutations=100, seed=2)
    on_gpu = hsic_test(x, y, n_permutations=100, seed=2, device="cuda")
    np.testing.assert_allclose(on_gpu.null_distribution, on_cpu.null_distribution, rtol=1e-10)
    assert on_gpu.pvalue == on_cpu.pvalue


# ---------------------------------------------------------------- the gamma approximation


def gretton_gamma_pvalue(x: np.ndarray, y: np.ndarray) -> float:
    """Gretton et al. 2008 (hsicTestGamma), written out with scipy's gamma law."""
    K, L = gaussian_gram(x), gaussian_gram(y)
    m = len(K)
    H = np.eye(m) - np.ones((m, m)) / m
    Kc, Lc = H @ K @ H, H @ L @ H
    statistic = np.sum(Kc * Lc) / m
    variance = (Kc * Lc / 6) ** 2
    variance = (variance.sum() - np.trace(variance)) / m / (m - 1)
    variance = 72 * (m - 4) * (m - 5) / m / (m - 1) / (m - 2) / (m - 3) * variance
    K0, L0 = K - np.diag(np.diag(K)), L - np.diag(np.diag(L))
    mu_x, mu_y = K0.sum() / m / (m - 1), L0.sum() / m / (m - 1)
    mean = (1 + mu_x * mu_y - mu_x - mu_y) / m
    shape, scale = mean**2 / variance, variance * m / mean
    return float(stats.gamma.sf(statistic, shape, scale=scale))


def test_gamma_pvalue_matches_grettons_formula(dependent_pair):
    x, y = dependent_pair
    result = hsic_test(x, y, method="gamma")
    assert result.pvalue == pytest.approx(gretton_gamma_pvalue(x, y), rel=1e-8)
    assert result.statistic == pytest.approx(hsic(x, y))
    assert result.null_distribution is None and result.gamma_shape > 0
    rng = np.random.default_rng(4)
    independent = rng.standard_normal((50, 2)), rng.standard_normal(50)
    assert hsic_test(*independent, method="gamma").pvalue == pytest.approx(
        gretton_gamma_pvalue(*independent), rel=1e-8
    )


def test_test_argument_errors():
    x = np.arange(10.0)
    cases = [
        (lambda: hsic_test(x, x, method="bootstrap"), "unknown test method"),
        (lambda: hsic_test(x, x, n_permutations=0), "n_permutations"),
        (lambda: hsic_test(x, x, method="gamma", estimator="unbiased"), "gamma"),
        (lambda: hsic_test(x[:5], x[:5], method="gamma"), "at least 6 samples"),
        (lambda: hsic_test(x[:3], x[:3], estimator="unbiased"), "at least 4 samples"),
        (lambda: hsic_test(x, np.r_[x[:9], np.nan]), "NaN"),
        (lambda: hsic_test_batch(np.zeros((2, 5)), np.zeros((3, 5))), "batch size"),
        (lambda: hsic_test_batch(np.zeros((2, 5)), np.zeros((2, 6))), "number of samples"),
    ]
    for call, message in cases:
        with pytest.raises(InputError, match=message):
            call()


# ---------------------------------------------------------------- calibration and power


@pytest.fixture
def one_thread():
    """Many small gathers: one thread avoids OpenMP overhead on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["permutation", "gamma"])
def test_level_under_independence_is_five_percent(method, one_thread):
    # 1000 independent draws, n = 60, one batched call. The permutation test with B = 99 is
    # exact (P(p <= 0.05) = 5/100 for exchangeable samples); the gamma test is asymptotic.
    # The rejection rate's standard error is 0.7 points, so +-2 points is a 2.9-sigma band.
    rng = np.random.default_rng(2024)
    xs = rng.standard_normal((1000, 60, 2))
    ys = rng.exponential(size=(1000, 60, 1))
    result = hsic_test_batch(xs, ys, method=method, n_permutations=99, seed=17)
    rejection_rate = float((result.pvalue <= 0.05).mean())
    assert 0.03 <= rejection_rate <= 0.07, rejection_rate


@pytest.mark.slow
@pytest.mark.parametrize("method", ["permutation", "gamma"])
def test_power_against_a_quadratic_dependence(method, one_thread):
    # y = x^2 + noise has zero correlation with x: a linear test has no power here.
    rng = np.random.default_rng(99)
    xs = rng.standard_normal((200, 100, 1))
    ys = xs**2 + 1.5 * rng.standard_normal((200, 100, 1))
    result = hsic_test_batch(xs, ys, method=method, n_permutations=99, seed=3)
    power = float((result.pvalue <= 0.05).mean())
    assert power >= 0.9, power
