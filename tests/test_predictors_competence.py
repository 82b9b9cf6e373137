"""Competence (predictors/competence.py): the words are train words, never the pair's test words
nor the few-shot examples; on the embedded model the legs it knows score well."""

from __future__ import annotations

import pytest

from neuronoverlap.data import load_dictionary
from neuronoverlap.errors import InputError
from neuronoverlap.predictors.competence import competence_scores, leg_words


def test_leg_words_are_train_words_outside_the_test_split_and_the_examples():
    test_words = load_dictionary("de", "fr", split="test").source_words
    train = set(load_dictionary("de", "en", split="train").source_words)
    examples, words, _ = leg_words("de", "en", n=300, seed=1, shots=5, exclude=test_words)
    assert len(words) == 300 and len(set(words)) == 300
    assert set(words) <= train
    assert not set(words) & set(test_words)
    assert not set(words) & {e.source for e in examples}
    again = leg_words("de", "en", n=300, seed=1, shots=5, exclude=test_words)[1]
    assert again == words  # seeded


def test_bad_n(tiny_llama):
    with pytest.raises(InputError, match="n >= 1"):
        competence_scores(tiny_llama, "de", "fr", ["en"], n=0)


@pytest.mark.slow
def test_embedded_model_is_competent_where_expected(gemma):
    scores = competence_scores(gemma, "de", "fr", ["en"], n=8, batch_size=8)
    assert scores["competence-step1"]["en"] >= 0.4  # German -> English, a leg Gemma knows
    assert scores["competence"]["en"] == pytest.approx(
        scores["competence-step1"]["en"] * scores["competence-step2"]["en"]
    )
