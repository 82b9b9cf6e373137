"""`spectrum`: language similarity, layer-wise overlap and the spectrum against the taxonomy."""

from __future__ import annotations

from neuronoverlap.cli import options as opt
from neuronoverlap.languages import known_codes
from neuronoverlap.numbers import decimals, fixed, p_is, permutation_floor
from neuronoverlap.options import FLORES_SPLITS, SPECTRUM_MEASURES, CorpusOptions, SpectrumOptions


def add_parsers(sub) -> None:
    defaults = SpectrumOptions()
    p = opt.add_command(
        sub,
        "spectrum",
        run_spectrum,
        help="language similarity, layer-wise overlap and spectrum vs taxonomy",
        description="From FLORES-200 statistics per language (recorded first when --model is "
        "given, for the languages the store lacks), build each language's active set (top "
        "--top-rate of neurons by activation probability), compare languages "
        "(overlap, Jaccard, cosine over shared neurons, CKA), cluster them and test "
        "the neuron distances against the taxonomy (Mantel). Writes CSV/JSON "
        "matrices, layer-wise tables, dendrogram.png and mantel.json to --out.",
    )
    opt.add_model_options(p)
    opt.add_data_option(p)
    p.add_argument(
        "--langs",
        default=",".join(known_codes()),
        help=f"comma-separated languages (default: all {len(known_codes())})",
    )
    p.add_argument(
        "-n",
        "--n-sentences",
        type=int,
        default=CorpusOptions.n_sentences,
        help=f"FLORES sentences per language to record when missing (default: {CorpusOptions.n_sentences})",
    )
    p.add_argument(
        "--split", default="dev", choices=list(FLORES_SPLITS), help="FLORES-200 split (default: dev)"
    )
    opt.add_store_option(p)
    p.add_argument("--out", default="out/spectrum", help="output folder (default: out/spectrum)")
    opt.add_top_rate(p)
    p.add_argument(
        "--measure",
        default=defaults.measure,
        choices=list(SPECTRUM_MEASURES),
        help="similarity the spectrum clusters on (default: jaccard; cosine is the "
        "reference's measure, but it saturates near 1, see docs/analyses.md)",
    )
    p.add_argument(
        "--linkage", default=defaults.linkage, help="hierarchical clustering linkage (default: average)"
    )
    p.add_argument(
        "--permutations",
        type=int,
        default=defaults.n_permutations,
        help=f"Mantel permutations (default: {defaults.n_permutations})",
    )
    opt.add_seed(p, "Mantel permutations and the bootstrap")
    opt.add_agnostic_share(p)
    p.add_argument(
        "--bootstrap",
        type=int,
        default=0,
        help="bootstrap resamples of FLORES sentence blocks for intervals, cluster support and "
        "partial Mantel tests (records per-sentence statistics first; default: 0, off)",
    )
    p.add_argument("--block-size", type=int, default=5, help="sentences per bootstrap block (default: 5)")
    p.add_argument("--level", type=float, default=0.95, help="interval level (default: 0.95)")
    opt.add_run_options(p)


def _options(args) -> SpectrumOptions:
    return opt.options_from_flags(SpectrumOptions, args, opt.SPECTRUM_FLAGS)


def run_spectrum(args) -> int:
    from neuronoverlap.pipeline import spectrum

    if args.bootstrap:  # >= 0: cli/checks.py
        return _with_intervals(args)
    result = spectrum(
        args.store,
        args.langs,
        args.out,
        opt.model_source(args),
        options=_options(args),
        corpora=opt.corpus_options(args),
        data_dir=args.data_dir,
        progress=not args.quiet,
    )
    mantel = result.mantel
    from neuronoverlap.store import Store

    print(
        f"spectrum of {len(result.languages)} languages on {Store(args.store).model_name} ({args.measure}):"
    )
    print(f"  cophenetic correlation with the taxonomy: {result.cophenetic_correlation:.3f}")
    floor = permutation_floor(mantel.n_permutations)
    p = p_is(mantel.pvalue, floor=floor)
    print(f"  Mantel r = {mantel.statistic:.3f}, {p} ({mantel.n_permutations} permutations)")
    print(f"  outputs in {result.out_dir}")
    return 0


def _with_intervals(args) -> int:
    from neuronoverlap.pipeline import spectrum_with_intervals

    outputs, _, partial, summary, blocks = spectrum_with_intervals(
        args.store,
        args.langs,
        args.out,
        opt.model_source(args),
        options=_options(args),
        corpora=opt.corpus_options(args),
        resamples=args.bootstrap,
        block_size=args.block_size,
        level=args.level,
        data_dir=args.data_dir,
        progress=not args.quiet,
    )
    print(
        f"spectrum of {len(outputs.languages)} languages ({args.measure}), {args.bootstrap} resamples of "
        f"{blocks.n_blocks} blocks of {args.block_size} sentences, {args.level:.0%} intervals:"
    )
    for name, label in (("mantel_r", "Mantel r"), ("cophenetic_vs_taxonomy", "cophenetic r")):
        v = summary[name]
        places = decimals((v["low"], v["high"]))
        low, high = fixed(v["low"], places), fixed(v["high"], places)
        print(f"  {label} = {fixed(v['estimate'], places)} [{low}, {high}]")
    mantel = outputs.mantel
    p = p_is(mantel.pvalue, floor=permutation_floor(mantel.n_permutations))
    print(f"  Mantel {p} ({mantel.n_permutations} permutations)")
    for name, test in partial.items():
        v = summary["partial_mantel_r"][name]
        places = decimals((v["low"], v["high"]))
        print(
            f"  partial Mantel r given {name} = {fixed(test.statistic, places)} [{fixed(v['low'], places)}, "
            f"{fixed(v['high'], places)}], {p_is(test.pvalue, floor=permutation_floor(test.n_permutations))}"
        )
    gaps = summary["taxonomy_level_gaps_jaccard"]
    print(
        "  mean Jaccard gaps: "
        + "; ".join(
            f"{name} {v['estimate']:.3f} [{v['low']:.3f}, {v['high']:.3f}]" for name, v in gaps.items()
        )
    )
    print(
        "  mean share of the pairwise overlaps per third: "
        + "; ".join(
            f"{name} {v['estimate']:.3f} [{v['low']:.3f}, {v['high']:.3f}]"
            for name, v in summary["mean_third_shares"].items()
        )
    )
    print(
        "  paired differences of those shares: "
        + "; ".join(
            f"{name} {v['estimate']:.3f} [{v['low']:.3f}, {v['high']:.3f}]"
            for name, v in summary["mean_third_share_differences"].items()
        )
    )
    print(f"  language-agnostic neurons left out: {int(summary['n_agnostic']['estimate'])}")
    print(f"  outputs (bootstrap_*.csv, dendrogram_support.csv, bootstrap.json) in {outputs.out_dir}")
    return 0
