"""MRC logic with a scripted generator: passages rebuilt per sentence, translation prompts and
their examples, letter answers, records."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import neuronoverlap.evaluation.generate as generate_module
from neuronoverlap.data import flores_passages, read_belebele
from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.mrc import (
    MRCPrompts,
    evaluate_mrc,
    join_sentences,
    letter_token_ids,
    passage_sentences,
    question_prompt,
    sample_items,
    translation_prefix,
)
from neuronoverlap.models import Generation


class LetterTokenizer:
    """' A'..' D' are tokens 1-4 and 'A'..'D' tokens 5-8; anything else is two tokens."""

    def encode(self, text, add_special_tokens=False):
        letters = {f" {c}": 1 + i for i, c in enumerate("ABCD")}
        letters.update({c: 5 + i for i, c in enumerate("ABCD")})
        return [letters[text]] if text in letters else [0, 0]


class FakeModel:
    name = "fake"
    device = "cpu"
    dtype = "float32"

    def fingerprint(self) -> str:
        return "fake@000000000000"

    def config_summary(self) -> dict:
        return {"name": self.name}


@pytest.fixture
def scripted(monkeypatch):
    """Translations become `T(<first 10 characters>)`; every question is answered ' A'."""
    seen: list[str] = []

    def fake(model, prompts, stop=None, consumer=None):
        seen.extend(prompts)
        out = []
        for prompt in prompts:
            if prompt.endswith("Answer:"):
                out.append(Generation(prompt, " A\n"))
            else:
                sentence = prompt.split("\n")[-2].split(": ", 1)[1]
                out.append(Generation(prompt, f" T({sentence[:10]})\nmore"))
        return out

    monkeypatch.setattr(generate_module, "generate_greedy", fake)
    return seen


def test_passage_sentences_rebuild_flores_passages():
    sentences = passage_sentences("sw")
    passages = flores_passages("sw")
    assert sentences.keys() == passages.keys()
    assert all(" ".join(sentences[url]) == passages[url] for url in passages)


def test_join_sentences_by_script():
    assert join_sentences(["A b.", "C d."], "en") == "A b. C d."
    assert join_sentences(["犬です。", "猫です。"], "ja") == "犬です。猫です。"
    assert join_sentences(["A.", "", "B."], "sw") == "A. B."


def test_sample_items_seeded():
    items = read_belebele("en")
    first = sample_items("en", 5, 1)
    assert first == sample_items("en", 5, 1) and first != sample_items("en", 5, 2)
    assert len({(i.url, i.question_number) for i in first}) == 5
    assert sample_items("en", None, 0) == items
    with pytest.raises(InputError):
        sample_items("en", len(items) + 1, 0)


def test_question_prompt_lists_choices():
    item = read_belebele("en")[0]
    text = question_prompt(MRCPrompts().question, item, passage="PASSAGE")
    assert "Passage: PASSAGE\n" in text and text.endswith("Answer:")
    for letter, answer in zip("ABCD", item.answers, strict=True):
        assert f"\n{letter}: {answer}\n" in text or text.endswith(f"{letter}: {answer}\nAnswer:")


def test_translation_prefix_uses_other_passages():
    prompts = MRCPrompts(translation_shots=3)
    passages = flores_passages("sw")
    excluded = set(list(passages)[:50])
    prefix = translation_prefix(prompts, "sw", "en", excluded, seed=0)
    blocks = prefix.split("\n\n")[:-1]
    assert len(blocks) == 3
    for block in blocks:
        source, target = block.split("\n")
        assert source.startswith("Swahili: ") and target.startswith("English: ")
        assert len(source) - len("Swahili: ") <= 160
        assert not any(source.removeprefix("Swahili: ") in passages[u] for u in excluded)
    assert translation_prefix(MRCPrompts(translation_shots=0), "sw", "en", set(), 0) == ""


def test_zero_shot_bridged_and_reference(scripted):
    result = evaluate_mrc(
        FakeModel(), "sw", ["en"], n=6, seed=2, reference=True, progress=False, n_resamples=100
    )
    items = sample_items("en", 6, 2)
    expected = sum(item.correct_letter == "A" for item in items) / 6
    for name in ("zero-shot", "bridge:en", "reference"):
        condition = result.conditions[name]
        assert condition.accuracy.accuracy == pytest.approx(expected)
        assert [r.answer for r in condition.records] == ["A"] * 6
        assert [r.correct for r in condition.records] == [i.correct_letter for i in items]
    sentences = passage_sentences("sw")
    for record in result.conditions["bridge:en"].records:
        expected_passage = " ".join(f"T({s[:10]})" for s in sentences[record.url])
        assert record.passage == expected_passage and record.passage_language == "en"
    zero = result.conditions["zero-shot"].records
    assert all(r.passage == flores_passages("sw")[r.url] for r in zero)
    reference = result.conditions["reference"].records
    assert [r.passage for r in reference] == [i.passage for i in items]
    translations = [p for p in scripted if not p.endswith("Answer:")]
    assert len(translations) == sum(len(sentences[u]) for u in {r.url for r in zero})
    assert all(p.count("\n\n") == 2 and p.endswith("\nEnglish:") for p in translations)
    assert result.comparisons["en"].mcnemar.method == "none"
    answers = result.diagnostics["zero-shot"]["answers"]
    assert answers == {"A": 6, "B": 0, "C": 0, "D": 0, "none": 0}
    assert sum(result.diagnostics["bridge:en"]["correct"].values()) == 6
    assert result.params["n_evaluated"] == 6 and result.model["fingerprint"] == "fake@000000000000"


def test_german_questions(scripted):
    result = evaluate_mrc(FakeModel(), "ja", question_lang="de", n=2, progress=False, n_resamples=10)
    record = result.conditions["zero-shot"].records[0]
    assert record.question == sample_items("de", 2, 0)[0].question
    assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", record.passage)


def test_bad_mrc_inputs(scripted):
    run = dict(progress=False)
    with pytest.raises(InputError, match="passage language"):
        evaluate_mrc(FakeModel(), "sw", ["sw"], **run)
    with pytest.raises(InputError, match="twice"):
        evaluate_mrc(FakeModel(), "sw", ["en", "en"], **run)
    with pytest.raises(InputError, match="lacks"):
        evaluate_mrc(FakeModel(), "sw", prompts=MRCPrompts(question="{passage} {question}"), **run)
    with pytest.raises(InputError, match="no Belebele file"):
        evaluate_mrc(FakeModel(), "sw", question_lang="fr", n=2, **run)
    with pytest.raises(InputError, match="needs bridges"):
        evaluate_mrc(FakeModel(), "sw", ranking=["en"], **run)
    assert scripted == []


def test_likelihood_scoring_picks_the_most_probable_letter(monkeypatch):
    # the fake model's next-token distribution favours the correct letter's " X" token for the
    # first question and "C" (without a space) for every other one
    items = sample_items("en", 4, 0)
    first = items[0].question

    def fake_log_probs(model, prompts):
        rows = torch.full((len(prompts), 9), -10.0)
        for row, prompt in enumerate(prompts):
            if first in prompt:
                rows[row, 1 + "ABCD".index(items[0].correct_letter)] = -0.1
            else:
                rows[row, 7] = -0.2
        return rows

    monkeypatch.setattr(generate_module, "next_token_log_probs", fake_log_probs)
    model = FakeModel()
    model.tokenizer = LetterTokenizer()
    result = evaluate_mrc(model, "sw", n=4, seed=0, progress=False, n_resamples=10, scoring="likelihood")
    records = result.conditions["zero-shot"].records
    assert records[0].answer == items[0].correct_letter and records[0].hit
    assert [r.answer for r in records[1:]] == ["C"] * 3
    assert records[1].letter_log_probs["C"] == pytest.approx(-0.2 + np.log1p(np.exp(-9.8)))
    assert result.params["scoring"] == "likelihood"


def test_letter_tokens_and_bad_scoring():
    assert letter_token_ids(LetterTokenizer()) == {"A": [1, 5], "B": [2, 6], "C": [3, 7], "D": [4, 8]}

    class NoLetters:
        def encode(self, text, add_special_tokens=False):
            return [1, 2]

    class SameToken:
        def encode(self, text, add_special_tokens=False):
            return [7]

    with pytest.raises(InputError, match="no single token"):
        letter_token_ids(NoLetters())
    with pytest.raises(InputError, match="share a token"):
        letter_token_ids(SameToken())
    with pytest.raises(InputError, match="unknown scoring"):
        evaluate_mrc(FakeModel(), "sw", n=2, progress=False, scoring="vote")
