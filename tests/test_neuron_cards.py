"""Neuron cards and `export-neurons` (issue 29): the documented JSON layout, the firing token's
recomputed value equal to the stored one, a round trip through to_dict/from_dict."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from neuronoverlap.cli import main
from neuronoverlap.neurons.cards import ActivationRecord, NeuronCard, NeuronCards, build_cards, top_members
from neuronoverlap.store import Store

text = st.text(max_size=6)
values = st.floats(-10, 10, allow_nan=False)
records = st.builds(
    ActivationRecord,
    lang=st.sampled_from(["de", "ar", "ja"]),
    sentence=st.integers(0, 999),
    position=st.integers(0, 99),
    tokens=st.lists(text, min_size=1, max_size=4).map(tuple),
    max_value_token_index=st.integers(0, 3),
    max_value=values,
    values=st.none() | st.lists(values, max_size=4).map(tuple),
)
cards = st.builds(
    NeuronCard,
    layer=st.integers(0, 31),
    neuron=st.integers(0, 14335),
    probability=st.lists(
        st.tuples(st.sampled_from(["de", "ar"]), st.floats(0, 1)), max_size=2, unique_by=lambda x: x[0]
    ).map(tuple),
    records=st.lists(records, max_size=3).map(tuple),
    agreement=st.none() | st.floats(0, 1),
    chance=st.none() | st.floats(0, 1),
    sets=st.lists(text, max_size=2).map(tuple),
)


@given(
    st.builds(
        NeuronCards,
        model=text,
        langs=st.lists(text, max_size=3).map(tuple),
        cards=st.lists(cards, max_size=2).map(tuple),
        name=text,
    )
)
def test_cards_round_trip(x):
    assert NeuronCards.from_dict(json.loads(json.dumps(x.to_dict()))) == x


def test_export_neurons_writes_the_documented_layout(tiny_store_template, tmp_path, capsys):
    out = tmp_path / "cards.json"
    assert (
        main(["export-neurons", "--store", str(tiny_store_template), "1:77", "2:5", "--out", str(out)]) == 0
    )
    assert "2 neuron cards, 24 activation records" in capsys.readouterr().out
    d = json.loads(out.read_text())
    assert d["kind"] == "neuron-cards" and d["format"] == 1 and d["langs"] == ["de", "en", "fr"]
    card = d["neurons"][0]
    assert card["layer"] == 1 and card["index"] == 77 and card["hook"] == "blocks.1.mlp.hook_pre"
    assert card["sets"] == ["test-set"] and set(card["activation_probability"]) == {"de", "en", "fr"}
    first = card["activations"][0]
    assert set(first) == {
        "tokens",
        "values",
        "maxValue",
        "maxValueTokenIndex",
        "lang",
        "sentence",
        "position",
    }
    assert first["values"] is None and card["maxValue"] == max(a["maxValue"] for a in card["activations"])
    assert card["agreement"] == 1.0  # 4 sentences, k = 8: every language's top-k holds them all


def test_recomputed_values_put_the_maximum_at_the_marked_token(tiny_store_template, tiny_llama):
    store = Store(tiny_store_template)
    result = build_cards(store, [(0, 3), (3, 200)], width=3, model=tiny_llama)
    for card in result.cards:
        for record in card.records:
            assert len(record.values) == len(record.tokens)
            marked = record.values[record.max_value_token_index]
            assert marked == pytest.approx(record.max_value, abs=1e-4)
            assert marked == pytest.approx(max(record.values), abs=1e-4)


def test_top_members_ranks_a_set_by_activation_probability(tiny_store_template):
    store = Store(tiny_store_template)
    top = top_members(store, "test-set", 2)
    mean = np.mean([store.corpus(x).activation_probability() for x in store.corpora()], axis=0)
    members = [(1, 3), (1, 77), (1, 200)]
    assert top == sorted(members, key=lambda n: -mean[n])[:2]


def test_export_needs_neurons_and_contexts(tiny_store_template, tmp_path, refused):
    refused(
        ["export-neurons", "--store", tiny_store_template, "--out", tmp_path / "x.json"],
        tmp_path,
        "needs neurons",
    )
    refused(
        ["export-neurons", "--store", tiny_store_template, "1:999", "--out", tmp_path / "x.json"],
        tmp_path,
        "neuron 999 out of range",
    )


def test_stored_cards_of_todays_shape_load():
    """The document as the toolkit has written it since format 1, through the shelf's reader."""
    from neuronoverlap.errors import InputError
    from neuronoverlap.results import read

    record = ActivationRecord("de", 2, 1, ("ein", "Hund"), 1, 0.75)
    card = NeuronCard(1, 7, (("de", 0.25),), (record,), 0.5, 0.1, ("overlap-de-fr",))
    stored = {
        "kind": "neuron-cards",
        "format": 1,
        "name": "report",
        "model": "tiny-llama",
        "langs": ["de"],
        "neurons": [
            {
                "layer": 1,
                "index": 7,
                "hook": "blocks.1.mlp.hook_pre",
                "activation": "act_fn(hook_pre)",
                "activation_probability": {"de": 0.25},
                "agreement": 0.5,
                "agreement_chance": 0.1,
                "sets": ["overlap-de-fr"],
                "maxValue": 0.75,
                "activations": [
                    {
                        "tokens": ["ein", "Hund"],
                        "values": None,
                        "maxValue": 0.75,
                        "maxValueTokenIndex": 1,
                        "lang": "de",
                        "sentence": 2,
                        "position": 1,
                    }
                ],
            }
        ],
    }
    x = NeuronCards("tiny-llama", ("de",), (card,), "report")
    assert read(x.key, stored) == NeuronCards.from_dict(stored) == x and x.to_dict() == stored
    with pytest.raises(InputError, match="not of kind 'neuron-cards'"):
        NeuronCards.from_dict({**stored, "kind": "neuron-agreement"})
