"""Several bridges at once (Chain-of-Dictionary style, Lu et al. 2024): the BLI prompt gives the
word's translations in the top-k bridges of a rule, then asks for the target.

Evaluated like a single bridge under the study protocol (`validation.run_study`): per example
seed the same few-shot examples (now written with every bridge's word), step 1 is the model's
own translation into each bridge (the study's step-1 generations, read from its cache), step 2
one prompt with all k bridge words:

    Suomi: koira          (source)
    English: dog          (bridge 1, the rule's first)
    Deutsch: Hund         (bridge 2)
    Magyar:               (target)

The bridged template's part from {B} up to {T} is repeated once per bridge (k = 1 gives exactly
the single-bridge prompt). Per pair: p@1 on the non-identical words of the chain, of the rule's
first bridge alone, and of the best single bridge in hindsight (in-sample, so favoured), and the
paired difference chain - first bridge with a percentile bootstrap interval over words (pooled
over pairs: words resampled within each pair).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.bli import BLIPrompts, direct_prefix
from neuronoverlap.evaluation.extraction import extract_answer, extract_bridge_word, is_hit
from neuronoverlap.evaluation.generation_cache import GenerationCache
from neuronoverlap.evaluation.protocol import load_examples
from neuronoverlap.evaluation.study_output import StudyFolder
from neuronoverlap.evaluation.validation import PairRun, StudyConfig
from neuronoverlap.models import NeuronModel, StopRule
from neuronoverlap.probes.prompts import language_label, render


def render_chain(
    template: str,
    src: str,
    bridges: Sequence[str],
    tgt: str,
    word: str,
    bridge_words: Sequence[str],
    names: str = "endonym",
) -> str:
    """A bridged template with its {B}..{T} part repeated for each (bridge, bridge word)."""
    if "{B}" not in template or "{T}" not in template or template.index("{B}") > template.index("{T}"):
        raise InputError(f"template {template!r} needs {{B}} before {{T}} for several bridges")
    head, rest = template.split("{B}", 1)
    part, tail = "{B}" + rest.split("{T}", 1)[0], "{T}" + rest.split("{T}", 1)[1]
    text = head.format(S=language_label(src, names), w=word)
    for b, bw in zip(bridges, bridge_words, strict=True):
        text += part.format(B=language_label(b, names), b=bw)
    return text + tail.format(T=language_label(tgt, names))


def chain_prefix(prompts: BLIPrompts, src: str, bridges: Sequence[str], tgt: str, examples) -> str:
    """The few-shot prefix: each example with its word in every bridge and its target word."""
    lines = [
        render_chain(
            prompts.bridged, src, bridges, tgt, e.source, [e.words[b] for b in bridges], prompts.names
        )
        + prompts.answer.format(a=e.words[tgt])
        for e in examples
    ]
    return "".join(line + "\n" for line in lines)


def top_bridges(scores: Mapping[str, float], bridges: Sequence[str], k: int) -> list[str]:
    """The k best-scored bridges (ties: the candidates' order)."""
    if k < 1 or k > len(bridges):
        raise InputError(f"k = {k} bridges asked, the pair has {len(bridges)} candidates")
    return sorted(bridges, key=lambda b: (-scores[b], list(bridges).index(b)))[:k]


def run_chain(
    model: NeuronModel,
    runs: Mapping[str, PairRun],
    rankings: Mapping[str, Mapping[str, float]],
    k: int,
    out: str | os.PathLike[str],
    config: StudyConfig = StudyConfig(),  # noqa: B008 (frozen)
    progress: bool = True,
) -> dict[str, dict[str, np.ndarray]]:
    """Per pair the chain's (seed, word) hits through the top-k bridges of `rankings[pair]`
    (bridge -> score), with the generations cached beside the study's under `out`/cache."""
    prompts = config.prompts
    stop = StopRule(max_new_tokens=config.max_new_tokens, stop_at_newline=True, stop_at_closing_quote=True)
    cache = GenerationCache(Path(out) / "cache", model, stop)
    chosen = {name: top_bridges(rankings[name], r.bridges, k) for name, r in runs.items() if name in rankings}
    missing = [name for name in runs if name not in chosen]
    if missing:
        raise InputError(f"the rule ranks no bridge of {', '.join(missing)}")
    hits: dict[str, dict[str, list]] = {name: {} for name in runs}
    sources = list(dict.fromkeys(r.src for r in runs.values()))
    steps = [(src, seed) for src in sources for seed in config.example_seeds]
    for src, seed in tqdm(steps, desc=f"chain k={k}", unit="source/seed", disable=not progress):
        group = [r for r in runs.values() if r.src == src]
        union = list(dict.fromkeys(b for r in group for b in r.bridges))  # as the study draws them
        evaluated = {w for r in group for w in r.words}
        examples = load_examples(
            src,
            [r.tgt for r in group],
            union,
            prompts.shots,
            seed,
            evaluated,
            prompts.non_identical_shots,
            config.data_dir,
        )
        first = []
        for b in union:
            words_b = list(dict.fromkeys(w for r in group if b in chosen[r.name] for w in r.words))
            if words_b:
                first.append(
                    (
                        f"{src}-{b}",
                        direct_prefix(prompts, src, b, examples),
                        [render(prompts.direct, src, b, w, prompts.names) for w in words_b],
                    )
                )
        outputs = cache.generate(first, config.batch_size, progress, f"{src} seed {seed}: step 1")
        step1 = {
            label.split("-", 1)[1]: dict(zip(queries, texts, strict=True))
            for (label, _, queries), texts in zip(first, outputs, strict=True)
        }
        second = []
        for r in group:
            bs = chosen[r.name]
            words = [
                [extract_bridge_word(step1[b][render(prompts.direct, src, b, w, prompts.names)]) for b in bs]
                for w in r.words
            ]
            second.append(
                (
                    f"{src}-{'+'.join(bs)}-{r.tgt}",
                    chain_prefix(prompts, src, bs, r.tgt, examples),
                    [
                        render_chain(prompts.bridged, src, bs, r.tgt, w, bw, prompts.names)
                        for w, bw in zip(r.words, words, strict=True)
                    ],
                )
            )
        answers = cache.generate(second, config.batch_size, progress, f"{src} seed {seed}: chain")
        for r, texts in zip(group, answers, strict=True):
            hits[r.name][str(seed)] = [
                is_hit(extract_answer(x), g) for x, g in zip(texts, r.golds, strict=True)
            ]
    return {
        name: {"bridges": chosen[name], "hits": np.array([h[s] for s in h], dtype=np.float64)}
        for name, h in hits.items()
    }


def compare_chain(
    runs: Mapping[str, PairRun],
    chains: Mapping[str, Mapping],
    *,
    n_bootstrap: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """Per pair and pooled: p@1 (non-identical words, mean over seeds) of the chain, of its first
    bridge alone and of the best single bridge in hindsight; chain - first bridge with a word
    bootstrap interval."""
    rng = np.random.default_rng(seed)
    pairs, diffs = {}, []
    for name, r in runs.items():
        keep = ~np.array(r.identical)
        chain = chains[name]["hits"].mean(axis=0)[keep]
        first = r.hits(f"bridge:{chains[name]['bridges'][0]}").mean(axis=0)[keep]
        single = {b: float(r.hits(f"bridge:{b}").mean(axis=0)[keep].mean()) for b in r.bridges}
        pairs[name] = {
            "bridges": list(chains[name]["bridges"]),
            "chain": float(chain.mean()),
            "first_bridge": float(first.mean()),
            "best_single": max(single.values()),
            "best_single_bridge": max(single, key=single.get),
        }
        diffs.append(chain - first)
    draws = np.mean(
        [d[rng.integers(0, d.size, size=(n_bootstrap, d.size))].mean(axis=1) for d in diffs], axis=0
    )
    alpha = (1 - confidence) / 2
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    return {
        "pairs": pairs,
        "chain_minus_first": {
            "value": float(np.mean([d.mean() for d in diffs])),
            "ci_low": float(low),
            "ci_high": float(high),
        },
        "chain": float(np.mean([p["chain"] for p in pairs.values()])),
        "first_bridge": float(np.mean([p["first_bridge"] for p in pairs.values()])),
        "best_single": float(np.mean([p["best_single"] for p in pairs.values()])),
        "confidence": confidence,
    }


def load_runs(out: str | os.PathLike[str]) -> dict[str, PairRun]:
    """The study's runs in `out` (`study_output.StudyFolder`: the pairs its validate.json lists)."""
    return StudyFolder(out).runs


def chain_table(result: Mapping) -> str:
    rows = [f"{'pair':<8} {'bridges':<12} {'chain':>7} {'first':>7} {'best 1':>7}"]
    for name, p in result["pairs"].items():
        rows.append(
            f"{name:<8} {'+'.join(p['bridges']):<12} {p['chain']:>7.3f} {p['first_bridge']:>7.3f} "
            f"{p['best_single']:>7.3f} ({p['best_single_bridge']})"
        )
    d = result["chain_minus_first"]
    rows.append(
        f"pooled: chain {result['chain']:.3f}, first bridge {result['first_bridge']:.3f}, best single "
        f"(in hindsight) {result['best_single']:.3f}; chain - first {d['value']:+.3f} "
        f"[{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"
    )
    return "\n".join(rows)


def study_rankings(
    out: str | os.PathLike[str], rule: str, runs: Mapping[str, PairRun]
) -> dict[str, dict[str, float]]:
    """pair -> bridge -> score of `rule` in a study folder: a predictor rule of validate.json's
    `predictor_scores`, or the study's english, typology or hsic."""
    from neuronoverlap.evaluation.choice import builtin_scores

    summary = json.loads((Path(out) / "validate.json").read_text(encoding="utf-8"))
    stored = summary.get("predictor_scores") or {}
    if rule in stored:
        return {name: stored[rule][name] for name in runs if name in stored[rule]}
    if rule not in ("english", "typology", "hsic"):
        known = ", ".join(["english", "typology", "hsic", *stored])
        raise InputError(f"rule {rule!r} ranks no bridge in {out}; known there: {known}")
    out_scores = {}
    for name, r in runs.items():
        data = r.pair_data(summary["pairs"][name].get("scores"))
        scores = builtin_scores(data, rule)
        if scores is not None:
            out_scores[name] = scores
    return out_scores


def study_config(out: str | os.PathLike[str]) -> StudyConfig:
    """The `StudyConfig` a study folder was run with (so the chain reuses its cached step 1)."""
    saved = json.loads((Path(out) / "validate.json").read_text(encoding="utf-8"))
    return StudyConfig.from_dict(saved["config"])
