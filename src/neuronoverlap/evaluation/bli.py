"""Bilingual lexicon induction (BLI), zero-shot versus bridged through another language.

Zero-shot: the model completes `{S}:"{w}"→{T}:`. Bridged through B: it first completes
`{S}:"{w}"→{B}:`, whose first answer word is b, then `{S}:"{w}"→{B}:"{b}"→{T}:`. The answer is
the first word of the completion (`extraction.extract_answer`); a source word scores when the
answer matches any of its gold translations (precision@1, over the unique source words of the
MUSE test split or a seeded sample of them). {S}, {T}, {B} are language names (endonyms by
default, as in the reference code).

The bridge word b is step 1's answer kept whole up to its first separator
(`extraction.extract_bridge_word`: "New York" stays two words), as the reference passes it on.

Optional few-shot prefix: `shots` examples from the train split, written in the same template
and completed with their gold answer, one per line, before every prompt. The same example
source words serve every word and every condition (zero-shot, each bridge's steps 1 and 2;
`protocol.choose_examples`), so a paired comparison measures the bridge, not the examples;
their source words are never among the evaluated ones.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

from neuronoverlap import __version__
from neuronoverlap.data import BilingualDictionary, load_dictionary
from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.extraction import (
    extract_answer,
    extract_bridge_word,
    is_hit,
    normalize_word,
)
from neuronoverlap.evaluation.generate import generate_texts
from neuronoverlap.evaluation.logprob import check_metric, gold_logprobs, summarise_logprobs
from neuronoverlap.evaluation.protocol import Example, is_identical, load_examples
from neuronoverlap.evaluation.results import (
    ZERO_SHOT,
    EvaluationResult,
    bridge_condition,
    model_description,
    oracle_comparison,
    summarise_conditions,
    write_results,
)
from neuronoverlap.languages import get_language
from neuronoverlap.models import NeuronModel, StopRule
from neuronoverlap.probes.prompts import language_label, render
from neuronoverlap.versions import library_versions


@dataclass(frozen=True)
class BLIPrompts:
    """Templates of a BLI run.

    `direct` ({S}, {T}, {w}) is the zero-shot prompt and, with the bridge as target, the first
    bridged step; `bridged` ({S}, {B}, {T}, {w}, {b}) the second. `answer` ({a}) is how a
    few-shot example's answer follows its prompt; `shots` the number of examples; `names`
    "endonym" (Deutsch) or "english" (German); `non_identical_shots` keeps identical pairs out
    of the examples (`protocol.choose_examples`).
    """

    direct: str = '{S}:"{w}"→{T}:'
    bridged: str = '{S}:"{w}"→{B}:"{b}"→{T}:'
    answer: str = '"{a}"'
    shots: int = 0
    names: str = "endonym"
    non_identical_shots: bool = False

    def check(self) -> None:
        """An `InputError` if a template lacks a slot or uses an unknown one."""
        for template, needed, allowed in (
            (self.direct, ("{w}",), "{S}, {T}, {w}"),
            (self.bridged, ("{w}", "{b}"), "{S}, {B}, {T}, {w}, {b}"),
            (self.answer, ("{a}",), "{a}"),
        ):
            missing = [slot for slot in needed if slot not in template]
            if missing:
                raise InputError(f"template {template!r} lacks {', '.join(missing)}")
            try:
                template.format(S="", T="", B="", w="", b="", a="")
            except (KeyError, IndexError, ValueError) as exc:
                raise InputError(f"template {template!r} may only use {allowed} ({exc})") from None
        if self.shots < 0:
            raise InputError(f"the number of few-shot examples must be >= 0, got {self.shots}")
        language_label("en", self.names)  # checks the name style


#: Named prompt styles: the paper's (the default), one-word lines, which base models continue
#: as a translation more readily (docs/evaluation.md has the measured numbers), and the
#: validation study's protocol: lines with 5 examples that are never identical pairs.
LINES = BLIPrompts(direct="{S}: {w}\n{T}:", bridged="{S}: {w}\n{B}: {b}\n{T}:", answer=" {a}")
PROMPT_STYLES: dict[str, BLIPrompts] = {
    "paper": BLIPrompts(),
    "lines": LINES,
    "study": replace(LINES, shots=5, non_identical_shots=True),
}


def render_bridged(
    template: str,
    src: str,
    bridge: str,
    tgt: str,
    word: str,
    bridge_word: str,
    names: str = "endonym",
) -> str:
    """Fill a bridged template's {S}, {B}, {T} (language names), {w} and {b} (the words)."""
    try:
        return template.format(
            S=language_label(src, names),
            B=language_label(bridge, names),
            T=language_label(tgt, names),
            w=word,
            b=bridge_word,
        )
    except (KeyError, IndexError) as exc:
        raise InputError(
            f"template {template!r} may only use {{S}}, {{B}}, {{T}}, {{w}} and {{b}} ({exc})"
        ) from None


@dataclass(frozen=True)
class BLIRecord:
    """One source word under one condition. `copied`: the answer is the source word itself
    (after `normalize_word`). Bridge fields are None for zero-shot; `bridge_hit` says whether b
    is a gold translation into the bridge language (None when the source word is not in the
    src-bridge dictionary). `prompt` is without the few-shot prefix."""

    source: str
    gold: list[str]
    prompt: str
    generated: str
    answer: str
    hit: bool
    copied: bool
    bridge: str | None = None
    bridge_prompt: str | None = None
    bridge_generated: str | None = None
    bridge_word: str | None = None
    bridge_hit: bool | None = None


def make_record(source: str, gold: list[str], prompt: str, generated: str, **bridge_fields):
    """The record of one generation: its answer word, hit and copy flags."""
    answer = extract_answer(generated)
    copied = bool(answer) and normalize_word(answer) == normalize_word(source)
    return BLIRecord(source, gold, prompt, generated, answer, is_hit(answer, gold), copied, **bridge_fields)


def bli_diagnostics(records: Sequence[BLIRecord]) -> dict[str, float | int | None]:
    """Counts that explain a precision@1: empty and copied answers, hits that are copies, the
    precision over words whose gold list does not hold the source word itself (where copying
    cannot score), and for a bridge the precision given a right or wrong bridge word."""

    def share(rows: list[BLIRecord]) -> float | None:
        return sum(r.hit for r in rows) / len(rows) if rows else None

    not_identical = [r for r in records if not is_identical(r.source, r.gold)]
    out: dict[str, float | int | None] = {
        "n": len(records),
        "n_empty": sum(not r.answer for r in records),
        "n_copied": sum(r.copied for r in records),
        "n_hit_by_copy": sum(r.hit and r.copied for r in records),
        "n_not_identical": len(not_identical),
        "accuracy_not_identical": share(not_identical),
    }
    if records and records[0].bridge is not None:
        right = [r for r in records if r.bridge_hit is True]
        wrong = [r for r in records if r.bridge_hit is False]
        out.update(
            n_bridge_hit=len(right),
            n_bridge_miss=len(wrong),
            accuracy_given_bridge_hit=share(right),
            accuracy_given_bridge_miss=share(wrong),
        )
    return out


def direct_prefix(prompts: BLIPrompts, src: str, tgt: str, examples: Sequence[Example]) -> str:
    """The few-shot prefix of direct prompts src -> tgt: each example's word in `tgt` ('' for
    no examples)."""
    lines = [
        render(prompts.direct, src, tgt, e.source, prompts.names) + prompts.answer.format(a=e.words[tgt])
        for e in examples
    ]
    return "".join(line + "\n" for line in lines)


def bridged_prefix(prompts: BLIPrompts, src: str, bridge: str, tgt: str, examples: Sequence[Example]) -> str:
    """The few-shot prefix of bridged prompts: each example with its bridge and target word."""
    lines = [
        render_bridged(prompts.bridged, src, bridge, tgt, e.source, e.words[bridge], prompts.names)
        + prompts.answer.format(a=e.words[tgt])
        for e in examples
    ]
    return "".join(line + "\n" for line in lines)


def _bridge_gold(src: str, bridge: str, data_dir) -> BilingualDictionary | None:
    """The src-bridge dictionary (train and test) for checking bridge words, if there is one."""
    try:
        return load_dictionary(src, bridge, split="all", data_dir=data_dir)
    except InputError:
        return None


def check_bridges(src: str, tgt: str, bridges: Sequence[str] | None) -> list[str]:
    """Bridge codes, checked: known, distinct, neither the source nor the target."""
    codes = [get_language(b).code for b in (bridges or [])]
    if len(set(codes)) != len(codes):
        raise InputError(f"a bridge is listed twice: {', '.join(codes)}")
    clash = sorted({src, tgt} & set(codes))
    if clash:
        raise InputError(f"a bridge cannot be the source or target language: {', '.join(clash)}")
    return codes


def evaluate_bli(
    model: NeuronModel,
    src: str,
    tgt: str,
    bridges: Sequence[str] | None = None,
    n: int | None = None,
    seed: int = 0,
    batch_size: int = 16,
    prompts: BLIPrompts = BLIPrompts(),
    split: str = "test",
    data_dir: str | os.PathLike[str] | None = None,
    max_new_tokens: int = 16,
    ranking: Sequence[str] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    progress: bool = True,
    dictionary: BilingualDictionary | None = None,
    *,
    prefix_cache: bool = True,
    metric: str = "p@1",
    zero_shot: bool = True,
) -> EvaluationResult:
    """BLI precision@1 of `model` on src -> tgt: zero-shot and bridged through each of
    `bridges`, with bootstrap intervals, McNemar's test of each bridge against zero-shot, and
    (with at least one bridge) the oracle comparison against `ranking` (bridges in selection
    order, e.g. the HSIC ranking; None: report the oracle only).

    Words: the unique source words of the `split` dictionary (all, or `n` drawn with `seed`);
    `dictionary` replaces the loaded one (tests, custom lexicons). `prefix_cache`: read each
    condition's few-shot prefix once (`evaluation.generate`; False reads every prompt whole).
    `metric`: "p@1" (greedy answers), "logprob" (the gold answer's teacher-forced log-prob,
    `evaluation.logprob`: no generation except step 1's bridge word) or "both".
    `zero_shot`: False leaves the zero-shot condition out (no comparison with it; for work that
    reads only bridged conditions, such as an intervention's null through one bridge).
    """
    started = time.perf_counter()
    src, tgt = get_language(src).code, get_language(tgt).code
    if src == tgt:
        raise InputError(f"BLI needs two different languages; got {src}-{tgt}")
    bridges = check_bridges(src, tgt, bridges)
    if not zero_shot and not bridges:
        raise InputError("without the zero-shot condition BLI needs at least one bridge")
    prompts.check()
    check_metric(metric)
    greedy, scored = metric in ("p@1", "both"), metric in ("logprob", "both")
    if n is not None and n < 1:
        raise InputError(f"the number of words must be at least 1, got {n}")
    if max_new_tokens < 1:
        raise InputError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    if ranking is not None:
        if not bridges:
            raise InputError("a bridge ranking needs bridges to evaluate")
        ranking = [get_language(b).code for b in ranking]
        oracle_comparison(ranking, {b: 0.0 for b in bridges})  # checks the ranking up front
    if dictionary is None:
        dictionary = load_dictionary(src, tgt, split=split, data_dir=data_dir)
    full_size = dictionary.n_source_words
    if n is not None:
        dictionary = dictionary.sample_source_words(n, seed)
    words = list(dictionary.source_words)
    golds = [list(dictionary.translations[w]) for w in words]
    excluded = set(words)
    stop = StopRule(max_new_tokens=max_new_tokens, stop_at_newline=True, stop_at_closing_quote=True)

    def run(texts: list[str], prefix: str, desc: str) -> list[str]:
        return generate_texts(
            model, [prefix + t for t in texts], stop, batch_size, progress, desc, prefix_cache=prefix_cache
        )

    examples = load_examples(
        src, [tgt], bridges, prompts.shots, seed, excluded, prompts.non_identical_shots, data_dir
    )
    prefixes: dict[str, str] = {}
    if zero_shot:
        prefixes[ZERO_SHOT] = direct_prefix(prompts, src, tgt, examples)

    def score(texts: list[str], prefix: str) -> list[float]:
        values = gold_logprobs(
            model,
            [prefix + t for t in texts],
            golds,
            batch_size=batch_size,
            prefix_cache=prefix_cache,
            answer=prompts.answer,
            progress=progress,
        )
        return [float(v) for v in values]

    queries = [render(prompts.direct, src, tgt, w, prompts.names) for w in words]
    records: dict[str, list[BLIRecord]] = {}
    logprobs: dict[str, list[float]] = {}
    if greedy and zero_shot:
        outputs = run(queries, prefixes[ZERO_SHOT], f"bli {src}-{tgt} zero-shot")
        records[ZERO_SHOT] = [
            make_record(w, g, q, o) for w, g, q, o in zip(words, golds, queries, outputs, strict=True)
        ]
    if scored and zero_shot:
        logprobs[ZERO_SHOT] = score(queries, prefixes[ZERO_SHOT])

    for bridge in bridges:
        step_one = direct_prefix(prompts, src, bridge, examples)
        step_two = bridged_prefix(prompts, src, bridge, tgt, examples)
        prefixes[f"{bridge_condition(bridge)}/step1"] = step_one
        prefixes[f"{bridge_condition(bridge)}/step2"] = step_two
        first = [render(prompts.direct, src, bridge, w, prompts.names) for w in words]
        first_out = run(first, step_one, f"bli {src}→{bridge}")
        bridge_words = [extract_bridge_word(o) for o in first_out]
        second = [
            render_bridged(prompts.bridged, src, bridge, tgt, w, b, prompts.names)
            for w, b in zip(words, bridge_words, strict=True)
        ]
        if scored:
            logprobs[bridge_condition(bridge)] = score(second, step_two)
        if not greedy:
            continue
        second_out = run(second, step_two, f"bli {src}→{bridge}→{tgt}")
        bridge_gold = _bridge_gold(src, bridge, data_dir)
        records[bridge_condition(bridge)] = [
            make_record(
                w,
                g,
                q,
                o,
                bridge=bridge,
                bridge_prompt=fq,
                bridge_generated=fo,
                bridge_word=b,
                bridge_hit=(
                    is_hit(b, bridge_gold.translations[w])
                    if bridge_gold is not None and w in bridge_gold.translations
                    else None
                ),
            )
            for w, g, q, o, fq, fo, b in zip(
                words, golds, second, second_out, first, first_out, bridge_words, strict=True
            )
        ]

    conditions, comparisons, oracle = {}, {}, None
    if greedy:
        conditions, comparisons, oracle = summarise_conditions(
            records, bridges, ranking, confidence, n_resamples, seed
        )
    logprob = None
    if scored:
        logprob = summarise_logprobs(logprobs, bridges, confidence, n_resamples, seed)
        if bridges:
            means = {b: logprob["conditions"][bridge_condition(b)]["mean"] for b in bridges}
            logprob["oracle"] = oracle_comparison(ranking, means).to_dict()
        if greedy:
            logprob["agrees_with_p@1"] = oracle is None or logprob["best_bridge"] in oracle.tied_best
    params = {
        "src": src,
        "tgt": tgt,
        "bridges": bridges,
        "ranking": ranking,
        "n": n,
        "n_evaluated": len(words),
        "seed": seed,
        "batch_size": batch_size,
        "split": split,
        "max_new_tokens": max_new_tokens,
        "metric": metric,
        "zero_shot": zero_shot,
        "prefix_cache": prefix_cache,
        "confidence": confidence,
        "n_resamples": n_resamples,
        "prompts": asdict(prompts),
        "few_shot_prefixes": prefixes,
        "few_shot_words": [e.source for e in examples],
        "data_dir": str(data_dir) if data_dir is not None else None,
        "toolkit_version": __version__,
        "library_versions": library_versions(),
    }
    data = {"dictionary": dictionary.provenance(), "dictionary_source_words": full_size}
    return EvaluationResult(
        task="bli",
        name=f"{src}-{tgt}",
        conditions=conditions,
        comparisons=comparisons,
        oracle=oracle,
        params=params,
        model=model_description(model),
        data=data,
        diagnostics={name: bli_diagnostics(recs) for name, recs in records.items()},
        seconds=time.perf_counter() - started,
        logprob=logprob,
    )


def write_bli_results(result: EvaluationResult, out_dir: str | os.PathLike[str]):
    """Write `bli-{src}-{tgt}.json` (summary) and `.jsonl` (records); returns their paths."""
    if result.task != "bli":
        raise InputError(f"not a BLI result: {result.task}")
    return write_results(result, out_dir)
