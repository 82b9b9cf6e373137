"""Neuron look-up on a real tiny-model store, against brute force over the stored arrays."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuronoverlap.cli import main
from neuronoverlap.errors import InputError
from neuronoverlap.models import StopRule
from neuronoverlap.probes import (
    flores_sentences,
    open_writer,
    record_corpus,
    record_probe_set,
    translation_probe_sets,
)
from neuronoverlap.query import parse_neuron, query_neurons
from neuronoverlap.sets import NeuronSet
from neuronoverlap.store import Store


@pytest.fixture(scope="module")
def store_path(tmp_path_factory, tiny_llama):
    path = tmp_path_factory.mktemp("query") / "run.h5"
    with open_writer(path, tiny_llama) as writer:
        for probe_set in translation_probe_sets("it", "en", 6, seed=0):
            record_probe_set(
                tiny_llama, writer, probe_set, batch_size=4, stop=StopRule(max_new_tokens=3), progress=False
            )
        for lang in ("en", "he"):
            sentences, params = flores_sentences(lang, 5)
            record_corpus(tiny_llama, writer, lang, sentences, params, batch_size=4, progress=False)
        shape = (tiny_llama.n_layers, tiny_llama.d_mlp)
        writer.put_sets(
            {"one": NeuronSet.from_indices([(1, 7), (0, 3)], shape), "none": NeuronSet.empty(shape)}
        )
    return path


def test_reports_match_the_stored_arrays(store_path):
    store = Store(store_path)
    report, other = query_neurons(store, [(1, 7), (0, 2)])
    assert report.sets == ["one"] and other.sets == []
    corpus = store.corpus("he")
    assert report.corpora["he"].probability == pytest.approx(corpus.fire_count()[1, 7] / corpus.n_tokens)
    assert report.corpora["he"].tokens == corpus.n_tokens
    view = store.probes("it", "en")
    tokens = view.tokens().astype(float)
    prob, mean = view.array("probability")[:, 1, 7], view.array("mean")[:, 1, 7]
    assert report.probes["it-en"].probability == pytest.approx(tokens @ prob / tokens.sum())
    assert report.probes["it-en"].mean == pytest.approx(tokens @ mean / tokens.sum())
    assert report.probes["it-en"].probability == pytest.approx(view.pooled_probability()[1, 7])
    assert set(report.probes) == {"it-en", "en-it"} and set(report.corpora) == {"en", "he"}


def test_neuron_command_prints_tables_and_json(store_path, capsys):
    assert main(["neuron", str(store_path), "1:7", "0.3"]) == 0
    printed = capsys.readouterr().out
    assert "neuron 1:7" in printed and "neuron 0:3" in printed and "in sets: one" in printed
    assert main(["neuron", str(store_path), "1:7", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["neurons"][0]["sets"] == ["one"]
    assert 0 <= data["neurons"][0]["corpora"]["en"]["probability"] <= 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["1-7"], "LAYER:NEURON"),
        (["99:0"], "layer 99 out of range"),
        (["0:100000"], "neuron 100000 out of range"),
    ],
)
def test_bad_neurons_are_one_line_errors(store_path, argv, message, capsys):
    assert main(["neuron", str(store_path), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_parse_neuron_and_empty_query(store_path):
    assert parse_neuron(" 12:345 ") == (12, 345) and parse_neuron("2.5") == (2, 5)
    with pytest.raises(InputError):
        query_neurons(Store(store_path), [])
    assert np.isfinite(query_neurons(Store(store_path), [(0, 0)])[0].probes["en-it"].mean)
