"""Overlap-vs-layer pairwise scores: brute force agreement, column subsets, candidate-free kernels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuronoverlap.hsic import max_mean_score, pairwise_cka
from neuronoverlap.hsic.columns import overlap_bandwidth, overlap_scores, set_scores
from neuronoverlap.hsic.reweighted import ReweightedScores


def _zscore(rows):
    return (rows - rows.mean(1, keepdims=True)) / (rows.std(1, ddof=1, keepdims=True) + 1e-6)


def _brute_reference(o_rows, layer_rows):
    """tr(K_i H L_j) with numpy, one Gaussian bandwidth: the median of O's distinct row distances."""
    zo, zl = _zscore(o_rows), _zscore(layer_rows)
    n = zo.shape[1]
    if len(zo) > 1:
        d = [np.linalg.norm(zo[a] - zo[b]) for a in range(len(zo)) for b in range(a + 1, len(zo))]
        sigma = np.sort(d)[(len(d) - 1) // 2] + 1e-6
    else:
        sigma = np.sqrt(2 * (n - 1)) + 1e-6
    h = np.eye(n) - 1 / n

    def gram(z):
        return np.exp(-((z[:, None] - z[None, :]) ** 2) / (2 * sigma**2))

    return np.array([[np.trace(gram(a) @ h @ gram(b)) for b in zl] for a in zo])


@pytest.mark.parametrize("n_o", [1, 2, 5])
def test_reference_kind_matches_brute_force(n_o):
    rng = np.random.default_rng(n_o)
    o_rows, layer_rows = rng.normal(size=(n_o, 15)), rng.normal(size=(9, 15))
    layer_rows[3] = o_rows[0] ** 2  # a dependent neuron
    got = overlap_scores(torch.from_numpy(o_rows), torch.from_numpy(layer_rows), "reference")
    np.testing.assert_allclose(got.numpy(), _brute_reference(o_rows, layer_rows), rtol=1e-10)


def test_cka_kind_is_pairwise_cka():
    rng = np.random.default_rng(1)
    o_rows, layer_rows = rng.normal(size=(4, 20)), rng.normal(size=(7, 20))
    got = overlap_scores(torch.from_numpy(o_rows), torch.from_numpy(layer_rows), "cka")
    np.testing.assert_allclose(got.numpy(), pairwise_cka(o_rows, layer_rows), rtol=1e-10)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31), st.integers(1, 6), st.integers(1, 8))
def test_a_set_is_a_column_subset(seed, n_o, size):
    """The score of a set read off the overlap-vs-layer matrix equals scoring the set alone:
    the kernels do not depend on which neurons form the candidate set."""
    rng = np.random.default_rng(seed)
    rows = torch.from_numpy(rng.normal(size=(20, 12)))
    overlap = torch.arange(n_o)
    matrix = overlap_scores(rows[overlap], rows, "reference")
    columns = torch.from_numpy(rng.choice(np.arange(n_o, 20), size=size, replace=False))
    alone = overlap_scores(rows[overlap], rows[columns], "reference")
    assert float(set_scores(matrix, columns[None])[0]) == pytest.approx(max_mean_score(alone), rel=1e-12)


def test_bandwidth_comes_from_the_overlap_only():
    rng = np.random.default_rng(2)
    zo = torch.from_numpy(_zscore(rng.normal(size=(3, 10))))
    distances = sorted(float(torch.linalg.norm(zo[a] - zo[b])) for a, b in ((0, 1), (0, 2), (1, 2)))
    assert overlap_bandwidth(zo) == pytest.approx(distances[1] + 1e-6)
    assert overlap_bandwidth(zo[:1]) == pytest.approx(np.sqrt(18) + 1e-6)


def _fixed_kernel_brute(o_rows, layer_rows, idx, kind):
    """Scores of the resample idx with the full sample's z-scores and bandwidths, in numpy."""
    if kind == "reference":
        o_rows, layer_rows = _zscore(o_rows), _zscore(layer_rows)
        sigma_o = sigma_l = [overlap_bandwidth(torch.from_numpy(o_rows))] * 2
        sigma_o, sigma_l = [sigma_o[0]] * len(o_rows), [sigma_l[0]] * len(layer_rows)
    else:

        def median(row):
            return np.median([abs(a - b) for i, a in enumerate(row) for b in row[i + 1 :]])

        sigma_o, sigma_l = [median(r) for r in o_rows], [median(r) for r in layer_rows]
    n = len(idx)
    h = np.eye(n) - 1 / n

    def gram(row, sigma):
        full = np.exp(-((row[:, None] - row[None, :]) ** 2) / (2 * sigma**2))
        return full[np.ix_(idx, idx)]

    grams_o = [gram(r, s) for r, s in zip(o_rows, sigma_o, strict=True)]
    grams_l = [gram(r, s) for r, s in zip(layer_rows, sigma_l, strict=True)]
    if kind == "reference":
        return np.array([[np.trace(k @ h @ g) for g in grams_l] for k in grams_o])

    def hsic(k, g):
        return np.sum((h @ k @ h) * (h @ g @ h))

    return np.array([[hsic(k, g) / np.sqrt(hsic(k, k) * hsic(g, g)) for g in grams_l] for k in grams_o])


@pytest.mark.parametrize("kind", ["reference", "cka"])
@pytest.mark.parametrize("budget", [1 << 30, 3 * 16 * 16 * 8 * 3])  # cached / blocks of 3
def test_a_resample_is_a_reweighting_of_the_full_sample_grams(kind, budget):
    rng = np.random.default_rng(4)
    o_rows, layer_rows = rng.normal(size=(3, 16)), rng.normal(size=(8, 16))
    layer_rows[2] = np.sin(2 * o_rows[1]) + 0.1 * rng.normal(size=16)
    idx = rng.integers(0, 16, 16)
    scores = ReweightedScores(torch.from_numpy(o_rows), torch.from_numpy(layer_rows), kind, budget)
    counts = torch.from_numpy(np.bincount(idx, minlength=16))
    np.testing.assert_allclose(
        scores.score(counts).numpy(), _fixed_kernel_brute(o_rows, layer_rows, idx, kind), rtol=1e-9
    )
    full = overlap_scores(torch.from_numpy(o_rows), torch.from_numpy(layer_rows), kind)
    np.testing.assert_allclose(
        scores.score(torch.ones(16, dtype=torch.int64)).numpy(),
        full.numpy(),
        rtol=1e-9,
        atol=1e-10 * float(full.abs().max()),
    )
