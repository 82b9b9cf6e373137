"""A stored result is reused only when it ran with the whole options object: changing any one
option recomputes it (no silent stale scores)."""

from __future__ import annotations

import shutil
from dataclasses import fields, replace

import pytest

import neuronoverlap.pipeline.bridge as pipeline_bridge
from neuronoverlap.bridge import BridgeSelection
from neuronoverlap.options import BridgeOptions
from neuronoverlap.pipeline import selection_scores
from neuronoverlap.store import Store, schema

BASE = BridgeOptions(n_random=10, n_bootstrap=4, window=(1, 2))

#: One change per field of BridgeOptions (a new field needs a line here: the test checks that).
CHANGES = {
    "method": "reference",
    "score": "cka",
    "n_random": 12,
    "n_bootstrap": 5,
    "n_permutations": 3,
    "window": (1,),
    "top_rate": 0.02,
    "seed": 3,
    "agnostic_share": 0.99,
    "pool": "layer",
    "n_draws": 3,
    "residualise": False,
    "rebuild_sets": False,
}


@pytest.fixture
def store(tiny_store_template, tmp_path):
    path = tmp_path / "run.h5"
    shutil.copy(tiny_store_template, path)
    return path


@pytest.fixture
def runs(monkeypatch):
    """The options of every selection actually computed."""
    computed = []
    real = pipeline_bridge.choose_bridge

    def counted(store, pair, bridges, model=None, *, options, **kwargs):
        computed.append(options)
        return real(store, pair, bridges, model, options=options, **kwargs)

    monkeypatch.setattr(pipeline_bridge, "choose_bridge", counted)
    return computed


def _stored(store) -> BridgeSelection:
    return BridgeSelection.from_dict(Store(store).get_json(schema.RESULTS, "bridge-de-fr"))


def test_every_option_has_a_change():
    assert set(CHANGES) == {f.name for f in fields(BridgeOptions)}


def test_equal_options_reuse_the_stored_selection(store, runs):
    first = selection_scores(store, ("de", "fr"), ["en"], options=BASE, progress=False)
    assert runs == [BASE] and _stored(store).options == BASE
    again = selection_scores(store, ("de", "fr"), ["en"], options=replace(BASE), progress=False)
    assert runs == [BASE] and again == first


def test_changing_any_option_recomputes(store, runs):
    selection_scores(store, ("de", "fr"), ["en"], options=BASE, progress=False)
    for name, value in CHANGES.items():
        changed = replace(BASE, **{name: value})
        scores = selection_scores(store, ("de", "fr"), ["en"], options=changed, progress=False)
        assert runs[-1] == changed, name
        stored = _stored(store)
        assert stored.options == changed, name
        assert scores == {"en": stored.scores["en"]}, name
    assert len(runs) == 1 + len(CHANGES)


def test_a_selection_stored_without_options_is_recomputed(store, runs):
    """Stores written before options were recorded (the template's selection has none)."""
    document = Store(store).get_json(schema.RESULTS, "bridge-de-fr")
    document.pop("options", None)
    from neuronoverlap.store import StoreWriter

    with StoreWriter.for_existing(store) as writer:
        writer.put(documents={schema.RESULTS: {"bridge-de-fr": document}})
    assert BridgeSelection.from_dict(document).options is None
    selection_scores(store, ("de", "fr"), ["en"], options=BASE, progress=False)
    assert runs == [BASE]


@pytest.mark.parametrize("edit", ["drop", "add"])
def test_options_recorded_by_another_version_are_never_reused(store, runs, edit):
    """A record lacking a field added since (or holding one this version lacks) is read, with
    `options` None, and the selection is recomputed rather than taken for today's defaults."""
    from neuronoverlap.store import StoreWriter

    selection_scores(store, ("de", "fr"), ["en"], options=BASE, progress=False)
    document = Store(store).get_json(schema.RESULTS, "bridge-de-fr")
    if edit == "drop":
        document["options"].pop("seed")
    else:
        document["options"]["a_future_option"] = "x"
    with StoreWriter.for_existing(store) as writer:
        writer.put(documents={schema.RESULTS: {"bridge-de-fr": document}})
    assert _stored(store).options is None
    selection_scores(store, ("de", "fr"), ["en"], options=BASE, progress=False)
    assert runs == [BASE, BASE] and _stored(store).options == BASE
