"""The reference kernel's finite expansion: its error bound, and agreement with the Gram path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuronoverlap.hsic.columns import overlap_bandwidth, overlap_scores
from neuronoverlap.hsic.expansion import (
    ENTRY_TOLERANCE,
    degree_for,
    expanded_reference_scores,
    gaussian_features,
    reference_degrees,
)
from neuronoverlap.hsic.reference import (
    reference_zscore,
    shared_bandwidth,
    triangle_products,
    zscored_products,
)
from neuronoverlap.hsic.reweighted import ReweightedScores


def _tail(t: float, degree: int) -> float:
    return t ** (degree + 1) / math.factorial(degree + 1)


@settings(max_examples=200, deadline=None)
@given(st.floats(0.0, 20.0))
def test_the_degree_is_the_least_that_meets_the_bound(t):
    degree = degree_for(t)
    assert _tail(t, degree) <= ENTRY_TOLERANCE
    assert degree == 0 or _tail(t, degree - 1) > ENTRY_TOLERANCE


def test_a_degree_past_the_cap_is_refused():
    assert degree_for(1e6) is None
    assert degree_for(float("inf")) is None


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31), st.integers(20, 300), st.floats(0.5, 60.0))
def test_features_reproduce_the_gram_matrix_within_the_bound(seed, n, sigma):
    """Phi Phi^T equals exp(-(x - y)^2 / 2 s^2) entry by entry, to the truncation bound plus
    rounding, for z-scored rows with an outlier."""
    rng = np.random.default_rng(seed)
    row = rng.standard_t(3, size=n)
    row[0] = 8 * row.std()
    z = reference_zscore(torch.from_numpy(row[None]))
    t = float(z.abs().max()) ** 2 / sigma**2
    degree = degree_for(t)
    if degree is None:
        return
    features = gaussian_features(z, sigma, degree)[0]  # [feature, sample]
    exact = torch.exp(-((z[0, :, None] - z[0, None, :]) ** 2) / (2 * sigma**2))
    assert float((features.T @ features - exact).abs().max()) <= ENTRY_TOLERANCE + 1e-14


def _rows(seed: int, n: int, n_a: int, n_b: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n_a, n))
    b = rng.standard_normal((n_b, n))
    b[0] = a[0] ** 2 + 0.3 * rng.standard_normal(n)  # a dependent pair
    b[1] = np.exp(rng.standard_normal(n))  # heavy right tail
    return torch.from_numpy(a), torch.from_numpy(b)


@pytest.mark.parametrize("n", [400, 1000])
def test_expansion_equals_the_gram_path(n):
    a, b = _rows(n, n, 5, 7)
    za, zb = reference_zscore(a), reference_zscore(b)
    sigma = float(shared_bandwidth(za, zb))
    assert reference_degrees(za, zb, sigma) is not None  # the expansion is taken at these sizes
    expanded = zscored_products(za, zb, sigma)
    exact = triangle_products(za, zb, sigma)
    scale = float(exact.abs().max())
    np.testing.assert_allclose(expanded.numpy(), exact.numpy(), rtol=1e-7, atol=1e-10 * scale)
    assert float(expanded[0, 0]) > 10 * float(expanded[1:, 2:].abs().max())  # the planted pair
    # and, independently of both, the reference code's own formula on two pairs
    h = np.eye(n) - 1 / n

    def gram(z):
        return np.exp(-((z[:, None] - z[None, :]) ** 2) / (2 * sigma**2))

    for i, j in ((0, 0), (2, 3)):
        loop = np.trace(gram(za[i].numpy()) @ h @ (h @ gram(zb[j].numpy())))
        assert float(expanded[i, j]) == pytest.approx(loop, rel=1e-7, abs=1e-10 * scale)


def test_the_sides_can_be_swapped_and_blocked():
    a, b = _rows(3, 500, 9, 4)
    za, zb = reference_zscore(a), reference_zscore(b)
    sigma = float(shared_bandwidth(za, zb))
    degrees = reference_degrees(za, zb, sigma)
    whole = expanded_reference_scores(za, zb, sigma, degrees)
    swapped = expanded_reference_scores(zb, za, sigma, degrees[::-1]).T
    blocked = expanded_reference_scores(za, zb, sigma, degrees, block_bytes=1)  # one column a block
    np.testing.assert_allclose(swapped.numpy(), whole.numpy(), rtol=1e-12)
    np.testing.assert_allclose(blocked.numpy(), whole.numpy(), rtol=1e-12)


def test_a_small_bandwidth_falls_back_to_the_gram_path():
    """Where the kernel is far from its quadratic regime the expansion would need more features
    than the triangle has, and it is not taken."""
    a, b = _rows(5, 400, 3, 3)
    za, zb = reference_zscore(a), reference_zscore(b)
    assert reference_degrees(za, zb, 0.5) is None


@pytest.mark.parametrize("budget", [1 << 30, 1])  # features kept / rebuilt a block at a time
def test_a_weighted_resample_equals_the_resampled_rows(budget):
    """Bootstrap counts on the full-sample features equal the Gram path on the resampled rows
    (same z-scores and bandwidth), and the expansion is the path taken."""
    a, b = _rows(7, 600, 6, 40)
    rng = np.random.default_rng(8)
    idx = rng.integers(0, 600, 600)
    counts = torch.from_numpy(np.bincount(idx, minlength=600))
    scores = ReweightedScores(a, b, "reference", budget)
    assert scores.expanded is not None
    za, zb = reference_zscore(a), reference_zscore(b)
    sigma = overlap_bandwidth(za)
    exact = triangle_products(za[:, idx], zb[:, idx], sigma)
    got = scores.score(counts)
    np.testing.assert_allclose(got.numpy(), exact.numpy(), rtol=1e-7, atol=1e-10 * float(exact.abs().max()))
    full = overlap_scores(a, b, "reference")
    ones = torch.ones(600, dtype=torch.int64)
    np.testing.assert_allclose(scores.score(ones).numpy(), full.numpy(), rtol=1e-10)
