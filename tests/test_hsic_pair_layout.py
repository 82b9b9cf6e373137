"""The circulant layout of a neuron's sample pairs, against brute-force symmetric matrices."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuronoverlap.hsic.pair_layout import (
    add_pair_row_sums,
    fill_pairs,
    layout_pairs,
    pair_positions,
    subtract_pair_sums,
)

sample_counts = st.integers(1, 40)


@settings(max_examples=40, deadline=None)
@given(n=sample_counts)
def test_every_unordered_pair_once_and_positions_invert_the_layout(n):
    first, second = layout_pairs(n, torch.device("cpu"))
    assert first.shape[0] == n * (n - 1) // 2
    unordered = {(min(a, b), max(a, b)) for a, b in zip(first.tolist(), second.tolist(), strict=True)}
    assert unordered == {(a, b) for a in range(n) for b in range(a + 1, n)}
    expected = torch.arange(first.shape[0])
    assert torch.equal(pair_positions(first, second, n), expected)
    assert torch.equal(pair_positions(second, first, n), expected)


@settings(max_examples=40, deadline=None)
@given(n=sample_counts, seed=st.integers(0, 2**16))
def test_fill_row_sums_and_centring_match_the_full_matrix(n, seed):
    rng = np.random.default_rng(seed)
    rows = torch.from_numpy(rng.standard_normal((3, n)))
    first, second = layout_pairs(n, rows.device)
    pairs = torch.full((3, first.shape[0]), float("nan"), dtype=rows.dtype)

    def squared_difference(right, left, out):
        torch.sub(right, left, out=out).square_()

    fill_pairs(rows, pairs, squared_difference)
    full = (rows[:, :, None] - rows[:, None, :]).square()
    assert torch.equal(pairs, full[:, first, second])

    sums = torch.zeros(3, n, dtype=rows.dtype)
    add_pair_row_sums(pairs, sums)
    np.testing.assert_allclose(sums.numpy(), full.sum(dim=2).numpy(), rtol=1e-12, atol=1e-12)

    shift = torch.from_numpy(rng.standard_normal((3, n)))
    subtract_pair_sums(pairs, shift)
    shifted = full - shift[:, :, None] - shift[:, None, :]
    np.testing.assert_allclose(pairs.numpy(), shifted[:, first, second].numpy(), rtol=1e-12, atol=1e-12)
