"""`intervene {perplexity,bli}`: do these neurons matter? Causal tests of neuron sets against
size-matched random sets (neuronoverlap.pipeline.interventions; docs/interventions.md).

Inputs and the store are checked before the model is loaded; the result is kept in --store as
results/intervention-EXPERIMENT-NAME, where `report` finds it, and written to --json FILE.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from neuronoverlap.cli import options as opt
from neuronoverlap.errors import InputError
from neuronoverlap.options import (
    BLI_INTERVENTION,
    CORPUS_STATISTICS,
    EXACT_NULLS,
    INTERVENTION_KINDS,
    NULL_CONDITIONS,
    InterventionOptions,
    NullOptions,
    OptionError,
)


def _add_common(p: argparse.ArgumentParser, defaults: InterventionOptions) -> None:
    p.add_argument(
        "--store", required=True, help="the HDF5 store with the sets' data; the result is kept there"
    )
    opt.add_model_options(p)
    opt.add_data_option(p)
    g = p.add_argument_group("intervention")
    g.add_argument(
        "--kind",
        default=defaults.kind,
        choices=INTERVENTION_KINDS,
        help="zero: act_fn(gate) = 0 (LAPE's deactivation; default); mean: the neuron's mean "
        "FLORES activation (mean ablation); value: a stored --statistic of language --of "
        "(Kojima-style fixing); scale: multiplied by --factor",
    )
    g.add_argument("--factor", type=float, default=None, help="the factor of --kind scale")
    g.add_argument(
        "--of",
        default=None,
        help="language whose corpus statistic --kind mean/value uses (default: all of the run's)",
    )
    g.add_argument(
        "--statistic",
        default=defaults.statistic,
        help="the statistic of --kind value: one the store records per corpus "
        f"({', '.join(CORPUS_STATISTICS)}; default: {defaults.statistic})",
    )
    g = p.add_argument_group("null (random sets of the same size per layer and activation band)")
    null = defaults.null
    g.add_argument(
        "--null-sets",
        type=int,
        default=null.exact_sets,
        help=f"random sets run exactly, per named set (default: {null.exact_sets})",
    )
    g.add_argument(
        "--attribution-sets",
        type=int,
        default=null.attribution_sets,
        help="random sets estimated by attribution patching (one forward+backward for all; "
        f"default: {null.attribution_sets})",
    )
    g.add_argument(
        "--bands",
        type=int,
        default=null.n_bands,
        help="activation-probability bands per layer that random sets are matched in "
        f"(default: {null.n_bands}; 1: uniform within each layer)",
    )
    g.add_argument(
        "--confidence",
        type=float,
        default=null.confidence,
        help=f"level of the bootstrap intervals (default: {null.confidence})",
    )
    opt.add_seed(g, "null's random sets, the word sample and the bootstrap")
    g = p.add_argument_group("run")
    g.add_argument(
        "--batch-size",
        type=int,
        default=defaults.batch_size,
        help=f"texts per batch (default: {defaults.batch_size})",
    )
    g.add_argument("--json", default=None, metavar="FILE", help="also write the result as JSON to FILE")
    g.add_argument(
        "--cache",
        default=None,
        metavar="DIR",
        help="keep every finished run (scoring, evaluation) in DIR; rerun the same command after an "
        "interruption and only the missing runs are made (default: keep nothing)",
    )
    g.add_argument("--quiet", action="store_true", help="no progress bars")


def add_parsers(subparsers) -> argparse.ArgumentParser:
    """Add `intervene` with its `perplexity` and `bli` subcommands."""
    command = opt.add_command(
        subparsers,
        "intervene",
        run_intervene,
        help="do these neurons matter? ablate a neuron set and compare with random sets",
        description="Causal tests of neuron sets: switch a set off (or fix, scale it) in every "
        "forward pass and measure a task against random sets of the same size per layer and "
        "activation band, exactly for --null-sets and by attribution patching for "
        "--attribution-sets. See docs/interventions.md.",
    )
    tasks = command.add_subparsers(
        dest="intervene_task", metavar="EXPERIMENT", required=True, help="perplexity or bli"
    )
    p = tasks.add_parser(
        "perplexity",
        help="LAPE's test: each language's specific neurons off, FLORES perplexity of every language",
        description="Switch off each language's LAPE language-specific neurons (built from the "
        "store's FLORES corpora) and measure the change of every language's FLORES token NLL: a "
        "set x language matrix of changes and of z against the null. LAPE's claim: the diagonal "
        "dominates.",
    )
    p.add_argument(
        "--langs", required=True, help="comma-separated languages with corpora in the store, e.g. de,fr,en"
    )
    p.add_argument(
        "-n", dest="n_sentences", type=int, default=100, help="FLORES sentences per language (default: 100)"
    )
    p.add_argument(
        "--split", default="devtest", choices=["dev", "devtest"], help="FLORES split (default: devtest)"
    )
    p.add_argument(
        "--max-tokens", type=int, default=128, help="tokens scored per sentence at most (default: 128)"
    )
    p.add_argument(
        "--exact-null",
        default="diagonal",
        choices=EXACT_NULLS,
        help="where the --null-sets random sets run exactly: 'diagonal' only on the set's own "
        "language (the cells LAPE's claim is judged on; other cells get the attribution null), "
        "'all' in every cell (a forward per set and language) (default: diagonal)",
    )
    _add_common(p, InterventionOptions())
    p = tasks.add_parser(
        "bli",
        help="BridgeX's premise: O(s,t) and each B(b; s,t) off, BLI zero-shot and bridged",
        description="Switch off O(s,t), then each B(b; s,t) (from the store's probe sets), and "
        "measure BLI s->t zero-shot and through each candidate bridge: precision@1, the gold's "
        "log-probability and the share of answers in the target's script, each against random "
        "sets matched to the set. --steer adds mean(b) - mean(s) (FLORES mean activations) on "
        "O(s,t) and measures zero-shot BLI.",
    )
    opt.add_pair(p)
    p.add_argument(
        "--bridges", default="en", help="comma-separated candidate bridges with probe sets (default: en)"
    )
    p.add_argument(
        "-n", dest="n_words", type=int, default=50, help="source words of the MUSE test split (default: 50)"
    )
    p.add_argument(
        "--prompts",
        default="paper",
        choices=["paper", "lines", "study"],
        help="BLI prompt style (default: paper)",
    )
    opt.add_top_rate(p)
    p.add_argument("--steer", action="store_true", help="also steer O(s,t) by mean(b) - mean(s) per bridge")
    p.add_argument(
        "--steer-scale", type=float, default=1.0, help="multiple of the steering direction (default: 1)"
    )
    p.add_argument("--max-new-tokens", type=int, default=16, help="tokens generated per answer (default: 16)")
    p.add_argument(
        "--null-conditions",
        default="own",
        choices=NULL_CONDITIONS,
        help="which conditions a random set runs: 'own' those its named set is judged on (O: "
        "zero-shot; B(b): through b), 'all' every condition (default: own)",
    )
    _add_common(p, BLI_INTERVENTION)
    return command


def intervention_options(args) -> InterventionOptions:
    """The `InterventionOptions` of the parsed flags (a bad value names its flag)."""
    null = opt.options_from_flags(NullOptions, args, opt.NULL_FLAGS)
    return opt.options_from_flags(InterventionOptions, args, opt.INTERVENTION_FLAGS, null=null)


def _run(experiment, args, *data, **parameters) -> int:
    """Run an experiment of the store with the command line's options; print and keep its result."""
    try:
        result = experiment(
            args.store,
            *data,
            opt.model_source(args),
            options=intervention_options(args),
            data_dir=args.data_dir,
            cache_dir=args.cache,
            progress=not args.quiet,
            **parameters,
        )
    except OptionError as error:  # an experiment's own parameter: said with its flag
        if error.owner != experiment.__name__ or error.field not in opt.EXPERIMENT_FLAGS:
            raise
        raise error.named(opt.EXPERIMENT_FLAGS[error.field]) from None
    if args.json:
        Path(args.json).write_text(
            json.dumps(result.to_dict(), indent=1, ensure_ascii=False, default=float) + "\n"
        )
    print(render(result))
    print(f"kept in {args.store} as results/{result.key}" + (f"; JSON in {args.json}" if args.json else ""))
    return 0


def _p(value) -> str:
    """A p-value, or '-' where no null was run for that cell."""
    return "-" if value is None else f"{value:.3f}"


def render(result) -> str:
    """The result in a few lines of text, the options it recorded first."""
    if result.experiment == "perplexity":
        s = result.summary
        width = max(len(x) for x in s["sets"]) + 6
        lines = [
            result.describe(),
            f"change of FLORES token NLL (nats), each language's LAPE neurons: '{result.intervention}'; "
            "z in brackets",
            " " * width + "".join(f"{lang:>18}" for lang in s["langs"]),
        ]
        for i, name in enumerate(s["sets"]):
            cells = "".join(
                f"{e:>+10.4f} [{z:>+5.1f}]" for e, z in zip(s["effect"][i], s["z_exact"][i], strict=True)
            )
            lines.append(f"{'off ' + name:<{width}}{cells}")
        lines.append(
            f"own language changes most for {sum(s['own_language_largest'].values())} of "
            f"{len(s['own_language_largest'])} sets; attribution vs exact r = {s['agreement_r']:.2f}"
        )
        return "\n".join(lines)
    lines = [
        result.describe(),
        f"BLI {result.name} with each set {result.intervention}ed: change [interval], p against the null",
    ]
    for row in result.rows:
        for condition, metrics in row["conditions"].items():
            p1, lp = metrics["p_at_1"], metrics["gold_logprob"]
            lines.append(
                f"{row['set']:>8} ({row['n_neurons']} neurons) {condition:<12} p@1 {p1['change']:+.3f} "
                f"[{p1['interval'][0]:+.3f}, {p1['interval'][1]:+.3f}] p={_p(p1['p'])}   gold log-prob "
                f"{lp['change']:+.3f} p={_p(lp['p'])}"
            )
        if row["premise"] and row["premise"]["own_minus_others"] is not None:
            lines.append(
                f"{'':>8} p@1 drop through its own bridge minus the others': "
                f"{row['premise']['own_minus_others']:+.3f}"
            )
    for bridge, metrics in result.summary["steering"].items():
        lines.append(f"steer O toward {bridge}: zero-shot p@1 {metrics['p_at_1']['change']:+.3f}")
    return "\n".join(lines)


def cmd_perplexity(args) -> int:
    from neuronoverlap.languages import parse_languages
    from neuronoverlap.pipeline.interventions import intervention_perplexity

    langs = [lang.code for lang in parse_languages(args.langs)]
    return _run(
        intervention_perplexity,
        args,
        langs,
        n_sentences=args.n_sentences,
        split=args.split,
        max_tokens=args.max_tokens,
        exact_null=args.exact_null,
    )


def cmd_bli(args) -> int:
    from neuronoverlap.evaluation.bli import PROMPT_STYLES
    from neuronoverlap.languages import parse_languages, parse_pair
    from neuronoverlap.pipeline.interventions import intervention_bli

    src, tgt = (lang.code for lang in parse_pair(args.pair))
    bridges = [lang.code for lang in parse_languages(args.bridges)]
    if src in bridges or tgt in bridges:
        raise InputError(f"--bridges {args.bridges}: a bridge cannot be {src} or {tgt}")
    return _run(
        intervention_bli,
        args,
        (src, tgt),
        bridges,
        n_words=args.n_words,
        seed=args.seed,
        prompts=PROMPT_STYLES[args.prompts],
        top_rate=args.top_rate,
        steer=args.steer,
        steer_scale=args.steer_scale,
        max_new_tokens=args.max_new_tokens,
        null_conditions=args.null_conditions,
    )


def run_intervene(args) -> int:
    if args.intervene_task == "perplexity":
        return cmd_perplexity(args)
    return cmd_bli(args)
