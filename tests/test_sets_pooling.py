"""The one weighted mean over samples, and the one JSON converter."""

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuronoverlap.errors import InputError
from neuronoverlap.jsonable import json_default
from neuronoverlap.sets import ProbeSamples, WeightedMean, pooled_mean, pooled_scores


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 30), split=st.integers(1, 30), seed=st.integers(0, 2**16))
def test_token_weighted_mean_is_total_fires_over_total_tokens_in_any_chunking(n, split, seed):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, 20, n)
    tokens[0] += 1
    fires = rng.integers(0, 1 + tokens[:, None, None], (n, 2, 3))
    probabilities = fires / np.maximum(tokens, 1)[:, None, None]
    expected = fires.sum(0) / tokens.sum()
    np.testing.assert_allclose(pooled_mean(probabilities, tokens), expected, rtol=1e-12)
    pool = WeightedMean("tokens")
    for start in range(0, n, split):
        pool.add(probabilities[start : start + split], tokens[start : start + split])
    np.testing.assert_allclose(pool.result(), expected, rtol=1e-12)
    np.testing.assert_allclose(
        pooled_mean(probabilities, tokens, "samples"), probabilities.mean(0), rtol=1e-12
    )
    probe = ProbeSamples("x-y", probabilities, tokens)
    np.testing.assert_allclose(pooled_scores(probe), expected, rtol=1e-12)


def test_no_tokens_pool_to_zero_and_bad_weighting_is_an_input_error():
    assert pooled_mean(np.ones((3, 2)), np.zeros(3)).tolist() == [0.0, 0.0]
    with pytest.raises(InputError, match="weighting"):
        WeightedMean("words")


def test_json_default_writes_numpy_paths_sets_and_bytes():
    value = {
        "a": np.float32(0.5),
        "b": np.arange(3),
        "c": Path("x/y"),
        "d": {3, 1},
        "e": b"z",
        "f": np.int64(2),
    }
    assert json.loads(json.dumps(value, default=json_default)) == {
        "a": 0.5,
        "b": [0, 1, 2],
        "c": "x/y",
        "d": [1, 3],
        "e": "z",
        "f": 2,
    }
    with pytest.raises(TypeError, match="object"):
        json.dumps({"g": object()}, default=json_default)
