"""The shelf of results: every kind round-trips through its JSON document (hypothesis), the store
hands results back typed, and documents written before kinds existed are still read."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuronoverlap.analyses.profiles import LanguageSimilarity, OverlapProfile, SpectrumSummary
from neuronoverlap.bridge.result import BootstrapSummary, BridgeSelection
from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.results import (
    Comparison,
    ConditionResult,
    EvaluationResult,
    OracleComparison,
    bridge_condition,
)
from neuronoverlap.evaluation.statistics import Accuracy, McNemarResult
from neuronoverlap.options import BridgeOptions
from neuronoverlap.results import KINDS, kind_of, read, register, result_class
from neuronoverlap.sets import NeuronSet
from neuronoverlap.store import Store, StoreWriter, schema

CODES = ["en", "de", "fr", "es", "it"]
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
share = st.floats(0, 1, allow_nan=False)


def as_stored(document):
    """What the store keeps: JSON text with sorted keys, parsed back."""
    return json.loads(json.dumps(document, sort_keys=True))


@st.composite
def neuron_sets(draw, shape=(3, 6)):
    mask = np.array(draw(st.lists(st.booleans(), min_size=shape[0] * shape[1], max_size=shape[0] * shape[1])))
    return NeuronSet(mask.reshape(shape), draw(st.none() | st.text(max_size=5)))


@st.composite
def bridge_options(draw):
    return BridgeOptions(
        method=draw(st.sampled_from(["calibrated", "reference"])),
        score=draw(st.sampled_from(["reference", "cka"])),
        n_random=draw(st.integers(2, 500)),
        n_bootstrap=draw(st.integers(0, 500)),
        n_permutations=draw(st.integers(0, 99)),
        window=draw(st.none() | st.lists(st.integers(0, 40), min_size=1, max_size=4).map(tuple)),
        top_rate=draw(st.floats(0.001, 1)),
        seed=draw(st.integers(0, 2**31)),
        agnostic_share=draw(st.none() | st.floats(0, 0.99)),
    )


@st.composite
def bridge_selections(draw):
    candidates = draw(st.lists(st.sampled_from(CODES[1:]), min_size=1, max_size=3, unique=True))
    window = sorted(draw(st.lists(st.integers(0, 2), min_size=1, max_size=3, unique=True)))

    def per_layer(values=None):
        values = st.none() | finite if values is None else values
        return {b: {layer: draw(values) for layer in window} for b in candidates}

    bootstrap = None
    if draw(st.booleans()):
        bootstrap = BootstrapSummary(
            n_resamples=draw(st.integers(1, 100)),
            statistic="calibrated",
            level=0.95,
            intervals={b: sorted([draw(finite), draw(finite)]) for b in candidates},
            top_two=None,
            selection_probability={b: draw(share) for b in candidates},
        )
    return BridgeSelection(
        src="zh",
        tgt="ja",
        method=draw(st.sampled_from(["calibrated", "reference"])),
        score="reference",
        candidates=candidates,
        window=window,
        overlap=draw(neuron_sets()),
        bridges={b: draw(neuron_sets()) for b in candidates},
        set_sizes=per_layer(st.lists(st.integers(0, 9), min_size=2, max_size=2)),
        per_layer_raw=per_layer(),
        per_layer_calibrated=per_layer(),
        per_layer_reference=per_layer(),
        calibration=per_layer(st.none() | st.lists(finite, min_size=2, max_size=2)),
        raw_scores={b: draw(st.none() | finite) for b in candidates},
        calibrated={b: draw(finite) for b in candidates},
        pvalues={b: draw(share) for b in candidates},
        reference_scores={b: draw(finite) for b in candidates},
        bootstrap=bootstrap,
        permutation_pvalues=draw(st.none() | st.just({b: 0.5 for b in candidates})),
        parameters={"top_rate": 0.01, "store": "x.h5"},
        options=draw(st.none() | bridge_options()),
    )


@st.composite
def accuracies(draw):
    n = draw(st.integers(1, 500))
    hits = draw(st.integers(0, n))
    return Accuracy(n, hits, hits / n, *sorted(draw(st.lists(share, min_size=4, max_size=4))), 0.95)


@st.composite
def evaluation_results(draw):
    task = draw(st.sampled_from(["bli", "mrc"]))
    bridges = draw(st.lists(st.sampled_from(CODES), max_size=3, unique=True))
    conditions = {"zero-shot": ConditionResult("zero-shot", None, [], draw(accuracies()))}
    for b in bridges:
        conditions[bridge_condition(b)] = ConditionResult(bridge_condition(b), b, [], draw(accuracies()))
    comparisons = {
        b: Comparison(
            b,
            McNemarResult(
                100, draw(st.integers(0, 50)), draw(st.integers(0, 50)), draw(finite), draw(share), "exact"
            ),
            tuple(sorted([draw(finite), draw(finite)])),
        )
        for b in bridges
    }
    oracle = None
    if bridges:
        oracle = OracleComparison(
            accuracies={b: draw(share) for b in bridges},
            by_accuracy=list(bridges),
            oracle=bridges[0],
            oracle_accuracy=draw(share),
            tied_best=[bridges[0]],
        )
    return EvaluationResult(
        task,
        "zh-ja" if task == "bli" else "sw",
        conditions,
        comparisons,
        oracle,
        params={"n": draw(st.integers(1, 99)), "seed": 0},
        model={"name": "tiny-llama"},
        data={"source": "muse"},
        diagnostics={"zero-shot": {"empty": draw(st.integers(0, 9))}},
        seconds=draw(finite),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bridge_selections())
def test_a_bridge_selection_round_trips(selection):
    document = as_stored(selection.to_dict())
    assert document["kind"] == "bridge-selection" and document["format"] == BridgeSelection.FORMAT
    assert BridgeSelection.from_dict(document) == selection
    assert read(selection.key, document) == selection


@settings(max_examples=40, deadline=None)
@given(bridge_options())
def test_bridge_options_round_trip(options):
    assert BridgeOptions.from_dict(as_stored(options.to_dict())) == options


@settings(max_examples=40, deadline=None)
@given(evaluation_results())
def test_an_evaluation_round_trips(result):
    document = as_stored(result.to_dict())
    assert document["kind"] == "evaluation"
    assert EvaluationResult.from_dict(document) == result
    assert read(result.key, document) == result


small = st.integers(0, 1000)
unit = st.none() | share
matrix = st.lists(st.lists(share, min_size=3, max_size=3), min_size=2, max_size=2)


@st.composite
def agnostic_records(draw):
    if draw(st.booleans()):
        return {"agnostic_share": None, "n_agnostic": 0}
    record = {"agnostic_share": draw(share), "n_agnostic": draw(small), "agnostic_per_layer": [1, 2, 3]}
    if draw(st.booleans()):
        record["agnostic_over"] = ["de-fr", "fr-de"]
    return record


@st.composite
def overlap_profiles(draw):
    return OverlapProfile(
        definition=draw(st.text(max_size=20)),
        pairs=["de-fr", "en-fr"],
        sizes=[draw(small), draw(small)],
        counts=[[draw(small)] * 3, [draw(small)] * 3],
        shares=draw(matrix),
        third_counts=[[draw(small)] * 3] * 2,
        third_shares=draw(matrix),
        selection={"top_rate": draw(share), "count_rule": "ceil"},
        agnostic=draw(agnostic_records()),
    )


@st.composite
def similarities(draw):
    return LanguageSimilarity(
        languages=["de", "en", "fr"],
        active_set_sizes=[draw(small)] * 3,
        jaccard=draw(matrix),
        overlap=[[draw(small)] * 3] * 3,
        cosine=[[draw(unit)] * 3] * 3,
        active_sets="top 0.01",
        agnostic=draw(agnostic_records()),
        pair_layers={"pairs": ["de-en"], "mean_counts": [draw(finite)]},
    )


@st.composite
def spectra(draw):
    intervals = draw(st.none() | st.just({"mantel_r": {"low": 0.1, "high": 0.5}, "pairs": []}))
    return SpectrumSummary(
        intervals=intervals,
        measure=draw(st.sampled_from(["jaccard", "cosine", "cka"])),
        languages=["de", "en", "fr"],
        linkage="average",
        mantel={"statistic": draw(finite), "pvalue": draw(share), "n_permutations": draw(small)},
        cophenetic_vs_taxonomy=draw(st.none() | finite),
        dendrogram_fit=draw(st.none() | finite),
        files={"mantel_json": "out/mantel.json"},
    )


@settings(max_examples=30, deadline=None)
@given(st.one_of(overlap_profiles(), similarities(), spectra()))
def test_the_analyses_round_trip(result):
    document = as_stored(result.to_dict())
    assert document["kind"] == type(result).kind
    assert type(result).from_dict(document) == result
    assert read(result.key, document) == result


def test_the_kind_table_names_real_classes():
    for kind in KINDS:
        cls = result_class(kind)
        assert cls.kind == kind and isinstance(cls.FORMAT, int)
        for name in ("key", "to_dict", "from_dict"):
            assert hasattr(cls, name), (kind, name)


def test_a_new_kind_registers_in_one_line():
    @dataclass(frozen=True)
    class Note:
        kind: ClassVar[str] = "test-note"
        FORMAT: ClassVar[int] = 1
        text: str

        @property
        def key(self) -> str:
            return f"note-{self.text}"

        def to_dict(self) -> dict:
            return {"kind": self.kind, "format": self.FORMAT, "text": self.text}

        @classmethod
        def from_dict(cls, d: dict) -> "Note":
            return cls(d["text"])

    try:
        register(Note)
        assert read("note-a", Note("a").to_dict()) == Note("a")
        with pytest.raises(ValueError, match="already held"):
            register(type("Other", (Note,), {}))
        with pytest.raises(InputError, match="format 2"):
            read("note-a", {**Note("a").to_dict(), "format": 2})
    finally:
        KINDS.pop("test-note", None)
    with pytest.raises(TypeError, match="lacks"):
        register(type("Bare", (), {"kind": "bare"}))


def test_documents_without_a_kind_are_known_by_name_once():
    assert kind_of("bridge-zh-ja", {"candidates": ["en"]}) == "bridge-selection"
    assert kind_of("bli-zh-ja", {"conditions": {}}) == "evaluation"
    assert kind_of("mrc-sw", {"conditions": {}}) == "evaluation"
    assert kind_of("notes", {"text": "x"}) is None
    assert kind_of("bridge-zh-ja", "text") is None
    with pytest.raises(InputError, match="no kind"):
        read("notes", {"text": "x"})


@pytest.fixture
def store(tiny_store_template, tmp_path):
    path = tmp_path / "run.h5"
    shutil.copy(tiny_store_template, path)
    return path


def test_the_store_hands_results_back_typed(store):
    opened = Store(store)
    selection = opened.result("bridge-de-fr")
    assert isinstance(selection, BridgeSelection) and selection.key == "bridge-de-fr"
    assert selection.options is not None and selection.options.window == (1, 2)
    assert opened.results() == {"bridge-de-fr": selection}
    assert opened.results("evaluation") == {}
    evaluation = EvaluationResult.from_dict(
        as_stored(
            {
                "task": "bli",
                "name": "de-fr",
                "conditions": {
                    "zero-shot": {"bridge": None, **Accuracy(4, 1, 0.25, 0, 1, 0, 1, 0.95).to_dict()}
                },
                "params": {"src": "de", "tgt": "fr"},
                "seconds": 2.0,
            }
        )
    )
    with StoreWriter.for_existing(store) as writer:
        writer.put_result(evaluation)
        writer.put_json(schema.RESULTS, "notes", {"text": "not a result"})
    opened = Store(store)
    assert opened.result("bli-de-fr") == evaluation
    assert set(opened.results()) == {"bridge-de-fr", "bli-de-fr"}
    assert opened.results("evaluation") == {"bli-de-fr": evaluation}
    with pytest.raises(InputError, match="no kind"):
        opened.result("notes")


def test_put_result_keeps_the_sets_in_the_same_commit(store):
    selection = Store(store).result("bridge-de-fr")
    with StoreWriter.for_existing(store) as writer:
        writer.put_result(selection, sets={"overlap-copy": selection.overlap})
    assert Store(store).neuron_set("overlap-copy") == selection.overlap


def test_documents_of_stores_written_before_kinds_are_read(store):
    """The shapes main wrote at 378c5c0: no "kind", "format" or "options"; summary() for BLI."""
    opened = Store(store)
    document = opened.get_json(schema.RESULTS, "bridge-de-fr")
    for key in ("kind", "format", "options"):
        document.pop(key)
    legacy_bli = {
        "task": "bli",
        "name": "de-fr",
        "params": {"src": "de", "tgt": "fr"},
        "model": {},
        "data": {},
        "seconds": 1.5,
        "conditions": {"zero-shot": {"bridge": None, **Accuracy(4, 1, 0.25, 0, 1, 0, 1, 0.95).to_dict()}},
        "comparisons": {},
        "oracle": None,
        "diagnostics": {},
    }
    with StoreWriter.for_existing(store) as writer:
        writer.put(documents={schema.RESULTS: {"bridge-de-fr": document, "bli-de-fr": legacy_bli}})
    opened = Store(store)
    selection = opened.result("bridge-de-fr")
    assert selection.options is None and selection.chosen == document["chosen"]
    evaluation = opened.result("bli-de-fr")
    assert evaluation.accuracy_of("zero-shot") == 0.25 and math.isclose(evaluation.seconds, 1.5)


def test_a_store_written_before_kinds_still_reports(store, tmp_path):
    """The document shapes main wrote at 378c5c0 (no kind, format or options) give the same
    bridge and evaluation tables as the documents written now."""
    from neuronoverlap.report import write_report

    opened = Store(store)
    selection = opened.result("bridge-de-fr")
    evaluation = EvaluationResult.from_dict(
        as_stored(
            {
                "task": "bli",
                "name": "de-fr",
                "params": {"src": "de", "tgt": "fr"},
                "conditions": {
                    "zero-shot": {
                        "bridge": None,
                        **Accuracy(8, 3, 3 / 8, 0.1, 0.7, 0.1, 0.7, 0.95).to_dict(),
                    },
                    "bridge:en": {
                        "bridge": "en",
                        **Accuracy(8, 5, 5 / 8, 0.3, 0.9, 0.3, 0.9, 0.95).to_dict(),
                    },
                },
                "comparisons": {
                    "en": {
                        "bridge": "en",
                        "difference": 0.25,
                        "difference_ci": [-0.1, 0.6],
                        "mcnemar": {
                            "n": 8,
                            "only_a": 0,
                            "only_b": 2,
                            "statistic": 2.0,
                            "pvalue": 0.5,
                            "method": "exact",
                            "difference": 0.25,
                        },
                    }
                },
            }
        )
    )
    with StoreWriter.for_existing(store) as writer:
        writer.put_result(evaluation)
    now = write_report(store, tmp_path / "now", permutations=9)
    legacy = {k: v for k, v in selection.to_dict().items() if k not in ("kind", "format", "options")}
    old_bli = {k: v for k, v in evaluation.to_dict().items() if k not in ("kind", "format")}
    with StoreWriter.for_existing(store) as writer:
        writer.put(documents={schema.RESULTS: {"bridge-de-fr": legacy, "bli-de-fr": old_bli}})
    assert "kind" not in Store(store).get_json(schema.RESULTS, "bridge-de-fr")
    before = write_report(store, tmp_path / "before", permutations=9)
    assert set(before.tables) == set(now.tables)
    for name in (
        "bridge_de_fr",
        "bridge_de_fr_layers",
        "eval_bli-de-fr_conditions",
        "eval_bli-de-fr_comparisons",
    ):
        assert before.tables[name].read_text() == now.tables[name].read_text(), name
    data = json.loads(before.json.read_text())
    assert (
        data["verdicts"][0]["chosen"] == selection.chosen and data["verdicts"][0]["effect"] == "cannot tell"
    )


def test_a_damaged_selection_document_is_shown_as_stored(store, tmp_path):
    from neuronoverlap.report import write_report

    document = Store(store).get_json(schema.RESULTS, "bridge-de-fr")
    del document["per_layer_calibrated"]
    with StoreWriter.for_existing(store) as writer:
        writer.put(documents={schema.RESULTS: {"bridge-de-fr": document}})
    outputs = write_report(store, tmp_path / "out", permutations=9)
    data = json.loads(outputs.json.read_text())
    assert data["bridges"] == [] and [r["name"] for r in data["other_results"]] == ["bridge-de-fr"]
