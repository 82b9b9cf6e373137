"""MRC logic with a scripted generator: passages rebuilt per sentence, translation prompts and
their examples, letter answers, records."""

from __future__ import annotations

import re

import pytest

import neuronoverlap.evaluation.generate as generate_module
from neuronoverlap.data import flores_passages, read_belebele
from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.mrc import (
    MRCPrompts,
    evaluate_mrc,
    join_sentences,
    passage_sentences,
    question_prompt,
    sample_items,
    translation_prefix,
)
from neuronoverlap.models import Generation


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
    result = evaluate_mrc(FakeModel(), "sw", ["en"], n=6, seed=2, reference=True,
                          progress=False, n_resamples=100)
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
    result = evaluate_mrc(FakeModel(), "ja", question_lang="de", n=2, progress=False,
                          n_resamples=10)
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
