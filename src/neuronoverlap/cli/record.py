"""`probe` and `corpus`: record probe sets and FLORES-200 statistics into a store."""

from __future__ import annotations

from neuronoverlap.cli import options as opt
from neuronoverlap.errors import InputError
from neuronoverlap.options import (
    FLORES_SPLITS,
    MEAN_DTYPES,
    NAME_STYLES,
    PROBE_SPLITS,
    CorpusOptions,
    ProbeOptions,
)


def add_parsers(sub) -> None:
    defaults = ProbeOptions()
    p = opt.add_command(
        sub,
        "probe",
        run_probe,
        help="record translation probe sets into a store",
        description="Record the probe sets bridge selection needs: the pair both ways and each "
        "bridge with the source and with the target (both ways). Prompts come from "
        "MUSE dictionaries (composed through English when MUSE lacks the pair). "
        "Resumable: rerun the same command after a crash.",
    )
    opt.add_model_options(p)
    opt.add_data_option(p)
    opt.add_pair(p)
    opt.add_bridges(p, default="")
    p.add_argument(
        "-n",
        "--n-samples",
        type=int,
        default=defaults.n_samples,
        help=f"dictionary pairs per probe set (default: {defaults.n_samples})",
    )
    opt.add_seed(p, "dictionary sample")
    p.add_argument(
        "--template",
        default=None,
        help="prompt template with {S}, {T}, {w} (default: '{S}:\"{w}\"→{T}:')",
    )
    p.add_argument(
        "--names",
        default=defaults.names,
        choices=list(NAME_STYLES),
        help="language names in prompts: Deutsch (endonym, the default) or German",
    )
    p.add_argument(
        "--split",
        default=defaults.split,
        choices=list(PROBE_SPLITS),
        help="dictionary split for probes (default: train; test is kept for evaluation)",
    )
    opt.add_recording_options(p)
    p.add_argument(
        "--mean-dtype",
        default=defaults.mean_dtype,
        choices=list(MEAN_DTYPES),
        help="dtype of the stored mean activations (default: float32; float16 halves them, "
        "error in docs/store.md)",
    )
    p.add_argument(
        "--top-k",
        type=int,
        default=None,
        help="also keep each neuron's K top-activating probe samples with the firing token "
        "(default: none; corpora keep 8)",
    )
    p.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="record only shard I of N of the work plan (I from 0) into STORE.shard-I-of-N.h5 "
        "beside --store, e.g. one Slurm array task each; join them with `neuronoverlap merge` "
        "(docs/cluster.md)",
    )
    p.add_argument(
        "--executor",
        default="local",
        choices=["local", "ray"],
        help="local (default): this process; ray: a pool of Ray actors, one per worker, each "
        "loading the model once, then the shards merged into --store (a new store; docs/cluster.md)",
    )
    p.add_argument(
        "--workers", type=int, default=2, help="Ray actors (default: 2; one GPU each with --device cuda)"
    )
    p.add_argument(
        "--ray-address",
        default=None,
        help="Ray cluster to join ('auto' after `ray start --head`; default: a local one)",
    )
    opt.add_store_option(p)
    opt.add_run_options(p)

    corpus = CorpusOptions()
    p = opt.add_command(
        sub,
        "corpus",
        run_corpus,
        help="record FLORES-200 statistics per language into a store",
        description="Forward FLORES-200 sentences of each language and store fire counts, value "
        "sums and token counts per neuron, and each neuron's top-k sentences with the firing "
        "token (--top-k; `neuron`, `agreement`, `export-neurons` read them). Resumable.",
    )
    opt.add_model_options(p)
    opt.add_data_option(p)
    p.add_argument("--langs", required=True, help="comma-separated languages, e.g. en,de,he")
    p.add_argument(
        "-n",
        "--n-sentences",
        type=int,
        default=corpus.n_sentences,
        help=f"sentences per language (default: {corpus.n_sentences})",
    )
    p.add_argument(
        "--split", default=corpus.split, choices=list(FLORES_SPLITS), help="FLORES-200 split (default: dev)"
    )
    p.add_argument(
        "--top-k",
        type=int,
        default=corpus.top_k,
        help="top-activating sentences kept per neuron and language, with the firing token "
        f"(`neuron` shows them; default: {corpus.top_k})",
    )
    opt.add_store_option(p)
    opt.add_run_options(p)


def run_probe(args) -> int:
    from neuronoverlap.bridge.loader import probe_pairs
    from neuronoverlap.pipeline import build_probe_sets, pair_codes, record_probe_shard, record_probes

    src, tgt, bridges = pair_codes(args.pair, args.bridges)
    pairs = probe_pairs(src, tgt, bridges)
    options = opt.probe_options(args)
    if args.shard and args.executor == "ray":
        raise InputError("--shard records one shard in this process; it does not go with --executor ray")
    source = opt.model_source(args)
    if args.shard:

        def report(unit, status, path):
            print(f"{unit.name}[{unit.start}:{unit.stop}]: {status} -> {path}")

        build_probe_sets(pairs, options, args.data_dir)  # dictionaries checked before the model loads
        units = record_probe_shard(
            args.store,
            pairs,
            args.shard,
            source,
            options,
            args.data_dir,
            progress=not args.quiet,
            report=report,
        )
        if not units:
            print(f"shard {args.shard}: no units of the plan fall in this shard; nothing to record")
        return 0
    if args.executor == "ray":
        from neuronoverlap.pipeline import record_probes_on_ray

        def on_event(event, worker, unit, pids):
            if not args.quiet or event == "lost":
                print(f"{unit.name}[{unit.start}:{unit.stop}]: {event} (worker {worker})", flush=True)

        summary = record_probes_on_ray(
            args.store, pairs, args.workers, args.ray_address, source, options, args.data_dir, report=on_event
        )
        print(
            f"{summary['units']} units on {summary['workers']} Ray workers ({summary['replaced']} replaced), "
            f"actors ready in {summary['ready_s']:.1f} s, {summary['total_s']:.1f} s in all -> {args.store}"
        )
        return 0
    record_probes(args.store, pairs, source, options, args.data_dir, progress=not args.quiet)
    return 0


def run_corpus(args) -> int:
    from neuronoverlap.languages import parse_languages
    from neuronoverlap.pipeline import check_flores_sizes, record_corpora

    langs = [lang.code for lang in parse_languages(args.langs)]
    check_flores_sizes(langs, args.n_sentences, args.split, args.data_dir)
    record_corpora(
        args.store,
        langs,
        opt.model_source(args),
        opt.corpus_options(args),
        args.data_dir,
        progress=not args.quiet,
    )
    return 0
