"""Belebele reading comprehension (multiple choice, A-D), zero-shot versus a bridged passage.

Questions and answers are Belebele's, in the question language (English or German: the only
ones available offline); only the passage changes language. Zero-shot: the passage in the
low-resource language, rebuilt from the FLORES-200 sentences of its source URL. Bridged through
B: each of those sentences first translated into B by the model (one prompt per sentence,
batched; by default after two example translations of FLORES sentences from other passages),
the translations joined into the passage. The answer is, with `scoring="generate"` (the
reference code's way), the first letter A-D of the greedy reply (`extraction.extract_choice`),
or with `scoring="likelihood"` the letter whose token (" A" or "A") is most probable as the next
token after the prompt, which suits small base models that answer one letter to everything.
Optionally a `reference` condition: the passage in the question language itself (an upper
bound for what translation could recover).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from neuronoverlap import __version__
from neuronoverlap.data import BelebeleItem, read_belebele, read_flores, with_passages
from neuronoverlap.data.flores import FLORES_SPLITS, read_flores_metadata
from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.extraction import extract_choice
from neuronoverlap.evaluation.generate import generate_texts, score_choices
from neuronoverlap.evaluation.results import (
    REFERENCE,
    ZERO_SHOT,
    EvaluationResult,
    bridge_condition,
    model_description,
    oracle_comparison,
    summarise_conditions,
    write_results,
)
from neuronoverlap.languages import get_language, resolve_language
from neuronoverlap.models import NeuronModel, StopRule
from neuronoverlap.probes.prompts import language_label
from neuronoverlap.versions import library_versions

#: The reference code's question prompt.
QUESTION_TEMPLATE = (
    "Answer the following question based on the passage. Respond with A, B, C, or D.\n"
    "Passage: {passage}\nQuestion: {question}\nChoices:\nA: {A}\nB: {B}\nC: {C}\nD: {D}\nAnswer:"
)
#: One sentence per prompt, as a line to continue in the other language ({S}, {T}: names).
TRANSLATION_TEMPLATE = "{S}: {x}\n{T}:"
#: Longest FLORES sentence (characters) used as a translation example.
MAX_EXAMPLE_CHARS = 160
#: How an answer is read: the reply's first letter, or the most probable letter token.
SCORINGS = ("generate", "likelihood")
LETTERS = ("A", "B", "C", "D")
#: Scripts written without spaces between sentences.
_UNSPACED_SCRIPTS = ("Hans", "Hant", "Jpan")


@dataclass(frozen=True)
class MRCPrompts:
    """Templates of an MRC run: `question` ({passage}, {question}, {A}-{D}); `translation`
    ({S}, {T}: language names, {x}: one sentence); `translation_answer` ({y}: how an example's
    translation follows its prompt); `translation_shots` examples (FLORES dev sentences of
    passages not evaluated, separated by a blank line); the name style of {S}/{T}."""

    question: str = QUESTION_TEMPLATE
    translation: str = TRANSLATION_TEMPLATE
    translation_answer: str = " {y}"
    translation_shots: int = 2
    names: str = "english"

    def check(self) -> None:
        for template, needed in (
            (self.question, ("{passage}", "{question}", "{A}", "{B}", "{C}", "{D}")),
            (self.translation, ("{x}",)),
            (self.translation_answer, ("{y}",)),
        ):
            missing = [slot for slot in needed if slot not in template]
            if missing:
                raise InputError(f"template {template!r} lacks {', '.join(missing)}")
            try:
                template.format(passage="", question="", A="", B="", C="", D="", S="", T="", x="", y="")
            except (KeyError, IndexError, ValueError) as exc:
                raise InputError(f"template {template!r} uses an unknown slot ({exc})") from None
        if self.translation_shots < 0:
            raise InputError(f"translation_shots must be >= 0, got {self.translation_shots}")
        language_label("en", self.names)


def question_prompt(template: str, item: BelebeleItem, passage: str | None = None) -> str:
    """The multiple-choice prompt of `item` (with `passage` in place of its own, if given)."""
    a, b, c, d = item.answers
    return template.format(
        passage=item.passage if passage is None else passage,
        question=item.question,
        A=a,
        B=b,
        C=c,
        D=d,
    )


def passage_sentences(lang: str, data_dir=None) -> dict[str, list[str]]:
    """The FLORES-200 sentences of each passage in `lang`, keyed by source URL: dev then
    devtest lines sharing the URL, in order (`flores_passages` joins exactly these)."""
    grouped: dict[str, list[str]] = {}
    for split in FLORES_SPLITS:
        sentences = read_flores(lang, split, data_dir)
        for info, sentence in zip(read_flores_metadata(split, data_dir), sentences, strict=True):
            grouped.setdefault(info.url, []).append(sentence)
    return grouped


def first_line(text: str) -> str:
    """The first non-empty line of a generation, stripped ('' if none)."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def join_sentences(sentences: Sequence[str], lang: str) -> str:
    """Sentences joined into a passage: by spaces, or directly in Chinese and Japanese."""
    joiner = "" if get_language(lang).script in _UNSPACED_SCRIPTS else " "
    return joiner.join(s for s in sentences if s)


@dataclass(frozen=True)
class MRCRecord:
    """One question under one condition. `passage` is what the model read (for a bridge: the
    model's translation); `generated` its reply ('' when scoring by likelihood); `answer` the
    letter read from it (None if none) or the most probable one; `letter_log_probs` each
    letter's next-token log-probability (likelihood scoring only)."""

    url: str | None
    question_number: int
    question: str
    correct: str
    passage_language: str
    passage: str
    generated: str
    answer: str | None
    hit: bool
    bridge: str | None = None
    letter_log_probs: dict[str, float] | None = None


def mrc_diagnostics(records: Sequence[MRCRecord]) -> dict[str, object]:
    """How often each letter was answered (a model that always says D scores the share of D
    answers), replies without a letter, and for a bridge the mean passage length read."""
    counts = Counter(r.answer or "none" for r in records)
    return {
        "answers": {letter: counts.get(letter, 0) for letter in ("A", "B", "C", "D", "none")},
        "correct": dict(sorted(Counter(r.correct for r in records).items())),
        "mean_passage_chars": (sum(len(r.passage) for r in records) / len(records) if records else None),
    }


def letter_token_ids(tokenizer) -> dict[str, list[int]]:
    """The token ids that answer each letter as the next token: " A" and "A", where either is a
    single token of `tokenizer`."""
    ids: dict[str, list[int]] = {}
    for letter in LETTERS:
        variants: list[int] = []
        for text in (f" {letter}", letter):
            encoded = tokenizer.encode(text, add_special_tokens=False)
            if len(encoded) == 1 and encoded[0] not in variants:
                variants.append(int(encoded[0]))
        if not variants:
            raise InputError(
                f"the tokenizer has no single token for the answer letter {letter}; "
                "score by generation instead"
            )
        ids[letter] = variants
    if len({i for v in ids.values() for i in v}) != sum(map(len, ids.values())):
        raise InputError("the answer letters share a token; score by generation instead")
    return ids


def sample_items(question_lang: str, n: int | None, seed: int, data_dir=None) -> list[BelebeleItem]:
    """Belebele items in `question_lang`: all, or `n` drawn without replacement with `seed`
    (NumPy PCG64 permutation, in draw order)."""
    items = read_belebele(question_lang, data_dir)
    if n is None:
        return items
    if not 1 <= n <= len(items):
        raise InputError(f"asked for {n} Belebele questions; there are {len(items)}")
    order = np.random.default_rng(seed).permutation(len(items))[:n]
    return [items[int(i)] for i in order]


def translation_prefix(
    prompts: MRCPrompts, src: str, tgt: str, exclude_urls: set[str], seed: int, data_dir=None
) -> str:
    """`prompts.translation_shots` example translations src -> tgt ('' for none): FLORES dev
    sentence pairs, drawn with `seed` among sentences of at most MAX_EXAMPLE_CHARS characters
    whose passage is not in `exclude_urls`."""
    k = prompts.translation_shots
    if k == 0:
        return ""
    source, target = read_flores(src, "dev", data_dir), read_flores(tgt, "dev", data_dir)
    metadata = read_flores_metadata("dev", data_dir)
    usable = [
        i
        for i, info in enumerate(metadata)
        if info.url not in exclude_urls and len(source[i]) <= MAX_EXAMPLE_CHARS
    ]
    if len(usable) < k:
        raise InputError(f"only {len(usable)} FLORES sentences usable as examples, asked for {k}")
    picked = [usable[int(j)] for j in np.random.default_rng(seed).permutation(len(usable))[:k]]
    s_name, t_name = language_label(src, prompts.names), language_label(tgt, prompts.names)
    return "".join(
        prompts.translation.format(S=s_name, T=t_name, x=source[i])
        + prompts.translation_answer.format(y=target[i])
        + "\n\n"
        for i in picked
    )


def translate_passages(
    model: NeuronModel,
    urls: Sequence[str],
    sentences: dict[str, list[str]],
    src: str,
    tgt: str,
    prompts: MRCPrompts,
    stop: StopRule,
    batch_size: int,
    progress: bool,
    prefix: str = "",
    *,
    prefix_cache: bool = True,
) -> dict[str, str]:
    """Each URL's passage translated src -> tgt sentence by sentence (all sentences of all
    passages in one batched pass, each prompt after `prefix`); returns {url: passage}."""
    s_name, t_name = language_label(src, prompts.names), language_label(tgt, prompts.names)
    keys = [(url, i) for url in urls for i in range(len(sentences[url]))]
    texts = [prefix + prompts.translation.format(S=s_name, T=t_name, x=sentences[url][i]) for url, i in keys]
    outputs = generate_texts(
        model, texts, stop, batch_size, progress, f"translate {src}→{tgt}", prefix_cache=prefix_cache
    )
    translated: dict[str, list[str]] = {url: [] for url in urls}
    for (url, _), output in zip(keys, outputs, strict=True):
        translated[url].append(first_line(output))
    return {url: join_sentences(parts, tgt) for url, parts in translated.items()}


def evaluate_mrc(
    model: NeuronModel,
    lang: str,
    bridges: Sequence[str] | None = None,
    question_lang: str = "en",
    n: int | None = None,
    seed: int = 0,
    batch_size: int = 8,
    prompts: MRCPrompts = MRCPrompts(),
    data_dir: str | os.PathLike[str] | None = None,
    max_new_tokens: int = 4,
    translation_max_new_tokens: int = 128,
    reference: bool = False,
    ranking: Sequence[str] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    progress: bool = True,
    scoring: str = "generate",
    *,
    prefix_cache: bool = True,
) -> EvaluationResult:
    """Belebele accuracy of `model` with passages in `lang`: zero-shot and with the passage
    translated into each of `bridges` first (and, with `reference`, on the question language's
    own passage). Questions/answers stay in `question_lang` (en or de: the Belebele files
    available); `n` questions drawn with `seed` (all if None); answers read as `scoring` says
    (see the module docstring). `prefix_cache`: read the prompts' shared prefix once
    (`evaluation.generate`; False reads every prompt whole)."""
    started = time.perf_counter()
    lang = get_language(lang).code
    question_lang = resolve_language(question_lang).code
    codes = [get_language(b).code for b in (bridges or [])]
    if len(set(codes)) != len(codes):
        raise InputError(f"a bridge is listed twice: {', '.join(codes)}")
    if lang in codes:
        raise InputError(f"a bridge cannot be the passage language {lang}")
    prompts.check()
    if scoring not in SCORINGS:
        raise InputError(f"unknown scoring {scoring!r}; choose one of {', '.join(SCORINGS)}")
    letter_ids = letter_token_ids(model.tokenizer) if scoring == "likelihood" else None
    for name, value in (
        ("max_new_tokens", max_new_tokens),
        ("translation_max_new_tokens", translation_max_new_tokens),
    ):
        if value < 1:
            raise InputError(f"{name} must be at least 1, got {value}")
    if ranking is not None:
        if not codes:
            raise InputError("a bridge ranking needs bridges to evaluate")
        ranking = [get_language(b).code for b in ranking]
        oracle_comparison(ranking, {b: 0.0 for b in codes})

    items = sample_items(question_lang, n, seed, data_dir)
    local = with_passages(items, lang, data_dir)
    sentences = passage_sentences(lang, data_dir)
    urls = list(dict.fromkeys(str(item.url) for item in local))
    missing = [u for u in urls if u not in sentences]
    if missing:
        raise InputError(f"no FLORES-200 sentences in {lang} for passage {missing[0]}")
    answer_stop = StopRule(max_new_tokens=max_new_tokens, stop_at_newline=True, stop_at_closing_quote=False)
    translation_stop = StopRule(
        max_new_tokens=translation_max_new_tokens, stop_at_newline=True, stop_at_closing_quote=False
    )

    def answer(condition: str, bridge: str | None, passages: list[str], passage_lang: str):
        texts = [question_prompt(prompts.question, item, p) for item, p in zip(local, passages, strict=True)]
        desc = f"mrc {lang} {condition}"
        if letter_ids is not None:
            scores = score_choices(
                model, texts, letter_ids, batch_size, progress, desc, prefix_cache=prefix_cache
            )
            outputs = [""] * len(texts)
            answers = [max(LETTERS, key=score.__getitem__) for score in scores]
        else:
            outputs = generate_texts(
                model, texts, answer_stop, batch_size, progress, desc, prefix_cache=prefix_cache
            )
            scores = [None] * len(texts)
            answers = [extract_choice(o) for o in outputs]
        return [
            MRCRecord(
                item.url,
                item.question_number,
                item.question,
                item.correct_letter,
                passage_lang,
                p,
                o,
                a,
                a == item.correct_letter,
                bridge,
                score,
            )
            for item, p, o, a, score in zip(local, passages, outputs, answers, scores, strict=True)
        ]

    records = {ZERO_SHOT: answer(ZERO_SHOT, None, [it.passage for it in local], lang)}
    prefixes = {}
    for bridge in codes:
        prefixes[bridge] = translation_prefix(prompts, lang, bridge, set(urls), seed, data_dir)
        translated = translate_passages(
            model,
            urls,
            sentences,
            lang,
            bridge,
            prompts,
            translation_stop,
            batch_size,
            progress,
            prefixes[bridge],
            prefix_cache=prefix_cache,
        )
        passages = [translated[str(item.url)] for item in local]
        records[bridge_condition(bridge)] = answer(bridge_condition(bridge), bridge, passages, bridge)
    if reference:
        records[REFERENCE] = answer(REFERENCE, None, [it.passage for it in items], question_lang)

    conditions, comparisons, oracle = summarise_conditions(
        records, codes, ranking, confidence, n_resamples, seed
    )
    params = {
        "lang": lang,
        "question_lang": question_lang,
        "bridges": codes,
        "ranking": ranking,
        "n": n,
        "n_evaluated": len(local),
        "n_passages": len(urls),
        "seed": seed,
        "batch_size": batch_size,
        "max_new_tokens": max_new_tokens,
        "translation_max_new_tokens": translation_max_new_tokens,
        "reference": reference,
        "scoring": scoring,
        "confidence": confidence,
        "n_resamples": n_resamples,
        "prompts": asdict(prompts),
        "translation_prefixes": prefixes,
        "data_dir": str(data_dir) if data_dir is not None else None,
        "toolkit_version": __version__,
        "library_versions": library_versions(),
    }
    data = {
        "belebele_question_language": question_lang,
        "passages": f"FLORES-200 dev+devtest sentences in {lang}, grouped by source URL",
        "n_sentences_translated_per_bridge": sum(len(sentences[u]) for u in urls),
    }
    return EvaluationResult(
        task="mrc",
        name=lang,
        conditions=conditions,
        comparisons=comparisons,
        oracle=oracle,
        params=params,
        model=model_description(model),
        data=data,
        diagnostics={name: mrc_diagnostics(recs) for name, recs in records.items()},
        seconds=time.perf_counter() - started,
    )


def write_mrc_results(result: EvaluationResult, out_dir: str | os.PathLike[str]):
    """Write `mrc-{lang}.json` (summary) and `.jsonl` (records); returns their paths."""
    if result.task != "mrc":
        raise InputError(f"not an MRC result: {result.task}")
    return write_results(result, out_dir)
