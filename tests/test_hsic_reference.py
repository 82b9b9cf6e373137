"""Reference-compatible mode against a plain loop that follows the BridgeX-ICL steps."""

import numpy as np
import pytest
import torch

from neuronoverlap.hsic import (
    max_mean_score,
    reference_bandwidth,
    reference_bridge_score,
    reference_pairwise_hsic,
)


def reference_steps(set_one: np.ndarray, set_two: np.ndarray):
    """The reference's compute_hsic, step by step with loops over neurons and pairs (float64):
    z-score rows, sigma = torch.median of both within-set cdist matrices + 1e-6, one Gaussian
    Gram per neuron, S_ij = trace((K_i H)(H L_j)), score = mean of both max directions."""
    one, two = torch.from_numpy(set_one), torch.from_numpy(set_two)
    one = (one - one.mean(dim=1, keepdim=True)) / (one.std(dim=1, keepdim=True) + 1e-6)
    two = (two - two.mean(dim=1, keepdim=True)) / (two.std(dim=1, keepdim=True) + 1e-6)
    all_distances = torch.cat([torch.cdist(one, one).reshape(-1), torch.cdist(two, two).reshape(-1)])
    sigma = torch.median(all_distances).item() + 1e-6
    n = one.shape[1]
    centring = torch.eye(n, dtype=torch.float64) - torch.ones(n, n, dtype=torch.float64) / n

    def gram(row):
        return torch.exp(-((row[:, None] - row[None, :]) ** 2) / (2 * sigma**2))

    scores = torch.zeros(one.shape[0], two.shape[0], dtype=torch.float64)
    for i in range(one.shape[0]):
        for j in range(two.shape[0]):
            scores[i, j] = torch.trace((gram(one[i]) @ centring) @ (centring @ gram(two[j])))
    score = (scores.max(dim=1).values.mean() + scores.max(dim=0).values.mean()) / 2
    return sigma, scores.numpy(), float(score)


@pytest.mark.parametrize("n_one,n_two", [(6, 5), (6, 4), (3, 8)])  # odd and even median counts
def test_reference_mode_equals_the_reference_loop(n_one, n_two):
    rng = np.random.default_rng(n_one * 10 + n_two)
    A = rng.standard_normal((n_one, 30)) * rng.uniform(0.1, 5, (n_one, 1))
    B = np.vstack([A[: min(n_one, n_two)] ** 2, rng.standard_normal((n_two, 30))])[:n_two]
    sigma, scores, score = reference_steps(A, B)
    assert reference_bandwidth(A, B) == pytest.approx(sigma, rel=1e-12)
    np.testing.assert_allclose(reference_pairwise_hsic(A, B), scores, rtol=1e-10, atol=1e-13)
    assert reference_bridge_score(A, B) == pytest.approx(score, rel=1e-10)
    assert max_mean_score(scores) == pytest.approx(score, rel=1e-12)


def test_reference_mode_with_a_constant_neuron():
    rng = np.random.default_rng(3)
    A, B = rng.standard_normal((4, 20)), rng.standard_normal((3, 20))
    A[1] = 2.0  # std 0: the reference's z-score gives a zero row, its Gram is all ones
    sigma, scores, score = reference_steps(A, B)
    np.testing.assert_allclose(reference_pairwise_hsic(A, B), scores, rtol=1e-10, atol=1e-13)
    assert reference_bridge_score(A, B) == pytest.approx(score, rel=1e-10)


def test_reference_score_to_first_order():
    # docs/hsic.md: sigma ~ sqrt(2 (n-1)) puts the reference kernels in their quadratic regime,
    # K_ab ~ 1 - (z_a - z_b)^2 / (2 sigma^2), so that
    # S_ij ~ [(n-1)^2 rho_ij^2 + (n/4) sum_a q_a(z_i) q_a(z_j)] / sigma^4, q(z) = z^2 - mean(z^2):
    # squared correlation plus a covariance of squares from the one-sided centring tr(K H L).
    rng = np.random.default_rng(0)
    n = 200
    A = rng.standard_normal((20, n))
    B = np.vstack([0.6 * A[:5] + rng.standard_normal((5, n)), A[5:10] ** 2 + rng.standard_normal((5, n))])
    scores = reference_pairwise_hsic(A, B)
    sigma = reference_bandwidth(A, B)
    assert sigma == pytest.approx(np.sqrt(2 * (n - 1)), rel=0.05)
    za = (A - A.mean(1, keepdims=True)) / (A.std(1, ddof=1, keepdims=True) + 1e-6)
    zb = (B - B.mean(1, keepdims=True)) / (B.std(1, ddof=1, keepdims=True) + 1e-6)
    qa, qb = za**2 - (za**2).mean(1, keepdims=True), zb**2 - (zb**2).mean(1, keepdims=True)
    first_order = ((za @ zb.T) ** 2 + n / 4 * (qa @ qb.T)) / sigma**4
    assert np.corrcoef(scores.ravel(), first_order.ravel())[0, 1] > 0.999
    large = np.abs(scores) > 0.05
    assert large.sum() >= 10
    np.testing.assert_allclose(scores[large], first_order[large], rtol=0.05)
    # the covariance-of-squares term is not part of HSIC: the plain (n-1)^2 HSIC_b differs
    centred_only = (za @ zb.T) ** 2 / sigma**4
    assert np.abs(scores - centred_only).max() > 0.1
