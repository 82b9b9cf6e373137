"""Edge cases of the HSIC API: every bad seed, bandwidth input or sample count is a one-line
`InputError` that names the problem (no plain ValueError from numpy, no misleading message)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuronoverlap.errors import InputError
from neuronoverlap.hsic import (
    hsic_test,
    hsic_test_batch,
    max_mean_test,
    median_bandwidth,
    reference_bandwidth,
    reference_bridge_score,
    set_hsic_test,
)

RNG = np.random.default_rng(0)
X = RNG.normal(size=(12, 2))
Y = X + RNG.normal(size=(12, 2))
A, B = RNG.normal(size=(5, 12)), RNG.normal(size=(4, 12))


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and type(error.value) is InputError
    return message


@pytest.mark.parametrize("seed", [-1, -(2**40), 1.5, "0", True, [1, 2]])
@pytest.mark.parametrize(
    "test",
    [
        lambda seed: hsic_test(X, Y, seed=seed, n_permutations=9),
        lambda seed: hsic_test_batch(X[None], Y[None], seed=seed, n_permutations=9),
        lambda seed: max_mean_test(A, B, seed=seed, n_permutations=9),
        lambda seed: set_hsic_test(A, B, seed=seed, n_permutations=9),
    ],
)
def test_a_bad_seed_is_an_input_error(test, seed):
    with pytest.raises(InputError) as error:
        test(seed)
    assert "seed must be None or an integer >= 0" in one_line(error) and repr(seed) in str(error.value)


@pytest.mark.parametrize("seed", [0, 7, 2**63, np.int64(3), None, np.random.SeedSequence(5)])
def test_good_seeds_are_accepted_and_reproducible(seed):
    first = hsic_test(X, Y, seed=seed, n_permutations=19).pvalue
    if seed is not None and not isinstance(seed, np.random.SeedSequence):
        assert hsic_test(X, Y, seed=seed, n_permutations=19).pvalue == first
    assert 0 < first <= 1


@pytest.mark.parametrize(
    "squared, message",
    [
        (torch.tensor([[0.0, float("nan")], [float("nan"), 0.0]]), "NaN or infinite"),
        (np.array([[0.0, np.inf], [np.inf, 0.0]]), "NaN or infinite"),
        (np.array([[0.0, -1.0], [-1.0, 0.0]]), "must be >= 0"),
        (np.zeros((3, 2)), "square matrices"),
        (np.zeros(3), "square matrices"),
        (np.array([["a", "b"], ["c", "d"]]), "not a numeric array"),
    ],
)
def test_median_bandwidth_checks_its_input(squared, message):
    with pytest.raises(InputError) as error:
        median_bandwidth(squared)
    assert message in one_line(error)


def test_median_bandwidth_on_numpy_equals_the_numpy_median():
    points = RNG.normal(size=(9, 3))
    squared = ((points[:, None] - points[None]) ** 2).sum(-1)
    upper = np.sqrt(squared[np.triu_indices(9, 1)])
    assert float(median_bandwidth(squared)) == pytest.approx(np.median(upper), rel=1e-12)


def test_a_nan_column_is_named_not_a_plain_value_error():
    x = X.copy()
    x[:, 1] = np.nan
    with pytest.raises(InputError) as error:
        hsic_test(x, Y)
    assert "x contains NaN" in one_line(error)


@pytest.mark.parametrize("function", [reference_bridge_score, reference_bandwidth])
def test_the_reference_score_on_one_sample_says_so(function):
    with pytest.raises(InputError) as error:
        function(A[:, :1], B[:, :1])
    message = one_line(error)
    assert "needs at least 2 samples, got 1" in message and "bandwidth" not in message


def test_the_reference_score_on_two_samples_works():
    assert np.isfinite(reference_bridge_score(A[:, :2], B[:, :2]))
