"""The full-size study's pre-registered analysis (docs/evaluation.md: "Pre-registered: the repaired
score's two tests (issue 26)" and "Pre-registered: bridge predictors (issue 27)"), in two phases
written to separate files so that their order can be audited:

1. `scores` (`compute_scores`) reads no evaluation result: only the pair lists (stage 1's
   `plan.json`, fixed before any bridged result; stage 2's fixed list), the store and the model.
   Per pair and candidate: HSIC_repaired (`select_bridge` with the issue-26 defaults: effect,
   matched pool, 5 calibration draws, residualised, sets rebuilt in the bootstrap; 200 random
   sets; the study's probe sets; nothing is written into the store's selections, so the study's
   own are never replaced), the target share (S_t by the corpus rule over the study's languages,
   whose FLORES statistics are recorded first where the store lacks them), and every issue-27
   predictor family (`predictors.predictor_table`, `--predictor-n` train words; the
   per-sentence FLORES statistics the representation rules read are recorded first). Writes
   ANALYSIS/scores.json with the commit, the versions and the options; resumable (one file per
   pair and score under ANALYSIS/scores-parts).
2. `tests` (`run_tests`) reads both stages' study results and scores.json: issue 26's Test 1
   (`mechanism.mechanism_tau`, English removed, 9,999 permutations, seed 0, Holm over the two
   scores) and Test 2 (`mechanism.competence_test`, 200 pair resamples, seed 0), issue 27's table
   (`choice.judge`, with the study's own splits, bootstrap and seed) and the chain comparison
   where the study folders hold `neuronoverlap chain` results. Each decision is printed as the
   pre-registration words it. Writes ANALYSIS/tests.json and ANALYSIS/tests.md (a table for
   docs/findings.md). Without stage 2 it refuses, unless `first_stage_only` (labelled EXPLORATORY).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm.auto import tqdm

from neuronoverlap.errors import InputError
from neuronoverlap.evaluation import fullsize
from neuronoverlap.evaluation.fullsize import STAGE_PLANS, stage_folder
from neuronoverlap.evaluation.study import PairData

PHASES = ("scores", "tests", "all")
#: Issue 26's decisions are taken at this level (Holm over the two scores for Test 1).
LEVEL = 0.05
SCORE_FAMILIES = ("hsic-repaired", "target-share")
EXPLORATORY = "EXPLORATORY (first stage only; not the pre-registered test, which needs both stages)"


class PairSpec(NamedTuple):
    """What the scores phase knows of a pair: its languages and candidates (no result)."""

    src: str
    tgt: str
    bridges: list[str]

    @property
    def name(self) -> str:
        return f"{self.src}-{self.tgt}"


def source_commit() -> str | None:
    """The git commit of this code (with '+dirty' when the checkout has uncommitted changes)."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def study_pairs(out: str | os.PathLike[str]) -> list[PairSpec]:
    """Both stages' pairs with their candidates: stage 1's from its `plan.json` (written before
    any bridged result), stage 2's fixed list. No evaluation result is read."""
    from neuronoverlap.evaluation.validation import pair_bridges

    plan = Path(out) / STAGE_PLANS[1]
    if not plan.is_file():
        raise InputError(f"no {plan}: run `python -m neuronoverlap.evaluation.fullsize --out {out}` first")
    try:
        names = json.loads(plan.read_text(encoding="utf-8"))["pairs"]
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"unreadable {plan}: {exc}") from None
    pairs = [tuple(name.split("-")) for name in names]
    pairs += [p for p in fullsize.second_stage_pairs() if p not in pairs]
    return [PairSpec(s, t, pair_bridges(s, t, list(fullsize.CANDIDATES))) for s, t in pairs]


def study_languages(pairs: Sequence[PairSpec]) -> list[str]:
    """Every language of the study: the pairs' and the candidates' (sorted)."""
    return sorted({x for p in pairs for x in (p.src, p.tgt, *p.bridges)})


def _analysis_dir(out, analysis) -> Path:
    return Path(analysis) if analysis is not None else Path(out) / "analysis"


def _write_json(path: Path, document) -> None:
    from neuronoverlap.store.journal import atomic_write_json

    atomic_write_json(path, document, indent=1)


def _cached(path: Path, options: dict, compute):
    """A part's value from `path` when it was computed with `options`, else computed and kept."""
    from neuronoverlap.store.journal import read_json

    if path.is_file():
        saved = read_json(path, "analysis file")
        if saved.get("options") == options:
            return saved["value"]
    value = compute()
    _write_json(path, {"options": options, "value": value})
    return value


def _store_fingerprint(store) -> str:
    from neuronoverlap.store import Store

    if not Path(store).is_file():
        raise InputError(f"no store at {store}")
    return Store(store).fingerprint


def _check_study_model(folder: Path, fingerprint: str, store) -> None:
    """The study in `folder` must be of the store's model (`study-model.json`)."""
    path = folder / "study-model.json"
    if not path.is_file():
        return
    theirs = json.loads(path.read_text(encoding="utf-8")).get("model")
    if theirs != fingerprint:
        raise InputError(f"store {store} is of {fingerprint}, the study in {folder} of {theirs}")


def hsic_repaired(store, pair: PairSpec, *, n_random: int, n_bootstrap: int) -> dict:
    """Issue 26's repaired score of each candidate (`BridgeOptions` defaults but the random sets
    and bootstrap given), not saved into the store; with the selection probability."""
    from neuronoverlap.bridge import select_bridge
    from neuronoverlap.options import BridgeOptions

    options = BridgeOptions(n_random=n_random, n_bootstrap=n_bootstrap)
    selection = select_bridge(store, pair.src, pair.tgt, pair.bridges, options, progress=False)
    return {
        "scores": {b: float(selection.scores[b]) for b in pair.bridges},
        "selection_probability": selection.selection_probability,
        "near_tie": selection.near_tie,
        "holm_pvalues": selection.holm_pvalues,
        "options": options.to_dict(),
    }


def compute_scores(
    store: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    model: str = "embedded",
    analysis: str | os.PathLike[str] | None = None,
    predictor_n: int = 100,
    predictor_seed: int = 25,
    n_random: int = 200,
    selection_bootstrap: int = 200,
    families: str | Sequence[str] = "all",
    corpus_sentences: int = 200,
    progress: bool = True,
) -> dict:
    """Phase `scores` (see the module docstring): returns and writes ANALYSIS/scores.json."""
    from neuronoverlap.bridge.target import store_target_shares
    from neuronoverlap.evaluation.results import model_description
    from neuronoverlap.options import CorpusOptions
    from neuronoverlap.pipeline.model import ModelSource
    from neuronoverlap.pipeline.recording import ensure_corpora, record_corpora
    from neuronoverlap.predictors import parse_families, predictor_table
    from neuronoverlap.versions import library_versions

    if predictor_n < 1 or n_random < 2 or selection_bootstrap < 0:
        raise InputError("--predictor-n must be >= 1, --random-sets >= 2, --selection-bootstrap >= 0")
    names = parse_families(families)
    pairs = study_pairs(out)
    fingerprint = _store_fingerprint(store)
    for stage in STAGE_PLANS:
        _check_study_model(stage_folder(out, stage), fingerprint, store)
    languages = study_languages(pairs)
    source = ModelSource(model)
    loaded = source.load(store)
    if loaded.fingerprint() != fingerprint:
        raise InputError(f"store {store} is of {fingerprint}, not of the model {loaded.fingerprint()}")
    corpus = CorpusOptions(n_sentences=corpus_sentences)
    ensure_corpora(store, languages, source, corpus, progress=progress, record=True)
    if "representation" in names:
        record_corpora(store, languages, source, corpus, progress=progress, per_sentence=True)
    folder = _analysis_dir(out, analysis)
    parts = folder / "scores-parts"
    units = [(kind, p) for kind in (*SCORE_FAMILIES, *names) for p in pairs]
    hsic, share, table = {}, {}, {}
    legs: dict = {}  # competence's second legs, shared by the pairs (exact: `predictors.competence`)
    for kind, pair in tqdm(units, desc="scores", unit="pair", disable=not progress):
        path = parts / f"{kind}--{pair.name}.json"
        if kind == "hsic-repaired":
            options = {"n_random": n_random, "n_bootstrap": selection_bootstrap, "bridges": pair.bridges}
            hsic[pair.name] = _cached(
                path,
                options,
                lambda p=pair: hsic_repaired(store, p, n_random=n_random, n_bootstrap=selection_bootstrap),
            )
        elif kind == "target-share":
            options = {"languages": languages, "rule": "corpus", "bridges": pair.bridges}
            share[pair.name] = _cached(
                path,
                options,
                lambda p=pair: store_target_shares(store, p.src, p.tgt, p.bridges, languages=languages),
            )
        else:
            options = {"n": predictor_n, "seed": predictor_seed, "bridges": pair.bridges}
            found = _cached(
                path,
                options,
                lambda p=pair, k=kind: {
                    rule: v[p.name]
                    for rule, v in predictor_table(
                        [p], [k], model=loaded, store=store, n=predictor_n, seed=predictor_seed, legs=legs
                    ).items()
                },
            )
            for rule, scores in found.items():
                table.setdefault(rule, {})[pair.name] = scores
    document = {
        "phase": "scores",
        "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": source_commit(),
        "library_versions": library_versions(),
        "model": model_description(loaded),
        "store": str(store),
        "store_fingerprint": fingerprint,
        "options": {
            "predictor_n": predictor_n,
            "predictor_seed": predictor_seed,
            "n_random": n_random,
            "selection_bootstrap": selection_bootstrap,
            "families": names,
            "target_share_languages": languages,
            "corpus": corpus.to_dict(),
        },
        "pairs": {p.name: {"bridges": p.bridges} for p in pairs},
        "hsic_repaired": {name: v["scores"] for name, v in hsic.items()},
        "hsic_repaired_selection": {
            name: {k: v[k] for k in ("selection_probability", "near_tie", "holm_pvalues", "options")}
            for name, v in hsic.items()
        },
        "target_share": share,
        "predictors": table,
    }
    _write_json(folder / "scores.json", document)
    return document


# --- phase `tests` ------------------------------------------------------------------------------


def _load_stage(out, stage: int):
    """(validate.json, runs) of one stage's study, or None when the folder holds no results."""
    from neuronoverlap.evaluation.chain import load_runs

    folder = stage_folder(out, stage)
    path = folder / "validate.json"
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable {path}: {exc}") from None
    return summary, load_runs(folder)


def ranked_shares(shares: Mapping[str, float | None]) -> dict[str, float]:
    """Target shares as scores: an empty B(b) (share None) ranks below every defined share,
    as the study's `target-share` rule never chooses it (ties among the empty ones)."""
    known = [v for v in shares.values() if v is not None]
    floor = (min(known) if known else 0.0) - 1.0
    return {b: floor if v is None else float(v) for b, v in shares.items()}


def first_test(pairs, hsic, shares, *, n_permutations: int = 9999, seed: int = 0) -> dict:
    """Issue 26's Test 1: mean tau-b (English removed) of HSIC_repaired and of the target share
    against accuracy, one-sided permutation p, Holm over the two; decisions as pre-registered."""
    from neuronoverlap.evaluation.mechanism import mechanism_tau

    tests = {
        "hsic_repaired": mechanism_tau(pairs, hsic, drop=("en",), n_permutations=n_permutations, seed=seed),
        "target_share": mechanism_tau(
            pairs,
            {name: ranked_shares(v) for name, v in shares.items()},
            drop=("en",),
            n_permutations=n_permutations,
            seed=seed,
        ),
    }
    from neuronoverlap.bridge.scoring import holm  # the selection's own rule

    adjusted = holm({k: t.pvalue for k, t in tests.items()})
    out = {}
    for key, t in tests.items():
        positive = adjusted[key] <= LEVEL
        out[key] = {
            **asdict(t),
            "holm_pvalue": adjusted[key],
            "positive": positive,
            "n_pairs": len([v for v in t.per_pair.values() if not math.isnan(v)]),
            "decision": (
                f"positive: mean tau {t.tau:+.3f}, Holm-adjusted p {adjusted[key]:.4f} <= {LEVEL}"
                if positive
                else f"not shown at this size: mean tau {t.tau:+.3f}, Holm-adjusted p "
                f"{adjusted[key]:.4f} > {LEVEL} (not 'absent')"
            ),
        }
    return out


def pair_competence(pair) -> dict[str, float | None]:
    """competence(b): the pair's step-1 accuracy into b over the words in the s-b dictionary
    (the study's `step1_accuracy`); None where no word of the pair is in that dictionary."""
    return {
        b: None if np.isnan(row).all() else float(np.nanmean(row))
        for b, row in zip(pair.bridges, pair.step1, strict=True)
    }


def complete_cases(pairs, competence: Mapping[str, Mapping[str, float | None]]):
    """The pairs restricted to the candidates whose competence is defined (rows with a missing
    covariate left out); a pair left with fewer than 2 such candidates is left out whole.
    Returns (kept pairs, {pair: left-out bridges}, left-out pairs)."""
    kept, dropped, left_out = [], {}, []
    for p in pairs:
        known = [i for i, b in enumerate(p.bridges) if competence[p.name][b] is not None]
        if len(known) < len(p.bridges):
            dropped[p.name] = [b for i, b in enumerate(p.bridges) if i not in known]
        if len(known) < 2:
            left_out.append(p.name)
            continue
        kept.append(PairData(p.src, p.tgt, [p.bridges[i] for i in known], p.hits[known], p.step1[known]))
    return kept, dropped, left_out


def second_test(
    pairs,
    hsic,
    *,
    n_seeds: int,
    n_bootstrap: int = 200,
    seed: int = 0,
    fit_method: str = "L-BFGS-B",
    draws_path: Path | None = None,
    jobs: int = 1,
    progress: bool = False,
) -> dict:
    """Issue 26's Test 2: hit ~ competence + HSIC_repaired + (1|pair) + (1|word), pair
    bootstrap; HSIC adds to competence when the bootstrap's 5% quantile is > 0. Candidates
    without a step-1 accuracy (no word of the pair in the s-b dictionary) are left out
    (`complete_cases`), both predictors standardised over the remaining ones."""
    from neuronoverlap.evaluation.mechanism import competence_test, word_rows

    competence = {p.name: pair_competence(p) for p in pairs}
    kept, dropped, left_out = complete_cases(pairs, competence)
    if len(kept) < 2:
        raise InputError(f"Test 2 needs 2 pairs with step-1 accuracy into 2 candidates, has {len(kept)}")
    rows = word_rows(kept, competence, hsic, n_seeds=n_seeds)
    result = competence_test(
        rows,
        n_bootstrap=n_bootstrap,
        seed=seed,
        fit_method=fit_method,
        draws_path=draws_path,
        jobs=jobs,
        progress=progress,
    )
    return {
        "coefficient_hsic": result.coefficient,
        "coefficient_competence": result.competence,
        "lower_5pct": result.lower,
        "interval_90": [float(np.quantile(result.draws, 0.05)), float(np.quantile(result.draws, 0.95))],
        "interval_95": list(result.interval),
        "n_bootstrap": result.n_bootstrap,
        "n_pairs": result.n_pairs,
        "n_rows": len(rows),
        "fit_method": fit_method,
        "pairs_left_out": left_out,
        "bridges_left_out": dropped,
        "adds": result.adds,
        "decision": (
            f"HSIC adds to competence: the 5% quantile of its bootstrap coefficient is "
            f"{result.lower:+.3f} > 0"
            if result.adds
            else f"not shown: the 5% quantile of HSIC's bootstrap coefficient is {result.lower:+.3f} <= 0"
        ),
    }


def chain_results(out, stages: Sequence[int]) -> dict:
    """`neuronoverlap chain` results found in the study folders (stage -> file -> result), each
    with the pre-registered reading (helps: the pooled interval of chain - first lies above 0)."""
    found = {}
    for stage in stages:
        for path in sorted(stage_folder(out, stage).glob("chain-*-k*.json")):
            result = json.loads(path.read_text(encoding="utf-8"))
            d = result["chain_minus_first"]
            found.setdefault(str(stage), {})[path.name] = {
                **{k: result[k] for k in ("chain", "first_bridge", "best_single", "confidence")},
                "chain_minus_first": d,
                "helps": d["ci_low"] > 0,
                "n_pairs": len(result["pairs"]),
            }
    return found


def _digest(paths: Sequence[Path], extra: dict) -> str:
    h = hashlib.sha256(json.dumps(extra, sort_keys=True).encode())
    for path in paths:
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def run_tests(
    out: str | os.PathLike[str],
    *,
    analysis: str | os.PathLike[str] | None = None,
    first_stage_only: bool = False,
    n_permutations: int = 9999,
    mixed_bootstrap: int = 200,
    fit_method: str = "L-BFGS-B",
    seed: int = 0,
    jobs: int = 1,
    progress: bool = True,
) -> dict:
    """Phase `tests` (see the module docstring): returns the result and writes tests.json and
    tests.md under ANALYSIS; resumable (each finished test is kept under ANALYSIS/tests-parts)."""
    from neuronoverlap.evaluation.choice import judge

    folder = _analysis_dir(out, analysis)
    scores_path = folder / "scores.json"
    if not scores_path.is_file():
        raise InputError(f"no {scores_path}: run the phase `scores` first")
    scores = json.loads(scores_path.read_text(encoding="utf-8"))
    first = _load_stage(out, 1)
    if first is None:
        raise InputError(f"no study results in {stage_folder(out, 1)}: run the full-size study first")
    second = None if first_stage_only else _load_stage(out, 2)
    if second is None and not first_stage_only:
        raise InputError(
            f"the pre-registered tests need stage 2 and {stage_folder(out, 2)} holds no results: run "
            "`python -m neuronoverlap.evaluation.fullsize --stage 2`, or pass --first-stage-only "
            "for an EXPLORATORY reading"
        )
    stages = [1] if second is None else [1, 2]
    for stage in stages:
        _check_study_model(stage_folder(out, stage), scores["store_fingerprint"], scores["store"])
    summaries, runs = {}, {}
    for loaded in (first, second)[: len(stages)]:
        summary, stage_runs = loaded
        for name, run in stage_runs.items():
            summaries[name] = summary
            runs[name] = run
    missing = [n for n in runs if n not in scores["hsic_repaired"] or n not in scores["target_share"]]
    if missing:
        raise InputError(f"{scores_path} has no scores for {', '.join(missing)}: rerun the phase `scores`")
    hsic = {n: scores["hsic_repaired"][n] for n in runs}
    shares = {n: scores["target_share"][n] for n in runs}
    config = summaries[next(iter(runs))]["config"]
    pairs = [run.pair_data(hsic[name]) for name, run in runs.items()]
    inputs = [scores_path]
    for stage in stages:  # every result the tests read: a changed one is a new analysis
        inputs += [
            stage_folder(out, stage) / "validate.json",
            *sorted(stage_folder(out, stage).glob("pairs/*.json")),
        ]
    key = _digest(
        inputs,
        {"perm": n_permutations, "boot": mixed_bootstrap, "seed": seed, "stages": stages, "fit": fit_method},
    )
    parts = folder / "tests-parts" / key
    result = {
        "phase": "tests",
        "label": EXPLORATORY if first_stage_only else "pre-registered",
        "stages": stages,
        "commit": source_commit(),
        "scores_written_at": scores.get("written_at"),
        "n_pairs": len(pairs),
        "pairs": list(runs),
    }
    result["test1"] = _cached(
        parts / "test1.json",
        {},
        lambda: first_test(pairs, hsic, shares, n_permutations=n_permutations, seed=seed),
    )
    study_pairs_ = [run.pair_data(summaries[name]["pairs"][name].get("scores")) for name, run in runs.items()]
    result["choice"] = _cached(
        parts / "choice.json",
        {},
        lambda: judge(
            study_pairs_,
            scores["predictors"],
            n_splits=config["n_splits"],
            n_bootstrap=config["n_bootstrap"],
            confidence=config["confidence"],
            seed=config["seed"],
        ).to_dict(),
    )

    def test2() -> dict:
        try:
            return second_test(
                pairs,
                hsic,
                n_seeds=len(config["example_seeds"]),
                n_bootstrap=mixed_bootstrap,
                seed=seed,
                fit_method=fit_method,
                draws_path=parts / "test2-draws.json",
                jobs=jobs,
                progress=progress,
            )
        except InputError as exc:  # the other results stand; the reason is reported
            return {"computed": False, "decision": f"not computed: {exc}"}

    result["test2"] = _cached(parts / "test2.json", {}, test2)
    result["chain"] = chain_results(out, stages)
    _write_json(folder / "tests.json", result)
    (folder / "tests.md").write_text(markdown_report(result), encoding="utf-8")
    return result


def _interval(e: Mapping | None, digits: int = 3) -> str:
    if e is None:
        return "-"
    return f"{e['value']:+.{digits}f} [{e['ci_low']:+.{digits}f}, {e['ci_high']:+.{digits}f}]"


def markdown_report(result: Mapping) -> str:
    """The decisions and issue 27's table as markdown, ready for docs/findings.md."""
    lines = []
    if result["label"] != "pre-registered":
        lines += [f"**{result['label']}**", ""]
    lines += [f"Pairs: {result['n_pairs']} (stages {', '.join(map(str, result['stages']))}).", ""]
    lines += ["**Issue 26, Test 1** (English removed; mean Kendall tau-b over pairs; one-sided", ""]
    lines[-2] += " permutation p, Holm over the two scores):"
    lines += ["| score | mean tau | p | Holm p | pairs | decision |", "|---|---|---|---|---|---|"]
    for key, t in result["test1"].items():
        lines.append(
            f"| {key} | {t['tau']:+.3f} | {t['pvalue']:.4f} | {t['holm_pvalue']:.4f} | {t['n_pairs']} | "
            f"{t['decision']} |"
        )
    t2 = result["test2"]
    if t2.get("computed", True) is False:
        lines += ["", f"**Issue 26, Test 2**: {t2['decision']}.", ""]
    else:
        left = (
            f" (left out, no step-1 accuracy: {', '.join(t2['pairs_left_out'])})"
            if t2["pairs_left_out"]
            else ""
        )
        if t2.get("bridges_left_out"):
            left += f"; candidates without a step-1 accuracy left out in {len(t2['bridges_left_out'])} pairs"
        lines += [
            "",
            "**Issue 26, Test 2** (hit ~ competence + HSIC_repaired + (1 | pair) + (1 | word); "
            f"{t2['n_bootstrap']} pair resamples): HSIC coefficient {t2['coefficient_hsic']:+.3f} "
            f"(90% bootstrap interval [{t2['interval_90'][0]:+.3f}, {t2['interval_90'][1]:+.3f}]), "
            f"competence {t2['coefficient_competence']:+.3f}; {t2['n_pairs']} pairs{left}. "
            f"**{t2['decision']}.**",
            "",
        ]
    choice = result["choice"]
    lines += [
        f"**Issue 27** (pooled over pairs; 95% word-bootstrap intervals; regret in p@1; NDCG@{choice['k']}):",
        "",
        f"| rule | hit | regret | NDCG@{choice['k']} | tau | regret - {choice['baseline']} |",
        "|---|---|---|---|---|---|",
    ]
    for rule, ms in choice["measures"].items():
        cells = [_interval(ms.get(m)) for m in ("hit", "regret", "ndcg", "tau")]
        cells.append(_interval(choice["versus_baseline"].get(rule)))
        lines.append(f"| {rule} | " + " | ".join(cells) + " |")
    won = choice["beats_baseline"]
    lines += [
        "",
        "Rules that beat always-English (the 95% interval of regret(rule) - regret(english) "
        f"entirely below 0): {', '.join(won) if won else 'none'}"
        + (
            "; a single passing rule is reported as such, not as a finding, unless it also passes "
            "on the second model."
            if len(won) == 1
            else "."
        ),
    ]
    if result["chain"]:
        lines += ["", "**Several bridges** (chain - first bridge alone, pooled, 95% interval):", ""]
        for stage, files in result["chain"].items():
            for name, c in files.items():
                d = c["chain_minus_first"]
                verdict = "helps" if c["helps"] else "not shown to help"
                lines.append(
                    f"- stage {stage}, {name}: chain {c['chain']:.3f}, first bridge {c['first_bridge']:.3f}, "
                    f"best single (in hindsight) {c['best_single']:.3f}; chain - first "
                    f"{d['value']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]: {verdict}"
                )
    else:
        lines += ["", "Several bridges: no `neuronoverlap chain` result in the study folders."]
    return "\n".join(lines) + "\n"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m neuronoverlap.evaluation.fullsize_analysis",
        description="The full-size study's pre-registered analysis (docs/evaluation.md): phase "
        "`scores` (reads no evaluation result: HSIC_repaired, target share, every issue-27 "
        "predictor; writes ANALYSIS/scores.json), then phase `tests` (issue 26's two tests and "
        "issue 27's table from both stages' results; writes tests.json and tests.md). Resumable.",
    )
    p.add_argument(
        "--store", default="store/fullsize.h5", help="the study's store (default: store/fullsize.h5)"
    )
    p.add_argument("--out", default="out/fullsize", help="the study's output folder (default: out/fullsize)")
    p.add_argument("--analysis", default=None, help="where the analysis writes (default: OUT/analysis)")
    p.add_argument("--phase", choices=PHASES, default="all", help="scores, tests, or all (default: all)")
    p.add_argument("--model", default="embedded", help="model spec (default: embedded)")
    p.add_argument("--predictor-n", type=int, default=100, help="train words of latent and competence (100)")
    p.add_argument(
        "--predictor-seed", type=int, default=25, help="their sample seed (default: 25, the study's seed)"
    )
    p.add_argument("--random-sets", type=int, default=200, help="HSIC_repaired's random sets (default: 200)")
    p.add_argument(
        "--selection-bootstrap",
        type=int,
        default=200,
        help="HSIC_repaired's selection bootstrap (default: 200, select-bridge's; the scores do not "
        "depend on it, the recorded selection probability does)",
    )
    p.add_argument("--predictors", default="all", help="issue-27 families (default: all)")
    p.add_argument("--permutations", type=int, default=9999, help="Test 1's permutations (default: 9999)")
    p.add_argument("--mixed-bootstrap", type=int, default=200, help="Test 2's pair resamples (default: 200)")
    p.add_argument(
        "--fit-method",
        choices=("BFGS", "L-BFGS-B"),
        default="L-BFGS-B",
        help="Test 2's optimiser of fit_vb (default: L-BFGS-B; BFGS keeps a dense inverse Hessian "
        "over every word's effect, about 2.6 GB at full size)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="processes fitting Test 2's bootstrap resamples at once (default: 1; the same draws)",
    )
    p.add_argument(
        "--corpus-n",
        type=int,
        default=200,
        help="FLORES sentences recorded per language the store lacks (default: 200, `corpus`'s)",
    )
    p.add_argument(
        "--first-stage-only",
        action="store_true",
        help="run the tests on stage 1 alone: EXPLORATORY, not the pre-registered tests",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def run(args) -> dict:
    result = {}
    if args.phase in ("scores", "all"):
        result["scores"] = compute_scores(
            args.store,
            args.out,
            model=args.model,
            analysis=args.analysis,
            predictor_n=args.predictor_n,
            predictor_seed=args.predictor_seed,
            n_random=args.random_sets,
            selection_bootstrap=args.selection_bootstrap,
            families=args.predictors,
            corpus_sentences=args.corpus_n,
            progress=not args.quiet,
        )
        print(f"wrote {_analysis_dir(args.out, args.analysis) / 'scores.json'}", flush=True)
    if args.phase in ("tests", "all"):
        if args.permutations < 1 or args.mixed_bootstrap < 2:
            raise InputError("--permutations must be >= 1 and --mixed-bootstrap >= 2")
        result["tests"] = run_tests(
            args.out,
            analysis=args.analysis,
            first_stage_only=args.first_stage_only,
            n_permutations=args.permutations,
            mixed_bootstrap=args.mixed_bootstrap,
            fit_method=args.fit_method,
            jobs=args.jobs,
            progress=not args.quiet,
        )
        print(markdown_report(result["tests"]), flush=True)
        print(f"wrote {_analysis_dir(args.out, args.analysis) / 'tests.json'}", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    from neuronoverlap.cli.script import script_main

    args = parser().parse_args(argv)
    return script_main(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
