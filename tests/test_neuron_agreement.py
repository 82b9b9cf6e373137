"""Cross-lingual agreement of a neuron's top sentences on parallel FLORES (issue 29): 1 for a neuron
that fires on the same sentences in every language, chance for shuffled ones, calibrated p-values."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuronoverlap.errors import InputError
from neuronoverlap.neurons.agreement import (
    SetAgreement,
    agreement_scores,
    expected_jaccard,
    neuron_p_values,
    pair_jaccard,
    set_agreement,
    store_agreement,
)

LANGS = ("en", "de", "fr", "it", "pt", "es", "zh", "ja", "ar", "he", "id", "tl", "fi", "hu", "sw")


def random_top(rng, n_neurons: int, n: int, k: int) -> np.ndarray:
    return np.stack([rng.permutation(n)[:k] for _ in range(n_neurons)]).astype(np.int32)


def test_a_neuron_firing_on_the_same_sentences_everywhere_agrees_fully():
    rng = np.random.default_rng(0)
    same = random_top(rng, 1, 100, 8)
    samples = {lang: same[:, rng.permutation(8)] for lang in LANGS}  # slot order does not matter
    agreement, chance = agreement_scores(samples, 100)
    assert agreement[0] == 1.0 and chance[0] == pytest.approx(expected_jaccard(100, 8, 8))
    assert neuron_p_values({x: samples[x] for x in LANGS[:4]}, 100, n_shuffles=99)[0] == 0.01


def test_shuffled_neurons_agree_at_chance_and_their_p_values_are_uniform():
    rng = np.random.default_rng(1)
    n, k, neurons = 40, 6, 300
    samples = {lang: random_top(rng, neurons, n, k) for lang in LANGS[:3]}
    agreement, chance = agreement_scores(samples, n)
    sd = agreement.std() / np.sqrt(neurons)
    assert abs(agreement.mean() - chance.mean()) < 4 * sd
    p = neuron_p_values(samples, n, n_shuffles=99, seed=2)
    for level in (0.1, 0.25, 0.5):  # P(p <= level) <= level (a valid test), and close to it
        share = (p <= level).mean()
        assert share <= level + 3 * np.sqrt(level * (1 - level) / neurons)
        assert share >= level - 4 * np.sqrt(level * (1 - level) / neurons) - 0.05


@given(n=st.integers(1, 30), data=st.data())
@settings(max_examples=40, deadline=None)
def test_expected_jaccard_is_the_mean_over_random_subsets(n, data):
    k_a, k_b = data.draw(st.integers(0, n)), data.draw(st.integers(0, n))
    rng = np.random.default_rng(n)
    a = np.array([np.pad(rng.permutation(n)[:k_a], (0, n - k_a), constant_values=-1) for _ in range(4000)])
    b = np.array([np.pad(rng.permutation(n)[:k_b], (0, n - k_b), constant_values=-1) for _ in range(4000)])
    assert pair_jaccard(a, b).mean() == pytest.approx(expected_jaccard(n, k_a, k_b), abs=0.03)


def test_pair_jaccard_ignores_empty_slots():
    a = np.array([[3, 5, -1, -1]])
    b = np.array([[5, 7, 3, -1]])
    assert pair_jaccard(a, b)[0] == pytest.approx(2 / 3)
    assert pair_jaccard(np.array([[-1, -1]]), np.array([[-1, -1]]))[0] == 0.0


def test_a_set_of_concept_neurons_beats_layer_matched_random_neurons():
    rng = np.random.default_rng(3)
    n_layers, d_mlp, n, k = 3, 50, 60, 5
    samples = {
        lang: random_top(rng, n_layers * d_mlp, n, k).reshape(n_layers, d_mlp, k) for lang in LANGS[:4]
    }
    members = np.zeros((n_layers, d_mlp), dtype=bool)
    members[1, :6] = members[2, :3] = True
    for lang in LANGS[1:4]:  # the members fire on English's sentences in every language
        samples[lang][members] = samples["en"][members]
    agreement, chance = agreement_scores(samples, n)
    result = set_agreement(agreement, chance, members, name="planted", langs=LANGS[:4], n_random=200)
    assert result.mean == 1.0 and result.p_value == pytest.approx(1 / 201)
    assert result.random_mean < 0.2 and result.size == 9
    plain = np.zeros_like(members)
    plain[0, 10:20] = True
    p = set_agreement(agreement, chance, plain, n_random=200).p_value
    assert p > 0.01  # a set of shuffled neurons is no better than random ones
    assert SetAgreement.from_dict(result.to_dict()) == result


@given(
    mean=st.floats(0, 1),
    randoms=st.lists(st.floats(0, 1), max_size=5),
    langs=st.lists(st.sampled_from(LANGS), max_size=4),
)
def test_set_agreement_round_trip(mean, randoms, langs):
    x = SetAgreement("overlap-zh-ja", tuple(langs), 3, mean, 0.1, tuple(randoms), 0.5, 7)
    assert SetAgreement.from_dict(x.to_dict()) == x and x.key == "agreement-overlap-zh-ja"


def test_store_agreement_matches_the_contexts_read_back(tiny_llama, tmp_path):
    from neuronoverlap.options import CorpusOptions
    from neuronoverlap.pipeline import record_corpora
    from neuronoverlap.store import Store

    path = tmp_path / "run.h5"
    record_corpora(path, ["de", "fr"], tiny_llama, CorpusOptions(n_sentences=12, top_k=3), progress=False)
    store = Store(path)
    agreement, chance, langs = store_agreement(store)
    assert langs == ["de", "fr"] and agreement.shape == (4, 256)
    assert np.allclose(chance, expected_jaccard(12, 3, 3))
    for layer, neuron in [(0, 1), (2, 100), (3, 255)]:
        de = {c.sample for c in store.neuron(layer, neuron).top_contexts("de")}
        fr = {c.sample for c in store.neuron(layer, neuron).top_contexts("fr")}
        assert agreement[layer, neuron] == pytest.approx(len(de & fr) / len(de | fr))
    with pytest.raises(InputError, match="no contexts for ja"):
        store_agreement(store, ["de", "ja"])


def test_agreement_command(tiny_store_template, capsys, refused, tmp_path):
    from neuronoverlap.cli import main

    assert main(["agreement", "--store", str(tiny_store_template), "1:77", "--shuffles", "9"]) == 0
    out = capsys.readouterr().out
    assert "languages: de,en,fr  (4 parallel sentences)" in out and "neuron 1:77  agreement 1.000" in out
    assert main(["agreement", "--store", str(tiny_store_template), "--random-sets", "20", "--json"]) == 0
    sets = json.loads(capsys.readouterr().out)["sets"]
    assert [s["set_name"] for s in sets][-1] == "test-set" and sets[-1]["size"] == 3
    refused(["agreement", "--store", tiny_store_template, "--langs", "de,ja"], tmp_path, "no contexts for ja")


@pytest.mark.slow
def test_gemma_neurons_agree_above_chance_on_parallel_sentences(gemma, tmp_path):
    """The embedded Gemma-3-270M on 32 parallel FLORES sentences of en, de, ja (k = 4): neurons'
    top sentences agree across languages well above the shuffle null, most in the middle layers,
    and the marked token of a top context carries the stored activation."""
    from neuronoverlap.options import CorpusOptions
    from neuronoverlap.pipeline import record_corpora
    from neuronoverlap.store import Store

    path = tmp_path / "run.h5"
    record_corpora(path, ["en", "de", "ja"], gemma, CorpusOptions(n_sentences=32, top_k=4), progress=False)
    store = Store(path)
    agreement, chance, _ = store_agreement(store)
    assert agreement.mean() > 2 * chance.mean()
    by_layer = agreement.mean(axis=1)
    assert by_layer[5:12].mean() > by_layer[:2].mean()
    layer, neuron = np.unravel_index(np.argmax(agreement), agreement.shape)
    context = store.neuron(int(layer), int(neuron)).top_contexts("ja")[0]

    class Collect:
        def consume(self, at, activation, count_mask):
            if at == layer:
                self.values = activation[0, :, neuron].float().numpy()

    collect = Collect()
    gemma.forward_activations([context.text], collect)
    assert collect.values[context.position] == pytest.approx(context.value, rel=1e-3, abs=1e-3)


def test_a_stored_agreement_of_todays_shape_loads():
    """The document as the toolkit has written it since format 1, through the shelf's reader."""
    from neuronoverlap.results import read

    stored = {
        "kind": "neuron-agreement",
        "format": 1,
        "set_name": "overlap-zh-ja",
        "langs": ["zh", "ja"],
        "size": 3,
        "mean": 0.4,
        "chance": 0.1,
        "random_means": [0.2, 0.3],
        "p_value": 0.5,
        "seed": 7,
    }
    x = SetAgreement("overlap-zh-ja", ("zh", "ja"), 3, 0.4, 0.1, (0.2, 0.3), 0.5, 7)
    assert read(x.key, stored) == SetAgreement.from_dict(stored) == x and x.to_dict() == stored
    with pytest.raises(InputError, match="not of kind 'neuron-agreement'"):
        SetAgreement.from_dict({**stored, "kind": "neuron-cards"})
    with pytest.raises(InputError, match="format 2"):
        SetAgreement.from_dict({**stored, "format": 2})
