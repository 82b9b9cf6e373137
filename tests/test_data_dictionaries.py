"""Bilingual dictionaries: the real bundled MUSE and Wiktionary files, composition through
English, sampling, and malformed files."""

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuronoverlap.data import (
    DATA_ENV_VAR,
    BilingualDictionary,
    compose,
    load_dictionary,
    read_dictionary,
    read_word_pairs,
)
from neuronoverlap.errors import InputError

DATA = Path(__file__).resolve().parents[1] / "probes" / "data"
MUSE = DATA / "muse"


@pytest.fixture(autouse=True)
def _bundled_data(monkeypatch):
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)


def plain_pairs(*paths: Path) -> list[tuple[str, str]]:
    """An independent, minimal reading of clean dictionary files (as the test's oracle)."""
    pairs = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            fields = line.split("\t") if "\t" in line else line.split()
            if len(fields) == 2 and fields[1]:
                pairs.append((fields[0], fields[1]))
    return pairs


def gold(pairs: list[tuple[str, str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for s, t in pairs:
        out.setdefault(s, set()).add(t)
    return out


# ---- the real bundled data ------------------------------------------------------------------


def test_en_de_test_split_has_1500_source_words_with_all_gold_translations_in_file_order():
    d = load_dictionary("en", "de", "test")
    assert (d.src, d.tgt, d.direction, d.split) == ("en", "de", "en-de", "test")
    assert not d.composed and not d.inverted and d.pivot is None
    assert d.n_source_words == len(d.source_words) == 1500
    assert d.n_pairs == len(d.pairs) == 3660
    assert list(d.translations.items())[:3] == [
        ("okay", ("ok", "okay")),
        ("waves", ("welle", "wellen")),
        ("invented", ("erfunden", "erfand", "erfindung")),
    ]
    assert d.pairs == tuple(plain_pairs(MUSE / "en-de.5000-6500.txt"))


def test_provenance_names_the_file_and_its_checksum():
    d = load_dictionary("en", "de", "test")
    (source,) = d.sources
    assert source.path.name == "en-de.5000-6500.txt"
    assert source.sha256 == hashlib.sha256(source.path.read_bytes()).hexdigest()
    # the bundled file is MUSE's, unchanged
    assert source.sha256 == "142f68871e9a7bee04bef7df9a6baf27c8a4dee383c7153331157356b2d6ce97"
    meta = d.provenance()
    assert meta["direction"] == "en-de" and meta["composed"] is False
    assert meta["sha256"] == [source.sha256] and meta["n_source_words"] == 1500


def test_every_bundled_muse_file_loads_with_musess_split_sizes():
    files = sorted(MUSE.glob("*.txt"))
    assert len(files) == 92
    for path in files:
        pair, span, _ = path.name.split(".")
        src, tgt = pair.split("-")
        split = {"0-5000": "train", "5000-6500": "test"}[span]
        d = load_dictionary(src, tgt, split)
        assert d.n_source_words == (5000 if split == "train" else 1500), path.name
        assert not d.composed and d.sources[0].path == path


def test_train_and_test_source_words_are_disjoint_and_all_is_their_union():
    train, test = load_dictionary("fr", "en", "train"), load_dictionary("fr", "en", "test")
    both = load_dictionary("fr", "en", "all")
    assert not set(train.source_words) & set(test.source_words)
    assert both.source_words == train.source_words + test.source_words
    assert [s.path.name for s in both.sources] == ["fr-en.0-5000.txt", "fr-en.5000-6500.txt"]


def test_composed_zh_ja_pairs_share_an_english_translation_in_both_files():
    d = load_dictionary("zh", "ja", "test")
    assert d.composed and d.pivot == "en" and d.direction == "zh-ja"
    assert [s.path.name for s in d.sources] == [
        "zh-en.5000-6500.txt",
        "en-ja.0-5000.txt",
        "en-ja.5000-6500.txt",
    ]
    zh_en = gold(plain_pairs(MUSE / "zh-en.5000-6500.txt"))
    en_ja = gold(plain_pairs(MUSE / "en-ja.0-5000.txt", MUSE / "en-ja.5000-6500.txt"))
    assert d.n_pairs > 1000
    for zh, ja in d.pairs:
        assert any(ja in en_ja.get(en, ()) for en in zh_en[zh]), (zh, ja)
    # and nothing is missed: every zh word reaching a ja word through English is there
    expected = {(zh, ja) for zh, ens in zh_en.items() for en in ens for ja in en_ja.get(en, ())}
    assert set(d.pairs) == expected
    assert d.provenance()["pivot"] == "en"


def test_composition_with_the_same_split_on_both_legs_is_smaller():
    default = load_dictionary("zh", "ja", "test")
    same = load_dictionary("zh", "ja", "test", pivot_target_split="test")
    assert 0 < same.n_pairs < default.n_pairs
    assert set(same.pairs) <= set(default.pairs)


def test_a_pair_muse_has_is_not_composed():
    d = load_dictionary("de", "fr")
    assert not d.composed and d.sources[0].path.name == "de-fr.5000-6500.txt"


def test_swahili_comes_from_the_wiktionary_files():
    sw_en = load_dictionary("sw", "en", "test")
    assert sw_en.sources[0].path.name == "sw-en.test.txt" and not sw_en.inverted
    expected = gold(plain_pairs(DATA / "wiktionary" / "sw-en.test.txt"))
    assert {w: set(g) for w, g in sw_en.translations.items()} == expected
    assert "ule" not in sw_en.translations  # listed in the file without a translation
    en_sw = load_dictionary("en", "sw", "train")
    assert en_sw.inverted and en_sw.sources[0].path.name == "sw-en.train.txt"
    assert set(en_sw.pairs) == {(t, s) for s, t in load_dictionary("sw", "en", "train").pairs}


def test_swahili_to_german_is_composed_from_wiktionary_and_muse():
    d = load_dictionary("sw", "de")
    assert d.composed and d.pivot == "en"
    assert [s.path.name for s in d.sources] == ["sw-en.test.txt", "en-de.0-5000.txt", "en-de.5000-6500.txt"]
    assert d.n_source_words > 500


def test_inverse_twice_gives_the_same_pairs():
    d = load_dictionary("en", "it")
    back = d.inverse().inverse()
    assert set(back.pairs) == set(d.pairs) and not back.inverted
    assert d.inverse().direction == "it-en"


# ---- other folders: MUSE's own layout, missing pairs -----------------------------------------


@pytest.mark.parametrize("subdir", ["dictionaries", "crosslingual/dictionaries", "."])
def test_musess_own_folder_layouts_are_found(tmp_path, subdir):
    folder = tmp_path / subdir
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(MUSE / "en-de.5000-6500.txt", folder)
    d = load_dictionary("en", "de", "test", data_dir=tmp_path)
    assert d.n_source_words == 1500 and d.sources[0].path.parent == folder


def test_the_wiktionary_bli_layout_is_found(tmp_path):
    (tmp_path / "final").mkdir()
    shutil.copy(DATA / "wiktionary" / "sw-en.test.txt", tmp_path / "final" / "sw-en.test")
    d = load_dictionary("en", "sw", "test", data_dir=tmp_path)
    assert d.inverted and d.sources[0].path == tmp_path / "final" / "sw-en.test"
    assert d.pairs == load_dictionary("en", "sw", "test").pairs


def test_a_missing_pair_names_the_pair_and_the_folder(tmp_path):
    shutil.copy(MUSE / "en-de.5000-6500.txt", tmp_path)
    with pytest.raises(InputError) as err:
        load_dictionary("zh", "ja", "test", data_dir=tmp_path)
    assert "zh-ja" in str(err.value) and str(tmp_path) in str(err.value)
    with pytest.raises(InputError, match="en-fr"):
        load_dictionary("en", "fr", "test", data_dir=tmp_path)
    with pytest.raises(InputError, match="en-de dictionary \\(train split\\)"):
        load_dictionary("en", "de", "train", data_dir=tmp_path)


def test_only_the_reversed_file_is_inverted(tmp_path):
    shutil.copy(MUSE / "de-en.5000-6500.txt", tmp_path)
    d = load_dictionary("en", "de", data_dir=tmp_path)
    assert d.inverted and not d.composed
    assert set(d.pairs) == {(t, s) for s, t in plain_pairs(MUSE / "de-en.5000-6500.txt")}


def test_composition_uses_en_s_inverted_when_s_en_is_missing(tmp_path):
    for name in ["en-zh.5000-6500.txt", "en-ja.0-5000.txt", "en-ja.5000-6500.txt"]:
        shutil.copy(MUSE / name, tmp_path)
    d = load_dictionary("zh", "ja", data_dir=tmp_path)
    assert d.composed and d.n_pairs > 0
    zh_en = gold([(t, s) for s, t in plain_pairs(tmp_path / "en-zh.5000-6500.txt")])
    en_ja = gold(plain_pairs(tmp_path / "en-ja.0-5000.txt", tmp_path / "en-ja.5000-6500.txt"))
    assert all(any(ja in en_ja.get(en, ()) for en in zh_en[zh]) for zh, ja in d.pairs)


def test_legs_that_share_no_english_word_are_an_error(tmp_path):
    (tmp_path / "zh-en.5000-6500.txt").write_text("猫 cat\n", encoding="utf-8")
    (tmp_path / "en-ja.0-5000.txt").write_text("dog 犬\n", encoding="utf-8")
    (tmp_path / "en-ja.5000-6500.txt").write_text("fish 魚\n", encoding="utf-8")
    with pytest.raises(InputError, match="share no en word"):
        load_dictionary("zh", "ja", data_dir=tmp_path)


def test_bad_arguments():
    with pytest.raises(InputError, match="unknown dictionary split 'dev'"):
        load_dictionary("en", "de", "dev")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="two different languages"):
        load_dictionary("en", "EN")
    with pytest.raises(InputError, match="unknown language 'xx'"):
        load_dictionary("xx", "en")
    with pytest.raises(InputError, match="does not exist"):
        load_dictionary("en", "de", data_dir="/nonexistent/folder")


def test_compose_checks_the_legs_meet():
    en_de, en_fr = load_dictionary("en", "de"), load_dictionary("en", "fr")
    with pytest.raises(InputError, match="cannot compose en-de with en-fr"):
        compose(en_de, en_fr)
    with pytest.raises(InputError, match="round trip"):
        compose(en_de, en_de.inverse())


# ---- malformed files -------------------------------------------------------------------------


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def test_a_bad_line_names_file_and_line(tmp_path):
    good = "".join(f"word{i} wort{i}\n" for i in range(16))
    path = write(tmp_path / "en-de.5000-6500.txt", good + "foo\nbar baz\n")
    with pytest.raises(InputError) as err:
        read_word_pairs(path)
    assert str(err.value) == "en-de.5000-6500.txt:17: expected 'source target', got 'foo'"


@pytest.mark.parametrize("line", ["foo", "a b c", "\tb", "a\tb\tc", "a\t\tb"])
def test_lines_without_exactly_two_fields_are_errors(tmp_path, line):
    path = write(tmp_path / "x.txt", f"ok fine\n{line}\n")
    with pytest.raises(InputError, match=r"x\.txt:2: expected 'source target'"):
        read_word_pairs(path)


def test_bom_crlf_blank_lines_tabs_and_spaces(tmp_path):
    lines = ["\ufeffkazi\twork", "", "   ", "ice cream\taiskrimu", "sana  much", "ule\t", "sana\tlot"]
    path = write(tmp_path / "sw-en.test.txt", "\r\n".join(lines) + "\r\n")
    pairs, source = read_word_pairs(path)
    assert pairs == [("kazi", "work"), ("ice cream", "aiskrimu"), ("sana", "much"), ("sana", "lot")]
    assert source.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_repeated_pairs_are_kept_once(tmp_path):
    path = write(tmp_path / "x.txt", "a b\na c\na b\nd e\n")
    d = read_dictionary(path, "en", "de")
    assert d.translations == {"a": ("b", "c"), "d": ("e",)}


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"\xef\xbb\xbf\n", b"word\t\n"])
def test_a_file_without_pairs_is_an_error(tmp_path, content):
    path = write(tmp_path / "empty.txt", content)
    with pytest.raises(InputError, match=r"empty\.txt: no word pairs"):
        read_word_pairs(path)


def test_undecodable_bytes_are_an_error_with_the_line(tmp_path):
    path = write(tmp_path / "latin1.txt", b"a b\n" + "café coffee\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1\.txt:2: not valid UTF-8"):
        read_word_pairs(path)


def test_a_missing_file_is_an_error(tmp_path):
    with pytest.raises(InputError, match="cannot read dictionary"):
        read_word_pairs(tmp_path / "nope.txt")


words = st.text(alphabet=st.characters(blacklist_categories=("Z", "C")), min_size=1, max_size=8)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    pairs=st.lists(st.tuples(words, words), min_size=1, max_size=30),
    separator=st.sampled_from(["\t", " ", "  ", " \t "]),
    bom=st.booleans(),
    line_end=st.sampled_from(["\n", "\r\n"]),
)
def test_a_written_dictionary_reads_back(tmp_path, pairs, separator, bom, line_end):
    text = ("\ufeff" if bom else "") + "".join(f"{s}{separator}{t}{line_end}" for s, t in pairs)
    path = write(tmp_path / "roundtrip.txt", text)
    d = read_dictionary(path, "en", "de")
    assert d == BilingualDictionary.from_pairs("en", "de", pairs, sources=d.sources)
    assert set(d.pairs) == set(pairs)
    assert d.source_words == tuple(dict.fromkeys(s for s, _ in pairs))


# ---- sampling --------------------------------------------------------------------------------


def test_sampling_is_pinned_for_seed_0():
    """Same seed, same sample, on any machine: the values are fixed here."""
    d = load_dictionary("en", "de")
    assert d.sample_pairs(5, 0) == [
        ("expanding", "ausweitung"),
        ("genres", "genre"),
        ("inspiration", "inspirieren"),
        ("migration", "wanderungen"),
        ("excellence", "excellence"),
    ]
    words = d.sample_source_words(3, 42)
    assert dict(words.translations) == {
        "angry": ("wütend", "böse", "zornig", "verärgert", "sauer"),
        "monarch": ("monarch", "monarchen"),
        "quartet": ("quartett", "quartetts", "quartet"),
    }
    assert words.direction == "en-de" and words.sources == d.sources


def test_sampling_more_than_available():
    d = load_dictionary("en", "de")
    with pytest.raises(InputError, match="asked for 1501 source words .* only 1500"):
        d.sample_source_words(1501, 0)
    with pytest.raises(InputError, match="asked for 4000 pairs .* only 3660"):
        d.sample_pairs(4000, 0)
    everything = d.sample_pairs(4000, 0, allow_fewer=True)
    assert sorted(everything) == sorted(d.pairs)
    assert d.sample_source_words(2000, 1, allow_fewer=True).n_source_words == 1500
    with pytest.raises(InputError, match=">= 0"):
        d.sample_pairs(-1, 0)
    assert d.sample_pairs(0, 0) == []


def test_a_numpy_generator_is_accepted_as_seed():
    d = load_dictionary("en", "fr")
    assert d.sample_pairs(10, np.random.default_rng(7)) == d.sample_pairs(10, 7)


small_dictionaries = st.lists(
    st.tuples(st.sampled_from("abcdefghij"), st.sampled_from("klmnopq")),
    min_size=1,
    max_size=40,
).map(lambda pairs: BilingualDictionary.from_pairs("en", "de", pairs))


@given(d=small_dictionaries, seed=st.integers(0, 2**32), n=st.integers(0, 50), m=st.integers(0, 50))
def test_sampling_properties(d, seed, n, m):
    small, large = sorted((n, m))
    a = d.sample_pairs(small, seed, allow_fewer=True)
    b = d.sample_pairs(large, seed, allow_fewer=True)
    assert a == d.sample_pairs(small, seed, allow_fewer=True)  # deterministic
    assert a == b[: len(a)]  # a smaller sample is a prefix of a larger one
    assert len(set(b)) == len(b) == min(large, d.n_pairs)  # no repeats
    assert set(b) <= set(d.pairs)
    words = d.sample_source_words(small, seed, allow_fewer=True)
    assert words.n_source_words == min(small, d.n_source_words)
    assert all(d.translations[w] == golds for w, golds in words.translations.items())
