"""Phase `tests` of the full-size analysis (`fullsize_analysis`): issue 26's Test 1 and Test 2
and issue 27's table from both stages' study results and ANALYSIS/scores.json, each decision as
the pre-registration (docs/evaluation.md) words it; writes ANALYSIS/tests.json and tests.md
(each finished test kept under ANALYSIS/tests-parts, so that it resumes)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.analysis_files import (
    analysis_dir,
    cached,
    check_study_model,
    digest,
    write_json,
)
from neuronoverlap.evaluation.fullsize import stage_folder
from neuronoverlap.evaluation.fullsize_report import EXPLORATORY, markdown_report
from neuronoverlap.evaluation.study import PairData
from neuronoverlap.versions import source_commit

#: Issue 26's decisions are taken at this level (Holm over the two scores for Test 1).
LEVEL = 0.05


def _load_stage(out, stage: int):
    """(validate.json, runs) of one stage's study, or None when the folder holds no results."""
    from neuronoverlap.evaluation.study_output import StudyFolder

    folder = stage_folder(out, stage)
    if not (folder / "validate.json").is_file():
        return None
    study = StudyFolder(folder)
    # The pairs in name order (their files' order), as the pre-registered run read them: the
    # permutation and bootstrap streams are drawn pair by pair, so another order draws others.
    return study.summary, dict(sorted(study.runs.items()))


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
    from neuronoverlap.stats.multiplicity import holm  # the selection's own rule

    adjusted = holm({k: t.pvalue for k, t in tests.items()})
    out = {}
    for key, t in tests.items():
        positive = adjusted[key] <= LEVEL
        n_pairs = len([v for v in t.per_pair.values() if not math.isnan(v)])
        if n_pairs == 0:  # the full-size study's target share: 0 for every candidate of every pair
            decision = "not computable: the scores are constant on every pair, so no tau is defined"
        elif positive:
            decision = f"positive: mean tau {t.tau:+.3f}, Holm-adjusted p {adjusted[key]:.4f} <= {LEVEL}"
        else:
            decision = (
                f"not shown at this size: mean tau {t.tau:+.3f}, Holm-adjusted p "
                f"{adjusted[key]:.4f} > {LEVEL} (not 'absent')"
            )
        out[key] = {
            **asdict(t),
            "holm_pvalue": adjusted[key],
            "positive": positive,
            "n_pairs": n_pairs,
            "decision": decision,
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


def second_test_rows(pairs, hsic, *, n_seeds: int):
    """Test 2's rows (`mechanism.word_rows`) of the complete cases (`complete_cases`), with
    ({pair: left-out bridges}, left-out pairs)."""
    from neuronoverlap.evaluation.mechanism import word_rows

    competence = {p.name: pair_competence(p) for p in pairs}
    kept, dropped, left_out = complete_cases(pairs, competence)
    if len(kept) < 2:
        raise InputError(f"Test 2 needs 2 pairs with step-1 accuracy into 2 candidates, has {len(kept)}")
    return word_rows(kept, competence, hsic, n_seeds=n_seeds), dropped, left_out


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
    bootstrap_start: str = "seeded",
    progress: bool = False,
) -> dict:
    """Issue 26's Test 2: hit ~ competence + HSIC_repaired + (1|pair) + (1|word), pair
    bootstrap; HSIC adds to competence when the bootstrap's 5% quantile is > 0. Candidates
    without a step-1 accuracy (no word of the pair in the s-b dictionary) are left out
    (`complete_cases`), both predictors standardised over the remaining ones."""
    from neuronoverlap.evaluation.mechanism import competence_test

    rows, dropped, left_out = second_test_rows(pairs, hsic, n_seeds=n_seeds)
    result = competence_test(
        rows,
        n_bootstrap=n_bootstrap,
        seed=seed,
        fit_method=fit_method,
        draws_path=draws_path,
        jobs=jobs,
        start=bootstrap_start,
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
        "bootstrap_start": bootstrap_start,
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


@dataclass(frozen=True)
class AnalysisInputs:
    """What phase `tests` reads: ANALYSIS/scores.json and the stages' study results (per pair:
    its stage's validate.json summary and its answers, `PairRun`)."""

    scores_path: Path
    scores: dict
    stages: list[int]
    summaries: dict
    runs: dict

    @property
    def hsic(self) -> dict:
        return {n: self.scores["hsic_repaired"][n] for n in self.runs}

    @property
    def shares(self) -> dict:
        return {n: self.scores["target_share"][n] for n in self.runs}

    @property
    def config(self) -> dict:
        return self.summaries[next(iter(self.runs))]["config"]

    def pairs(self) -> list[PairData]:
        """The pairs' study data, scored by HSIC_repaired."""
        return [run.pair_data(self.hsic[name]) for name, run in self.runs.items()]


def load_tests_inputs(out, analysis=None, *, first_stage_only: bool = False) -> AnalysisInputs:
    """Phase `tests`'s inputs, checked: scores.json exists and scores every pair, both stages
    ran (stage 1 alone with `first_stage_only`), all of one model."""
    scores_path = analysis_dir(out, analysis) / "scores.json"
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
        check_study_model(stage_folder(out, stage), scores["store_fingerprint"], scores["store"])
    summaries, runs = {}, {}
    for loaded in (first, second)[: len(stages)]:
        summary, stage_runs = loaded
        for name, run in stage_runs.items():
            summaries[name] = summary
            runs[name] = run
    missing = [n for n in runs if n not in scores["hsic_repaired"] or n not in scores["target_share"]]
    if missing:
        raise InputError(f"{scores_path} has no scores for {', '.join(missing)}: rerun the phase `scores`")
    return AnalysisInputs(scores_path, scores, stages, summaries, runs)


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
    bootstrap_start: str = "seeded",
    progress: bool = True,
) -> dict:
    """Phase `tests` (see the module docstring): returns the result and writes tests.json and
    tests.md under ANALYSIS; resumable (each finished test is kept under ANALYSIS/tests-parts)."""
    from neuronoverlap.evaluation.choice import judge

    folder = analysis_dir(out, analysis)
    read = load_tests_inputs(out, analysis, first_stage_only=first_stage_only)
    scores, stages, summaries, runs = read.scores, read.stages, read.summaries, read.runs
    hsic, shares, config, pairs = read.hsic, read.shares, read.config, read.pairs()
    files = [read.scores_path]
    for stage in stages:  # every result the tests read: a changed one is a new analysis
        files += [
            stage_folder(out, stage) / "validate.json",
            *sorted(stage_folder(out, stage).glob("pairs/*.json")),
        ]
    key = digest(
        files,
        {"perm": n_permutations, "boot": mixed_bootstrap, "seed": seed, "stages": stages, "fit": fit_method}
        | ({} if bootstrap_start == "seeded" else {"start": bootstrap_start}),
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
    result["test1"] = cached(
        parts / "test1.json",
        {},
        lambda: first_test(pairs, hsic, shares, n_permutations=n_permutations, seed=seed),
    )
    study_pairs_ = [run.pair_data(summaries[name]["pairs"][name].get("scores")) for name, run in runs.items()]
    result["choice"] = cached(
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
                bootstrap_start=bootstrap_start,
                progress=progress,
            )
        except InputError as exc:  # the other results stand; the reason is reported
            return {"computed": False, "decision": f"not computed: {exc}"}

    result["test2"] = cached(parts / "test2.json", {}, test2)
    result["chain"] = chain_results(out, stages)
    write_json(folder / "tests.json", result)
    (folder / "tests.md").write_text(markdown_report(result), encoding="utf-8")
    return result
