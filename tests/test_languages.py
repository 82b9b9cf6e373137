"""The language registry: look-up, parsing of pairs and lists, taxonomy distances."""

import itertools

import pytest

from neuronoverlap import languages
from neuronoverlap.errors import InputError
from neuronoverlap.languages import (
    DEFAULT_BRIDGES,
    Language,
    get_language,
    get_language_by_flores,
    known_codes,
    parse_languages,
    parse_pair,
    register,
    resolve_language,
    taxonomy_distance,
)

PAPER_LANGUAGES = ["en", "de", "fr", "it", "pt", "es", "zh", "ja", "ar", "he", "id", "tl", "fi", "hu", "sw"]


def test_the_fifteen_languages_of_the_paper_are_built_in():
    assert sorted(known_codes()) == sorted(PAPER_LANGUAGES)
    assert set(DEFAULT_BRIDGES) <= set(known_codes())


def test_lookup_is_case_and_space_insensitive():
    german = get_language(" DE ")
    assert (german.code, german.name, german.endonym, german.flores) == (
        "de",
        "German",
        "Deutsch",
        "deu_Latn",
    )
    assert german.family == "Indo-European" and german.genus == "Germanic"


def test_unknown_code_error_lists_the_known_codes():
    with pytest.raises(InputError) as err:
        get_language("xx")
    message = str(err.value)
    assert "'xx'" in message and "\n" not in message
    assert all(code in message for code in known_codes())


def test_flores_codes_map_back_to_iso_codes():
    for code in known_codes():
        lang = get_language(code)
        assert get_language_by_flores(lang.flores) == lang
        assert resolve_language(lang.flores) == lang == resolve_language(code)
    assert get_language_by_flores("SWH_LATN").code == "sw"
    with pytest.raises(InputError, match="unknown FLORES-200 code 'xxx_Latn'.*eng_Latn"):
        resolve_language("xxx_Latn")


def test_parse_pair():
    src, tgt = parse_pair(" zh-ja ")
    assert (src.code, tgt.code) == ("zh", "ja")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("zh", "written 'src-tgt'"),
        ("zh-ja-ko", "written 'src-tgt'"),
        ("-ja", "written 'src-tgt'"),
        ("zh-", "written 'src-tgt'"),
        ("zh-zh", "two different languages"),
        ("zh-xx", "unknown language 'xx'"),
    ],
)
def test_parse_pair_errors(spec, message):
    with pytest.raises(InputError, match=message):
        parse_pair(spec)


def test_parse_languages():
    assert [lang.code for lang in parse_languages("en, de,fr")] == ["en", "de", "fr"]
    assert [lang.code for lang in parse_languages(["sw", "ja"])] == ["sw", "ja"]
    with pytest.raises(InputError, match="empty language"):
        parse_languages("en,,de")
    with pytest.raises(InputError, match="empty language"):
        parse_languages([])
    with pytest.raises(InputError, match="listed twice: en"):
        parse_languages("en,de,EN")


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        ("en", "en", 0),
        ("en", "de", 1),  # both Germanic
        ("ar", "he", 1),  # both Semitic
        ("fr", "es", 1),  # both Romance
        ("en", "fr", 2),  # Germanic vs Romance
        ("fi", "hu", 2),  # Finnic vs Ugric
        ("id", "tl", 2),  # Malayo-Sumbawan vs Philippine, both Malayo-Polynesian
        ("en", "zh", 3),  # different families
        ("ar", "sw", 3),
        ("en", "id", 3),  # different families, whatever the lineage depth
    ],
)
def test_taxonomy_distance(a, b, distance):
    assert taxonomy_distance(a, b) == distance
    assert taxonomy_distance(b, a) == distance


def test_taxonomy_distance_is_a_metric_on_the_registry():
    d = {(a, b): taxonomy_distance(a, b) for a in PAPER_LANGUAGES for b in PAPER_LANGUAGES}
    for a, b, c in itertools.product(PAPER_LANGUAGES, repeat=3):
        assert (d[a, b] == 0) == (a == b)
        assert d[a, b] == d[b, a]
        assert d[a, c] <= d[a, b] + d[b, c]


def test_register_adds_a_language(monkeypatch):
    monkeypatch.setattr(languages, "_REGISTRY", dict(languages._REGISTRY))
    register(Language("ko", "Korean", "한국어", "kor_Hang", "Hang", ("Koreanic",)))
    assert get_language("ko").endonym == "한국어"
    assert get_language_by_flores("kor_Hang").code == "ko"
    assert taxonomy_distance("ko", "ja") == 3
    with pytest.raises(InputError, match="lineage"):
        register(Language("xx", "X", "X", "xxx_Latn", "Latn", ()))
