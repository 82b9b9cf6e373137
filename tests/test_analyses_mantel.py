"""Partial Mantel test: brute force, calibration under a confounded null, power; controls."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from neuronoverlap.analyses import mantel_test
from neuronoverlap.analyses.mantel import (
    partial_mantel_test,
    script_distances,
    subword_distances,
    token_type_counts,
)
from neuronoverlap.analyses.spectrum import permutation_orders
from neuronoverlap.errors import InputError


def distance(points):
    return squareform(pdist(points))


def confounded(rng, n=12, effect=0.0):
    """Control z from latent u; y (taxonomy) shares u; x depends on z (+ effect * y) only."""
    u = rng.normal(size=(n, 2))
    z = distance(u)
    y = distance(np.column_stack([u, rng.normal(size=(n, 2))]))
    x = z + 0.7 * distance(rng.normal(size=(n, 2))) + effect * y
    return x, y, z


def test_partial_mantel_statistic_matches_the_partial_correlation_formula():
    rng = np.random.default_rng(0)
    x, y, z = confounded(rng, effect=0.5)
    upper = np.triu_indices(12, k=1)
    r = np.corrcoef([x[upper], y[upper], z[upper]])
    expected = (r[0, 1] - r[0, 2] * r[1, 2]) / np.sqrt((1 - r[0, 2] ** 2) * (1 - r[1, 2] ** 2))
    result = partial_mantel_test(x, y, {"z": z}, n_permutations=99, seed=3)
    assert result.statistic == pytest.approx(expected, abs=1e-10)


def test_partial_mantel_pvalue_matches_a_brute_force_loop():
    rng = np.random.default_rng(1)
    x, y, z = confounded(rng, effect=0.3)
    w = distance(rng.normal(size=(12, 1)))
    result = partial_mantel_test(x, y, {"z": z, "w": w}, n_permutations=199, seed=5)
    upper = np.triu_indices(12, k=1)
    design = np.column_stack([np.ones(len(upper[0])), z[upper], w[upper]])

    def residual(v):
        return v - design @ np.linalg.lstsq(design, v, rcond=None)[0]

    rx, ry = residual(x[upper]), residual(y[upper])
    rx_matrix = squareform(rx)
    null = []
    for order in permutation_orders(12, 199, 5):
        permuted = residual(rx_matrix[np.ix_(order, order)][upper])
        null.append(np.corrcoef(permuted, ry)[0, 1])
    null = np.array(null)
    assert result.null_distribution == pytest.approx(null, abs=1e-9)
    assert result.pvalue == (1 + np.sum(null >= result.statistic - 1e-12)) / 200


@pytest.mark.slow
def test_partial_mantel_is_calibrated_when_x_depends_only_on_the_control():
    rng = np.random.default_rng(11)
    draws, alpha = 400, 0.05
    partial, plain = [], []
    for seed in range(draws):
        x, y, z = confounded(rng)
        partial.append(partial_mantel_test(x, y, {"z": z}, n_permutations=199, seed=seed).pvalue)
        plain.append(mantel_test(x, y, n_permutations=199, seed=seed).pvalue)
    rate = np.mean(np.array(partial) <= alpha)
    tolerance = 3 * np.sqrt(alpha * (1 - alpha) / draws)  # 0.033
    assert rate <= alpha + tolerance
    assert rate >= alpha - tolerance
    # The same null is strongly rejected by the plain Mantel test: the control matters.
    assert np.mean(np.array(plain) <= alpha) > 0.5


def test_partial_mantel_has_power_on_a_planted_effect():
    rng = np.random.default_rng(2)
    rejections = 0
    for seed in range(40):
        x, y, z = confounded(rng, effect=1.0)
        rejections += partial_mantel_test(x, y, {"z": z}, n_permutations=199, seed=seed).pvalue <= 0.05
    assert rejections >= 32


def test_partial_mantel_input_errors():
    rng = np.random.default_rng(4)
    x, y, z = confounded(rng)
    with pytest.raises(InputError, match="at least one control"):
        partial_mantel_test(x, y, {})
    with pytest.raises(InputError, match="same languages"):
        partial_mantel_test(x, y, {"z": z[:5, :5]})
    with pytest.raises(InputError, match="fully explained"):
        partial_mantel_test(z, y, {"z": z})
    with pytest.raises(InputError, match="unknown alternative"):
        partial_mantel_test(x, y, {"z": z}, alternative="up")


def test_script_distances_follow_the_registry():
    d = script_distances(["en", "fr", "ar", "he", "zh", "ja"])
    assert d[0, 1] == 0 and d[0, 2] == 1 and d[2, 3] == 1 and d[4, 5] == 1
    assert np.allclose(d, d.T) and np.all(np.diag(d) == 0)


def test_subword_distances_are_one_minus_weighted_jaccard():
    codes, counts = token_type_counts(
        {"a": np.array([1, 1, 2, 3, 0]), "b": np.array([1, 2, 2, 4, 0]), "c": np.array([5, 0])}, exclude=[0]
    )
    assert codes == ["a", "b", "c"]
    d = subword_distances(counts)
    # a: {1: 2, 2: 1, 3: 1}, b: {1: 1, 2: 2, 4: 1}: min sum 2, max sum 6
    assert d[0, 1] == pytest.approx(1 - 2 / 6)
    assert d[0, 2] == 1.0 and d[1, 2] == 1.0 and d[0, 0] == 0.0
