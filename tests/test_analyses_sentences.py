"""Per-sentence FLORES statistics on a real tiny model, and the spectrum with intervals."""

from __future__ import annotations

import csv
import json

import pytest

from neuronoverlap.analyses.agnostic import agnostic_neurons
from neuronoverlap.analyses.sentences import (
    load_blocks,
    load_sentence_counts,
    record_sentence_counts,
    sentence_languages,
)
from neuronoverlap.analyses.uncertainty import write_uncertain_spectrum
from neuronoverlap.errors import InputError
from neuronoverlap.probes import flores_sentences, open_writer, record_corpus
from neuronoverlap.store import Store

LANGS = ("en", "de", "fr", "ar")


@pytest.fixture(scope="module")
def store_path(tmp_path_factory, tiny_llama):
    path = tmp_path_factory.mktemp("sentences") / "run.h5"
    with open_writer(path, tiny_llama) as writer:
        for lang in LANGS:
            sentences, params = flores_sentences(lang, 12)
            record_corpus(tiny_llama, writer, lang, sentences, params, batch_size=4, progress=False)
            status = record_sentence_counts(
                tiny_llama, writer, lang, sentences, params, batch_size=4, progress=False
            )
            assert status == "recorded"
    return path


def test_sentence_counts_sum_to_the_corpus_totals(store_path, tiny_llama):
    store = Store(store_path)
    assert sentence_languages(store_path) == sorted(LANGS)
    for lang in LANGS:
        counts = load_sentence_counts(store_path, lang)
        corpus = store.corpus(lang)
        assert counts.n_sentences == 12
        assert (counts.fire_count.sum(axis=0) == corpus.fire_count()).all()
        assert counts.tokens.sum() == corpus.n_tokens
        assert counts.activation_probability() == pytest.approx(corpus.activation_probability())
        sentences, _ = flores_sentences(lang, 12)
        encoded = tiny_llama.tokenizer(sentences[3])["input_ids"]
        assert counts.sentence_token_ids()[3].tolist() == encoded


def test_rerun_skips_and_other_parameters_are_refused(store_path, tiny_llama):
    sentences, params = flores_sentences("en", 12)
    with open_writer(store_path, tiny_llama) as writer:
        assert (
            record_sentence_counts(tiny_llama, writer, "en", sentences, params, batch_size=4, progress=False)
            == "already stored"
        )
        with pytest.raises(InputError, match="recorded differently.*batch_size"):
            record_sentence_counts(tiny_llama, writer, "en", sentences, params, batch_size=3, progress=False)
    with pytest.raises(InputError, match="no per-sentence statistics for 'he'"):
        load_sentence_counts(store_path, "he")


def test_uncertain_spectrum_writes_intervals_support_and_partial_mantel(store_path, tmp_path):
    blocks = load_blocks(store_path, LANGS, block_size=2)
    assert blocks.n_blocks == 6 and blocks.type_counts is not None
    out = tmp_path / "spectrum"
    outputs, result, partial = write_uncertain_spectrum(
        out,
        blocks,
        resamples=20,
        n_permutations=99,
        seed=3,
        top_rate=0.05,
        measure="jaccard",
        agnostic_share=0.8,
    )
    names = {p.name for p in out.iterdir()}
    assert {
        "bootstrap_similarity.csv",
        "bootstrap_layerwise.csv",
        "bootstrap_thirds.csv",
        "dendrogram_support.csv",
        "bootstrap.json",
        "partial_mantel.json",
        "mantel.json",
    } <= names
    with (out / "bootstrap_similarity.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 * 6
    jaccard = outputs.matrices["jaccard"].values
    for row in rows:
        assert float(row["low"]) <= float(row["high"])
        if row["measure"] == "jaccard":
            i, j = LANGS.index(row["language_a"]), LANGS.index(row["language_b"])
            assert float(row["estimate"]) == pytest.approx(jaccard[i, j])
    summary = json.loads((out / "bootstrap.json").read_text())
    assert summary["parameters"]["resamples"] == 20
    assert summary["parameters"]["agnostic_share"] == 0.8
    assert summary["mantel_r"]["estimate"] == pytest.approx(outputs.mantel.statistic)
    assert set(summary["partial_mantel_r"]) == {"script", "subword", "script_and_subword"}
    assert set(partial) == set(summary["partial_mantel_tests"])
    shares, differences = summary["mean_third_shares"], summary["mean_third_share_differences"]
    assert list(differences) == ["middle - final", "middle - early"]
    pairs = {"middle - final": ("middle", "final"), "middle - early": ("middle", "early")}
    for name, (a, b) in pairs.items():
        assert differences[name]["estimate"] == pytest.approx(shares[a]["estimate"] - shares[b]["estimate"])
        assert differences[name]["low"] <= differences[name]["high"]
    mantel = json.loads((out / "mantel.json").read_text())
    expected = int(agnostic_neurons(blocks.probabilities(), 0.8).sum())
    assert mantel["parameters"]["n_agnostic"] == expected


def test_spectrum_command_with_bootstrap_records_and_prints_intervals(tmp_path, capsys):
    from neuronoverlap.cli import main

    store, out = tmp_path / "run.h5", tmp_path / "spectrum"
    args = [
        "spectrum",
        "--model",
        "tiny-llama",
        "--langs",
        "en,de,fr,he",
        "-n",
        "8",
        "--store",
        str(store),
        "--out",
        str(out),
        "--top-rate",
        "0.05",
        "--permutations",
        "99",
        "--bootstrap",
        "20",
        "--block-size",
        "2",
        "--agnostic-share",
        "0.9",
        "--quiet",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "per-sentence statistics he: recorded (8 sentences)" in printed
    assert "20 resamples of 4 blocks of 2 sentences, 95% intervals" in printed
    assert "partial Mantel r given script_and_subword" in printed
    assert "mean Jaccard gaps: genus - family" in printed and "per third: early" in printed
    assert "paired differences of those shares: middle - final" in printed and "; middle - early" in printed
    assert json.loads((out / "bootstrap.json").read_text())["parameters"]["block_size"] == 2
    assert main(args) == 0
    assert "per-sentence statistics" not in capsys.readouterr().out  # already stored
    assert main([*args[:-1], "--bootstrap", "-1"]) == 2
    assert "--bootstrap must be at least 0" in capsys.readouterr().err


def test_report_shows_the_spectrum_intervals(store_path, tmp_path):
    from neuronoverlap.report import write_report

    outputs = write_report(store_path, tmp_path / "report", top_rate=0.05, permutations=99, bootstrap=15)
    table = (tmp_path / "report" / "tables" / "spectrum.csv").read_text()
    assert "15 resamples of 3 blocks of 5 sentences" in table
    assert "Mantel r (95% interval)" in table and "partial Mantel r given script_and_subword" in table
    assert "Bootstrap 95% interval of Mantel r" in (tmp_path / "report" / "summary.md").read_text()
    assert (tmp_path / "report" / "spectrum" / "bootstrap.json").exists()
    thirds = (tmp_path / "report" / "tables" / "spectrum_third_intervals.csv").read_text()
    assert "middle - final" in thirds and "middle - early" in thirds
    pairs = (tmp_path / "report" / "tables" / "spectrum_pair_intervals.csv").read_text()
    assert pairs.splitlines()[0].startswith("pair,shared,shared low,shared high,Jaccard")
    assert len(pairs.splitlines()) == 1 + 6
    assert "dendrogram_support.csv" in outputs.html.read_text()
    assert outputs.html.exists()


def test_overlap_definitions_compared_on_a_real_store(store_path, tiny_llama):
    from neuronoverlap.analyses.definitions import compare_overlap_definitions, definitions_table
    from neuronoverlap.models import StopRule
    from neuronoverlap.probes import record_probe_set, translation_probe_sets

    with open_writer(store_path, tiny_llama) as writer:
        for probe_set in translation_probe_sets("de", "fr", 5, seed=0):
            record_probe_set(
                tiny_llama, writer, probe_set, batch_size=4, stop=StopRule(max_new_tokens=3), progress=False
            )
    store = Store(store_path)
    probabilities = {lang: store.corpus(lang).activation_probability() for lang in LANGS}
    rows = compare_overlap_definitions(
        store, [("de", "fr")], probabilities, top_rate=0.05, agnostic_share=0.5
    )
    assert [r["definition"] for r in rows] == ["pooled", "directions", "corpus"]
    pooled, directions, corpus = rows
    assert pooled["jaccard_with_pooled"] == 1.0 and corpus["jaccard_with_corpus"] == 1.0
    assert sum(corpus["per_layer"]) == corpus["neurons"]
    assert corpus["share_early"] + corpus["share_middle"] + corpus["share_final"] == pytest.approx(1)
    from neuronoverlap.sets import ProbeSamples, overlap_set

    both = [
        ProbeSamples(f"{a}-{b}", store.probes(a, b).array("probability"), store.probes(a, b).tokens())
        for a, b in (("de", "fr"), ("fr", "de"))
    ]
    brute = overlap_set("directions", *both, top_rate=0.05).mask & agnostic_neurons(probabilities, 0.5)
    assert directions["agnostic"] == int(brute.sum())
    assert "| de-fr | directions |" in definitions_table(rows)


def test_blocks_refuse_corpora_of_different_sentences(tmp_path, tiny_llama):
    path = tmp_path / "run.h5"
    with open_writer(path, tiny_llama) as writer:
        for lang, n in (("en", 6), ("de", 8)):
            sentences, params = flores_sentences(lang, n)
            record_sentence_counts(tiny_llama, writer, lang, sentences, params, batch_size=4, progress=False)
    with pytest.raises(InputError, match="same FLORES sentences"):
        load_blocks(path, ["en", "de"], block_size=2)


def test_blocks_refuse_statistics_of_two_tokenizers(tmp_path, tiny_llama, monkeypatch):
    from neuronoverlap.analyses import sentences as module

    path = tmp_path / "run.h5"
    with open_writer(path, tiny_llama) as writer:
        for lang in ("en", "de", "fr"):
            if lang == "fr":  # as if fr had been recorded with another tokenizer
                monkeypatch.setattr(module, "tokenizer_fingerprint", lambda model: "0" * 16)
            sentences, params = flores_sentences(lang, 6)
            record_sentence_counts(tiny_llama, writer, lang, sentences, params, batch_size=4, progress=False)
    monkeypatch.undo()
    fingerprint = module.tokenizer_fingerprint(tiny_llama)
    assert load_sentence_counts(path, "de").params["tokenizer"] == fingerprint != "0" * 16
    assert load_blocks(path, ["en", "de"], block_size=3).n_blocks == 2
    with pytest.raises(InputError, match="tokenised differently"):
        load_blocks(path, ["en", "de", "fr"], block_size=3)
