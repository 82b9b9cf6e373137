"""O(s,t) as a parameter: pooled probe set, intersection of directions, corpus intersection."""

from __future__ import annotations

import numpy as np
import pytest

from neuronoverlap.errors import InputError
from neuronoverlap.sets import (
    OVERLAP_DEFINITIONS,
    ProbeSamples,
    language_active_sets,
    overlap_set,
    probe_active_set,
    top_rate_mask,
)


def probe(rng, name, n=5, shape=(3, 40)):
    return ProbeSamples(name, rng.random((n, *shape)).astype(np.float32), rng.integers(3, 9, n))


def test_each_definition_against_brute_force_and_recorded():
    rng = np.random.default_rng(0)
    forward, backward = probe(rng, "zh-ja"), probe(rng, "ja-zh")
    active = language_active_sets({"zh": rng.random((3, 40)), "ja": rng.random((3, 40))}, top_rate=0.1)

    def pooled_score(p):
        return np.tensordot(p.tokens, p.values.astype(np.float64), axes=1) / p.tokens.sum()

    both = ProbeSamples(
        "both",
        np.concatenate([forward.values, backward.values]),
        np.concatenate([forward.tokens, backward.tokens]),
    )
    sets = {
        d: overlap_set(d, forward, backward, active["zh"], active["ja"], top_rate=0.1)
        for d in OVERLAP_DEFINITIONS
    }
    assert sets["pooled"] == probe_active_set(both, top_rate=0.1)
    expected = top_rate_mask(pooled_score(forward), 0.1)[0] & top_rate_mask(pooled_score(backward), 0.1)[0]
    assert np.array_equal(sets["directions"].mask, expected)
    assert sets["corpus"] == active["zh"] & active["ja"]
    for definition, neurons in sets.items():
        assert neurons.metadata["definition"] == definition
        assert neurons.metadata["kind"] == "overlap"
    assert sets["directions"].metadata["inputs"] == ["zh-ja", "ja-zh"]
    assert sets["directions"].metadata["selection"]["top_rate"] == 0.1


def test_overlap_definition_errors():
    rng = np.random.default_rng(1)
    forward = probe(rng, "zh-ja")
    with pytest.raises(InputError, match="unknown overlap definition"):
        overlap_set("union", forward)
    with pytest.raises(InputError, match="s->t and t->s"):
        overlap_set("directions", forward)
    with pytest.raises(InputError, match="active sets"):
        overlap_set("corpus", forward)
