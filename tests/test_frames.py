"""xarray and pandas views of a store (the `frames` extra): the same numbers as the store's own
readers, lazy reading of probe sets, and a clear error when the extra is not installed."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from neuronoverlap.errors import InputError
from neuronoverlap.frames import neuron_set_frame, neurons_frame, reports_frame
from neuronoverlap.models import StopRule
from neuronoverlap.probes import (
    flores_sentences,
    open_writer,
    record_corpus,
    record_probe_set,
    translation_probe_sets,
)
from neuronoverlap.query import Firing, NeuronReport, query_neurons
from neuronoverlap.sets import NeuronSet
from neuronoverlap.store import Store, StoreWriter
from neuronoverlap.store.reader import LazyDataset

pytest.importorskip("xarray")
pytest.importorskip("pandas")

MEMBERS = [(1, 3), (1, 77), (3, 200)]


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_llama) -> Store:
    """tiny-llama: probe sets de-en and en-de (7 samples), corpora de and en, one stored set."""
    path = tmp_path_factory.mktemp("frames") / "run.h5"
    with open_writer(path, tiny_llama) as writer:
        for probe_set in translation_probe_sets("de", "en", 7, seed=1):
            record_probe_set(
                tiny_llama, writer, probe_set, batch_size=3, stop=StopRule(max_new_tokens=4), progress=False
            )
        for lang in ("de", "en"):
            record_corpus(tiny_llama, writer, lang, *flores_sentences(lang, 4), progress=False)
    with StoreWriter.for_existing(path) as writer:
        writer.put_sets({"three": NeuronSet.from_indices(MEMBERS, (4, 256), "three")})
    return Store(path)


def test_probe_set_dataset_holds_what_the_store_holds(store):
    view = store.probes("de", "en")
    ds = view.to_xarray()
    assert dict(ds.sizes) == {"sample": 7, "layer": 4, "neuron": 256}
    np.testing.assert_array_equal(ds["mean"].values, view.array("mean"))
    np.testing.assert_array_equal(ds["probability"].values, view.array("probability"))
    assert ds["mean"].dtype == np.float32 and ds["probability"].dtype == np.float32
    np.testing.assert_array_equal(ds["tokens"].values, view.tokens())
    for field, name in [
        ("prompts", "prompt"),
        ("generations", "generation"),
        ("source_words", "source_word"),
        ("target_words", "target_word"),
    ]:
        assert ds[name].dims == ("sample",) and ds[name].values.tolist() == view.strings(field)
    assert ds.attrs["probe_set"] == "de-en" and ds.attrs["model_name"] == "tiny-llama"
    assert ds.attrs["src"] == "de" and ds.attrs["tgt"] == "en"
    # the words index the samples
    word = view.strings("source_words")[4]
    np.testing.assert_array_equal(
        ds["probability"].swap_dims(sample="source_word").sel(source_word=word, layer=2).values,
        view.layer(2, "probability")[4],
    )


def test_probe_set_selections_match_numpy(store):
    view = store.probes("en", "de")
    mean, prob = view.array("mean"), view.array("probability")
    ds = view.to_xarray(layers=[3, 0])
    assert ds.layer.values.tolist() == [3, 0]
    np.testing.assert_array_equal(ds["mean"].values, mean[:, [3, 0]])
    picked = ds["probability"].isel(sample=[5, 0, 5], neuron=[200, 7, 9]).sel(layer=0)
    np.testing.assert_array_equal(picked.values, prob[[5, 0, 5]][:, 0][:, [200, 7, 9]])
    np.testing.assert_array_equal(ds["mean"].isel(sample=slice(None, None, -2)).values, mean[::-2][:, [3, 0]])
    pooled = (ds["probability"] * ds["tokens"]).sum("sample") / ds["tokens"].sum()
    np.testing.assert_allclose(pooled.values, view.pooled_probability()[[3, 0]], rtol=1e-6)


def test_probe_set_is_read_lazily(store, monkeypatch):
    """Making the Dataset reads none of mean/prob; a layer reads that layer only."""
    reads = []
    original = LazyDataset.__getitem__

    def counting(self, selection):
        data = original(self, selection)
        reads.append((self.statistic, data.size))
        return data

    monkeypatch.setattr(LazyDataset, "__getitem__", counting)
    ds = store.probes("de", "en").to_xarray()
    assert reads == []
    assert ds["probability"].sel(layer=1).values.shape == (7, 256)
    assert reads == [("probability", 7 * 256)]
    only_mean = store.probes("de", "en").to_xarray(statistics=["mean"])
    assert "probability" not in only_mean and reads == [("probability", 7 * 256)]


def test_probe_set_refusals(store, monkeypatch):
    view = store.probes("de", "en")
    with pytest.raises(InputError, match="layer 4 out of range 0..3"):
        view.to_xarray(layers=[1, 4])
    with pytest.raises(InputError, match="unknown statistic fires"):
        view.to_xarray(statistics=["mean", "fires"])
    monkeypatch.setitem(sys.modules, "xarray", None)  # import xarray now fails
    with pytest.raises(InputError) as caught:
        view.to_xarray()
    assert str(caught.value) == "to_xarray needs xarray: pip install 'neuronoverlap[frames]'"
    with pytest.raises(InputError, match="to_xarray needs xarray"):
        store.corpus("de").to_xarray()


def test_corpus_dataset(store):
    view = store.corpus("en")
    ds = view.to_xarray()
    assert dict(ds.sizes) == {"layer": 4, "neuron": 256} and ds.attrs["lang"] == "en"
    np.testing.assert_array_equal(ds.fire_count.values, view.fire_count())
    np.testing.assert_array_equal(ds.value_sum.values, view.value_sum())
    np.testing.assert_array_equal(ds.activation_probability.values, view.activation_probability())
    np.testing.assert_array_equal(ds.mean_activation.values, view.mean_activation())
    assert ds.attrs["n_tokens"] == view.n_tokens


def test_neurons_frame_has_one_row_per_neuron_and_place(store):
    neurons = [(1, 77), (0, 5), (3, 200)]
    reports = query_neurons(store, neurons)
    frame = neurons_frame(store, neurons)
    assert list(frame.columns) == ["layer", "neuron", "kind", "name", "probability", "mean", "tokens", "sets"]
    assert len(frame) == 3 * (2 + 2)  # corpora de, en; probe sets de-en, en-de
    for report in reports:
        rows = frame[(frame.layer == report.layer) & (frame.neuron == report.neuron)]
        places = {
            **{("corpus", k): v for k, v in report.corpora.items()},
            **{("probes", k): v for k, v in report.probes.items()},
        }
        assert set(zip(rows.kind, rows.name, strict=True)) == set(places)
        for row in rows.itertuples():
            firing = places[(row.kind, row.name)]
            assert (row.probability, row.mean, row.tokens) == (firing.probability, firing.mean, firing.tokens)
            assert row.sets == tuple(report.sets)
    assert set(frame.sets) == {("three",), ()}
    assert frame[frame.sets == ("three",)][["layer", "neuron"]].drop_duplicates().values.tolist() == [
        [1, 77],
        [3, 200],
    ]
    # a stored set is a list of neurons to look up
    assert len(neurons_frame(store, NeuronSet.from_indices(MEMBERS, (4, 256)))) == 3 * 4


def test_reports_frame_keeps_a_neuron_seen_nowhere():
    reports = [NeuronReport(2, 9, {}, {}, ["s"]), NeuronReport(0, 1, {"de": Firing(0.25, -0.5, 40)}, {}, [])]
    frame = reports_frame(reports)
    assert frame.layer.tolist() == [2, 0] and frame.neuron.tolist() == [9, 1]
    assert frame.kind.isna().tolist() == [True, False] and frame.sets.tolist() == [("s",), ()]
    assert np.isnan(frame.probability[0]) and frame.tokens.isna().tolist() == [True, False]
    assert (frame.probability[1], frame["mean"][1], frame.tokens[1]) == (0.25, -0.5, 40)
    assert len(reports_frame([])) == 0


def test_neuron_set_frame_round_trip(monkeypatch):
    members = NeuronSet.from_indices([(3, 1), (0, 255), (3, 0)], (4, 256), "s", {"top_rate": 0.01})
    frame = members.to_frame()
    assert frame.values.tolist() == [[0, 255], [3, 0], [3, 1]]
    assert frame.dtypes.tolist() == [np.int64, np.int64]
    assert frame.attrs == {"label": "s", "metadata": {"top_rate": 0.01}}
    assert NeuronSet.from_indices(frame.to_numpy(), members.shape) == members
    empty = neuron_set_frame(NeuronSet.empty((2, 3)))
    assert len(empty) == 0 and list(empty.columns) == ["layer", "neuron"]
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(InputError, match=r"^to_frame needs pandas: pip install 'neuronoverlap\[frames\]'$"):
        members.to_frame()
