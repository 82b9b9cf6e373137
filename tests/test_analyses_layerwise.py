"""Layer thirds and the per-layer overlap table."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from neuronoverlap.analyses import layer_thirds, layerwise_overlap, pairwise_overlaps
from neuronoverlap.analyses.layerwise import third_of_each_layer
from neuronoverlap.errors import InputError
from neuronoverlap.sets import NeuronSet


def test_thirds_of_18_and_32_layers():
    assert layer_thirds(18) == {"early": range(0, 6), "middle": range(6, 12), "final": range(12, 18)}
    assert layer_thirds(32) == {"early": range(0, 11), "middle": range(11, 21), "final": range(21, 32)}
    assert third_of_each_layer(3) == ["early", "middle", "final"]
    with pytest.raises(InputError):
        layer_thirds(0)


@given(st.integers(1, 200))
def test_thirds_partition_layers_symmetrically(n_layers):
    thirds = layer_thirds(n_layers)
    layers = [layer for name in ("early", "middle", "final") for layer in thirds[name]]
    assert layers == list(range(n_layers))
    sizes = [len(r) for r in thirds.values()]
    assert sizes[0] == sizes[2] == round(n_layers / 3)
    assert max(sizes) - min(sizes) <= 1


def test_layerwise_overlap_table():
    shape = (6, 5)
    a = NeuronSet.from_indices([(0, 0), (2, 1), (4, 4), (5, 0), (5, 1)], shape, label="a")
    b = NeuronSet.from_indices([(0, 0), (4, 4), (5, 1), (3, 3)], shape, label="b")
    c = NeuronSet.empty(shape, label="c")
    overlaps = pairwise_overlaps({"a": a, "b": b, "c": c})
    assert list(overlaps) == ["a-b", "a-c", "b-c"]
    table = layerwise_overlap(overlaps)
    assert table.counts.tolist()[0] == [1, 0, 0, 0, 1, 1]
    np.testing.assert_allclose(table.shares[0], [0.2, 0, 0, 0, 0.2, 0.2])
    assert table.third_counts().tolist() == [[1, 0, 2], [0, 0, 0], [0, 0, 0]]
    np.testing.assert_allclose(table.third_shares()[0], [1 / 3, 0, 2 / 3])
    assert table.third_shares()[1].tolist() == [0, 0, 0]
    rows = table.rows()
    assert len(rows) == 3 * 6
    assert rows[5] == {"pair": "a-b", "layer": 5, "third": "final", "count": 1, "share_of_d_mlp": 0.2}
    with pytest.raises(InputError):
        pairwise_overlaps({"a": a})
