"""Similarity matrices against brute force, symmetry, diagonals and the CKA helper."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuronoverlap.analyses import (
    activation_cka,
    activation_cosine,
    jaccard,
    linear_cka,
    overlap_counts,
)
from neuronoverlap.errors import InputError
from neuronoverlap.sets import NeuronSet


def random_languages(seed: int, n_languages: int = 4, shape=(3, 8), density=0.3):
    rng = np.random.default_rng(seed)
    codes = [f"l{i}" for i in range(n_languages)]
    probabilities = {c: rng.random(shape) for c in codes}
    sets = {c: NeuronSet(rng.random(shape) < density, label=c) for c in codes}
    return probabilities, sets


def brute_cosine(p, q, neurons):
    if not neurons:
        return 0.0
    x = [p[n] for n in neurons]
    y = [q[n] for n in neurons]
    norm = math.sqrt(sum(v * v for v in x) * sum(v * v for v in y))
    return sum(a * b for a, b in zip(x, y, strict=True)) / norm if norm > 0 else 0.0


def brute_jaccard(a, b):
    union = set(a) | set(b)
    return len(set(a) & set(b)) / len(union) if union else 0.0


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.05, 0.3, 0.8]))
def test_set_measures_and_cosine_against_brute_force(seed, density):
    probabilities, sets = random_languages(seed, density=density)
    codes = list(sets)
    counts = overlap_counts(sets).values
    jac = jaccard(sets).values
    cosines = {
        m: activation_cosine(probabilities, sets, neurons=m).values for m in ("intersection", "union", "all")
    }
    every = [(layer, j) for layer in range(3) for j in range(8)]
    for i, a in enumerate(codes):
        for k, b in enumerate(codes):
            shared = set(sets[a]) & set(sets[b])
            assert counts[i, k] == len(shared)
            if i == k:
                continue
            assert jac[i, k] == pytest.approx(brute_jaccard(sets[a], sets[b]))
            p, q = probabilities[a], probabilities[b]
            for measure, neurons in (
                ("intersection", shared),
                ("union", set(sets[a]) | set(sets[b])),
                ("all", every),
            ):
                assert cosines[measure][i, k] == pytest.approx(brute_cosine(p, q, sorted(neurons)), abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_matrices_are_symmetric_with_unit_diagonal(seed):
    probabilities, sets = random_languages(seed, n_languages=5, density=0.5)
    for matrix in (
        jaccard(sets),
        activation_cosine(probabilities, sets),
        activation_cka(probabilities),
        activation_cka(probabilities, "layers"),
    ):
        values = matrix.values
        np.testing.assert_allclose(values, values.T, atol=1e-12)
        assert matrix.languages == list(probabilities)
        nonempty = np.array([len(s) > 0 for s in sets.values()])
        expected = nonempty if matrix.measure in ("jaccard", "cosine") else np.ones(5, bool)
        np.testing.assert_array_equal(np.diag(values), expected.astype(float))
        assert (values >= -1e-12).all() and (values <= 1 + 1e-12).all()
    counts = overlap_counts(sets).values
    assert np.diag(counts).tolist() == [len(s) for s in sets.values()]


def test_empty_sets_give_zero_similarity():
    probabilities = {c: np.ones((2, 3)) / 2 for c in ("a", "b", "c")}
    sets = {"a": NeuronSet.empty((2, 3)), "b": NeuronSet.empty((2, 3)), "c": NeuronSet.full((2, 3))}
    assert jaccard(sets).values.tolist() == [[0, 0, 0], [0, 0, 0], [0, 0, 1]]
    assert activation_cosine(probabilities, sets).values.tolist() == [[0, 0, 0], [0, 0, 0], [0, 0, 1]]


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_per_layer_versions_match_layer_restricted_sets(seed):
    probabilities, sets = random_languages(seed, shape=(4, 10), density=0.4)
    codes = list(sets)
    per_layer = {
        "overlap": overlap_counts(sets, per_layer=True).values,
        "jaccard": jaccard(sets, per_layer=True).values,
        "cosine": activation_cosine(probabilities, sets, per_layer=True).values,
        "cka": activation_cka(probabilities, per_layer=True).values,
    }
    assert per_layer["overlap"].shape == (4, 4, 4)
    np.testing.assert_array_equal(per_layer["overlap"].sum(axis=0), overlap_counts(sets).values)
    for layer in range(4):
        only = np.zeros((4, 10), dtype=bool)
        only[layer] = True
        restricted = {c: s & NeuronSet(only) for c, s in sets.items()}
        i, k = 0, 1
        shared = sorted(set(restricted[codes[i]]) & set(restricted[codes[k]]))
        assert per_layer["jaccard"][layer, i, k] == pytest.approx(
            brute_jaccard(restricted[codes[i]], restricted[codes[k]])
        )
        assert per_layer["cosine"][layer, i, k] == pytest.approx(
            brute_cosine(probabilities[codes[i]], probabilities[codes[k]], shared)
        )
        assert per_layer["cka"][layer, i, k] == pytest.approx(
            linear_cka(probabilities[codes[i]][layer], probabilities[codes[k]][layer])
        )


def test_cka_helper_and_both_sample_choices():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(50, 3))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 3 * x + 1) == pytest.approx(1.0)  # scale and shift invariant
    rotation = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    assert linear_cka(x, x @ rotation) == pytest.approx(1.0)  # orthogonal invariant
    assert linear_cka(x, rng.normal(size=(50, 2))) < 0.3
    assert linear_cka(x, np.ones((50, 1))) == 0.0
    a, b = rng.random(40), rng.random(40)
    assert linear_cka(a, b) == pytest.approx(np.corrcoef(a, b)[0, 1] ** 2)
    probabilities = {c: rng.random((3, 8)) for c in ("x", "y", "z")}
    neurons = activation_cka(probabilities).values
    layers = activation_cka(probabilities, samples="layers").values
    assert neurons[0, 1] == pytest.approx(linear_cka(probabilities["x"].ravel(), probabilities["y"].ravel()))
    assert layers[1, 2] == pytest.approx(linear_cka(probabilities["y"], probabilities["z"]))


def test_similarity_input_errors():
    probabilities, sets = random_languages(0)
    with pytest.raises(InputError, match="needs the sets"):
        activation_cosine(probabilities)
    with pytest.raises(InputError, match="same languages"):
        activation_cosine(probabilities, dict(reversed(list(sets.items()))))
    with pytest.raises(InputError, match="unknown neuron choice"):
        activation_cosine(probabilities, sets, neurons="some")
    with pytest.raises(InputError, match="no per-layer"):
        activation_cka(probabilities, samples="layers", per_layer=True)
    with pytest.raises(InputError, match="one 2-D shape"):
        activation_cka({"a": np.ones((2, 3)), "b": np.ones((3, 2))})
    with pytest.raises(InputError, match="different model shapes"):
        jaccard({"a": NeuronSet.full((2, 3)), "b": NeuronSet.full((3, 2))})


def test_language_cka_matrices_agree_with_the_brute_force_formula():
    """activation_cka's closed forms and linear_cka (hsic.cka) against tr(KHLH) / sqrt(...)."""
    rng = np.random.default_rng(9)

    def brute(x, y):
        x, y = x.reshape(len(x), -1), y.reshape(len(y), -1)
        h = np.eye(len(x)) - 1 / len(x)
        k, m = h @ x @ x.T @ h, h @ y @ y.T @ h
        return np.trace(k @ m) / np.sqrt(np.trace(k @ k) * np.trace(m @ m))

    x, y = rng.normal(size=(30, 4)), rng.normal(size=(30, 2))
    assert linear_cka(x, y) == pytest.approx(brute(x, y), rel=1e-10)
    probabilities = {c: rng.random((3, 8)) for c in ("x", "y", "z")}
    neurons = activation_cka(probabilities).values
    layers = activation_cka(probabilities, samples="layers").values
    per_layer = activation_cka(probabilities, per_layer=True).values
    for i, a in enumerate(probabilities):
        for k, b in enumerate(probabilities):
            pa, pb = probabilities[a], probabilities[b]
            assert neurons[i, k] == pytest.approx(brute(pa.ravel(), pb.ravel()), rel=1e-10)
            assert layers[i, k] == pytest.approx(brute(pa, pb), rel=1e-10)
            assert per_layer[1, i, k] == pytest.approx(brute(pa[1], pb[1]), rel=1e-10)
