"""The count rule of probe sets (issue 26, item 4): word and answer positions by default, and a
store's probe sets are never reused under another rule nor mixed in one selection."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest

from neuronoverlap.errors import InputError
from neuronoverlap.options import TOKEN_COUNTS, ProbeOptions
from neuronoverlap.probes.counting import COUNTED_POSITIONS, check_count_rule, count_rule
from neuronoverlap.store import Store

TINY = ["--model", "tiny-llama", "-n", "4", "--max-new-tokens", "3", "--quiet"]


def probe(store, pair, *extra):
    from neuronoverlap.cli import main

    assert main(["probe", "--pair", pair, *TINY, "--store", str(store), *extra]) == 0


def test_a_rule_for_every_count_and_a_set_without_one_counted_every_position():
    assert tuple(COUNTED_POSITIONS) == TOKEN_COUNTS
    assert ProbeOptions().count == "answer"
    for rule, text in COUNTED_POSITIONS.items():
        assert count_rule({"counted_positions": text}) == rule
    assert count_rule({}) == "all"  # written before the parameter: every real token counted
    with pytest.raises(InputError, match="probe set de-fr records counted positions 'the words'"):
        count_rule({"counted_positions": "the words"}, "probe set de-fr")


def test_the_default_counts_word_and_answer_positions_only(tiny_llama, tmp_path):
    """The same prompts and answers, recorded by default and with count "all": the default stores
    its rule and counts fewer tokens per sample (the template and the language names are left
    out), and its probe sets are what the selection's parameters say."""
    from neuronoverlap.pipeline import record_probes

    options = ProbeOptions(n_samples=4, max_new_tokens=3)
    default, everything = tmp_path / "default.h5", tmp_path / "all.h5"
    record_probes(default, [("de", "fr")], tiny_llama, options, progress=False)
    record_probes(everything, [("de", "fr")], tiny_llama, replace(options, count="all"), progress=False)
    with Store(default) as answer, Store(everything) as every:
        for name in ("de-fr", "fr-de"):
            assert answer.probes(name).params["counted_positions"] == COUNTED_POSITIONS["answer"]
            assert every.probes(name).params["counted_positions"] == COUNTED_POSITIONS["all"]
            for field in ("prompts", "generations"):
                assert answer.probes(name).strings(field) == every.probes(name).strings(field)
            counted, all_tokens = answer.probes(name).tokens(), every.probes(name).tokens()
            assert np.all(counted >= 1) and np.all(counted < all_tokens)
            assert counted.sum() < all_tokens.sum() / 2  # most of a prompt is template
        assert check_count_rule(answer, ["de-fr", "fr-de"]) == "answer"
        assert check_count_rule(every, ["de-fr", "fr-de", "en-de"]) == "all"  # en-de: not held


def test_the_probe_command_records_answer_positions_unless_told(tmp_path):
    probe(tmp_path / "a.h5", "de-fr")
    probe(tmp_path / "b.h5", "de-fr", "--count", "all")
    assert count_rule(Store(tmp_path / "a.h5").probes("de-fr").params) == "answer"
    assert count_rule(Store(tmp_path / "b.h5").probes("fr-de").params) == "all"


def test_a_store_of_the_other_rule_is_refused_and_left_unchanged(tmp_path, refused):
    """Probe sets recorded with --count all are not reused by a command under the default (probe,
    select-bridge with or without --model): exit 2, one line naming the set, both rules and the
    fix, every file as it was; asked for --count all, the same store is used."""
    folder = tmp_path / "old"
    folder.mkdir()
    store = folder / "run.h5"
    probe(store, "de-fr", "--bridges", "en", "--count", "all")
    wanted = ("probe set de-fr", "--count all", "not the asked --count answer", "new --store")
    refused(["probe", "--pair", "de-fr", *TINY, "--store", store], folder, *wanted)
    refused(["probe", "--pair", "en-fr", *TINY, "--store", store], folder, "probe set en-fr", "--count all")
    selection = ["select-bridge", "--pair", "de-fr", "--bridges", "en", "--window", "1-2"]
    quick = ["--random-sets", "4", "--bootstrap", "0", "--quiet", "--store", str(store)]
    refused([*selection, *quick], folder, *wanted)
    refused([*selection, "--model", "tiny-llama", *quick], folder, *wanted)
    from neuronoverlap.cli import main

    assert main([*selection, *quick, "--count", "all"]) == 0
    result = Store(store).result("bridge-de-fr")
    assert result.parameters["count"] == "all"
    assert result.parameters["counted_positions"] == [COUNTED_POSITIONS["all"]]


def test_a_stored_selection_is_not_reused_under_another_rule(tiny_store_template, tmp_path):
    """`selection_scores` (validate's) reuses a stored selection only when the probe sets it was
    made from were recorded under the asked rule."""
    from neuronoverlap.options import BridgeOptions
    from neuronoverlap.pipeline.bridge import selection_scores

    store = tmp_path / "run.h5"
    shutil.copy(tiny_store_template, store)
    stored = Store(store).result("bridge-de-fr")
    assert stored.parameters["count"] == "answer"  # the template was recorded by default
    options = stored.options
    assert isinstance(options, BridgeOptions)
    assert selection_scores(store, ("de", "fr"), ["en"], options=options) == pytest.approx(stored.scores)
    before = store.read_bytes()
    with pytest.raises(InputError, match="probe set de-fr .* recorded with --count answer, not the asked"):
        selection_scores(store, ("de", "fr"), ["en"], options=options, probes=ProbeOptions(count="all"))
    assert store.read_bytes() == before


def test_sets_of_two_rules_are_never_mixed_in_one_selection(tmp_path):
    """de<->fr recorded with --count all beside en<->de and en<->fr by default (separate probe
    commands may do that): building O(s,t) and B(b; s,t) from them is an error naming two sets
    and their rules, in select_bridge and wherever else the sets are built."""
    from neuronoverlap.bridge import select_bridge
    from neuronoverlap.bridge.loader import bridge_sets

    store = tmp_path / "run.h5"
    probe(store, "de-fr", "--count", "all")
    probe(store, "en-de")
    probe(store, "en-fr")
    before = store.read_bytes()
    message = r"probe sets de-fr \(--count all\) and en-de \(--count answer\) .* different count rules"
    with pytest.raises(InputError, match=message):
        select_bridge(store, "de", "fr", ["en"], n_random=4, n_bootstrap=0, window=(1,), progress=False)
    with Store(store) as reader, pytest.raises(InputError, match=message):
        bridge_sets(reader, "de", "fr", ["en"])
    assert store.read_bytes() == before


@pytest.mark.slow
def test_the_default_on_the_embedded_model_counts_the_word_and_the_answer(gemma):
    """The demo's default on Gemma's tokenizer (zh->ja, CJK words, composed dictionary): each
    sample counts the tokens overlapping its word plus its fed-back answer, at least one, fewer
    than every position."""
    from neuronoverlap.models import StopRule, generate_greedy
    from neuronoverlap.probes.prompts import translation_probe_sets
    from neuronoverlap.probes.stats import ProbeBatchStats

    forward, _ = translation_probe_sets("zh", "ja", n=4, seed=0)
    spans, stop = forward.word_spans(), StopRule(max_new_tokens=4)
    answer = ProbeBatchStats(len(forward), gemma.n_layers, gemma.d_mlp)
    generations = generate_greedy(gemma, forward.prompts, stop, answer, count="answer", word_spans=spans)
    encoded = gemma.tokenizer(forward.prompts, return_offsets_mapping=True)
    for i, g in enumerate(generations):
        a, b = spans[i]
        assert forward.prompts[i][a:b] == forward.source_words[i]
        word = sum(1 for x, y in encoded["offset_mapping"][i] if y > x and x < b and y > a)
        assert 1 <= word < g.n_prompt_tokens
        assert int(answer.tokens[i]) == word + len(g.token_ids) - 1 < len(g.fed_ids)
