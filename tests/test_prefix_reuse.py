"""Prefix reuse (models/prefix.py): the shared prefix's keys and values read once give the same
greedy text and the same next-token log-probabilities as reading every prompt whole."""

from __future__ import annotations

import copy

import pytest
import torch

from neuronoverlap.evaluation.generate import generate_texts, score_choices, shared_prefix_of
from neuronoverlap.models import StopRule, generate_greedy, next_token_log_probs
from neuronoverlap.models.prefix import common_prefix_ids, token_ids

WORDS = ["water", "fire", "house and garden", "dog", "a", "mountain", "river", "bread", "sun", "moon"]
WORDS += ["cat", "tree", "light", "window on the left", "hand", "child", "road", "night", "stone"]
EXAMPLES = [("water", "Wasser"), ("fire", "Feuer"), ("house", "Haus"), ("dog", "Hund"), ("cat", "Katze")]
STOPS = [
    StopRule.named("quote", 6),
    StopRule.named("reference", 6),
    StopRule(6, stop_at_newline=False, stop_at_closing_quote=False),
]


def few_shot(k: int) -> str:
    return "".join(f"English: {a}\nDeutsch: {b}\n" for a, b in EXAMPLES[:k])


def prompts_with(k: int, words=WORDS) -> list[str]:
    return [few_shot(k) + f"English: {w}\nDeutsch:" for w in words]


def whole(model):
    """`model` with prefix reuse impossible (its KV cache marked unverified): the reference."""
    clone = copy.copy(model)
    clone.kv_cache_ok = False
    return clone


class FirstStepWidths:
    """Records the width of each batch's first (prefill) forward."""

    def __init__(self, model):
        self.model, self.widths, self.original = model, [], model.step

    def __call__(self, input_ids, attention_mask, position_ids, past=None, **kwargs):
        if input_ids.shape[1] > 1:
            self.widths.append(input_ids.shape[1])
        return self.original(input_ids, attention_mask, position_ids, past=past, **kwargs)


@pytest.mark.parametrize("batch_size", [1, 3, 16])
@pytest.mark.parametrize("stop", STOPS, ids=["quote", "reference", "length"])
def test_greedy_text_equals_whole_prompts(tiny_llama, batch_size, stop):
    for k in (1, 5):  # prefixes of several lengths; suffixes of several lengths (padding)
        prompts = prompts_with(k, WORDS if batch_size > 1 else WORDS[:5])
        reused = generate_texts(tiny_llama, prompts, stop, batch_size, progress=False)
        reference = generate_texts(tiny_llama, prompts, stop, batch_size, progress=False, prefix_cache=False)
        assert reused == reference
        assert any(reused)  # the model writes something


def test_token_ids_equal_and_only_suffixes_are_prefilled(tiny_llama, monkeypatch):
    prompts = prompts_with(5)
    stop = STOPS[2]
    reference = generate_greedy(tiny_llama, prompts, stop)
    prefix = shared_prefix_of(tiny_llama, prompts, True)
    assert prefix is not None and prefix.n_tokens >= len(token_ids(tiny_llama, [few_shot(5)])[0]) - 1
    spy = FirstStepWidths(tiny_llama)
    monkeypatch.setattr(tiny_llama, "step", spy)
    reused = generate_greedy(tiny_llama, prompts, stop, prefix=prefix)
    assert [g.token_ids for g in reused] == [g.token_ids for g in reference]
    assert [g.prompt_ids for g in reused] == [g.prompt_ids for g in reference]
    longest = max(len(ids) for ids in token_ids(tiny_llama, prompts))
    assert spy.widths == [longest - prefix.n_tokens]  # one prefill, of the suffixes only


def test_next_token_log_probs_agree(tiny_llama):
    prompts = prompts_with(4)
    prefix = shared_prefix_of(tiny_llama, prompts, True)
    reused = next_token_log_probs(tiny_llama, prompts, prefix=prefix)
    reference = next_token_log_probs(tiny_llama, prompts)
    assert torch.allclose(reused, reference, atol=1e-4, rtol=0)
    choices = {"A": [39], "B": [38, 71]}
    a = score_choices(tiny_llama, prompts, choices, 4, False)
    b = score_choices(tiny_llama, prompts, choices, 4, False, prefix_cache=False)
    assert all(abs(x[c] - y[c]) < 1e-4 for x, y in zip(a, b, strict=True) for c in choices)


def test_a_boundary_that_merges_splits_where_the_tokeniser_agrees(tiny_llama):
    shared = few_shot(3) + "English: Was"  # "Was" + "ser" is one token sequence that differs
    prompts = [shared + s + "\nDeutsch:" for s in ("ser", "ch", "p", "hing")]
    text_prefix = token_ids(tiny_llama, [shared])[0]
    ids = token_ids(tiny_llama, prompts)
    assert ids[0][: len(text_prefix)] != text_prefix  # the text boundary would merge
    common = common_prefix_ids(ids)
    assert all(seq[: len(common)] == common for seq in ids) and len(common) < len(text_prefix)
    assert len(common) > len(token_ids(tiny_llama, [few_shot(3)])[0]) - 2
    stop = STOPS[2]
    assert generate_texts(tiny_llama, prompts, stop, 3, False) == generate_texts(
        whole(tiny_llama), prompts, stop, 3, False
    )


def test_common_prefix_leaves_every_sequence_a_suffix():
    assert common_prefix_ids([[1, 2, 3], [1, 2, 3]]) == [1, 2]
    assert common_prefix_ids([[1, 2, 3], [1, 2]]) == [1]
    assert common_prefix_ids([[1, 2], [3, 4]]) == []
    assert common_prefix_ids([]) == []


def test_without_a_verified_cache_the_whole_path_runs_with_one_note(tiny_llama, capsys):
    model = whole(tiny_llama)
    prompts = prompts_with(2, WORDS[:3])
    assert shared_prefix_of(model, prompts, True) is None
    generate_texts(model, prompts, STOPS[0], 2, False)
    generate_texts(model, prompts, STOPS[0], 2, False)
    assert capsys.readouterr().err.count("prefix reuse off") == 1
    assert shared_prefix_of(tiny_llama, prompts, False) is None  # turned off by the caller


def test_study_is_the_same_with_and_without_prefix_reuse(tiny_llama, tmp_path):
    from neuronoverlap.evaluation.validation import StudyConfig, run_study

    config = StudyConfig(example_seeds=(0, 1), n=5, max_new_tokens=3)
    pairs, bridges = [("de", "fr"), ("de", "it")], ["en", "es"]
    reused = run_study(tiny_llama, pairs, bridges, tmp_path / "a", config, progress=False)
    whole_run = run_study(tiny_llama, pairs, bridges, tmp_path / "b", config, False, prefix_cache=False)
    for name, run in reused.items():
        for seed, conditions in run.seeds.items():
            for condition, rows in conditions.items():
                other = whole_run[name].seeds[seed][condition]
                assert {k: v for k, v in rows.items() if k != "logprob"} == {
                    k: v for k, v in other.items() if k != "logprob"
                }
                assert rows["logprob"] == pytest.approx(other["logprob"], abs=1e-4)


def study_prompts(pairs, n_words: int, seed: int = 0) -> list[list[str]]:
    """Real study prompts (zero-shot, 5 non-identical examples, example seed `seed`) per pair."""
    from neuronoverlap.data import load_dictionary
    from neuronoverlap.evaluation.bli import PROMPT_STYLES, direct_prefix
    from neuronoverlap.evaluation.protocol import load_examples
    from neuronoverlap.probes.prompts import render

    style = PROMPT_STYLES["study"]
    out = []
    for src, tgt in pairs:
        words = load_dictionary(src, tgt, split="test").sample_source_words(n_words, seed).source_words
        examples = load_examples(src, [tgt], [], style.shots, seed, set(words), True)
        prefix = direct_prefix(style, src, tgt, examples)
        out.append([prefix + render(style.direct, src, tgt, w, style.names) for w in words])
    return out


@pytest.mark.slow
def test_gemma_study_prompts_same_greedy_text_and_log_probs(gemma):
    groups = study_prompts([("de", "fr"), ("es", "it"), ("pt", "en")], 67)
    stop = StopRule.named("quote", 2)
    for prompts in groups:  # 201 prompts, each pair's own few-shot prefix
        reused = generate_texts(gemma, prompts, stop, 16, progress=False)
        assert reused == generate_texts(gemma, prompts, stop, 16, progress=False, prefix_cache=False)
        part = prompts[:16]
        prefix = shared_prefix_of(gemma, part, True)
        assert prefix is not None and prefix.n_tokens > 40
        difference = next_token_log_probs(gemma, part, prefix=prefix) - next_token_log_probs(gemma, part)
        assert float(difference.abs().max()) < 1e-4
