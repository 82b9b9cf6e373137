"""`select-bridge`, `validate` and `pool-studies`: choose a pair's bridge by HSIC, test that
choice, and pool finished studies again."""

from __future__ import annotations

from neuronoverlap.cli import options as opt
from neuronoverlap.cli.evaluate import add_prefix_cache_option
from neuronoverlap.errors import InputError
from neuronoverlap.languages import DEFAULT_BRIDGES
from neuronoverlap.options import ProbeOptions


def add_parsers(sub) -> None:
    p = opt.add_command(
        sub,
        "select-bridge",
        run_select_bridge,
        help="rank candidate bridge languages for a pair by HSIC",
        description="Score each candidate bridge b for the pair (s, t): per layer of the middle "
        "window, the pairwise HSIC max-mean score between the overlap neurons O(s,t) and the "
        "bridge-specific neurons B(b; s,t) over the s<->t probe samples (residualised on token "
        "count and direction), calibrated against random neuron sets from the same layer "
        "(outside O(s,t)) matched on firing probability: the effect (raw score minus the random "
        "sets' mean) per layer, averaged over the window, ranks; z and an empirical p-value "
        "(Holm-adjusted beside it) are evidence. A paired bootstrap over probe word pairs, the "
        "sets rebuilt on each resample, gives intervals and the selection probability (share of "
        "resamples in which a bridge ranks first, with its Monte Carlo error; a near tie is "
        "named). Probe sets the store lacks are recorded first only "
        "when --model is given (hours on a CPU at 200 samples); without it, a store that lacks "
        "them is an error. The result and the neuron sets are kept in the store. See docs/hsic.md.",
    )
    opt.add_model_options(p)
    opt.add_data_option(p)
    opt.add_pair(p)
    opt.add_bridges(p)
    opt.add_bridge_scoring_options(p)
    p.add_argument(
        "--window",
        default=None,
        help="layers, e.g. '6-11' or '6,7,8' (default: the middle layers, fractions "
        "10/32..22/32 of depth, i.e. 10-21 of 32 on LLaMA-3-8B)",
    )
    opt.add_top_rate(p)
    opt.add_agnostic_share(p)
    p.add_argument(
        "-n",
        "--n-samples",
        type=int,
        default=ProbeOptions.n_samples,
        help=f"probe pairs per set if recording (default: {ProbeOptions.n_samples})",
    )
    opt.add_seed(p, "probe sample, random sets and bootstrap")
    opt.add_recording_options(p)
    opt.add_store_option(p)
    p.add_argument("--json", default=None, help="write the full result as JSON to this file too")
    opt.add_run_options(p)

    p = opt.add_command(
        sub,
        "validate",
        run_validate,
        help="does the HSIC choice pick the best bridge? a validation study over pairs",
        description="For each pair: the HSIC selection over the candidate bridges (from the "
        "store, recording missing probe sets first), then BLI zero-shot and through every "
        "candidate on the same test words under the study protocol (one-word lines, 5 "
        "non-identical examples shared by every condition, averaged over example seeds; p@1 on "
        "non-identical words). Compares the selection and baselines (English, random, best "
        "step 1, typology) with the oracle chosen on half the words and measured on the other "
        "half, pooled over pairs. Resumable: generations are cached under --out. See "
        "docs/evaluation.md.",
    )
    opt.add_model_options(p)
    opt.add_data_option(p)
    p.add_argument("--pairs", required=True, help="source-target pairs, e.g. de-fr,en-de,es-it")
    p.add_argument(
        "--bridges",
        default="all",
        help=f"candidate bridges: 'all' ({','.join(DEFAULT_BRIDGES)}) or a list; each pair's "
        "own languages are left out (default: all)",
    )
    p.add_argument("-n", type=int, default=None, help="test words per pair (default: all)")
    p.add_argument(
        "--non-identical-only",
        action="store_true",
        help="evaluate only test words that are not their own translation (the primary "
        "metric's words; identical ones are then not reported)",
    )
    opt.add_seed(p, "word sample and bootstrap")
    p.add_argument(
        "--example-seeds", type=int, default=3, help="few-shot example draws averaged (default: 3)"
    )
    p.add_argument("--shots", type=int, default=5, help="few-shot examples (default: 5)")
    p.add_argument("--eval-max-new-tokens", type=int, default=8, help="tokens per BLI answer (default: 8)")
    p.add_argument(
        "--probe-n",
        type=int,
        default=ProbeOptions.n_samples,
        help=f"probe pairs per probe set (default: {ProbeOptions.n_samples})",
    )
    opt.add_bridge_ranking_options(p)
    p.add_argument(
        "--selection-bootstrap",
        type=int,
        default=0,
        help="bootstrap resamples of the selection itself (default: 0; the study reads the scores)",
    )
    p.add_argument("--splits", type=int, default=200, help="random halvings per pair (default: 200)")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples (default: 2000)")
    opt.add_recording_options(p)
    opt.add_store_option(p)
    p.add_argument("--out", default="out/validate", help="output folder (default: out/validate)")
    p.add_argument(  # issue 27
        "--predictors",
        default="none",
        help="bridge predictors judged beside the study's rules by hit, regret, NDCG@3 and tau "
        "against always-English: a comma list of uriel, latent, competence, neuron-sets, "
        "representation, or 'all' / 'none' (default: none; docs/evaluation.md)",
    )
    p.add_argument(
        "--predictor-n", type=int, default=100, help="train words per leg or prompt set (default: 100)"
    )
    add_prefix_cache_option(p)
    opt.add_run_options(p)

    p = opt.add_command(
        sub,
        "pool-studies",
        run_pool_studies,
        help="pool finished validation studies again: several folders, or a subset of pairs",
        description="Read the stored answers of one or more finished `validate` folders (e.g. the "
        "full-size study's two stages) and pool them as one study, over every pair or the pairs "
        "named: the same per-pair table, held-out regret, paired differences with word and "
        "pairs-and-words intervals, and Kendall tau as validate prints. No model runs. The "
        "folders must share the model and the protocol (prompts, example seeds, answer length, "
        "word kind); the first folder's analysis settings are used. See docs/evaluation.md.",
    )
    p.add_argument("folders", nargs="+", metavar="FOLDER", help="validate output folders")
    p.add_argument(
        "--pairs", default=None, help="comma list of the pairs to pool, e.g. de-fr,de-it (default: all)"
    )
    p.add_argument("--json", default=None, help="also write the pooled summary to this JSON file")
    p.add_argument(
        "--predictor-scores",
        default=None,
        metavar="FILE",
        help="judge the predictor rules of this file beside the study's rules (the full-size "
        "analysis's scores.json, or a JSON rule -> pair -> bridge -> score); default: the "
        "predictors the folders stored, if every folder did",
    )


def run_pool_studies(args) -> int:
    import json
    from pathlib import Path

    from neuronoverlap.evaluation.pooled import pool_studies
    from neuronoverlap.evaluation.study_output import study_table

    pairs = None if args.pairs is None else [p.strip() for p in args.pairs.split(",") if p.strip()]
    path = Path(args.json) if args.json else None
    if path is not None and path.is_dir():
        raise InputError(f"--json {path} is a folder; name a file")
    if path is not None and any(path.resolve().is_relative_to(Path(f).resolve()) for f in args.folders):
        raise InputError(f"--json {path} is inside a study folder pooled; name a file elsewhere")
    result = pool_studies(args.folders, pairs, args.predictor_scores)
    print(study_table(result))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path}")
    return 0


def run_select_bridge(args) -> int:
    from neuronoverlap.bridge.table import bridge_table
    from neuronoverlap.cli.checks import parse_window
    from neuronoverlap.pipeline import choose_bridge

    window = parse_window(args.window)
    result = choose_bridge(
        args.store,
        args.pair,
        args.bridges,
        opt.model_source(args),
        options=opt.bridge_options(args, window=None if window is None else tuple(window)),
        probes=opt.probe_options(args),
        data_dir=args.data_dir,
        progress=not args.quiet,
    )
    src, tgt = result.src, result.tgt
    print(
        f"bridge selection for {src}->{tgt} ({result.method}, score {result.score}, layers "
        f"{result.window[0]}-{result.window[-1]}, |O| = {result.parameters['overlap_size']}):"
    )
    print("\n".join(bridge_table(result)))
    from neuronoverlap.report.verdict import first_place_line

    print(f"  {first_place_line(result)}")
    if args.json:
        print(f"  written to {result.write_json(args.json)}")
    return 0


def run_validate(args) -> int:
    from dataclasses import replace

    from neuronoverlap.evaluation.bli import PROMPT_STYLES
    from neuronoverlap.evaluation.study_output import study_table
    from neuronoverlap.evaluation.validation import StudyConfig
    from neuronoverlap.languages import parse_languages, parse_pair
    from neuronoverlap.pipeline import validate

    pairs = [tuple(lang.code for lang in parse_pair(p)) for p in args.pairs.split(",") if p.strip()]
    spec = args.bridges.strip().lower()
    bridges = list(DEFAULT_BRIDGES) if spec == "all" else [b.code for b in parse_languages(spec)]
    from neuronoverlap.predictors import parse_families

    parse_families(args.predictors)  # a bad name fails before any model loads
    for value, flag in (
        (args.example_seeds, "--example-seeds"),
        (args.probe_n, "--probe-n"),
        (args.predictor_n, "--predictor-n"),
    ):
        if value < 1:
            raise InputError(f"{flag} must be at least 1, got {value}")
    if args.shots < 1:
        raise InputError(f"--shots must be at least 1, got {args.shots}")
    config = StudyConfig(
        prompts=replace(PROMPT_STYLES["study"], shots=args.shots),
        example_seeds=tuple(range(args.example_seeds)),
        n=args.n,
        seed=args.seed,
        batch_size=args.batch_size,
        max_new_tokens=args.eval_max_new_tokens,
        n_splits=args.splits,
        n_bootstrap=args.bootstrap,
        data_dir=args.data_dir,
        identical=not args.non_identical_only,
    )
    result, _, paths = validate(
        args.store,
        pairs,
        config=config,
        bridges=bridges,
        out=args.out,
        model=opt.model_source(args),
        selection=opt.bridge_options(args, n_bootstrap=args.selection_bootstrap, n_permutations=0),
        probes=opt.probe_options(args, n_samples=args.probe_n),
        progress=not args.quiet,
        predictors=args.predictors,
        predictor_n=args.predictor_n,
        prefix_cache=args.prefix_cache,
    )
    print(study_table(result))
    print(f"wrote {paths['summary']}, {paths['figure']} and {args.out}/pairs")
    return 0
