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


def test_pairs_with_one_target_measure_each_second_leg_once(tiny_llama, monkeypatch):
    """A second leg b -> t reads no pair-specific word: predictor_table measures it once for all
    pairs with target t (a caller's `legs` cache spans its calls), and the scores are those of
    each pair measured alone."""
    from types import SimpleNamespace

    import neuronoverlap.predictors.competence as competence
    from neuronoverlap.predictors import predictor_table

    real, calls = competence.leg_accuracy, []

    def counted(model, a, b, **kw):
        calls.append((a, b, bool(kw.get("exclude"))))
        return real(model, a, b, **kw)

    monkeypatch.setattr(competence, "leg_accuracy", counted)
    pairs = [
        SimpleNamespace(src="de", tgt="fr", bridges=["en", "it"]),
        SimpleNamespace(src="es", tgt="fr", bridges=["en", "it"]),
    ]
    legs: dict = {}
    table = predictor_table(pairs[:1], ["competence"], model=tiny_llama, n=3, legs=legs)
    table2 = predictor_table(pairs[1:], ["competence"], model=tiny_llama, n=3, legs=legs)
    firsts = [c for c in calls if c[2]]
    seconds = [c for c in calls if not c[2]]
    assert sorted(firsts) == [("de", "en", True), ("de", "it", True), ("es", "en", True), ("es", "it", True)]
    assert sorted(seconds) == [("en", "fr", False), ("it", "fr", False)]  # once each, not twice
    monkeypatch.setattr(competence, "leg_accuracy", real)
    for pair, found in zip(pairs, (table, table2), strict=True):
        alone = competence_scores(tiny_llama, pair.src, pair.tgt, pair.bridges, n=3, seed=0)
        for rule, scores in alone.items():
            assert found[rule][f"{pair.src}-{pair.tgt}"] == scores
