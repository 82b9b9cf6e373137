"""Belebele multiple-choice reading comprehension: readers for both layouts, passage URLs.

Two JSON-lines layouts, told apart line by line:

- Hugging Face (facebook/belebele `data/{flores}.jsonl`): one question per line, fields `link,
  question_number, flores_passage, question, mc_answer1..4, correct_answer_num` (1-4),
  `dialect, ds`;
- bundled (`belebele/{flores}.jsonl`): one passage per line, `{text, items: [{question,
  answers: [{text, correct}]}], metadata: {extra: {url, language}}}`. Its passages went through
  a CSV export: a passage wrapped in quotes with doubled inner quotes is unwrapped on reading.

Both become `BelebeleItem`s, one per question. Passages in any FLORES language are rebuilt from
FLORES-200 (`flores_passages`), keyed by the source URL that `passage_urls` finds.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from neuronoverlap.data.flores import flores_passages
from neuronoverlap.data.paths import find_file, read_text_lines, resolve_data_dir
from neuronoverlap.errors import InputError
from neuronoverlap.languages import resolve_language

BELEBELE_SUBDIRS = ("belebele", "belebele/data", "data", ".")
LETTERS = "ABCD"

_CSV_QUOTED = re.compile(r'"(?:[^"]|"")*"', re.DOTALL)


@dataclass(frozen=True)
class BelebeleItem:
    """One question on one passage. Languages are FLORES-200 codes, as Belebele names them;
    `passage_language` differs from `language` once the passage was swapped (`with_passages`)."""

    passage: str
    question: str
    answers: tuple[str, str, str, str]
    correct: int  # index into answers, 0-3
    language: str
    passage_language: str
    url: str | None = None
    question_number: int = 1  # 1-based, within the passage

    @property
    def correct_letter(self) -> str:
        return LETTERS[self.correct]

    @property
    def correct_answer(self) -> str:
        return self.answers[self.correct]


def unquote_csv(text: str) -> str:
    """Undo CSV quoting (`"a ""b"" c"` -> `a "b" c`); other text is returned unchanged."""
    if _CSV_QUOTED.fullmatch(text):
        return text[1:-1].replace('""', '"')
    return text


def _flores_code(code: str) -> str:
    try:
        return resolve_language(code).flores
    except InputError:
        return code


def _field(row: Mapping[str, object], key: str, where: str) -> object:
    if key not in row:
        raise InputError(f"{where}: missing field {key!r}")
    return row[key]


def _text(row: Mapping[str, object], key: str, where: str) -> str:
    value = _field(row, key, where)
    if not isinstance(value, (str, int, float)) or not str(value).strip():
        raise InputError(f"{where}: field {key!r} must be non-empty text")
    return str(value)


def _from_flat_row(row: Mapping[str, object], where: str, default_lang: str) -> BelebeleItem:
    answers = tuple(_text(row, f"mc_answer{i}", where) for i in range(1, 5))
    correct_raw = _text(row, "correct_answer_num", where)
    if correct_raw.strip() not in ("1", "2", "3", "4"):
        raise InputError(f"{where}: correct_answer_num must be 1-4, got {correct_raw!r}")
    language = _flores_code(str(row.get("dialect") or default_lang))
    number = _text(row, "question_number", where)
    if not number.strip().isdigit():
        raise InputError(f"{where}: question_number must be a whole number, got {number!r}")
    return BelebeleItem(
        passage=_text(row, "flores_passage", where),
        question=_text(row, "question", where),
        answers=answers,  # type: ignore[arg-type]
        correct=int(correct_raw) - 1,
        language=language,
        passage_language=language,
        url=str(row["link"]) if row.get("link") else None,
        question_number=int(number),
    )


def _from_passage_row(row: Mapping[str, object], where: str, default_lang: str) -> list[BelebeleItem]:
    passage = unquote_csv(_text(row, "text", where))
    questions = _field(row, "items", where)
    if not isinstance(questions, list) or not questions:
        raise InputError(f"{where}: 'items' must be a non-empty list of questions")
    metadata = row.get("metadata")
    extra = metadata.get("extra") if isinstance(metadata, dict) else None
    extra = extra if isinstance(extra, dict) else {}
    language = _flores_code(str(extra.get("language") or default_lang))
    url = str(extra["url"]) if extra.get("url") else None
    items = []
    for number, question in enumerate(questions, start=1):
        at = f"{where}: question {number}"
        if not isinstance(question, dict):
            raise InputError(f"{at}: expected an object with 'question' and 'answers'")
        answers = _field(question, "answers", at)
        if not isinstance(answers, list) or len(answers) != 4:
            raise InputError(f"{at}: expected 4 answers")
        if not all(isinstance(a, dict) for a in answers):
            raise InputError(f"{at}: each answer must be an object with 'text' and 'correct'")
        flags = [_field(a, "correct", at) is True for a in answers]
        if sum(flags) != 1:
            raise InputError(f"{at}: expected exactly one correct answer, got {sum(flags)}")
        items.append(
            BelebeleItem(
                passage=passage,
                question=_text(question, "question", at),
                answers=tuple(_text(a, "text", at) for a in answers),  # type: ignore[arg-type]
                correct=flags.index(True),
                language=language,
                passage_language=language,
                url=url,
                question_number=number,
            )
        )
    return items


def read_belebele_file(path: str | os.PathLike[str]) -> list[BelebeleItem]:
    """The items of one Belebele JSON-lines file, in either layout (blank lines skipped)."""
    path = Path(path)
    default_lang = path.name.split(".")[0]
    items: list[BelebeleItem] = []
    for number, line in enumerate(read_text_lines(path), start=1):
        if not line.strip():
            continue
        where = f"{path.name}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"{where}: invalid JSON ({err.msg} at column {err.colno})") from err
        if not isinstance(row, dict):
            raise InputError(f"{where}: expected a JSON object")
        if "flores_passage" in row:
            items.append(_from_flat_row(row, where, default_lang))
        elif "text" in row and "items" in row:
            items.extend(_from_passage_row(row, where, default_lang))
        else:
            raise InputError(
                f"{where}: neither a Belebele row (flores_passage, question, mc_answer1..4, "
                "correct_answer_num) nor a passage {text, items}"
            )
    if not items:
        raise InputError(f"{path.name}: no Belebele items")
    return items


def belebele_file(lang: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The Belebele file of `lang` (`{flores}.jsonl` or `{iso}.jsonl`) under the data folder."""
    language = resolve_language(lang)
    root = resolve_data_dir(data_dir)
    names = [f"{language.flores}.jsonl", f"{language.code}.jsonl"]
    found = find_file(root, BELEBELE_SUBDIRS, names)
    if found is None:
        raise InputError(f"no Belebele file for {language.code} in {root} (looked for {names[0]})")
    return found


def read_belebele(lang: str, data_dir: str | os.PathLike[str] | None = None) -> list[BelebeleItem]:
    """All Belebele items of `lang` (ISO 639-1 or FLORES-200 code)."""
    return read_belebele_file(belebele_file(lang, data_dir))


def _normalise(text: str) -> str:
    return " ".join(text.split())


def _words(text: str) -> set[str]:
    return set(text.lower().split())


def match_passage_url(text: str, passages: Mapping[str, str], *, min_similarity: float = 0.9) -> str | None:
    """The URL whose passage is `text` (whitespace-insensitive, CSV quoting undone), else the
    URL whose passage shares the most words with it if their Jaccard similarity reaches
    `min_similarity`, else None."""
    wanted = {_normalise(text), _normalise(unquote_csv(text.strip()))}
    for url, passage in passages.items():
        if _normalise(passage) in wanted:
            return url
    words = _words(text)
    best_url, best = None, 0.0
    for url, passage in passages.items():
        other = _words(passage)
        similarity = len(words & other) / max(1, len(words | other))
        if similarity > best:
            best_url, best = url, similarity
    return best_url if best >= min_similarity else None


def passage_urls(
    items: Sequence[BelebeleItem],
    data_dir: str | os.PathLike[str] | None = None,
    *,
    min_similarity: float = 0.9,
) -> list[str | None]:
    """Each item's source URL found by matching its passage against the FLORES passages rebuilt
    in the passage's language (the URL an item carries is not used); None where none matches."""
    rebuilt: dict[str, dict[str, str]] = {}
    index: dict[str, dict[str, str]] = {}
    found_by_text: dict[tuple[str, str], str | None] = {}
    urls = []
    for item in items:
        lang = item.passage_language
        if lang not in rebuilt:
            rebuilt[lang] = flores_passages(lang, data_dir)
            index[lang] = {_normalise(p): url for url, p in rebuilt[lang].items()}
        key = (lang, item.passage)
        if key not in found_by_text:
            exact = index[lang].get(_normalise(item.passage))
            found_by_text[key] = exact or match_passage_url(
                item.passage, rebuilt[lang], min_similarity=min_similarity
            )
        urls.append(found_by_text[key])
    return urls


def with_passages(
    items: Sequence[BelebeleItem],
    lang: str,
    data_dir: str | os.PathLike[str] | None = None,
) -> list[BelebeleItem]:
    """The items with their passage replaced by the FLORES passage in `lang` (same URL); the
    question and answers stay as they were. Items without a URL are matched by passage text;
    an item that cannot be placed is an `InputError`."""
    target = resolve_language(lang)
    passages = flores_passages(target.code, data_dir)
    missing = [i for i, item in enumerate(items) if item.url is None]
    matched = passage_urls([items[i] for i in missing], data_dir) if missing else []
    urls = [item.url for item in items]
    for i, url in zip(missing, matched, strict=True):
        urls[i] = url
    out = []
    for item, url in zip(items, urls, strict=True):
        if url is None or url not in passages:
            raise InputError(
                f"Belebele question {item.question_number} ({item.question[:40]!r}...) has no "
                f"FLORES passage in {target.code}"
            )
        out.append(replace(item, passage=passages[url], passage_language=target.flores, url=url))
    return out
