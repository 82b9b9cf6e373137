"""Few-shot examples shared by every condition of a BLI run, and the identical-pair filter.

One run draws its example *source words* once: zero-shot src -> T, bridged step 1 src -> B and
step 2 src -> B -> T all show the same source words (each with its word in the language the
prompt asks for), so a paired comparison of two conditions measures the bridge, not the
examples. `Example.words` holds a word per language: the target(s) and every bridge.

With `non_identical=True` (the validation study's protocol) an example is never an identical
pair: its source word is not among its gold translations into any target, the shown target word
differs from the source word, and each bridge word differs from the source and target words
(compared after `normalize_word`). MUSE lists many names and loan words as their own
translation (religion -> religion); shown as examples they teach the model to copy.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from neuronoverlap.data import BilingualDictionary, load_dictionary
from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.extraction import normalize_word


def is_identical(source: str, golds: Iterable[str]) -> bool:
    """Whether a gold translation equals the source word (copying it would score)."""
    word = normalize_word(source)
    return any(normalize_word(g) == word for g in golds)


@dataclass(frozen=True)
class Example:
    """One few-shot example: a source word and its shown word in each language of the run."""

    source: str
    words: dict[str, str]


def _pick(golds: Sequence[str], avoid: set[str]) -> str | None:
    """The first gold word whose normal form is not in `avoid`."""
    return next((g for g in golds if normalize_word(g) not in avoid), None)


def example_for(
    source: str,
    target_golds: dict[str, Sequence[str]],
    bridge_golds: dict[str, Sequence[str]],
    non_identical: bool,
) -> Example | None:
    """The example of `source` (its shown word per target and bridge), or None when the filter
    rejects it. Without the filter: the first gold word of each language."""
    if not non_identical:
        return Example(source, {lang: golds[0] for lang, golds in {**target_golds, **bridge_golds}.items()})
    own = normalize_word(source)
    if any(is_identical(source, golds) for golds in target_golds.values()):
        return None
    words: dict[str, str] = {}
    for lang, golds in target_golds.items():  # several targets: their shown words differ too
        word = _pick(golds, {own} | {normalize_word(w) for w in words.values()})
        if word is None:
            return None
        words[lang] = word
    shown_targets = {normalize_word(w) for w in words.values()}
    for lang, golds in bridge_golds.items():
        word = _pick(golds, {own} | shown_targets)
        if word is None:
            return None
        words[lang] = word
    return Example(source, words)


def choose_examples(
    dictionaries: dict[str, BilingualDictionary],
    targets: Sequence[str],
    k: int,
    seed: int,
    exclude: Iterable[str] = (),
    non_identical: bool = False,
) -> list[Example]:
    """`k` examples drawn with `seed` from source words present in every dictionary (one per
    language: the targets and the bridges, all from one source language), none in `exclude`.

    Candidates keep the first dictionary's order; the draw is a NumPy PCG64 permutation, so
    the same inputs give the same examples on every machine."""
    if k < 0:
        raise InputError(f"the number of few-shot examples must be >= 0, got {k}")
    if k == 0:
        return []
    if not dictionaries:
        raise InputError("few-shot examples need at least one dictionary")
    missing = [t for t in targets if t not in dictionaries]
    if missing:
        raise InputError(f"no dictionary for target(s) {', '.join(missing)}")
    excluded = set(exclude)
    langs = list(dictionaries)
    first = dictionaries[langs[0]]
    pool: list[Example] = []
    for word in first.source_words:
        if word in excluded or any(word not in d.translations for d in dictionaries.values()):
            continue
        example = example_for(
            word,
            {t: dictionaries[t].translations[word] for t in targets},
            {b: dictionaries[b].translations[word] for b in langs if b not in targets},
            non_identical,
        )
        if example is not None:
            pool.append(example)
    if len(pool) < k:
        what = "non-identical " if non_identical else ""
        raise InputError(
            f"only {len(pool)} usable {what}few-shot words shared by the {first.src}-"
            f"{{{','.join(langs)}}} train dictionaries, asked for {k}"
        )
    order = np.random.default_rng(seed).permutation(len(pool))[:k]
    return [pool[int(i)] for i in order]


def load_examples(
    src: str,
    targets: Sequence[str],
    bridges: Sequence[str],
    k: int,
    seed: int,
    exclude: Iterable[str] = (),
    non_identical: bool = False,
    data_dir: str | os.PathLike[str] | None = None,
) -> list[Example]:
    """`choose_examples` on the train dictionaries src -> each target and src -> each bridge."""
    if k == 0:
        return []
    langs = list(dict.fromkeys([*targets, *bridges]))
    dictionaries = {lang: load_dictionary(src, lang, split="train", data_dir=data_dir) for lang in langs}
    return choose_examples(dictionaries, targets, k, seed, exclude, non_identical)
