"""Bilingual dictionaries: MUSE and Wiktionary readers, composition through English, sampling.

File formats (one reader for both): one `source target` pair per line, separated by a tab or,
when the line has no tab, by whitespace (a tab-separated field may contain spaces). UTF-8, an
optional byte-order mark, blank lines and `word<TAB>` lines without a translation skipped; a
word with several translations has one line per translation. File names:

- MUSE: `S-T.0-5000.txt` (the "train" split) and `S-T.5000-6500.txt` (the "test" split);
- Wiktionary (Swahili, MUSE has none): `S-T.train.txt` and `S-T.test.txt` (or, as the
  wiktionary_bli repository names them, `final/S-T.train` and `final/S-T.test`).

`load_dictionary` looks for the direct file, then the reversed pair's file (inverted), then
composes through English.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from neuronoverlap.data.paths import decode_lines, find_file, resolve_data_dir
from neuronoverlap.errors import InputError
from neuronoverlap.languages import get_language
from neuronoverlap.options import PROBE_SPLITS

Split = Literal["train", "test", "all"]
WordPair = tuple[str, str]

#: MUSE's file-name ranges for our split names ("all" is train and test together).
MUSE_RANGES: dict[str, str] = {"train": "0-5000", "test": "5000-6500"}
#: Sub-folders of a data folder where MUSE files may be (ours, then MUSE's own layouts).
MUSE_SUBDIRS = (
    "muse",
    "dictionaries",
    "crosslingual/dictionaries",
    "data/crosslingual/dictionaries",
    ".",
)
#: Sub-folders for the Wiktionary lexicons (ours, then the wiktionary_bli repository's `final/`).
WIKTIONARY_SUBDIRS = ("wiktionary", "final", "wiktionary_bli/final", ".")


@dataclass(frozen=True)
class SourceFile:
    """A file a dictionary was read from, with its sha256 for provenance."""

    path: Path
    sha256: str


@dataclass(frozen=True)
class BilingualDictionary:
    """Word pairs src -> tgt with every gold translation of each source word.

    `translations` keeps source words in the order of first appearance and, per word, its
    translations in file order, without duplicates. `inverted`: read from the tgt-src file and
    turned around. `composed`: built through `pivot` (see `compose`).
    """

    src: str
    tgt: str
    translations: Mapping[str, tuple[str, ...]] = field(repr=False)
    split: str | None = None
    sources: tuple[SourceFile, ...] = ()
    composed: bool = False
    pivot: str | None = None
    inverted: bool = False

    def __post_init__(self) -> None:
        empty = [w for w, golds in self.translations.items() if not golds]
        if empty:
            raise InputError(f"{self.direction} dictionary: no translation for {empty[0]!r}")

    @classmethod
    def from_pairs(
        cls, src: str, tgt: str, pairs: Iterable[WordPair], **fields: object
    ) -> BilingualDictionary:
        """A dictionary from (source, target) pairs; repeated pairs are kept once."""
        grouped: dict[str, list[str]] = {}
        for source, target in pairs:
            golds = grouped.setdefault(source, [])
            if target not in golds:
                golds.append(target)
        translations = {word: tuple(golds) for word, golds in grouped.items()}
        return cls(src, tgt, translations, **fields)  # type: ignore[arg-type]

    @property
    def direction(self) -> str:
        return f"{self.src}-{self.tgt}"

    @property
    def source_words(self) -> tuple[str, ...]:
        """The unique source words, in dictionary order."""
        return tuple(self.translations)

    @property
    def pairs(self) -> tuple[WordPair, ...]:
        """Every (source, target) pair, grouped by source word, in dictionary order."""
        return tuple((w, t) for w, golds in self.translations.items() for t in golds)

    @property
    def n_source_words(self) -> int:
        return len(self.translations)

    @property
    def n_pairs(self) -> int:
        return sum(len(golds) for golds in self.translations.values())

    def inverse(self) -> BilingualDictionary:
        """The same pairs read tgt -> src."""
        return BilingualDictionary.from_pairs(
            self.tgt,
            self.src,
            ((t, s) for s, t in self.pairs),
            split=self.split,
            sources=self.sources,
            composed=self.composed,
            pivot=self.pivot,
            inverted=not self.inverted,
        )

    def sample_pairs(
        self, n: int, seed: int | np.random.Generator, *, allow_fewer: bool = False
    ) -> list[WordPair]:
        """`n` distinct pairs drawn without replacement.

        Deterministic: the same seed gives the same sample (NumPy's PCG64 `permutation`), and
        the sample of `n` is the first `n` of the sample of any larger size.
        """
        pairs = self.pairs
        picked = _sample_indices(len(pairs), n, seed, allow_fewer, f"pairs in {self}")
        return [pairs[i] for i in picked]

    def sample_source_words(
        self, n: int, seed: int | np.random.Generator, *, allow_fewer: bool = False
    ) -> BilingualDictionary:
        """The sub-dictionary of `n` source words drawn without replacement (in draw order),
        each with all its gold translations. Deterministic as `sample_pairs`."""
        words = self.source_words
        picked = _sample_indices(len(words), n, seed, allow_fewer, f"source words in {self}")
        subset = {words[i]: self.translations[words[i]] for i in picked}
        return replace(self, translations=subset)

    def provenance(self) -> dict[str, object]:
        """Plain metadata saying where the dictionary came from (for stores and reports)."""
        return {
            "direction": self.direction,
            "split": self.split,
            "composed": self.composed,
            "pivot": self.pivot,
            "inverted": self.inverted,
            "files": [str(s.path) for s in self.sources],
            "sha256": [s.sha256 for s in self.sources],
            "n_source_words": self.n_source_words,
            "n_pairs": self.n_pairs,
        }

    def __str__(self) -> str:
        how = f", composed via {self.pivot}" if self.composed else ""
        how += ", inverted" if self.inverted else ""
        return f"{self.direction} dictionary ({self.split} split{how})"


def _sample_indices(
    total: int, n: int, seed: int | np.random.Generator, allow_fewer: bool, what: str
) -> list[int]:
    if n < 0:
        raise InputError(f"sample size must be >= 0, got {n}")
    if n > total and not allow_fewer:
        raise InputError(
            f"asked for {n} {what} but there are only {total}; pass allow_fewer=True to take all"
        )
    order = np.random.default_rng(seed).permutation(total)
    return [int(i) for i in order[: min(n, total)]]


def read_word_pairs(path: str | os.PathLike[str]) -> tuple[list[WordPair], SourceFile]:
    """The (source, target) pairs of a dictionary file, in file order, and the file's checksum.

    A line that is not exactly two fields is an `InputError` naming file and line; so is a file
    without any pair. A tab-separated line with an empty target (`word<TAB>`: a source word
    listed without a translation, as in the Wiktionary lexicon) is skipped.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read dictionary {path}: {err.strerror or err}") from err
    pairs: list[WordPair] = []
    for number, line in enumerate(decode_lines(raw, path), start=1):
        if not line.strip():
            continue
        if "\t" in line:
            fields = [f.strip() for f in line.split("\t")]
            if len(fields) == 2 and fields[0] and not fields[1]:
                continue  # a source word listed without a translation (the Wiktionary lexicon)
        else:
            fields = line.split()
        if len(fields) != 2 or not all(fields):
            raise InputError(f"{path.name}:{number}: expected 'source target', got {line.strip()!r}")
        pairs.append((fields[0], fields[1]))
    if not pairs:
        raise InputError(f"{path.name}: no word pairs in the file")
    return pairs, SourceFile(path, hashlib.sha256(raw).hexdigest())


def read_dictionary(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    src: str,
    tgt: str,
    split: str | None = None,
) -> BilingualDictionary:
    """A dictionary from one file, or from several files read one after the other."""
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    all_pairs: list[WordPair] = []
    sources = []
    for path in paths:
        pairs, source = read_word_pairs(path)
        all_pairs.extend(pairs)
        sources.append(source)
    return BilingualDictionary.from_pairs(src, tgt, all_pairs, split=split, sources=tuple(sources))


def dictionary_files(root: Path, src: str, tgt: str, split: Split) -> list[Path] | None:
    """The files holding the src-tgt `split` under `root` (MUSE naming first, then Wiktionary's),
    or None when any of them is missing."""
    if split not in PROBE_SPLITS:
        raise InputError(f"unknown dictionary split {split!r}; use one of {', '.join(PROBE_SPLITS)}")
    files = []
    for part in ("train", "test") if split == "all" else (split,):
        found = find_file(root, MUSE_SUBDIRS, [f"{src}-{tgt}.{MUSE_RANGES[part]}.txt"])
        found = found or find_file(
            root, WIKTIONARY_SUBDIRS, [f"{src}-{tgt}.{part}.txt", f"{src}-{tgt}.{part}"]
        )
        if found is None:
            return None
        files.append(found)
    return files


def _direct_or_inverted(root: Path, src: str, tgt: str, split: Split) -> BilingualDictionary | None:
    files = dictionary_files(root, src, tgt, split)
    if files is not None:
        return read_dictionary(files, src, tgt, split)
    files = dictionary_files(root, tgt, src, split)
    if files is not None:
        return read_dictionary(files, tgt, src, split).inverse()
    return None


def compose(first: BilingualDictionary, second: BilingualDictionary) -> BilingualDictionary:
    """src -> pivot composed with pivot -> tgt: (w_s, w_t) is a pair when some pivot word is a
    translation of w_s in `first` and has w_t among its translations in `second`.

    Source words keep `first`'s order; a source word without any such w_t is left out.
    """
    if first.tgt != second.src:
        raise InputError(f"cannot compose {first.direction} with {second.direction}")
    if first.src == second.tgt:
        raise InputError(f"composing {first.direction} with {second.direction} is a round trip")
    pairs = (
        (word, target)
        for word, pivots in first.translations.items()
        for pivot_word in pivots
        for target in second.translations.get(pivot_word, ())
    )
    return BilingualDictionary.from_pairs(
        first.src,
        second.tgt,
        pairs,
        split=first.split,
        sources=first.sources + second.sources,
        composed=True,
        pivot=first.tgt,
    )


def load_dictionary(
    src: str,
    tgt: str,
    split: Split = "test",
    data_dir: str | os.PathLike[str] | None = None,
    *,
    pivot: str = "en",
    pivot_target_split: Split = "all",
) -> BilingualDictionary:
    """The src-tgt dictionary of `split` ("test" = MUSE 5000-6500, "train" = 0-5000, "all").

    Looked for in this order: the src-tgt file (MUSE, then Wiktionary naming), the tgt-src file
    inverted, and the composition src -> `pivot` -> tgt. In a composition the source words are
    those of the src-pivot `split`; the pivot-tgt leg uses `pivot_target_split` (default "all",
    so that every source word of the split can reach a translation).
    """
    s, t, p = get_language(src).code, get_language(tgt).code, get_language(pivot).code
    if s == t:
        raise InputError(f"a dictionary needs two different languages; got {s}-{t}")
    root = resolve_data_dir(data_dir)
    direct = _direct_or_inverted(root, s, t, split)
    if direct is not None:
        return direct
    if p not in (s, t):
        first = _direct_or_inverted(root, s, p, split)
        second = _direct_or_inverted(root, p, t, pivot_target_split)
        if first is not None and second is not None:
            composed = compose(first, second)
            if not composed.translations:
                raise InputError(f"{s}-{p} and {p}-{t} share no {p} word: cannot compose {s}-{t}")
            return composed
    how = (
        f", and no {s}-{p} ({split}) and {p}-{t} ({pivot_target_split}) files to compose through"
        if p not in (s, t)
        else ""
    )
    raise InputError(
        f"no {s}-{t} dictionary ({split} split) in {root}: no {s}-{t} or {t}-{s} MUSE/Wiktionary file{how}"
    )
