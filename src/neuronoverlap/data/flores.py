"""FLORES-200: line-aligned sentences per language, their metadata, and Belebele passages.

Accepted layouts under a data folder (`split` is "dev" or "devtest"):

- ours: `flores200/{split}/en.{split}` (ISO 639-1 names) and `flores200/metadata_{split}.tsv`;
- the official release: `flores200_dataset/{split}/eng_Latn.{split}` (FLORES-200 codes);
- FLORES+: `{split}/{split}.eng_Latn`.

Line i of every language is the same sentence; `metadata_{split}.tsv` gives its source URL,
domain and topic. A Belebele passage is the dev+devtest sentences sharing a URL, joined by spaces.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from neuronoverlap import options
from neuronoverlap.data.paths import find_file, read_text_lines, resolve_data_dir
from neuronoverlap.errors import InputError
from neuronoverlap.languages import resolve_language

FLORES_SPLITS = options.FLORES_SPLITS
FLORES_SUBDIRS = ("flores200", "flores200_dataset", "flores200/flores200_dataset", ".")


@dataclass(frozen=True)
class FloresLineInfo:
    """One row of `metadata_{split}.tsv`: where FLORES line i was taken from."""

    url: str
    domain: str
    topic: str
    has_image: bool
    has_hyperlink: bool


def _check_split(split: str) -> None:
    if split not in FLORES_SPLITS:
        raise InputError(f"unknown FLORES split {split!r}; use 'dev' or 'devtest'")


def flores_file(lang: str, split: str = "dev", data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The FLORES file of `lang` (ISO 639-1 or FLORES-200 code) for `split`."""
    _check_split(split)
    language = resolve_language(lang)
    root = resolve_data_dir(data_dir)
    names = [
        f"{split}/{language.code}.{split}",
        f"{split}/{language.flores}.{split}",
        f"{split}/{split}.{language.flores}",
    ]
    found = find_file(root, FLORES_SUBDIRS, names)
    if found is None:
        raise InputError(
            f"no FLORES-200 {split} file for {language.code} in {root} "
            f"(looked for flores200/{names[0]} and flores200_dataset/{names[1]})"
        )
    return found


def metadata_file(split: str = "dev", data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """`metadata_{split}.tsv` under the data folder, or None if it is not there."""
    _check_split(split)
    return find_file(resolve_data_dir(data_dir), FLORES_SUBDIRS, [f"metadata_{split}.tsv"])


def read_flores_metadata(
    split: str = "dev", data_dir: str | os.PathLike[str] | None = None
) -> list[FloresLineInfo]:
    """The metadata rows of `split`, one per FLORES line (a leading `URL ...` header skipped)."""
    path = metadata_file(split, data_dir)
    if path is None:
        raise InputError(f"no FLORES-200 metadata_{split}.tsv in {resolve_data_dir(data_dir)}")
    rows = []
    for number, line in enumerate(read_text_lines(path), start=1):
        fields = line.split("\t")
        if number == 1 and fields[0].strip().lower() == "url":
            continue
        if len(fields) < 3 or not fields[0].strip():
            raise InputError(f"{path.name}:{number}: expected 'URL<TAB>domain<TAB>topic...'")
        flags = [f.strip().lower() in ("yes", "true", "1") for f in fields[3:5]]
        flags += [False] * (2 - len(flags))
        rows.append(FloresLineInfo(fields[0].strip(), fields[1].strip(), fields[2].strip(), *flags))
    if not rows:
        raise InputError(f"{path.name}: no metadata rows")
    return rows


def read_flores(lang: str, split: str = "dev", data_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """The FLORES-200 sentences of `lang`, one per line, with surrounding whitespace removed
    (some files end sentences with stray spaces); the count is checked against the metadata."""
    path = flores_file(lang, split, data_dir)
    lines = [line.strip() for line in read_text_lines(path)]
    if not lines:
        raise InputError(f"{path.name}: empty FLORES file")
    for number, line in enumerate(lines, start=1):
        if not line:
            raise InputError(f"{path.name}:{number}: empty sentence (the files are line-aligned)")
    meta = metadata_file(split, data_dir)
    if meta is not None:
        n_meta = len(read_flores_metadata(split, data_dir))
        if n_meta != len(lines):
            raise InputError(f"{path.name} has {len(lines)} lines but {meta.name} has {n_meta} rows")
    return lines


def read_flores_aligned(
    langs: Iterable[str], split: str = "dev", data_dir: str | os.PathLike[str] | None = None
) -> dict[str, list[str]]:
    """Sentences per language (keyed by ISO code); an `InputError` if the line counts differ."""
    texts = {resolve_language(lang).code: read_flores(lang, split, data_dir) for lang in langs}
    counts = {code: len(lines) for code, lines in texts.items()}
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{code} {n}" for code, n in counts.items())
        raise InputError(f"FLORES {split} files are not line-aligned: {listed} lines")
    return texts


def flores_passages(lang: str, data_dir: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Passages in `lang` keyed by source URL: the dev then devtest sentences sharing a URL,
    in line order, joined by single spaces (how Belebele's passages were made)."""
    grouped: dict[str, list[str]] = {}
    for split in FLORES_SPLITS:
        lines = read_flores(lang, split, data_dir)
        meta = read_flores_metadata(split, data_dir)
        if len(meta) != len(lines):
            raise InputError(f"FLORES {split}: {len(lines)} sentences but {len(meta)} metadata rows")
        for info, sentence in zip(meta, lines, strict=True):
            grouped.setdefault(info.url, []).append(sentence)
    return {url: " ".join(sentences) for url, sentences in grouped.items()}
