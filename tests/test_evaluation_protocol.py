"""Few-shot examples of the study protocol: never an identical pair, the same source words for
every language of a run, seeded; and the bridge word kept whole up to its first separator."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuronoverlap.data import BilingualDictionary
from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.extraction import extract_bridge_word, normalize_word
from neuronoverlap.evaluation.protocol import choose_examples, is_identical, load_examples

# Few letters and short words, so that identical pairs (and case/accent variants) are common.
WORD = st.text(alphabet="abAé", min_size=1, max_size=3)
ENTRIES = st.dictionaries(WORD, st.lists(WORD, min_size=1, max_size=3, unique=True), min_size=1, max_size=25)


def _dictionary(tgt: str, entries: dict[str, list[str]]) -> BilingualDictionary:
    return BilingualDictionary.from_pairs(
        "de", tgt, [(w, g) for w, golds in entries.items() for g in golds], split="train"
    )


@settings(max_examples=200, deadline=None)
@given(
    target=ENTRIES, bridge_one=ENTRIES, bridge_two=ENTRIES, seed=st.integers(0, 2**16), k=st.integers(1, 6)
)
def test_filtered_examples_are_never_identical_pairs(target, bridge_one, bridge_two, seed, k):
    dictionaries = {
        "fr": _dictionary("fr", target),
        "en": _dictionary("en", bridge_one),
        "it": _dictionary("it", bridge_two),
    }
    try:
        examples = choose_examples(dictionaries, ["fr"], k, seed, non_identical=True)
    except InputError as exc:
        assert "usable non-identical few-shot words" in str(exc)
        return
    assert len(examples) == k and len({e.source for e in examples}) == k
    for e in examples:
        source, shown_target = normalize_word(e.source), normalize_word(e.words["fr"])
        assert source != shown_target
        assert not is_identical(e.source, target[e.source])  # no gold is the source word
        for bridge in ("en", "it"):
            bridge_word = normalize_word(e.words[bridge])
            assert bridge_word not in (source, shown_target)
            assert e.words[bridge] in dictionaries[bridge].translations[e.source]
        assert e.words["fr"] in target[e.source]


@settings(max_examples=100, deadline=None)
@given(target=ENTRIES, bridge=ENTRIES, seed=st.integers(0, 2**16))
def test_without_the_filter_every_shared_word_can_be_drawn(target, bridge, seed):
    dictionaries = {"fr": _dictionary("fr", target), "en": _dictionary("en", bridge)}
    shared = [w for w in target if w in bridge]
    if not shared:
        with pytest.raises(InputError):
            choose_examples(dictionaries, ["fr"], 1, seed)
        return
    examples = choose_examples(dictionaries, ["fr"], len(shared), seed)
    assert sorted(e.source for e in examples) == sorted(shared)
    assert all(e.words == {"fr": target[e.source][0], "en": bridge[e.source][0]} for e in examples)


def test_real_dictionaries_seeded_and_excluding_evaluated_words():
    exclude = {"the", "house"}
    one = load_examples("de", ["fr"], ["en", "it", "es"], 5, seed=1, exclude=exclude, non_identical=True)
    again = load_examples("de", ["fr"], ["en", "it", "es"], 5, seed=1, non_identical=True)
    other = load_examples("de", ["fr"], ["en", "it", "es"], 5, seed=2, non_identical=True)
    assert one == again and [e.source for e in one] != [e.source for e in other]
    for e in one:
        assert set(e.words) == {"fr", "en", "it", "es"} and e.source not in exclude
        assert len({normalize_word(e.source), normalize_word(e.words["fr"])}) == 2
    unfiltered = load_examples("de", ["fr"], ["en"], 400, seed=0)
    assert any(is_identical(e.source, [e.words["fr"]]) for e in unfiltered)  # real ones exist
    with pytest.raises(InputError, match="few-shot"):
        load_examples("de", ["fr"], ["en"], 10**6, seed=0)


@pytest.mark.parametrize(
    ("generated", "expected"),
    [
        (' "New York" (city)', "New York"),
        (" New  York, USA\nmore", "New York"),
        (' "chien"', "chien"),
        (" Hund (der)", "Hund"),
        (" <i>pomme de terre</i>; patate", "pomme de terre"),
        ("「水」です", "水"),
        ('"l’eau"→', "l’eau"),
        (" (Hund) Katze", "Hund) Katze"),
        ("\n\n", ""),
    ],
)
def test_bridge_word_kept_whole_up_to_first_separator(generated, expected):
    assert extract_bridge_word(generated) == expected
