"""The full-size study's pre-registered analysis (docs/evaluation.md: "Pre-registered: the repaired
score's two tests (issue 26)" and "Pre-registered: bridge predictors (issue 27)"), in two phases
written to separate files so that their order can be audited:

1. `scores` (`fullsize_scores.compute_scores`) reads no evaluation result: only the pair lists (stage 1's
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
2. `tests` (`fullsize_tests.run_tests`) reads both stages' study results and scores.json: issue 26's Test 1
   (`mechanism.mechanism_tau`, English removed, 9,999 permutations, seed 0, Holm over the two
   scores) and Test 2 (`mechanism.competence_test`, 200 pair resamples, seed 0), issue 27's table
   (`choice.judge`, with the study's own splits, bootstrap and seed) and the chain comparison
   where the study folders hold `neuronoverlap chain` results. Each decision is printed as the
   pre-registration words it. Writes ANALYSIS/tests.json and ANALYSIS/tests.md (a table for
   docs/findings.md). Without stage 2 it refuses, unless `first_stage_only` (labelled EXPLORATORY).
"""

from __future__ import annotations

import argparse
import sys

from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.analysis_files import analysis_dir
from neuronoverlap.evaluation.fullsize_report import markdown_report
from neuronoverlap.evaluation.fullsize_scores import compute_scores
from neuronoverlap.evaluation.fullsize_tests import run_tests

PHASES = ("scores", "tests", "all")
__all__ = ["compute_scores", "run_tests", "main"]


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
        "--bootstrap-start",
        choices=("seeded", "full"),
        default="seeded",
        help="where Test 2's bootstrap fits start: seeded (statsmodels' random start from a seeded "
        "generator, the pre-registered run's; default) or full (each resampled pair and word at the "
        "fit on all rows: about 4x faster on the full-size study's rows, the same coefficients "
        "within 1e-4; docs/performance.md)",
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
        print(f"wrote {analysis_dir(args.out, args.analysis) / 'scores.json'}", flush=True)
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
            bootstrap_start=args.bootstrap_start,
            progress=not args.quiet,
        )
        print(markdown_report(result["tests"]), flush=True)
        print(f"wrote {analysis_dir(args.out, args.analysis) / 'tests.json'}", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    from neuronoverlap.cli.script import script_main

    args = parser().parse_args(argv)
    return script_main(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
