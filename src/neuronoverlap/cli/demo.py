"""`demo`: the main job on one low-resource pair, on the embedded model by default."""

from __future__ import annotations

from neuronoverlap.cli import options as opt
from neuronoverlap.languages import DEFAULT_BRIDGES
from neuronoverlap.options import (
    DEMO_CORPORA,
    DEMO_EVAL_N,
    DEMO_OUT,
    DEMO_PAIR,
    DEMO_PROBES,
    DEMO_STORE,
    CorpusOptions,
)


def add_parsers(sub) -> None:
    p = opt.add_command(
        sub,
        "demo",
        run_demo,
        help="the main job: probes, sets, bridge selection, BLI and the report",
        description="End to end on one low-resource pair: record the probe sets (the pair both "
        "ways, each candidate bridge with the source and the target) and the FLORES "
        "statistics it needs, build the neuron sets, select the bridge among the "
        "candidates by HSIC, evaluate BLI zero-shot against the chosen bridge, and "
        "write the report (out/demo/report/report.html). Resumes from the store when rerun. "
        "Defaults fit a 2-core CPU with the embedded Gemma-3-270M: about 5 minutes, a 130 MB "
        "store, 3.6 GB of memory.",
    )
    opt.add_model_options(p)
    opt.add_data_option(p)
    opt.add_pair(p, default=DEMO_PAIR, what="low-resource source-target pair")
    opt.add_bridges(p)
    n, corpus_n = DEMO_PROBES.n_samples, DEMO_CORPORA.n_sentences
    p.add_argument("-n", "--n-samples", type=int, default=n, help=f"probe pairs per probe set (default: {n})")
    p.add_argument(
        "--corpus-n", type=int, default=corpus_n, help=f"FLORES sentences per language (default: {corpus_n})"
    )
    p.add_argument(
        "--eval-n", type=int, default=DEMO_EVAL_N, help=f"BLI source words (default: {DEMO_EVAL_N})"
    )
    p.add_argument(
        "--eval-bridges",
        default="chosen",
        choices=["chosen", "all", "none"],
        help="BLI through the chosen bridge only (default), every candidate (oracle comparison), or no BLI",
    )
    p.add_argument(
        "--shots", type=int, default=0, help="few-shot examples in BLI prompts (default: 0, the paper's)"
    )
    opt.add_bridge_scoring_options(p)
    opt.add_agnostic_share(p)
    opt.add_seed(p, "probe sample, random sets, bootstrap and BLI words")
    opt.add_recording_options(p, max_new_tokens=DEMO_PROBES.max_new_tokens)
    opt.add_store_option(p, DEMO_STORE)
    p.add_argument("--out", default=DEMO_OUT, help=f"output folder (default: {DEMO_OUT})")
    opt.add_run_options(p)


def run_demo(args) -> int:
    from neuronoverlap.pipeline import run_demo as demo

    result = demo(
        pair=args.pair,
        bridges=args.bridges or list(DEFAULT_BRIDGES),
        store=args.store,
        out=args.out,
        model=opt.model_source(args),
        probes=opt.probe_options(args),
        corpora=CorpusOptions(n_sentences=args.corpus_n, split="dev", batch_size=args.batch_size),
        selection=opt.bridge_options(args),
        eval_n=args.eval_n,
        eval_bridges=args.eval_bridges,
        shots=args.shots,
        data_dir=args.data_dir,
        progress=not args.quiet,
    )
    print("done in " + ", ".join(f"{k} {v:.0f} s" for k, v in result.timings.items()))
    print()
    print(result.verdict.text())
    print(f"report: {result.report.html}")
    return 0
