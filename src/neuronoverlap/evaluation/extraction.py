"""Answer extraction and matching: the first answer word of a generation, and the letter of a
multiple-choice answer.

A BLI answer is read from the generated text in four steps (`extract_answer`):

1. the first non-empty line, with HTML-like tags (`<i>`, `</b>`, `<br/>`) replaced by spaces
   (small base models like to wrap answers in them), leading whitespace removed;
2. if it opens with a quote of any script (`" “ „ « » 「 『 ＂ '`...), the text up to the next
   double quote, guillemet or corner bracket (a single quote only closes a single-quoted answer, so
   `l’eau` and `aujourd'hui` survive); otherwise the line up to an arrow `→`;
3. the first word: cut at whitespace (ideographic space included) and at separators
   (`, ， 、 ; ； / ( （ : ：` and the Arabic comma and semicolon);
4. punctuation and symbols stripped from both ends (`Hund.` -> `Hund`, `犬。` -> `犬`).

The bridge word of a bridged step 1 (`extract_bridge_word`) is steps 1-2, then the text up to the
first separator kept whole, spaces included (the reference passes step 1's answer on whole).

Matching (`normalize_word`, `is_hit`) compares NFKC forms, lower-cased, with Hebrew points
(niqqud, cantillation) and Arabic harakat (tashkil, tatweel, Quranic marks) removed on both
sides. Latin accents are kept: `cafe` does not match `café`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

#: Double quotes, guillemets and corner brackets of the registry's scripts (opening or closing).
DOUBLE_QUOTES = '"“”„‟«»「」『』〝〞＂‹›'
#: Single quotes: they open and close a quoted answer, but inside a word they are apostrophes.
SINGLE_QUOTES = "'‘’‚‛＇"
#: Characters that end the first word (besides whitespace).
WORD_SEPARATORS = ",，、;；/(（:：،؛"
ARROWS = "→⇒"

_HEBREW_POINTS = re.compile("[\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7]")
_ARABIC_MARKS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e8\u06ea-\u06ed\u0640]")
_SEPARATOR_RE = re.compile(f"[\\s{re.escape(WORD_SEPARATORS)}]+")
_CHOICE_RE = re.compile(r"\b([A-D])\b")
_TAG_RE = re.compile(r"</?[A-Za-z][A-Za-z0-9]{0,10}(?:\s[^<>]{0,40})?/?>")


def _is_edge_junk(char: str) -> bool:
    """Punctuation, symbols, separators and format characters, stripped from a word's ends."""
    return unicodedata.category(char)[0] in "PSZC"


def strip_edges(word: str) -> str:
    """`word` without punctuation, symbols or spaces at either end (`«chien»,` -> `chien`)."""
    start, end = 0, len(word)
    while start < end and _is_edge_junk(word[start]):
        start += 1
    while end > start and _is_edge_junk(word[end - 1]):
        end -= 1
    return word[start:end]


def _quoted_body(line: str) -> str | None:
    """The text inside a leading quote, up to its closing quote (or the end of the line)."""
    opener = line[:1]
    if opener in DOUBLE_QUOTES:
        closers = DOUBLE_QUOTES
    elif opener in SINGLE_QUOTES:
        closers = SINGLE_QUOTES
    else:
        return None
    body = line[1:]
    cut = min((i for i, c in enumerate(body) if c in closers), default=len(body))
    return body[:cut]


def _answer_body(text: str) -> str:
    """Steps 1-2: the first non-empty line without tags, its quoted part or the part before an
    arrow."""
    lines = [_TAG_RE.sub(" ", line).strip() for line in text.splitlines()]
    line = next((line for line in lines if line), "")
    body = _quoted_body(line)
    if body is None:
        body = re.split(f"[{ARROWS}]", line, maxsplit=1)[0]
    return body.strip()


def extract_answer(text: str) -> str:
    """The first answer word of a generated continuation ('' when there is none)."""
    words = [strip_edges(w) for w in _SEPARATOR_RE.split(_answer_body(text))]
    return next((w for w in words if w), "")


def extract_bridge_word(text: str) -> str:
    """The bridge word of a bridged step 1: steps 1-2 of `extract_answer`, then the text up to
    the first separator (`, ; / ( :`...) kept whole, spaces included (`New York, USA` -> `New
    York`), runs of spaces made one, ends stripped as in step 4."""
    body = strip_edges(_answer_body(text))
    cut = min((i for i, c in enumerate(body) if c in WORD_SEPARATORS), default=len(body))
    return strip_edges(" ".join(body[:cut].split()))


def normalize_word(word: str) -> str:
    """The form in which answers and gold words are compared: NFKC, Hebrew niqqud and Arabic
    harakat removed, lower case, punctuation and spaces at the ends dropped (`u.s.` -> `u.s`)."""
    text = unicodedata.normalize("NFKC", word)
    text = _HEBREW_POINTS.sub("", text)
    text = _ARABIC_MARKS.sub("", text)
    return strip_edges(unicodedata.normalize("NFC", text).lower())


def is_hit(answer: str, golds: Iterable[str]) -> bool:
    """Whether `answer` equals any gold translation after `normalize_word` (an empty answer
    never hits)."""
    wanted = normalize_word(answer)
    return bool(wanted) and any(wanted == normalize_word(gold) for gold in golds)


def extract_choice(text: str) -> str | None:
    """The letter A-D of a multiple-choice answer: the first letter of the reply once leading
    spaces, quotes and brackets are dropped (`" B: Paris"` -> `B`; lower case only when the
    letter stands alone, `"(c)"` -> `C`), else the first stand-alone capital A-D in the first
    line (`"The answer is D."`), else None."""
    lines = [line.strip() for line in text.splitlines()]
    line = next((line for line in lines if line), "")
    start = 0
    while start < len(line) and _is_edge_junk(line[start]):
        start += 1
    rest = line[start:]
    letter, after = rest[:1], rest[1:2]
    if letter in ("A", "B", "C", "D") and not after.isalpha():
        return letter
    if letter in ("a", "b", "c", "d") and after in ("", ")", "]", ".", ":"):
        return letter.upper()  # "(c)", "b." but not the article in "a dog"
    match = _CHOICE_RE.search(line)
    return match.group(1) if match else None
