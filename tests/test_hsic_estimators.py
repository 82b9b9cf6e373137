"""HSIC estimators, kernels and CKA against brute-force formulas and published values."""

import itertools

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist, squareform

from neuronoverlap.errors import InputError
from neuronoverlap.hsic import (
    Gaussian,
    InverseMultiquadric,
    Laplacian,
    Linear,
    Polynomial,
    cka,
    hsic,
    hsic_from_grams,
)
from neuronoverlap.hsic.estimators import u_centre
from neuronoverlap.hsic.kernels import median_bandwidth, squared_distances

# ---------------------------------------------------------------- independent numpy references


def median_sigma(x: np.ndarray) -> float:
    """numpy median of the distances over distinct pairs (the 'median' rule)."""
    return float(np.median(pdist(x.reshape(len(x), -1))))


def gretton_sigma(x: np.ndarray) -> float:
    squared = pdist(x.reshape(len(x), -1)) ** 2
    return float(np.sqrt(0.5 * np.median(squared[squared > 0])))


def numpy_gram(x: np.ndarray, kind: str, sigma: float | None = None) -> np.ndarray:
    x = x.reshape(len(x), -1)
    distances = squareform(pdist(x))
    if kind == "gaussian":
        return np.exp(-(distances**2) / (2 * sigma**2))
    if kind == "laplacian":
        return np.exp(-distances / sigma)
    if kind == "inverse_multiquadric":
        return 1 / np.sqrt(1 + distances**2 / sigma**2)
    if kind == "linear":
        return x @ x.T
    if kind == "polynomial":
        return (x @ x.T + 1.0) ** 3
    raise ValueError(kind)


def trace_hsic(K: np.ndarray, L: np.ndarray, divisor: float) -> float:
    """tr(K H L H) / divisor with explicit centring matrices: O(n^3)."""
    n = len(K)
    H = np.eye(n) - np.ones((n, n)) / n
    return float(np.trace(K @ H @ L @ H) / divisor)


def song_unbiased_hsic(K: np.ndarray, L: np.ndarray) -> float:
    """Song et al. 2012, eq. (5): the closed form of the unbiased estimator."""
    n = len(K)
    Kt, Lt = K - np.diag(np.diag(K)), L - np.diag(np.diag(L))
    one = np.ones(n)
    return float(
        (
            np.trace(Kt @ Lt)
            + (one @ Kt @ one) * (one @ Lt @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * (one @ Kt @ Lt @ one)
        )
        / (n * (n - 3))
    )


def u_statistic_hsic(K: np.ndarray, L: np.ndarray) -> float:
    """The U-statistic itself: mean over ordered 4-tuples of distinct samples of
    k_ij l_ij + k_ij l_qr - 2 k_ij l_iq (Song et al. 2012, before simplification)."""
    n = len(K)
    i, j, q, r = np.array(list(itertools.permutations(range(n), 4))).T
    terms = K[i, j] * L[i, j] + K[i, j] * L[q, r] - 2 * K[i, j] * L[i, q]
    return float(terms.mean())


@pytest.fixture
def sample():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((40, 3))
    y = np.c_[np.sin(2 * x[:, 0]) + 0.3 * rng.standard_normal(40), rng.standard_normal(40)]
    return x, y


# ---------------------------------------------------------------- agreement with brute force


@pytest.mark.parametrize("kind", ["gaussian", "laplacian", "inverse_multiquadric", "linear", "polynomial"])
@pytest.mark.parametrize(
    "estimator,divisor", [("biased", lambda n: (n - 1) ** 2), ("biased_n2", lambda n: n**2)]
)
def test_biased_estimators_match_the_trace_formula(sample, kind, estimator, divisor):
    x, y = sample
    sigma_x, sigma_y = median_sigma(x), median_sigma(y)
    expected = trace_hsic(numpy_gram(x, kind, sigma_x), numpy_gram(y, kind, sigma_y), divisor(len(x)))
    assert hsic(x, y, kernel=kind, estimator=estimator) == pytest.approx(expected, abs=1e-10, rel=1e-10)


@pytest.mark.parametrize("kind", ["gaussian", "laplacian", "linear"])
def test_unbiased_estimator_matches_song_and_the_u_statistic(kind):
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((9, 2)), rng.standard_normal((9, 1))
    y[:, 0] += x[:, 0] ** 2
    K = numpy_gram(x, kind, median_sigma(x))
    L = numpy_gram(y, kind, median_sigma(y))
    ours = hsic(x, y, kernel=kind, estimator="unbiased")
    assert ours == pytest.approx(song_unbiased_hsic(K, L), abs=1e-10)
    assert ours == pytest.approx(u_statistic_hsic(K, L), abs=1e-10)


def test_unbiased_estimator_works_at_its_minimum_of_four_samples():
    x, y = np.array([0.0, 1.0, 3.0, 2.0]), np.array([1.0, 0.0, 2.0, 5.0])
    K, L = numpy_gram(x, "linear"), numpy_gram(y, "linear")
    assert hsic(x, y, kernel="linear", estimator="unbiased") == pytest.approx(
        u_statistic_hsic(K, L), abs=1e-10
    )


def test_u_centred_matrix_has_zero_diagonal_and_zero_row_sums():
    gram = torch.from_numpy(numpy_gram(np.random.default_rng(0).standard_normal((12, 2)), "gaussian", 1.0))
    centred = u_centre(gram)
    assert torch.allclose(centred.diagonal(), torch.zeros(12, dtype=torch.float64))
    assert torch.allclose(centred.sum(dim=1), torch.zeros(12, dtype=torch.float64), atol=1e-12)


def test_normalisations_differ_by_their_factor(sample):
    x, y = sample
    n = len(x)
    assert hsic(x, y, estimator="biased_n2") == pytest.approx(
        hsic(x, y, estimator="biased") * (n - 1) ** 2 / n**2, rel=1e-12
    )


def test_hsic_from_grams_is_batched():
    rng = np.random.default_rng(1)
    grams_x = torch.from_numpy(
        np.stack([numpy_gram(rng.standard_normal((15, 2)), "linear") for _ in range(3)])
    )
    grams_y = torch.from_numpy(
        np.stack([numpy_gram(rng.standard_normal((15, 1)), "linear") for _ in range(3)])
    )
    batched = hsic_from_grams(grams_x, grams_y)
    for element in range(3):
        assert float(batched[element]) == pytest.approx(
            trace_hsic(grams_x[element].numpy(), grams_y[element].numpy(), 14**2), abs=1e-10
        )


# ---------------------------------------------------------------- kernels and bandwidths


def test_median_rule_is_numpys_median_of_distinct_pair_distances():
    x = np.random.default_rng(5).standard_normal((31, 4))  # 465 pairs: odd count
    squared = squared_distances(torch.from_numpy(x))
    assert float(median_bandwidth(squared, "median")) == pytest.approx(median_sigma(x), rel=1e-12)
    x = x[:30]  # 435 pairs
    squared = squared_distances(torch.from_numpy(x))
    assert float(median_bandwidth(squared, "median")) == pytest.approx(median_sigma(x), rel=1e-12)
    x = x[:29, :1]  # 406 pairs: even count, mean of the two middle values
    squared = squared_distances(torch.from_numpy(x))
    assert float(median_bandwidth(squared, "median")) == pytest.approx(median_sigma(x), rel=1e-12)


def test_gretton_rule_is_square_root_of_half_the_median_squared_distance():
    x = np.random.default_rng(6).standard_normal((25, 2))
    x[3] = x[4]  # a zero distance, which Gretton's rule ignores
    squared = squared_distances(torch.from_numpy(x))
    assert float(median_bandwidth(squared, "gretton")) == pytest.approx(gretton_sigma(x), rel=1e-12)
    expected = trace_hsic(
        numpy_gram(x, "gaussian", gretton_sigma(x)),
        numpy_gram(x[:, :1], "gaussian", gretton_sigma(x[:, :1])),
        24**2,
    )
    assert hsic(x, x[:, :1], bandwidth="gretton") == pytest.approx(expected, abs=1e-10)


def test_median_rule_falls_back_to_positive_distances_when_most_pairs_tie():
    x = np.array([0.0] * 8 + [1.0, 3.0])  # 28 of 45 pairs are ties at distance 0
    squared = squared_distances(torch.from_numpy(x)[:, None])
    positive = pdist(x[:, None])
    assert float(median_bandwidth(squared, "median")) == pytest.approx(np.median(positive[positive > 0]))


@pytest.mark.parametrize("kernel", [Gaussian(0.7), Laplacian(1.3), InverseMultiquadric(0.9)])
def test_fixed_bandwidths(sample, kernel):
    x, y = sample
    expected = trace_hsic(
        numpy_gram(x, kernel.name, kernel.bandwidth), numpy_gram(y, kernel.name, kernel.bandwidth), 39**2
    )
    assert hsic(x, y, kernel=kernel) == pytest.approx(expected, abs=1e-10)
    assert hsic(x, y, kernel=kernel.name, bandwidth=kernel.bandwidth) == pytest.approx(expected, abs=1e-10)


def test_polynomial_parameters_and_separate_kernel_for_y(sample):
    x, y = sample
    K = (0.5 * x @ x.T + 2.0) ** 2
    L = y @ y.T
    assert hsic(x, y, kernel=Polynomial(degree=2, scale=0.5, offset=2.0), kernel_y=Linear()) == pytest.approx(
        trace_hsic(K, L, 39**2), abs=1e-10
    )


def test_user_callable_kernel(sample):
    x, y = sample

    def cosine_kernel(values):
        normed = values / values.norm(dim=1, keepdim=True)
        return normed @ normed.T

    unit_x = x / np.linalg.norm(x, axis=1, keepdims=True)
    unit_y = y / np.linalg.norm(y, axis=1, keepdims=True)
    expected = trace_hsic(unit_x @ unit_x.T, unit_y @ unit_y.T, 39**2)
    assert hsic(x, y, kernel=cosine_kernel) == pytest.approx(expected, abs=1e-10)
    with pytest.raises(InputError, match="Gram matrix"):
        hsic(x, y, kernel=lambda values: np.ones((3, 3)))
    with pytest.raises(InputError, match="non-symmetric"):
        hsic(x, y, kernel=lambda values: np.triu(np.ones((40, 40))))


# ---------------------------------------------------------------- CKA, with published values


def kornblith_demo_data():
    """The data of Kornblith et al.'s CKA demo notebook (google-research,
    representation_similarity/Demo.ipynb): legacy numpy seed 1337."""
    np.random.seed(1337)
    X = np.random.randn(100, 10)
    Y = np.random.randn(100, 10) + X
    return X, Y


def test_cka_reproduces_kornblith_demo_values():
    # Printed in the demo notebook: linear CKA 0.55761, RBF CKA 0.65483 (bandwidth 0.5 x the
    # median distance, whose median there runs over the full n x n matrix, diagonal included),
    # debiased linear CKA 0.51346.
    X, Y = kornblith_demo_data()
    assert cka(X, Y) == pytest.approx(0.55761, abs=5e-6)
    assert cka(X, Y, debiased=True) == pytest.approx(0.51346, abs=5e-6)

    def demo_bandwidth(values):
        squared = squareform(pdist(values)) ** 2
        return 0.5 * np.sqrt(np.median(squared))

    assert cka(
        X, Y, kernel=Gaussian(demo_bandwidth(X)), kernel_y=Gaussian(demo_bandwidth(Y))
    ) == pytest.approx(0.65483, abs=5e-6)


def test_linear_cka_equals_its_feature_space_closed_form(sample):
    # ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F) on centred features (Kornblith et al., eq. 5).
    x, y = sample
    xc, yc = x - x.mean(0), y - y.mean(0)
    expected = np.linalg.norm(yc.T @ xc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))
    assert cka(x, y) == pytest.approx(expected, abs=1e-12)


def test_cka_of_a_variable_with_itself_is_one(sample):
    x, _ = sample
    assert cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert cka(x, x, kernel="gaussian") == pytest.approx(1.0, abs=1e-12)
    assert cka(x, x, debiased=True) == pytest.approx(1.0, abs=1e-12)


# ---------------------------------------------------------------- inputs, dtypes, edge cases


def test_constant_input_gives_zero_not_nan(sample):
    x, _ = sample
    constant = np.full(40, 3.5)
    for kernel in ["gaussian", "laplacian", "inverse_multiquadric", "linear"]:
        assert hsic(x, constant, kernel=kernel) == pytest.approx(0.0, abs=1e-12)
        assert hsic(constant, constant, kernel=kernel, estimator="unbiased") == pytest.approx(0.0, abs=1e-12)
        assert cka(x, constant, kernel=kernel) == 0.0
        assert cka(constant, constant, kernel=kernel, debiased=True) == 0.0


def test_extreme_scales_and_tiny_median_distances_stay_finite():
    # found by hypothesis: a median distance of 1e-157 made 1/sigma^2 overflow (0 * inf = NaN)
    x = np.array([0.0, 1.0, 6.4e-157, 6.4e-157, 6.4e-157])
    y = np.array([1.0, 0.0, 3.0, 2.0, 5.0])
    sigma = median_sigma(x)
    with np.errstate(over="ignore"):  # (1 / 6e-157)^2 overflows to inf: the kernel value is 0
        K = np.exp(-(((x[:, None] - x[None, :]) / sigma) ** 2) / 2)
    expected = trace_hsic(K, numpy_gram(y, "gaussian", median_sigma(y)), 16)
    for kernel in ["gaussian", "laplacian", "inverse_multiquadric"]:
        assert np.isfinite(hsic(x, y, kernel=kernel))
    assert hsic(x, y) == pytest.approx(expected, rel=1e-9)
    assert cka(x, x, kernel="gaussian") == pytest.approx(1.0)
    rng = np.random.default_rng(2)
    z, w = rng.standard_normal(30), rng.standard_normal(30)
    for factor in [1e-300, 1e-160, 1e160, 1e300]:  # distances would under- or overflow
        assert hsic(z * factor, w) == pytest.approx(hsic(z, w), rel=1e-9)
        assert hsic(z * factor, w, kernel=Gaussian(factor), kernel_y=Gaussian(1.0)) == (
            pytest.approx(hsic(z, w, kernel=Gaussian(1.0)), rel=1e-9)
        )


def test_one_dimensional_inputs_and_tensors_and_lists(sample):
    x, y = sample
    reference = hsic(x[:, 0], y[:, 0])
    assert hsic(x[:, :1], y[:, :1]) == pytest.approx(reference, abs=1e-14)
    assert hsic(torch.from_numpy(x[:, 0]), torch.from_numpy(y[:, 0])) == pytest.approx(reference, abs=1e-14)
    assert hsic(list(x[:, 0]), list(y[:, 0])) == pytest.approx(reference, abs=1e-14)
    assert hsic(np.arange(10), np.arange(10) ** 2) > 0  # integers become float64


def test_float32_inputs_are_computed_in_float32(sample):
    x, y = sample
    as32 = hsic(torch.from_numpy(x).float(), torch.from_numpy(y).float())
    assert as32 == pytest.approx(hsic(x, y), rel=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_tensors_give_the_cpu_values(sample):
    x, y = sample
    on_gpu = hsic(torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda(), estimator="unbiased")
    assert on_gpu == pytest.approx(hsic(x, y, estimator="unbiased"), abs=1e-12)


@pytest.mark.parametrize(
    "bad,message",
    [
        (np.array([1.0, np.nan, 2.0, 3.0]), "NaN or infinite"),
        (np.array([1.0, np.inf, 2.0, 3.0]), "NaN or infinite"),
        (np.zeros((4, 2, 2)), "shape"),
        (np.zeros((0,)), "empty"),
        (np.array(["a", "b", "c", "d"]), "numeric"),
    ],
)
def test_bad_inputs_raise_input_error(bad, message):
    with pytest.raises(InputError, match=message):
        hsic(bad, np.arange(4.0))
    with pytest.raises(InputError, match=message):
        cka(np.arange(4.0), bad)


def test_argument_errors_are_one_line_input_errors():
    x = np.arange(6.0)
    cases = [
        (lambda: hsic(x, np.arange(5.0)), "same number of samples"),
        (lambda: hsic(x[:3], x[:3], estimator="unbiased"), "at least 4 samples"),
        (lambda: hsic(x[:1], x[:1]), "at least 2 samples"),
        (lambda: hsic(x, x, estimator="fancy"), "unknown estimator"),
        (lambda: hsic(x, x, kernel="sigmoid"), "unknown kernel"),
        (lambda: hsic(x, x, bandwidth=-1.0), "bandwidth"),
        (lambda: hsic(x, x, bandwidth="mean"), "bandwidth"),
        (lambda: hsic(x, x, kernel=Polynomial(degree=0)), "degree"),
        (lambda: cka(x[:3], x[:3], debiased=True), "at least 4 samples"),
    ]
    for call, message in cases:
        with pytest.raises(InputError, match=message) as caught:
            call()
        assert "\n" not in str(caught.value)
        assert isinstance(caught.value, ValueError)
