"""Answer extraction and matching on hand-written generations in the scripts of all 15 languages."""

from __future__ import annotations

import unicodedata

import pytest

from neuronoverlap.evaluation.extraction import (
    extract_answer,
    extract_choice,
    is_hit,
    normalize_word,
    strip_edges,
)

# (language, generated continuation, expected first answer word)
EXTRACTIONS = [
    ("en", ' "dog"', "dog"),
    ("en", " Dog.", "Dog"),
    ("en", ' "dog" and "cat"', "dog"),
    ("en", " dog, cat", "dog"),
    ("en", ' dog→Deutsch:"Hund"', "dog"),
    ("en", ' "ice cream"', "ice"),
    ("en", "\n", ""),
    ("en", "", ""),
    ("en", '  \n "dog"', "dog"),
    ("en", " 'dog'", "dog"),
    ("en", ' "dog', "dog"),
    ("de", " „Hund“", "Hund"),
    ("de", ' "Straße"', "Straße"),
    ("de", " Hund (der)", "Hund"),
    ("de", ' "Mädchen".', "Mädchen"),
    ("de", " Hund\nEnglish: dog", "Hund"),
    ("de", " <i>Jahr</i>\n", "Jahr"),
    ("de", " <b>Haus</b><br/>Heim", "Haus"),
    ("fr", " <i><b>L'année</b></i>", "L'année"),
    ("fr", ' <span class="x">chat</span>', "chat"),
    ("en", " a<b", "a<b"),
    ("fr", " « chien »", "chien"),
    ("fr", " l'eau", "l'eau"),
    ("fr", ' "aujourd’hui"', "aujourd’hui"),
    ("fr", " »chien«", "chien"),
    ("it", ' "città"', "città"),
    ("it", " Perché?", "Perché"),
    ("pt", ' "coração"', "coração"),
    ("pt", ' "pão" ou "bolo"', "pão"),
    ("es", ' "¿perro?"', "perro"),
    ("es", " ¡Hola!", "Hola"),
    ("es", ' "niño"', "niño"),
    ("zh", " “狗”", "狗"),
    ("zh", "「狗」", "狗"),
    ("zh", " 狗，犬", "狗"),
    ("zh", " 狗。", "狗"),
    ("zh", " ＂狗＂", "狗"),
    ("zh", " 狗\u3000犬", "狗"),
    ("ja", " 「犬」", "犬"),
    ("ja", " 『犬』です", "犬"),
    ("ja", " 犬 (いぬ)", "犬"),
    ("ja", " 犬（いぬ）", "犬"),
    ("ja", " 犬、猫", "犬"),
    ("ar", ' "كِتَابٌ"', "كِتَابٌ"),
    ("ar", " كتاب،", "كتاب"),
    ("ar", " «كتاب»", "كتاب"),
    ("ar", " كتاب؟", "كتاب"),
    ("he", ' "שָׁלוֹם"', "שָׁלוֹם"),
    ("he", " ספר.", "ספר"),
    ("he", " בית־ספר", "בית־ספר"),
    ("he", ' "בַּיִת" (house)', "בַּיִת"),
    ("id", ' "anjing"', "anjing"),
    ("id", " anjing-anjing", "anjing-anjing"),
    ("tl", ' "kumain" ay', "kumain"),
    ("tl", " aso;", "aso"),
    ("fi", ' "hyvä"', "hyvä"),
    ("fi", " Äiti!", "Äiti"),
    ("hu", ' "szőlő"', "szőlő"),
    ("hu", " kőszegi:", "kőszegi"),
    ("sw", ' "mbwa" (dog)', "mbwa"),
    ("sw", " mbwa / paka", "mbwa"),
]


@pytest.mark.parametrize(("lang", "generated", "expected"), EXTRACTIONS)
def test_extract_answer(lang, generated, expected):
    assert extract_answer(generated) == expected


def test_every_language_has_extraction_cases():
    langs = {lang for lang, _, _ in EXTRACTIONS}
    assert langs == {"en", "de", "fr", "it", "pt", "es", "zh", "ja", "ar", "he", "id", "tl", "fi", "hu", "sw"}


# (language, answer, gold translations, hit?)
MATCHES = [
    ("en", "Dog", ["dog"], True),
    ("en", "dogs", ["dog"], False),
    ("en", "U.S.", ["u.s."], True),
    ("de", "mädchen", ["Mädchen"], True),
    ("de", "Madchen", ["mädchen"], False),
    ("de", "Hund", ["hunde", "hund"], True),
    ("fr", "été", ["ete"], False),
    ("fr", unicodedata.normalize("NFD", "été"), ["été"], True),  # decomposed accents
    ("it", "CITTÀ", ["città"], True),
    ("pt", "coracao", ["coração"], False),
    ("es", "Niño", ["niño"], True),
    ("zh", "狗", ["狗", "犬"], True),
    ("zh", "猫", ["狗"], False),
    ("ja", "ｲﾇ", ["イヌ"], True),  # half-width katakana (NFKC)
    ("ja", "犬", ["いぬ"], False),
    ("ar", "كِتَابٌ", ["كتاب"], True),  # harakat removed on both sides
    ("ar", "كـتاب", ["كتاب"], True),  # tatweel
    ("ar", "كتب", ["كتاب"], False),
    ("he", "שָׁלוֹם", ["שלום"], True),  # niqqud
    ("he", "שלום", ["שָׁלוֹם"], True),
    ("he", "שלם", ["שלום"], False),
    ("id", "Anjing", ["anjing"], True),
    ("tl", "aso", ["aso", "tuta"], True),
    ("fi", "ÄITI", ["äiti"], True),
    ("hu", "szolo", ["szőlő"], False),
    ("sw", "Mbwa", ["mbwa"], True),
    ("en", "", ["dog"], False),
]


@pytest.mark.parametrize(("lang", "answer", "golds", "hit"), MATCHES)
def test_is_hit(lang, answer, golds, hit):
    assert is_hit(answer, golds) is hit


@pytest.mark.parametrize(
    ("lang", "generated", "golds"),
    [
        ("de", " „Hund“, der", ["hund"]),
        ("ja", " 「犬」です。", ["犬"]),
        ("he", ' "כֶּלֶב".', ["כלב"]),
        ("ar", " «كَلْب»،", ["كلب"]),
        ("fr", " « Chien » (m.)", ["chien"]),
    ],
)
def test_extraction_then_match(lang, generated, golds):
    assert is_hit(extract_answer(generated), golds)


def test_normalize_and_strip_edges():
    assert strip_edges("«chien»,") == "chien"
    assert strip_edges("...") == ""
    assert normalize_word(" Straße ") == "straße"
    assert normalize_word("שָׁלוֹם") == "שלום"
    assert normalize_word("مُحَمَّد") == "محمد"


@pytest.mark.parametrize(
    ("reply", "letter"),
    [
        (" B\n", "B"),
        (" B: Paris", "B"),
        ("(c)", "C"),
        (" [D]", "D"),
        ("\n A", "A"),
        ("The answer is D.", "D"),
        (" Answer", None),
        (" a dog", None),
        (" E", None),
        ("", None),
    ],
)
def test_extract_choice(reply, letter):
    assert extract_choice(reply) == letter
