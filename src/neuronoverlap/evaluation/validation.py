"""The bridge-selection validation study: for each pair, zero-shot and every candidate bridge on
the same test words under the study protocol, then `study.pool` against the selection.

Protocol (`StudyConfig`, docs/evaluation.md): one-word-line prompts with k = 5 examples drawn only
from non-identical pairs (`protocol.choose_examples`); per example seed one draw of example
source words per *source language*, shared by every condition of every pair with that source
(zero-shot, each bridge's steps 1 and 2); results averaged over the example seeds (>= 3); the
primary metric is p@1 on the non-identical test words (identical ones reported apart); all
test words of the MUSE split unless `n` is given.

Work is shared and cached: generations live in `generation_cache.GenerationCache` files keyed by model, prefix
and stop rule, so the step-1 translations src -> B are computed once for every pair with source
src (and never again on a rerun); within one source and seed, zero-shot and every step 1 go
through one batched generation pass, every step 2 through a second.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from neuronoverlap import __version__
from neuronoverlap.data import load_dictionary
from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.bli import (
    PROMPT_STYLES,
    BLIPrompts,
    bridged_prefix,
    direct_prefix,
    render_bridged,
)
from neuronoverlap.evaluation.extraction import extract_answer, extract_bridge_word, is_hit
from neuronoverlap.evaluation.generation_cache import GenerationCache
from neuronoverlap.evaluation.protocol import is_identical, load_examples
from neuronoverlap.evaluation.results import ZERO_SHOT, bridge_condition, model_description
from neuronoverlap.evaluation.study import RULES, PairData, StudySummary, fixed_choice, pool
from neuronoverlap.languages import get_language
from neuronoverlap.models import NeuronModel, StopRule
from neuronoverlap.probes.prompts import render
from neuronoverlap.versions import library_versions


@dataclass(frozen=True)
class StudyConfig:
    """What the study evaluates and how (defaults: the study protocol)."""

    prompts: BLIPrompts = PROMPT_STYLES["study"]
    example_seeds: tuple[int, ...] = (0, 1, 2)
    n: int | None = None
    seed: int = 0
    batch_size: int = 16
    max_new_tokens: int = 8
    n_splits: int = 200
    n_bootstrap: int = 2000
    n_permutations: int = 9999
    confidence: float = 0.95
    data_dir: str | None = None
    identical: bool = True  # False: evaluate only the non-identical test words (saves time)
    #: (pair, n, seed): leave out of that pair the words an earlier run with `n`, `seed` and the
    #: same `identical` drew, so that a replication's words are independent of it.
    exclude: tuple[tuple[str, int, int], ...] = ()
    logprob: bool = True  # also the gold log-prob of zero-shot and every step 2 (no generation)

    @classmethod
    def from_dict(cls, saved: Mapping) -> StudyConfig:
        """The config a validate.json recorded (`"config"`)."""
        saved = dict(saved)
        saved["prompts"] = BLIPrompts(**saved["prompts"])
        saved["example_seeds"] = tuple(saved["example_seeds"])
        saved["exclude"] = tuple(tuple(e) for e in saved.get("exclude", ()))
        return cls(**saved)

    def check(self) -> None:
        self.prompts.check()
        if not self.example_seeds or len(set(self.example_seeds)) != len(self.example_seeds):
            raise InputError(f"example seeds must be distinct and at least one: {self.example_seeds}")
        for name, value in (
            ("n", self.n),
            ("batch size", self.batch_size),
            ("max_new_tokens", self.max_new_tokens),
            ("splits", self.n_splits),
            ("bootstrap", self.n_bootstrap),
        ):
            if value is not None and value < 1:
                raise InputError(f"{name} must be at least 1, got {value}")


@dataclass
class PairRun:
    """Everything recorded for one pair: words, gold lists, and per example seed and condition
    the answers and hits (bridged: also step 1's bridge word and whether it is gold)."""

    src: str
    tgt: str
    bridges: list[str]
    words: list[str]
    golds: list[list[str]]
    identical: list[bool]
    seeds: dict[str, dict[str, dict]] = field(default_factory=dict)  # seed -> condition -> rows
    examples: dict[str, list[str]] = field(default_factory=dict)  # seed -> example source words
    dictionary: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.src}-{self.tgt}"

    def hits(self, condition: str) -> np.ndarray:
        """(seed, word) hits of a condition."""
        return np.array([self.seeds[s][condition]["hit"] for s in self.seeds], dtype=np.float64)

    def step1(self, bridge: str) -> np.ndarray:
        """(seed, word) step-1 correctness through `bridge` (NaN: word not in src-B dictionary)."""
        rows = [self.seeds[s][bridge_condition(bridge)]["bridge_hit"] for s in self.seeds]
        return np.array([[math.nan if v is None else float(v) for v in r] for r in rows])

    def mean_logprob(self, condition: str) -> float | None:
        """The gold log-prob of a condition, mean over example seeds and non-identical words
        (None when the run did not score it)."""
        rows = [self.seeds[s][condition].get("logprob") for s in self.seeds]
        keep = ~np.array(self.identical)
        if not rows or any(r is None for r in rows) or not keep.any():
            return None
        return float(np.array(rows, dtype=np.float64)[:, keep].mean())

    def accuracy(self, condition: str, identical: bool = False) -> float:
        mask = np.array(self.identical) == identical
        return float(self.hits(condition)[:, mask].mean()) if mask.any() else math.nan

    def pair_data(self, scores: Mapping[str, float] | None) -> PairData:
        """The study's view: hits on the non-identical words, averaged over example seeds."""
        keep = ~np.array(self.identical)
        hits = np.stack([self.hits(bridge_condition(b)).mean(axis=0)[keep] for b in self.bridges])
        step1 = np.stack([_nanmean_rows(self.step1(b))[keep] for b in self.bridges])
        return PairData(
            self.src,
            self.tgt,
            list(self.bridges),
            hits,
            step1,
            dict(scores) if scores is not None else None,
            self.hits(ZERO_SHOT).mean(axis=0)[keep],
        )


def _nanmean_rows(values: np.ndarray) -> np.ndarray:
    """Column means over the known (non-NaN) rows; NaN where a column has none."""
    known = ~np.isnan(values)
    total = np.where(known, values, 0).sum(axis=0)
    count = known.sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def pair_bridges(src: str, tgt: str, bridges: Sequence[str]) -> list[str]:
    """The candidate bridges of a pair: the list given, less the pair's own languages."""
    return [b for b in bridges if b not in (src, tgt)]


def _bridge_gold(src: str, bridge: str, data_dir):
    try:
        return load_dictionary(src, bridge, split="all", data_dir=data_dir)
    except InputError:
        return None


def claim_study_folder(out: str | os.PathLike[str], model: NeuronModel) -> None:
    """Mark `out` as this model's study (`study-model.json`); an `InputError` if another model's
    study is there (its cache and results would be mixed with this one's)."""
    path = Path(out) / "study-model.json"
    mine = {"model": model.fingerprint(), "dtype": str(model.dtype)}
    if path.is_file():
        try:
            theirs = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"unreadable {path}: {exc}") from None
        if theirs != mine:
            raise InputError(
                f"{out} holds the study of {theirs.get('model')} ({theirs.get('dtype')}), not of "
                f"{mine['model']} ({mine['dtype']}): use another --out"
            )
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(mine) + "\n", encoding="utf-8")


def run_study(
    model: NeuronModel,
    pairs: Sequence[tuple[str, str]],
    bridges: Sequence[str],
    out: str | os.PathLike[str],
    config: StudyConfig = StudyConfig(),
    progress: bool = True,
    *,
    prefix_cache: bool = True,
) -> dict[str, PairRun]:
    """Evaluate zero-shot and every candidate bridge of every pair under `config`, caching the
    generations under `out`/cache; returns the runs by pair name."""
    config.check()
    pairs = [(get_language(s).code, get_language(t).code) for s, t in pairs]
    if len(set(pairs)) != len(pairs):
        raise InputError("a pair is listed twice")
    for s, t in pairs:
        if s == t:
            raise InputError(f"a pair needs two different languages, got {s}-{t}")
    bridges = [get_language(b).code for b in bridges]
    prompts = config.prompts
    stop = StopRule(max_new_tokens=config.max_new_tokens, stop_at_newline=True, stop_at_closing_quote=True)
    claim_study_folder(out, model)
    cache = GenerationCache(Path(out) / "cache", model, stop, prefix_cache=prefix_cache)
    runs: dict[str, PairRun] = {}
    for s, t in pairs:
        dictionary = load_dictionary(s, t, split="test", data_dir=config.data_dir)
        if not config.identical:
            kept = {w: g for w, g in dictionary.translations.items() if not is_identical(w, g)}
            dictionary = replace(dictionary, translations=kept)
        for name, n_earlier, seed_earlier in config.exclude:
            if name == f"{s}-{t}":
                earlier = set(
                    dictionary.sample_source_words(n_earlier, seed_earlier, allow_fewer=True).source_words
                )
                kept = {w: g for w, g in dictionary.translations.items() if w not in earlier}
                dictionary = replace(dictionary, translations=kept)
        if config.n is not None:
            dictionary = dictionary.sample_source_words(config.n, config.seed, allow_fewer=True)
        words = list(dictionary.source_words)
        golds = [list(dictionary.translations[w]) for w in words]
        run = PairRun(
            s,
            t,
            pair_bridges(s, t, bridges),
            words,
            golds,
            [is_identical(w, g) for w, g in zip(words, golds, strict=True)],
            dictionary=dictionary.provenance(),
        )
        if not run.bridges:
            raise InputError(f"{s}-{t} has no candidate bridge besides its own languages")
        runs[run.name] = run
    gold_bridge = {}
    sources = list(dict.fromkeys(s for s, _ in pairs))
    steps = [(src, seed) for src in sources for seed in config.example_seeds]
    for src, seed in tqdm(steps, desc="validate", unit="source/seed", disable=not progress):
        group = [r for r in runs.values() if r.src == src]
        targets = [r.tgt for r in group]
        union = list(dict.fromkeys(b for r in group for b in r.bridges))
        evaluated = {w for r in group for w in r.words}
        examples = load_examples(
            src, targets, union, prompts.shots, seed, evaluated, prompts.non_identical_shots, config.data_dir
        )
        for b in union:
            if (src, b) not in gold_bridge:
                gold_bridge[(src, b)] = _bridge_gold(src, b, config.data_dir)
        first: list[tuple[str, str, list[str]]] = []
        for r in group:
            first.append(
                (
                    f"{src}-{r.tgt}",
                    direct_prefix(prompts, src, r.tgt, examples),
                    [render(prompts.direct, src, r.tgt, w, prompts.names) for w in r.words],
                )
            )
        for b in union:  # step 1 into b: one request for every word of every pair from src
            words_b = list(dict.fromkeys(w for r in group if b in r.bridges for w in r.words))
            first.append(
                (
                    f"{src}-{b}",
                    direct_prefix(prompts, src, b, examples),
                    [render(prompts.direct, src, b, w, prompts.names) for w in words_b],
                )
            )
        outputs = cache.generate(first, config.batch_size, progress, f"{src} seed {seed}: direct")
        step1 = {}
        for (label, _, queries), texts in zip(first[len(group) :], outputs[len(group) :], strict=True):
            b = label.split("-", 1)[1]
            step1[b] = dict(zip(queries, texts, strict=True))
        second, owners = [], []
        for r in group:
            for b in r.bridges:
                bridge_words = [
                    extract_bridge_word(step1[b][render(prompts.direct, src, b, w, prompts.names)])
                    for w in r.words
                ]
                second.append(
                    (
                        f"{src}-{b}-{r.tgt}",
                        bridged_prefix(prompts, src, b, r.tgt, examples),
                        [
                            render_bridged(prompts.bridged, src, b, r.tgt, w, bw, prompts.names)
                            for w, bw in zip(r.words, bridge_words, strict=True)
                        ],
                    )
                )
                owners.append((r, b, bridge_words))
        bridged = cache.generate(second, config.batch_size, progress, f"{src} seed {seed}: bridged")
        for r, texts in zip(group, outputs[: len(group)], strict=True):
            answers = [extract_answer(x) for x in texts]
            r.seeds.setdefault(str(seed), {})[ZERO_SHOT] = {
                "answer": answers,
                "hit": [is_hit(a, g) for a, g in zip(answers, r.golds, strict=True)],
            }
            r.examples[str(seed)] = [e.source for e in examples]
        for (r, b, bridge_words), texts in zip(owners, bridged, strict=True):
            gold = gold_bridge[(src, b)]
            answers = [extract_answer(x) for x in texts]
            r.seeds[str(seed)][bridge_condition(b)] = {
                "bridge_word": bridge_words,
                "bridge_hit": [
                    is_hit(bw, gold.translations[w]) if gold is not None and w in gold.translations else None
                    for w, bw in zip(r.words, bridge_words, strict=True)
                ],
                "answer": answers,
                "hit": [is_hit(a, g) for a, g in zip(answers, r.golds, strict=True)],
            }
        if config.logprob:
            owned = [(r, "zero-shot") for r in group] + [(r, f"bridge:{b}") for r, b, _ in owners]
            requests = [
                (*req, r.golds) for req, (r, _) in zip(first[: len(group)] + second, owned, strict=True)
            ]
            values = cache.score(
                requests, prompts.answer, config.batch_size, progress, f"{src} seed {seed}: log-prob"
            )
            for (r, condition), v in zip(owned, values, strict=True):
                r.seeds[str(seed)][condition]["logprob"] = v
    return runs


def _logprob_view(run: PairRun, accuracy: Mapping[str, float]) -> dict:
    """A pair's gold log-prob per condition, its best bridge, and whether p@1 (in sample) has
    the same best bridge ({} when the run has no log-probs)."""
    values = {b: run.mean_logprob(f"bridge:{b}") for b in run.bridges}
    if any(v is None for v in values.values()):
        return {}
    best = max(values, key=values.get)
    best_accuracy = max(accuracy.values())
    return {
        "logprob": {"zero_shot": run.mean_logprob("zero-shot"), "bridges": values},
        "best_by_logprob": best,
        "logprob_agrees": accuracy[best] == best_accuracy,  # a tie for the best p@1 counts
    }


def _agreement(pairs: Mapping[str, dict]) -> dict | None:
    """How many pairs have the same best bridge by gold log-prob and by p@1."""
    seen = [p["logprob_agrees"] for p in pairs.values() if "logprob_agrees" in p]
    if not seen:
        return None
    return {"n_pairs": len(seen), "n_agree": int(sum(seen)), "share": sum(seen) / len(seen)}


def _rank(accuracies: Mapping[str, float], bridge: str) -> int:
    return 1 + sum(v > accuracies[bridge] for v in accuracies.values())


def summarise_study(
    runs: Mapping[str, PairRun],
    selection: Mapping[str, Mapping[str, float]] | None,
    config: StudyConfig,
    model: NeuronModel | None = None,
    predictors: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
) -> dict:
    """The study's JSON: per pair the accuracies (non-identical primary, identical apart), step-1
    accuracy, selection scores, each rule's choice and rank; pooled regret, top-2 share and
    Kendall tau (`study.pool`); with `predictors` (rule -> pair -> bridge -> score, issue 27)
    also every rule's hit, regret, NDCG@3 and tau against always-English (`choice.judge`)."""
    data = [r.pair_data((selection or {}).get(name)) for name, r in runs.items()]
    summary: StudySummary = pool(
        data, config.n_splits, config.n_bootstrap, config.confidence, config.seed, config.n_permutations
    )
    pairs = {}
    for (name, r), d in zip(runs.items(), data, strict=True):
        acc = {b: float(d.hits[i].mean()) for i, b in enumerate(r.bridges)}
        step1 = {
            b: float(np.nanmean(d.step1[i])) if not np.isnan(d.step1[i]).all() else None
            for i, b in enumerate(r.bridges)
        }  # over the words in the src-B dictionary
        choices = {rule: fixed_choice(d, rule) for rule in RULES if rule not in ("random", "step-1")}
        known = {b: v for b, v in step1.items() if v is not None}
        choices["step-1"] = max(known, key=known.get) if known else None
        pairs[name] = {
            "bridges": r.bridges,
            "n_words": len(r.words),
            "n_non_identical": int(np.sum(~np.array(r.identical))),
            "n_identical": int(np.sum(r.identical)),
            "zero_shot": r.accuracy(ZERO_SHOT),
            "zero_shot_identical": r.accuracy(ZERO_SHOT, identical=True),
            "accuracy": acc,
            "accuracy_identical": {b: r.accuracy(bridge_condition(b), True) for b in r.bridges},
            "step1_accuracy": step1,
            "scores": dict(d.scores) if d.scores is not None else None,
            "oracle_in_sample": max(acc, key=acc.get),
            "choices": choices,
            "rank": {rule: _rank(acc, c) for rule, c in choices.items() if c is not None},
            "held_out": summary.per_pair[name],
            "example_words": r.examples,
            "dictionary": r.dictionary,
            **_logprob_view(r, acc),
        }
    tau = asdict(summary.tau) if summary.tau is not None else None
    extra = {}
    if predictors is not None:  # issue 27: the rules judged as language choice is judged
        from neuronoverlap.evaluation.choice import judge

        choice = judge(
            data,
            predictors,
            n_splits=config.n_splits,
            n_bootstrap=config.n_bootstrap,
            confidence=config.confidence,
            seed=config.seed,
        )
        extra = {"predictor_scores": {r: dict(v) for r, v in predictors.items()}, "choice": choice.to_dict()}
    return {
        "task": "validate",
        "model": model_description(model) if model is not None else None,
        "config": {**asdict(config), "prompts": asdict(config.prompts)},
        "toolkit_version": __version__,
        "library_versions": library_versions(),
        "pairs": pairs,
        "rules": summary.rules,
        "differences": summary.differences,
        "kendall_tau": tau,
        "logprob_agreement": _agreement(pairs),
        **extra,
    }
