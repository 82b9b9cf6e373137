"""Batched neuron-level HSIC against per-pair loops; set-level HSIC; max-mean score and test."""

import numpy as np
import pytest
import torch

from neuronoverlap.errors import InputError
from neuronoverlap.hsic import (
    Gaussian,
    cka,
    hsic,
    hsic_test,
    max_mean_score,
    max_mean_test,
    pairwise_cka,
    pairwise_hsic,
    reference_pairwise_hsic,
    set_hsic,
    set_hsic_test,
)
from neuronoverlap.hsic import pairwise as pairwise_module
from neuronoverlap.hsic.independence import draw_permutations


@pytest.fixture
def neuron_sets():
    """A [9, n] and B [7, n] over n = 40 samples, some of B's rows depending on A's."""
    rng = np.random.default_rng(21)
    A = rng.standard_normal((9, 40))
    B = np.vstack(
        [
            A[:3] ** 2 + 0.5 * rng.standard_normal((3, 40)),
            np.tanh(A[3:5]) + 0.2 * rng.standard_normal((2, 40)),
            rng.exponential(size=(2, 40)),
        ]
    )
    return A, B


def loop_matrix(function, A, B, **options):
    return np.array([[function(a, b, **options) for b in B] for a in A])


@pytest.mark.parametrize("kernel", ["gaussian", "laplacian", "inverse_multiquadric", "linear", Gaussian(0.8)])
@pytest.mark.parametrize("estimator", ["biased", "biased_n2", "unbiased"])
def test_pairwise_hsic_equals_the_per_pair_loop(neuron_sets, kernel, estimator):
    A, B = neuron_sets
    expected = loop_matrix(hsic, A, B, kernel=kernel, estimator=estimator)
    np.testing.assert_allclose(
        pairwise_hsic(A, B, kernel=kernel, estimator=estimator), expected, rtol=1e-10, atol=1e-14
    )


def test_chunking_does_not_change_the_values(neuron_sets):
    A, B = neuron_sets
    whole = pairwise_hsic(A, B)
    bytes_per_neuron = pairwise_module.building_bytes(40, 8)
    for budget in [2 * bytes_per_neuron, 6 * bytes_per_neuron, 1]:
        np.testing.assert_allclose(
            pairwise_hsic(A, B, memory_budget_bytes=budget), whole, rtol=1e-12, atol=1e-15
        )


def test_chunks_respect_the_memory_budget(monkeypatch):
    # Many neurons, small budget: the Gram features built at once take at most a quarter of
    # the budget (B's cached features half, a block of A's features a quarter).
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((300, 30)), rng.standard_normal((250, 30))
    budget = 2_000_000
    sizes = []
    original = pairwise_module.gram_features

    def recording(rows, *arguments, **options):
        sizes.append(rows.shape[0])
        return original(rows, *arguments, **options)

    monkeypatch.setattr(pairwise_module, "gram_features", recording)
    values = pairwise_hsic(A, B, memory_budget_bytes=budget)
    bytes_per_neuron = pairwise_module.building_bytes(30, 8)
    assert max(sizes) * bytes_per_neuron <= budget // 4
    assert len(sizes) > 2
    assert values[17, 33] == pytest.approx(hsic(A[17], B[33]), rel=1e-10)
    assert values[299, 249] == pytest.approx(hsic(A[299], B[249]), rel=1e-10)


@pytest.mark.parametrize("debiased", [False, True])
def test_pairwise_cka_equals_the_per_pair_loop(neuron_sets, debiased):
    A, B = neuron_sets
    expected = loop_matrix(cka, A, B, kernel="gaussian", debiased=debiased)
    np.testing.assert_allclose(pairwise_cka(A, B, debiased=debiased), expected, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(
        pairwise_cka(A, B, debiased=debiased, memory_budget_bytes=1), expected, rtol=1e-10, atol=1e-14
    )


def test_constant_neurons_give_zeros_not_nans(neuron_sets):
    A, B = neuron_sets
    A, B = A.copy(), B.copy()
    A[4] = -1.5  # A's Gram matrices are used uncentred with bounded kernels: still exactly 0
    for estimator in ["biased", "biased_n2", "unbiased"]:
        for kernel in ["gaussian", "laplacian", "imq", "linear"]:
            values = pairwise_hsic(A, B, kernel=kernel, estimator=estimator)
            assert (values[4] == 0).all()
    B[2] = 0.25
    for values in [
        pairwise_hsic(A, B),
        pairwise_hsic(A, B, estimator="unbiased"),
        pairwise_cka(A, B),
        pairwise_cka(A, B, debiased=True),
        reference_pairwise_hsic(A, B),
    ]:
        assert np.isfinite(values).all()
        np.testing.assert_allclose(values[:, 2], 0.0, atol=1e-12)


def test_float32_and_tensor_inputs(neuron_sets):
    A, B = neuron_sets
    as32 = pairwise_hsic(torch.tensor(A, dtype=torch.float32), torch.tensor(B, dtype=torch.float32))
    assert as32.dtype == np.float32
    np.testing.assert_allclose(as32, pairwise_hsic(A, B), rtol=1e-3, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_pairwise_on_cuda_matches_cpu(neuron_sets):
    A, B = neuron_sets
    np.testing.assert_allclose(
        pairwise_hsic(A, B, device="cuda"), pairwise_hsic(A, B), rtol=1e-10, atol=1e-14
    )
    on_gpu = max_mean_test(A, B, score="hsic", n_permutations=50, device="cuda")
    on_cpu = max_mean_test(A, B, score="hsic", n_permutations=50)
    np.testing.assert_allclose(on_gpu.null_distribution, on_cpu.null_distribution, rtol=1e-10)


def test_pairwise_input_errors(neuron_sets):
    A, B = neuron_sets
    with pytest.raises(InputError, match="same number of samples"):
        pairwise_hsic(A, B[:, :30])
    with pytest.raises(InputError, match="NaN"):
        pairwise_hsic(A, np.where(B > 2, np.inf, B))
    with pytest.raises(InputError, match="shape"):
        pairwise_hsic(A[None], B)
    with pytest.raises(InputError, match="at least 4 samples"):
        pairwise_hsic(A[:, :3], B[:, :3], estimator="unbiased")


# ---------------------------------------------------------------- set-level HSIC


def zscore(rows):
    return (rows - rows.mean(1, keepdims=True)) / rows.std(1, ddof=1, keepdims=True)


def test_set_hsic_is_multivariate_hsic_of_the_sample_vectors(neuron_sets):
    A, B = neuron_sets
    assert set_hsic(A, B) == pytest.approx(hsic(zscore(A).T, zscore(B).T), rel=1e-12)
    assert set_hsic(A, B, standardise=False, estimator="unbiased") == pytest.approx(
        hsic(A.T, B.T, estimator="unbiased"), rel=1e-12
    )
    result = set_hsic_test(A, B, n_permutations=200, seed=4)
    direct = hsic_test(zscore(A).T, zscore(B).T, n_permutations=200, seed=4)
    assert result.pvalue == direct.pvalue and result.pvalue < 0.05
    independent = np.random.default_rng(1).standard_normal((4, 40))
    assert set_hsic_test(independent, B, n_permutations=200).pvalue > 0.05


# ---------------------------------------------------------------- max-mean score and its test


def test_max_mean_score_by_hand():
    matrix = np.array([[1.0, 2.0], [3.0, 0.0], [0.0, 5.0]])
    # row maxima 2, 3, 5 (mean 10/3); column maxima 3, 5 (mean 4)
    assert max_mean_score(matrix) == pytest.approx((10 / 3 + 4) / 2)
    with pytest.raises(InputError, match="2-D"):
        max_mean_score(np.ones(3))
    with pytest.raises(InputError, match="NaN"):
        max_mean_score(np.array([[np.nan]]))


def brute_score(A, B, mode):
    if mode == "reference":
        return max_mean_score(reference_pairwise_hsic(A, B))
    if mode == "hsic":
        return max_mean_score(pairwise_hsic(A, B))
    return max_mean_score(pairwise_cka(A, B))


@pytest.mark.parametrize("mode", ["reference", "hsic", "cka"])
def test_max_mean_null_is_the_score_of_permuted_samples(neuron_sets, mode):
    A, B = neuron_sets
    result = max_mean_test(A, B, score=mode, n_permutations=60, seed=12)
    assert result.statistic == pytest.approx(brute_score(A, B, mode), rel=1e-10)
    orders = draw_permutations(40, 60, 12)[0].numpy()
    brute = [brute_score(A, B[:, order], mode) for order in orders[:8]]
    np.testing.assert_allclose(result.null_distribution[:8], brute, rtol=1e-10)
    exceed = int((result.null_distribution >= result.statistic).sum())
    assert result.pvalue == pytest.approx((1 + exceed) / 61)
    chunked = max_mean_test(A, B, score=mode, n_permutations=60, seed=12, memory_budget_bytes=20_000)
    np.testing.assert_allclose(chunked.null_distribution, result.null_distribution, rtol=1e-12)


def test_max_mean_test_finds_dependence_and_not_independence(neuron_sets):
    A, B = neuron_sets
    assert max_mean_test(A, B, score="hsic", n_permutations=199).pvalue == pytest.approx(0.005)
    independent = np.random.default_rng(8).standard_normal((6, 40))
    assert max_mean_test(A, independent, score="hsic", n_permutations=199).pvalue > 0.05


def test_max_mean_test_errors(neuron_sets):
    A, B = neuron_sets
    with pytest.raises(InputError, match="score"):
        max_mean_test(A, B, score="mutual_information")
    with pytest.raises(InputError, match="n_permutations"):
        max_mean_test(A, B, n_permutations=-5)
