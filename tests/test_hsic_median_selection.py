"""Median-heuristic selection: numpy (CPU) and torch (any device) back ends, in-place mode."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from neuronoverlap.hsic import hsic, pairwise_cka, pairwise_hsic
from neuronoverlap.hsic.kernels import (
    _middle_values_numpy,
    _middle_values_torch,
    pair_median_bandwidth,
)


def brute_middles(row: np.ndarray, skip: int) -> tuple[float, float]:
    ordered = np.sort(row)
    kept = len(row) - skip
    lower = min(skip + max(kept - 1, 0) // 2, len(row) - 1)
    upper = min(skip + kept // 2, len(row) - 1)
    return ordered[lower], ordered[upper]


value_rows = hnp.arrays(
    np.float64,
    st.tuples(st.integers(1, 6), st.integers(1, 40)),
    elements=st.sampled_from([0.0, 0.0, 0.25, 1.0, 2.0, 9.5]) | st.floats(0, 1e3),
)


@settings(max_examples=80, deadline=None)
@given(values=value_rows, data=st.data())
def test_both_back_ends_select_the_brute_force_middle_values(values, data):
    skip = np.array([data.draw(st.integers(0, values.shape[1] - 1)) for _ in values])
    tensor, skip_tensor = torch.from_numpy(values), torch.from_numpy(skip)
    for backend in (_middle_values_numpy, _middle_values_torch):
        low, high, largest = backend(tensor, skip_tensor)
        for row, skipped, got_low, got_high, got_largest in zip(
            values, skip, low, high, largest, strict=True
        ):
            assert (float(got_low), float(got_high)) == brute_middles(row, skipped)
            assert float(got_largest) == row.max()


@settings(max_examples=60, deadline=None)
@given(values=value_rows, rule=st.sampled_from(["median", "gretton"]))
def test_in_place_selection_gives_the_same_bandwidth_and_only_reorders(values, rule):
    tensor = torch.from_numpy(values.copy())
    expected = pair_median_bandwidth(torch.from_numpy(values), rule)
    assert torch.equal(pair_median_bandwidth(tensor, rule, overwrite=True), expected)
    np.testing.assert_array_equal(np.sort(tensor.numpy(), axis=1), np.sort(values, axis=1))
    assert torch.equal(pair_median_bandwidth(torch.from_numpy(values), rule), expected)


@pytest.mark.parametrize("rule", ["median", "gretton"])
def test_pairwise_equals_the_per_pair_loop_on_tied_activations(rule):
    # Quantised and mostly-zero rows: the median is 0 for some (positive distances are used)
    # and Gretton's rule drops zero distances, so rows take different selection paths.
    rng = np.random.default_rng(8)
    A = np.vstack(
        [rng.integers(0, 3, (3, 30)), np.where(rng.random((3, 30)) < 0.7, 0, rng.standard_normal((3, 30)))]
    )
    B = np.vstack([rng.standard_normal((2, 30)), rng.integers(0, 2, (2, 30)), np.ones((1, 30))])
    expected = np.array([[hsic(a, b, bandwidth=rule) for b in B] for a in A])
    np.testing.assert_allclose(pairwise_hsic(A, B, bandwidth=rule), expected, rtol=1e-10, atol=1e-15)
    assert np.isfinite(pairwise_cka(A, B, bandwidth=rule)).all()
