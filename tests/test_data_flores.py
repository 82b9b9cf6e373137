"""FLORES-200: the bundled files, the official layouts, alignment and metadata checks."""

import shutil
from pathlib import Path

import pytest

from neuronoverlap.data import (
    DATA_ENV_VAR,
    flores_file,
    flores_passages,
    read_flores,
    read_flores_aligned,
    read_flores_metadata,
)
from neuronoverlap.errors import InputError
from neuronoverlap.languages import get_language, known_codes

FLORES = Path(__file__).resolve().parents[1] / "probes" / "data" / "flores200"


@pytest.fixture(autouse=True)
def _bundled_data(monkeypatch):
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)


@pytest.mark.parametrize(("split", "n_lines"), [("dev", 997), ("devtest", 1012)])
def test_the_fifteen_languages_are_aligned(split, n_lines):
    texts = read_flores_aligned(known_codes(), split)
    assert list(texts) == known_codes()
    assert {len(lines) for lines in texts.values()} == {n_lines}
    assert all(line.strip() == line and line for lines in texts.values() for line in lines)
    assert len(read_flores_metadata(split)) == n_lines


def test_sentences_are_the_files_lines_stripped():
    en = read_flores("en", "dev")
    assert en == (FLORES / "dev" / "en.dev").read_text(encoding="utf-8").splitlines()
    tl_lines = (FLORES / "dev" / "tl.dev").read_text(encoding="utf-8").split("\n")[:-1]
    assert tl_lines[6].endswith(" ")  # the file has stray spaces; the reader drops them
    assert read_flores("tl") == [line.strip() for line in tl_lines]
    assert en[0].startswith("On Monday, scientists from the Stanford University")
    assert read_flores("deu_Latn") == read_flores("de", "dev")


def test_metadata_rows():
    rows = read_flores_metadata("dev")
    assert rows[0].url.startswith("https://en.wikinews.org/wiki/Scientists_say")
    assert rows[0].url == rows[1].url
    assert (rows[0].domain, rows[0].topic, rows[0].has_image, rows[0].has_hyperlink) == (
        "wikinews",
        "health",
        True,
        True,
    )
    assert {r.domain for r in rows} == {"wikibooks", "wikinews", "wikivoyage"}
    assert all(r.url.startswith("http") for r in rows)


def test_passages_join_the_dev_and_devtest_sentences_of_one_url():
    passages = flores_passages("en")
    assert len(passages) == 562
    grouped: dict[str, list[str]] = {}
    for split in ("dev", "devtest"):
        lines = (FLORES / split / f"en.{split}").read_text(encoding="utf-8").splitlines()
        meta = (FLORES / f"metadata_{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]
        for row, line in zip(meta, lines, strict=True):
            grouped.setdefault(row.split("\t")[0], []).append(line.strip())
    assert passages == {url: " ".join(lines) for url, lines in grouped.items()}
    assert list(flores_passages("sw")) == list(passages)  # same URLs, same order


def _official_layout(root: Path, codes=("en", "de"), naming="{flores}.{split}") -> Path:
    base = root / "flores200_dataset"
    for split in ("dev", "devtest"):
        (base / split).mkdir(parents=True)
        shutil.copy(FLORES / f"metadata_{split}.tsv", base)
        for code in codes:
            name = naming.format(flores=get_language(code).flores, split=split)
            shutil.copy(FLORES / split / f"{code}.{split}", base / split / name)
    return base


def test_the_official_flores200_layout_is_read(tmp_path):
    base = _official_layout(tmp_path)
    assert flores_file("en", "dev", tmp_path) == base / "dev" / "eng_Latn.dev"
    assert read_flores("de", "devtest", tmp_path) == read_flores("de", "devtest")
    assert flores_passages("de", tmp_path) == flores_passages("de")


def test_the_flores_plus_naming_is_read(tmp_path):
    _official_layout(tmp_path, naming="{split}.{flores}")
    assert read_flores("en", "dev", tmp_path / "flores200_dataset") == read_flores("en", "dev")


def test_files_of_different_lengths_are_an_error(tmp_path):
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "en.dev").write_text("one\ntwo\nthree\n", encoding="utf-8")
    (tmp_path / "dev" / "de.dev").write_text("eins\nzwei\n", encoding="utf-8")
    with pytest.raises(InputError, match="not line-aligned: en 3, de 2 lines"):
        read_flores_aligned(["en", "de"], "dev", tmp_path)


def test_a_file_that_disagrees_with_the_metadata_is_an_error(tmp_path):
    base = _official_layout(tmp_path, codes=("en",))
    path = base / "dev" / "eng_Latn.dev"
    path.write_text("\n".join(read_flores("en")[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="eng_Latn.dev has 996 lines but metadata_dev.tsv has 997"):
        read_flores("en", "dev", tmp_path)


def test_a_missing_language_names_it_and_the_folder(tmp_path):
    _official_layout(tmp_path, codes=("en",))
    with pytest.raises(InputError) as err:
        read_flores_aligned(["en", "sw"], "dev", tmp_path)
    assert "for sw" in str(err.value) and str(tmp_path) in str(err.value)


def test_an_empty_sentence_or_file_is_an_error(tmp_path):
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "en.dev").write_text("one\n\nthree\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"en\.dev:2: empty sentence"):
        read_flores("en", "dev", tmp_path)
    (tmp_path / "dev" / "en.dev").write_text("", encoding="utf-8")
    with pytest.raises(InputError, match=r"en\.dev: empty FLORES file"):
        read_flores("en", "dev", tmp_path)


def test_metadata_problems(tmp_path):
    with pytest.raises(InputError, match="no FLORES-200 metadata_dev.tsv"):
        read_flores_metadata("dev", tmp_path)
    (tmp_path / "metadata_dev.tsv").write_text("URL\tdomain\ttopic\nhttp://x\twiki\n")
    with pytest.raises(InputError, match=r"metadata_dev\.tsv:2: expected 'URL<TAB>domain"):
        read_flores_metadata("dev", tmp_path)
    (tmp_path / "metadata_dev.tsv").write_text("URL\tdomain\ttopic\n")
    with pytest.raises(InputError, match="no metadata rows"):
        read_flores_metadata("dev", tmp_path)
    (tmp_path / "metadata_dev.tsv").write_text("http://x\twiki\tscience\n")  # no header
    (row,) = read_flores_metadata("dev", tmp_path)
    assert (row.url, row.topic, row.has_image) == ("http://x", "science", False)


def test_passages_need_the_metadata(tmp_path):
    (tmp_path / "dev").mkdir()
    (tmp_path / "devtest").mkdir()
    (tmp_path / "dev" / "en.dev").write_text("one\n", encoding="utf-8")
    (tmp_path / "devtest" / "en.devtest").write_text("two\n", encoding="utf-8")
    with pytest.raises(InputError, match="metadata_dev.tsv"):
        flores_passages("en", tmp_path)


def test_bad_split_and_language():
    with pytest.raises(InputError, match="unknown FLORES split 'test'"):
        read_flores("en", "test")
    with pytest.raises(InputError, match="unknown language 'xx'"):
        read_flores("xx")
