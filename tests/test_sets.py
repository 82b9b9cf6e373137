"""NeuronSet algebra, round trips, selection rules against brute force, and builders."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from neuronoverlap.errors import InputError
from neuronoverlap.sets import (
    NeuronSet,
    ProbeSamples,
    bridge_specific_from_corpus,
    bridge_specific_from_probes,
    language_active_sets,
    language_specific,
    lape_masks,
    overlap_from_corpus,
    overlap_from_probes,
    pooled_scores,
    probe_active_set,
    select_neurons,
    threshold_mask,
    top_count,
    top_rate_mask,
)
from neuronoverlap.store.neuron_sets import read_neuron_set, write_neuron_set

shapes = st.tuples(st.integers(1, 4), st.integers(1, 9))


@st.composite
def set_triples(draw):
    shape = draw(shapes)
    masks = [draw(hnp.arrays(bool, shape)) for _ in range(3)]
    return [NeuronSet(m) for m in masks]


@st.composite
def scored(draw, low=0, high=5):
    """Small integer-valued scores, so that ties are common."""
    shape = draw(shapes)
    return draw(hnp.arrays(np.float64, shape, elements=st.integers(low, high).map(float)))


# ---- algebra --------------------------------------------------------------------------------
@given(set_triples())
def test_set_algebra_laws(triple):
    a, b, c = triple
    assert ~(a | b) == ~a & ~b
    assert ~(a & b) == ~a | ~b
    assert a & (b | c) == (a & b) | (a & c)
    assert a | (b & c) == (a | b) & (a | c)
    assert a | a == a and a & a == a
    assert a - b == a & ~b
    assert a ^ b == (a - b) | (b - a)
    assert ~~a == a
    assert len(a) + len(b) == len(a | b) + len(a & b)
    assert len(a) + len(~a) == a.n_layers * a.d_mlp


@given(set_triples())
def test_subset_relations(triple):
    a, b, _ = triple
    assert a & b <= a <= a | b
    assert a | b >= a
    assert (a < a | b) == (len(b - a) > 0)
    assert (a | b > a) == (len(b - a) > 0)
    assert not a < a
    assert a.issubset(a | b) and (a | b).issuperset(a)
    assert (a - b).isdisjoint(b)
    assert a.issubset(b) == all(n in b for n in a)


@given(set_triples())
def test_equality_and_hash_ignore_label(triple):
    a, b, _ = triple
    relabelled = a.with_label("other", note=1)
    assert relabelled == a and hash(relabelled) == hash(a)
    assert (a == b) == (a.to_list() == b.to_list())
    assert len({a, relabelled, NeuronSet(a.mask.copy())}) == 1


def test_sets_of_different_shapes_do_not_mix():
    a, b = NeuronSet.full((2, 3)), NeuronSet.full((3, 2))
    for operation in (
        lambda: a | b,
        lambda: a & b,
        lambda: a - b,
        lambda: a ^ b,
        lambda: a <= b,
        lambda: a > b,
        lambda: a.isdisjoint(b),
    ):
        with pytest.raises(InputError, match="different model shapes"):
            operation()
    assert a != b
    with pytest.raises(InputError, match="different model shapes"):
        language_specific({"x": a, "y": b})


def test_mask_is_read_only_and_copied():
    mask = np.zeros((2, 3), dtype=bool)
    neurons = NeuronSet.from_mask(mask)
    mask[0, 0] = True
    assert len(neurons) == 0
    with pytest.raises(ValueError):
        neurons.mask[0, 0] = True


def test_out_of_range_and_malformed_inputs():
    with pytest.raises(InputError, match=r"\(2, 0\) is outside"):
        NeuronSet.from_indices([(0, 1), (2, 0)], (2, 3))
    with pytest.raises(InputError, match="outside"):
        NeuronSet.from_indices([(0, -1)], (2, 3))
    with pytest.raises(InputError):
        NeuronSet.from_names(["blocks.0.mlp.hook_post[1]"], (2, 3))
    with pytest.raises(InputError):
        NeuronSet.from_names(["blocks.0.attn.hook_pre[1]"], (2, 3))
    with pytest.raises(InputError):
        NeuronSet(np.zeros(3, dtype=bool))
    with pytest.raises(InputError):
        NeuronSet.full((0, 3))
    with pytest.raises(InputError):
        NeuronSet(np.full((2, 2), 2))
    with pytest.raises(InputError):
        NeuronSet.full((2, 3)).layer(2)


def test_layer_access_and_counts():
    neurons = NeuronSet.from_indices([(0, 4), (0, 1), (2, 3)], (3, 5), label="x")
    assert neurons.layer(0).tolist() == [1, 4]
    assert neurons.layer(1).tolist() == []
    assert neurons.per_layer_counts().tolist() == [2, 0, 1]
    assert list(neurons) == [(0, 1), (0, 4), (2, 3)]
    assert (2, 3) in neurons and (1, 3) not in neurons and (9, 9) not in neurons
    assert neurons.to_names() == [
        "blocks.0.mlp.hook_pre[1]",
        "blocks.0.mlp.hook_pre[4]",
        "blocks.2.mlp.hook_pre[3]",
    ]
    assert "'x'" in repr(neurons) and "3 of 3x5" in repr(neurons)


# ---- round trips ----------------------------------------------------------------------------
@given(st.data())
def test_round_trips_through_mask_list_and_names(data):
    neurons = NeuronSet(data.draw(hnp.arrays(bool, data.draw(shapes))))
    shape = neurons.shape
    assert NeuronSet.from_mask(neurons.mask) == neurons
    assert NeuronSet.from_indices(neurons.to_list(), shape) == neurons
    assert NeuronSet.from_indices(neurons.to_indices(), shape) == neurons
    assert NeuronSet.from_names(neurons.to_names(), shape) == neurons
    hook = "hook_post"
    assert NeuronSet.from_names(neurons.to_names(hook), shape, hook=hook) == neurons


@settings(max_examples=30, deadline=None)
@given(st.data(), st.sampled_from(["auto", "indices", "packed"]))
def test_h5_round_trip(data, layout):
    neurons = NeuronSet(
        data.draw(hnp.arrays(bool, data.draw(shapes))),
        label="zh-ja",
        metadata={
            "kind": "overlap",
            "top_rate": np.float64(0.01),
            "inputs": ["zh-ja", "ja-zh"],
            "selection": {"rule": "top_rate"},
        },
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sets.h5"
        with h5py.File(path, "w") as handle:
            group = handle.create_group("sets")
            write_neuron_set(neurons, group, "overlap", attrs={"pair": "zh-ja"}, layout=layout)
        with h5py.File(path, "r") as handle:
            back = read_neuron_set(handle["sets"], "overlap")
            again = read_neuron_set(handle["sets/overlap"])
            dataset = handle["sets/overlap"]
            assert dataset.attrs["pair"] == "zh-ja"
            assert list(dataset.attrs["model_shape"]) == list(neurons.shape)
            assert json.loads(dataset.attrs["metadata"])["inputs"] == ["zh-ja", "ja-zh"]
            plain = dataset[()]
            if dataset.attrs["layout"] == "packed":
                plain_mask = np.unpackbits(plain, axis=1, count=neurons.d_mlp).astype(bool)
            else:
                plain_mask = np.zeros(neurons.shape, dtype=bool)
                plain_mask[plain[:, 0], plain[:, 1]] = True
    assert back == neurons == again and back.label == "zh-ja"
    assert back.metadata["top_rate"] == 0.01 and back.metadata["selection"] == {"rule": "top_rate"}
    assert np.array_equal(plain_mask, neurons.mask)


def test_h5_errors(tmp_path):
    neurons = NeuronSet.full((2, 3))
    with h5py.File(tmp_path / "f.h5", "w") as handle:
        write_neuron_set(neurons, handle, "a")
        handle.create_dataset("other", data=np.zeros(3))
        with pytest.raises(InputError, match="already exists"):
            write_neuron_set(neurons, handle, "a")
        with pytest.raises(InputError, match="reserved"):
            write_neuron_set(neurons, handle, "b", attrs={"size": 3})
        with pytest.raises(InputError, match="unknown neuron-set layout"):
            write_neuron_set(neurons, handle, "c", layout="dense")
        with pytest.raises(InputError, match="not a neuron set"):
            read_neuron_set(handle["other"])
        with pytest.raises(InputError, match="needs its name"):
            read_neuron_set(handle)
        with pytest.raises(InputError, match="no neuron set"):
            read_neuron_set(handle, "missing")


# ---- selection rules against brute force ----------------------------------------------------
@given(st.integers(1, 5000), st.floats(0.0001, 1.0))
def test_top_count_rules(n, rate):
    assert top_count(n, rate) == min(max(math.ceil(round(rate * n, 9)), 1), n)
    # the reference: x >= kthvalue(k = round(n * (1 - rate))) on distinct values
    values = np.arange(n, dtype=np.float64)
    k = min(max(round(n * (1 - rate)), 1), n)
    assert top_count(n, rate, "reference") == int((values >= np.sort(values)[k - 1]).sum())
    assert top_count(100, 0.07) == 7 and top_count(458752, 0.01) == 4588
    assert top_count(458752, 0.01, "reference") == 4589


@given(scored(), st.floats(0.01, 1.0), st.sampled_from(["ceil", "reference"]))
def test_top_rate_against_brute_force(scores, rate, count_rule):
    k = top_count(scores.size, rate, count_rule)
    flat = scores.ravel().tolist()
    ranked = sorted(range(len(flat)), key=lambda i: (-flat[i], i))
    cut = flat[ranked[k - 1]]
    included, found_cut = top_rate_mask(scores, rate, count_rule, "include")
    assert found_cut == cut
    assert included.ravel().tolist() == [v >= cut for v in flat]
    exact, _ = top_rate_mask(scores, rate, count_rule, "exact")
    assert sorted(np.flatnonzero(exact.ravel()).tolist()) == sorted(ranked[:k])
    assert exact.sum() == k <= included.sum()


@given(
    hnp.arrays(
        np.float64, st.tuples(st.integers(1, 4), st.integers(1, 9)), elements=st.floats(0, 1), unique=True
    ),
    st.floats(0.01, 1.0),
)
def test_top_rate_size_on_distinct_scores(scores, rate):
    mask, _ = top_rate_mask(scores, rate)
    assert mask.sum() == top_count(scores.size, rate) == math.ceil(round(rate * scores.size, 9))
    assert scores[mask].min() > scores[~mask].max() if (~mask).any() else True


def test_exact_ties_use_tiebreak_then_index():
    scores = np.array([[1.0, 1.0, 1.0, 0.0]])
    tiebreak = np.array([[0.0, 2.0, 1.0, 9.0]])
    mask, _ = top_rate_mask(scores, 0.5, ties="exact", tiebreak=tiebreak)
    assert mask.tolist() == [[False, True, True, False]]
    mask, _ = top_rate_mask(scores, 0.5, ties="exact")
    assert mask.tolist() == [[True, True, False, False]]
    mask, _ = top_rate_mask(scores, 0.5)
    assert mask.tolist() == [[True, True, True, False]]


@given(scored(), st.integers(0, 5), st.booleans())
def test_threshold_against_brute_force(scores, threshold, inclusive):
    mask = threshold_mask(scores, threshold, inclusive)
    expected = [(v >= threshold) if inclusive else (v > threshold) for v in scores.ravel()]
    assert mask.ravel().tolist() == expected


def test_selection_errors():
    with pytest.raises(InputError, match="top_rate"):
        top_rate_mask(np.ones((2, 2)), 0.0)
    with pytest.raises(InputError, match="NaN"):
        top_rate_mask(np.full((2, 2), np.nan), 0.5)
    with pytest.raises(InputError, match="tie rule"):
        top_rate_mask(np.ones((2, 2)), 0.5, ties="random")
    with pytest.raises(InputError, match="needs a threshold"):
        select_neurons(np.ones((2, 2)), rule="threshold")
    with pytest.raises(InputError, match="at least two"):
        lape_masks({"en": np.ones((2, 2)) / 2})


def lape_brute_force(probabilities, filter_rate, top_rate, bar_ratio):
    """LAPE written neuron by neuron, after Tang et al.'s identify.py."""
    codes = list(probabilities)
    n_layers, d_mlp = probabilities[codes[0]].shape
    every = sorted(
        float(p[layer, j]) for p in probabilities.values() for layer in range(n_layers) for j in range(d_mlp)
    )

    def kth(share):
        return every[min(max(round(len(every) * share), 1), len(every)) - 1]

    filter_value, bar = kth(filter_rate), kth(bar_ratio)
    entropies = []
    for layer in range(n_layers):
        for j in range(d_mlp):
            column = [float(probabilities[c][layer, j]) for c in codes]
            if max(column) <= filter_value:
                continue
            total = sum(column)
            shares = [v / total for v in column]
            entropy = -sum(s * math.log(s) for s in shares if s > 0)
            entropies.append((entropy, layer * d_mlp + j))
    chosen = [index for _, index in sorted(entropies)[: round(n_layers * d_mlp * top_rate)]]
    result = {}
    for c in codes:
        flat = probabilities[c].ravel()
        result[c] = sorted(i for i in chosen if flat[i] > bar)
    return result


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_lape_against_brute_force(data):
    shape = data.draw(shapes)
    n_languages = data.draw(st.integers(2, 4))
    grid = st.integers(0, 8).map(lambda v: v / 8)
    probabilities = {
        f"l{i}": data.draw(hnp.arrays(np.float64, shape, elements=grid)) for i in range(n_languages)
    }
    rates = [data.draw(st.sampled_from([0.5, 0.8, 0.95])) for _ in range(2)]
    top_rate = data.draw(st.sampled_from([0.1, 0.3, 0.6]))
    masks, _ = lape_masks(probabilities, rates[0], top_rate, rates[1])
    expected = lape_brute_force(probabilities, rates[0], top_rate, rates[1])
    assert {c: np.flatnonzero(m.ravel()).tolist() for c, m in masks.items()} == expected


def test_lape_finds_planted_language_neurons():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.05, 0.3, size=(4, 50))
    probabilities = {code: base.copy() for code in ("en", "de", "ja")}
    probabilities["ja"][2, 7] = probabilities["ja"][3, 1] = 0.99
    probabilities["de"][0, 3] = 0.97
    sets = language_active_sets(probabilities, rule="lape", top_rate=0.015)  # 3 neurons
    assert sets["ja"].to_list() == [(2, 7), (3, 1)]
    assert sets["de"].to_list() == [(0, 3)] and len(sets["en"]) == 0
    assert sets["ja"].metadata["selection"]["rule"] == "lape"


# ---- builders -------------------------------------------------------------------------------
def random_probe(rng, name, n_samples, shape=(3, 20)):
    tokens = rng.integers(1, 30, size=n_samples)
    fires = rng.binomial(tokens[:, None, None], rng.random((n_samples, *shape)))
    return ProbeSamples(name, (fires / tokens[:, None, None]).astype(np.float32), tokens)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_pooled_probe_sets_are_the_concatenated_corpus(seed):
    rng = np.random.default_rng(seed)
    forward, backward = random_probe(rng, "zh-ja", 4), random_probe(rng, "ja-zh", 3)
    values = np.concatenate([forward.values, backward.values]).astype(np.float64)
    tokens = np.concatenate([forward.tokens, backward.tokens])
    fires = np.rint(values * tokens[:, None, None]).sum(axis=0)
    np.testing.assert_allclose(pooled_scores([forward, backward]), fires / tokens.sum(), rtol=1e-6)
    np.testing.assert_allclose(pooled_scores([forward, backward], "samples"), values.mean(0), rtol=1e-6)
    both = ProbeSamples("both", values, tokens)
    overlap = overlap_from_probes(forward, backward, top_rate=0.1, ties="exact")
    assert overlap == probe_active_set(both, top_rate=0.1, ties="exact")
    assert len(overlap) == top_count(60, 0.1) == 6
    assert overlap.metadata["kind"] == "overlap" and overlap.metadata["mode"] == "probe"
    assert overlap.metadata["inputs"] == ["zh-ja", "ja-zh"]
    assert overlap.metadata["selection"]["pooling"] == "pooled"
    assert overlap.metadata["selection"]["weighting"] == "tokens"


def test_vote_pooling_against_brute_force():
    rng = np.random.default_rng(1)
    probe = random_probe(rng, "en-sw", 5)
    voted = probe_active_set(probe, pooling="vote", vote_share=0.4, top_rate=0.1, ties="exact")
    counts = np.zeros((3, 20), dtype=int)
    for sample in probe.values:
        counts += top_rate_mask(sample, 0.1, ties="exact")[0]
    assert np.array_equal(voted.mask, counts >= 2)
    assert voted.metadata["selection"]["vote_share"] == 0.4


def test_probe_set_reads_lazily_from_h5(tmp_path):
    rng = np.random.default_rng(2)
    probe = random_probe(rng, "en-de", 70)
    with h5py.File(tmp_path / "p.h5", "w") as handle:
        handle["prob"] = probe.values
    with h5py.File(tmp_path / "p.h5", "r") as handle:
        lazy = ProbeSamples("en-de", handle["prob"], probe.tokens)
        assert probe_active_set(lazy) == probe_active_set(probe)


def test_probe_input_errors():
    with pytest.raises(InputError, match="token counts"):
        ProbeSamples("x", np.zeros((2, 3, 4)), np.array([1]))
    with pytest.raises(InputError, match="outside"):
        probe_active_set(ProbeSamples("x", np.full((1, 2, 2), 2.0), np.array([3])))
    with pytest.raises(InputError, match="statistic"):
        ProbeSamples("x", np.zeros((1, 2, 2)), np.array([3]), statistic="logit")
    value = ProbeSamples("x", np.full((1, 2, 2), 2.0), np.array([3]), statistic="mean")
    assert probe_active_set(value, top_rate=0.25).metadata["selection"]["statistic"] == "mean"


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["top_rate", "threshold", "lape"]))
def test_builder_invariants(seed, rule):
    rng = np.random.default_rng(seed)
    probabilities = {c: rng.random((3, 30)) for c in ("zh", "ja", "en", "de")}
    active = language_active_sets(probabilities, rule=rule, top_rate=0.2, threshold=0.7)
    s, t, b = active["zh"], active["ja"], active["en"]
    corpus_overlap = overlap_from_corpus(s, t)
    assert corpus_overlap <= s and corpus_overlap <= t
    assert corpus_overlap.metadata["mode"] == "corpus"
    assert corpus_overlap.metadata["inputs"] == ["zh", "ja"]
    assert corpus_overlap.metadata["selection"]["rule"] == rule
    bridge = bridge_specific_from_corpus(b, s, t)
    assert bridge <= b and bridge.isdisjoint(s | t)
    specific = language_specific(active)
    for code, neurons in specific.items():
        others = [active[c] for c in active if c != code]
        assert neurons <= active[code]
        assert all(neurons.isdisjoint(o) for o in others)
    forward, backward = random_probe(rng, "zh-ja", 3, (3, 30)), random_probe(rng, "ja-zh", 3, (3, 30))
    overlap = overlap_from_probes(forward, backward, top_rate=0.2)
    bridge_source = probe_active_set([random_probe(rng, "en-zh", 3, (3, 30))], top_rate=0.2)
    bridge_target = probe_active_set([random_probe(rng, "en-ja", 3, (3, 30))], top_rate=0.2)
    bridge = bridge_specific_from_probes(bridge_source, bridge_target, overlap, bridge="en")
    assert bridge.isdisjoint(overlap)
    assert bridge <= bridge_source | bridge_target
    assert bridge.metadata["kind"] == "bridge_specific" and bridge.metadata["bridge"] == "en"
    assert bridge.metadata["selection"]["top_rate"] == 0.2


def test_active_set_metadata_and_size():
    rng = np.random.default_rng(3)
    probabilities = {"fi": rng.random((4, 100)), "hu": rng.random((4, 100))}
    active = language_active_sets(probabilities)
    assert [len(a) for a in active.values()] == [4, 4]
    assert active["fi"].label == "fi"
    assert active["fi"].metadata["selection"] == {
        "rule": "top_rate",
        "top_rate": 0.01,
        "count_rule": "ceil",
        "ties": "include",
    }
    assert active["fi"].metadata["result"]["n_target"] == 4
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        language_active_sets({"fi": probabilities["fi"] + 1})
