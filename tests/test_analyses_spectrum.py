"""Mantel test calibration and power, clustering against the registry's taxonomy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from neuronoverlap.analyses import (
    LanguageMatrix,
    MantelResult,
    cluster_languages,
    cophenetic_correlation,
    language_spectrum,
    mantel_test,
    similarity_to_distance,
    taxonomy_distances,
)
from neuronoverlap.errors import InputError


def random_distance(rng, n):
    return squareform(rng.random(n * (n - 1) // 2))


def test_mantel_pvalues_are_calibrated_under_the_null():
    rng = np.random.default_rng(2024)
    repeats, permutations = 400, 99
    pvalues = np.array(
        [
            mantel_test(
                random_distance(rng, 8), random_distance(rng, 8), permutations, seed=int(rng.integers(2**31))
            ).pvalue
            for _ in range(repeats)
        ]
    )
    assert set(np.round(pvalues * (permutations + 1)).astype(int)) <= set(range(1, 101))
    rejection = (pvalues <= 0.05).mean()
    assert abs(rejection - 0.05) < 0.035  # 3 binomial sd at n = 400
    assert abs((pvalues <= 0.5).mean() - 0.5) < 0.08
    assert abs(pvalues.mean() - 0.5) < 0.05


def test_mantel_detects_an_obvious_relation():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(12, 3))
    x = squareform(pdist(points))
    y = squareform(pdist(points + rng.normal(scale=0.1, size=points.shape)))
    result = mantel_test(x, y, n_permutations=499, seed=1)
    assert result.statistic > 0.9
    assert result.pvalue == pytest.approx(1 / 500)
    assert len(result.null_distribution) == 499
    spearman = mantel_test(x, y**3, n_permutations=499, seed=1, method="spearman")
    assert spearman.statistic == pytest.approx(
        mantel_test(x, y, n_permutations=10, seed=1, method="spearman").statistic
    )
    less = mantel_test(x, -y + 10, n_permutations=199, seed=1, alternative="less")
    assert less.pvalue == pytest.approx(1 / 200)


def test_mantel_is_seeded_and_statistic_is_pearson():
    rng = np.random.default_rng(5)
    x, y = random_distance(rng, 7), random_distance(rng, 7)
    first, again = mantel_test(x, y, 199, seed=3), mantel_test(x, y, 199, seed=3)
    assert first.pvalue == again.pvalue
    np.testing.assert_array_equal(first.null_distribution, again.null_distribution)
    upper = np.triu_indices(7, 1)
    assert first.statistic == pytest.approx(np.corrcoef(x[upper], y[upper])[0, 1])
    assert first.to_dict()["seed"] == 3


def test_mantel_null_draws_are_relabellings_of_the_languages():
    rng = np.random.default_rng(6)
    x, y = random_distance(rng, 4), random_distance(rng, 4)
    upper = np.triu_indices(4, 1)
    possible = {
        round(np.corrcoef(x[upper], y[np.ix_(order, order)][upper])[0, 1], 9)
        for order in map(list, itertools.permutations(range(4)))
    }
    null = mantel_test(x, y, n_permutations=300, seed=0).null_distribution
    assert {round(float(v), 9) for v in null} <= possible
    assert len({round(float(v), 9) for v in null}) > 5


def test_mantel_input_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(InputError, match="symmetric"):
        mantel_test(rng.random((4, 4)), random_distance(rng, 4))
    with pytest.raises(InputError, match="different sizes"):
        mantel_test(random_distance(rng, 4), random_distance(rng, 5))
    with pytest.raises(InputError, match="constant"):
        mantel_test(np.ones((4, 4)), random_distance(rng, 4))
    with pytest.raises(InputError, match="at least 3"):
        mantel_test(random_distance(rng, 2), random_distance(rng, 2))


def test_taxonomy_distances_follow_the_registry():
    codes = ["en", "de", "fr", "ar", "he", "id"]
    matrix = taxonomy_distances(codes)
    np.testing.assert_array_equal(matrix, matrix.T)
    assert np.diag(matrix).tolist() == [0] * 6
    assert matrix[0, 1] < matrix[0, 2] < matrix[0, 3]
    assert matrix[3, 4] < matrix[3, 2]
    with pytest.raises(InputError, match="unknown language"):
        taxonomy_distances(["en", "xx"])


def test_spectrum_recovers_a_taxonomy_shaped_similarity():
    codes = ["en", "de", "fr", "es", "it", "ar", "he", "fi", "hu"]
    taxonomy = taxonomy_distances(codes)
    similarity = LanguageMatrix(codes, 1 - taxonomy / 10, "cosine")
    result = language_spectrum(similarity, n_permutations=299, seed=0)
    assert result.mantel.statistic == pytest.approx(1.0)
    assert result.mantel.pvalue < 0.01
    assert result.cophenetic_vs_taxonomy > 0.9
    assert result.parameters["linkage"] == "average"
    assert result.neuron_linkage.shape == (len(codes) - 1, 4)


def test_cophenetic_correlation_of_an_ultrametric_is_one():
    ultrametric = np.array([[0, 1, 4, 4], [1, 0, 4, 4], [4, 4, 0, 2], [4, 4, 2, 0]], float)
    linkage = cluster_languages(ultrametric, "average")
    assert cophenetic_correlation(linkage, ultrametric) == pytest.approx(1.0)
    with pytest.raises(InputError, match="unknown linkage"):
        cluster_languages(ultrametric, "ward2")


def test_similarity_to_distance():
    similarity = np.array([[1, 0.8, 0.2], [0.8, 1, 0.4], [0.2, 0.4, 1.0]])
    distance = similarity_to_distance(similarity)
    np.testing.assert_allclose(distance, [[0, 0.2, 0.8], [0.2, 0, 0.6], [0.8, 0.6, 0]])
    with pytest.raises(InputError):
        language_spectrum(LanguageMatrix(["a", "b", "c"], np.ones((2, 3, 3)), "cosine"))


def test_mantel_result_round_trips_and_reads_the_older_key():
    rng = np.random.default_rng(2)
    result = mantel_test(random_distance(rng, 6), random_distance(rng, 6), n_permutations=49, seed=4)
    document = result.to_dict()
    assert document["n_permutations"] == result.n_permutations == 49 and "permutations" not in document
    again = MantelResult.from_dict(document)
    assert (again.statistic, again.pvalue, again.n_permutations) == (result.statistic, result.pvalue, 49)
    older = {**{k: v for k, v in document.items() if k != "n_permutations"}, "permutations": 49}
    assert MantelResult.from_dict(older).n_permutations == 49
