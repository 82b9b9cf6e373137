"""Belebele: both layouts, the real bundled items, passage URLs and passages in other languages."""

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from neuronoverlap.data import (
    DATA_ENV_VAR,
    BelebeleItem,
    belebele_file,
    flores_passages,
    match_passage_url,
    passage_urls,
    read_belebele,
    read_belebele_file,
    unquote_csv,
    with_passages,
)
from neuronoverlap.errors import InputError

BELEBELE = Path(__file__).resolve().parents[1] / "probes" / "data" / "belebele"


@pytest.fixture(autouse=True)
def _bundled_data(monkeypatch):
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)


@pytest.fixture(scope="module")
def english() -> list[BelebeleItem]:
    return read_belebele("en")


def test_bundled_items_parse_with_four_answers_and_one_correct(english):
    german = read_belebele("deu_Latn")
    for items, lang in [(english, "eng_Latn"), (german, "deu_Latn")]:
        assert len(items) == 900  # 488 passages with one or two questions
        assert len({item.passage for item in items}) == 488
        assert all(len(item.answers) == 4 and all(item.answers) for item in items)
        assert all(0 <= item.correct <= 3 and item.question for item in items)
        assert {item.language for item in items} == {item.passage_language for item in items}
        assert {item.language for item in items} == {lang}
    # the questions are the same, in the same order, in both languages
    assert [(i.url, i.question_number, i.correct) for i in english] == [
        (i.url, i.question_number, i.correct) for i in german
    ]
    raw = [json.loads(line) for line in (BELEBELE / "eng_Latn.jsonl").open(encoding="utf-8")]
    expected = [sum(a["correct"] for a in q["answers"]) for row in raw for q in row["items"]]
    assert expected == [1] * 900


def test_the_first_item(english):
    item = english[0]
    assert item.passage.startswith("Make sure your hand is as relaxed as possible")
    assert item.url == "https://en.wikibooks.org/wiki/Accordion/Right_hand"
    assert item.question_number == 1 and item.correct_letter == "A"
    assert item.correct_answer == ("For additional volume, increase the force with which you hit the keys")
    assert english[1].question_number == 2 and english[1].passage == item.passage


def test_csv_quoting_of_the_bundled_passages_is_undone(english):
    raw = [json.loads(line)["text"] for line in (BELEBELE / "eng_Latn.jsonl").open()]
    assert sum(text.startswith('"') for text in raw) == 92
    quoted = [item.passage for item in english if '""' in item.passage]
    assert quoted == []
    hu = next(item for item in english if "emissions per unit of GDP" in item.passage)
    assert hu.passage.startswith('"We will endeavour') and hu.passage.endswith('capabilities."')


def test_rebuilt_english_passages_match_the_belebele_text(english):
    passages = flores_passages("en")
    same_text = sum(passages.get(item.url) == item.passage for item in english)
    assert same_text >= 0.95 * len(english)  # in fact every one
    urls = passage_urls(english)
    assert sum(url == item.url for url, item in zip(urls, english, strict=True)) >= 0.95 * 900
    assert all(url is None or url == item.url for url, item in zip(urls, english, strict=True))


def test_german_passages_are_matched_against_german_flores(english):
    german = read_belebele("de")
    urls = passage_urls(german)
    assert sum(url == item.url for url, item in zip(urls, german, strict=True)) >= 0.95 * 900


def test_passages_in_swahili(english):
    swahili = with_passages(english[:50], "sw")
    passages = flores_passages("sw")
    for before, after in zip(english[:50], swahili, strict=True):
        assert after.passage == passages[before.url] != before.passage
        assert (after.question, after.answers, after.correct) == (
            before.question,
            before.answers,
            before.correct,
        )
        assert after.passage_language == "swh_Latn" and after.language == "eng_Latn"


def test_items_without_a_url_are_placed_by_their_passage_text(english):
    from dataclasses import replace

    anonymous = [replace(item, url=None) for item in english[:20]]
    placed = with_passages(anonymous, "ja")
    assert [item.url for item in placed] == [item.url for item in english[:20]]
    lost = [replace(english[0], url=None, passage="An unrelated passage about nothing.")]
    with pytest.raises(InputError, match="has no FLORES passage in ja"):
        with_passages(lost, "ja")


def test_fuzzy_matching_tolerates_a_changed_word():
    passages = flores_passages("en")
    url, text = next(iter(passages.items()))
    edited = text.replace("scientists", "researchers", 1)
    assert edited != text
    assert match_passage_url(edited, passages) == url
    assert match_passage_url(" ".join(text.split()[:10]), passages) is None
    assert match_passage_url('"' + text.replace('"', '""') + '"', passages) == url


@given(st.text(max_size=40))
def test_unquote_csv_inverts_csv_quoting(text):
    assert unquote_csv('"' + text.replace('"', '""') + '"') == text


def test_unquote_csv_leaves_plain_text_alone():
    for text in ["plain", '"We said," he said. "Yes."', '"', 'a "b" c', '""x"']:
        assert unquote_csv(text) == text


# ---- the Hugging Face layout -----------------------------------------------------------------


def flat_row(item: BelebeleItem) -> dict:
    return {
        "link": item.url,
        "question_number": item.question_number,
        "flores_passage": item.passage,
        "question": item.question,
        **{f"mc_answer{i + 1}": answer for i, answer in enumerate(item.answers)},
        "correct_answer_num": str(item.correct + 1),
        "dialect": item.language,
        "ds": "2023-05-03",
    }


def test_the_hugging_face_layout_gives_the_same_items(tmp_path, english):
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "eng_Latn.jsonl"
    path.write_text("".join(json.dumps(flat_row(i)) + "\n" for i in english), encoding="utf-8")
    assert belebele_file("en", tmp_path) == path
    assert read_belebele("en", tmp_path) == english


def test_hugging_face_rows_are_checked(tmp_path, english):
    row = flat_row(english[0])
    path = tmp_path / "x.jsonl"
    for change, message in [
        ({"correct_answer_num": "5"}, "correct_answer_num must be 1-4"),
        ({"mc_answer3": ""}, "field 'mc_answer3' must be non-empty"),
        ({"question_number": "two"}, "question_number must be a whole number"),
    ]:
        path.write_text(json.dumps(row) + "\n" + json.dumps({**row, **change}) + "\n")
        with pytest.raises(InputError, match=rf"x\.jsonl:2: {message}"):
            read_belebele_file(path)
    del row["question"]
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(InputError, match=r"x\.jsonl:1: missing field 'question'"):
        read_belebele_file(path)


# ---- malformed files -------------------------------------------------------------------------


def passage_row(answers_correct=(True, False, False, False)) -> dict:
    return {
        "text": "A passage.",
        "items": [
            {
                "question": "Why?",
                "answers": [
                    {"text": f"answer {i}", "correct": flag} for i, flag in enumerate(answers_correct)
                ],
            }
        ],
        "metadata": {"extra": {"url": "http://x", "language": "eng_Latn"}},
    }


def test_a_truncated_line_is_an_error_with_its_number(tmp_path):
    good = json.dumps(passage_row())
    path = tmp_path / "eng_Latn.jsonl"
    path.write_text(good + "\n\n" + good[: len(good) // 2] + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"eng_Latn\.jsonl:3: invalid JSON"):
        read_belebele_file(path)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ((True, True, False, False), "expected exactly one correct answer, got 2"),
        ((False,) * 4, "expected exactly one correct answer, got 0"),
        ((True, False, False), "expected 4 answers"),
    ],
)
def test_answers_are_checked(tmp_path, flags, message):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(passage_row(flags)) + "\n")
    with pytest.raises(InputError, match=rf"x\.jsonl:1: question 1: {message}"):
        read_belebele_file(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no Belebele items"),
        ("\n \n", "no Belebele items"),
        ("[1, 2]\n", "1: expected a JSON object"),
        ('{"a": 1}\n', "1: neither a Belebele row"),
        ('{"text": "t", "items": []}\n', "1: 'items' must be a non-empty list"),
    ],
)
def test_other_bad_files(tmp_path, content, message):
    path = tmp_path / "x.jsonl"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        read_belebele_file(path)


def test_the_language_falls_back_to_the_file_name(tmp_path):
    row = passage_row()
    del row["metadata"]
    path = tmp_path / "swh_Latn.jsonl"
    path.write_text("\ufeff" + json.dumps(row) + "\n", encoding="utf-8")
    (item,) = read_belebele_file(path)
    assert item.language == "swh_Latn" and item.url is None


def test_a_missing_language_file(tmp_path):
    with pytest.raises(InputError, match=f"no Belebele file for sw in {tmp_path}"):
        read_belebele("sw", tmp_path)
    with pytest.raises(InputError, match="no Belebele file for sw"):
        read_belebele("sw")  # the bundled data has English and German only
