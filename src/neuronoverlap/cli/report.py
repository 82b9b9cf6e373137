"""`report`: everything a store holds, as one HTML page (answer first), Markdown and JSON."""

from __future__ import annotations

import argparse
import sys

from neuronoverlap.cli import options as opt
from neuronoverlap.options import (
    DEFAULT_STORE,
    DEFAULT_TOP_RATE,
    SPECTRUM_MEASURES,
    ReportOptions,
    SpectrumOptions,
)

DEFAULT_OUT = "out/report"


def add_parsers(subparsers) -> argparse.ArgumentParser:
    """Add `report` to `subparsers` (from `ArgumentParser.add_subparsers`)."""
    p = opt.add_command(
        subparsers,
        "report",
        run_report,
        help="write an HTML/Markdown/JSON report of everything a store holds",
        description="Read a store and write, into --out: report.html (one self-contained page, "
        "figures embedded), summary.md (headline numbers, links), report.json "
        "(everything collected), tables/*.csv and figures/*.png, and spectrum/ "
        "(the spectrum analysis' files). Sections: provenance (model fingerprint, "
        "config, data sources and checksums, every parameter); probe sets with "
        "example generations; the layer-wise overlap O(s,t) of every pair stored "
        "both ways, by thirds of depth; language similarity heatmaps (Jaccard, "
        "cosine), the dendrogram beside the taxonomy and the Mantel test (three "
        "corpora or more); each stored bridge selection (scores per layer, "
        "p-values, selection probabilities, the chosen bridge); evaluation "
        "results. What the store lacks is listed with the command that records it. "
        "Nothing is recorded or recomputed with a model: run probe, corpus, "
        "select-bridge and evaluate first. See docs/report.md.",
    )
    opt.add_store_option(p, DEFAULT_STORE, " to report on")
    p.add_argument(
        "--out",
        default=DEFAULT_OUT,
        help=f"output folder, created if needed; files in it are replaced (default: {DEFAULT_OUT})",
    )
    p.add_argument(
        "--top-rate",
        type=float,
        default=DEFAULT_TOP_RATE,
        help="active-set share of all neurons, for the probe overlaps O(s,t) and the "
        f"corpus active sets (default: {DEFAULT_TOP_RATE}, the reference's 1%%)",
    )
    spectrum, defaults = SpectrumOptions(), ReportOptions()
    p.add_argument(
        "--measure",
        default=spectrum.measure,
        choices=list(SPECTRUM_MEASURES),
        help=f"similarity the spectrum dendrogram and the Mantel test use (default: "
        f"{spectrum.measure}; cosine is the reference's measure but saturates near 1)",
    )
    p.add_argument(
        "--permutations",
        type=int,
        default=spectrum.n_permutations,
        help=f"Mantel test permutations (default: {spectrum.n_permutations})",
    )
    p.add_argument(
        "--seed", type=int, default=spectrum.seed, help=f"Mantel test seed (default: {spectrum.seed})"
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=defaults.bootstrap,
        help="bootstrap resamples for the spectrum's intervals, from the store's "
        "per-sentence statistics (`spectrum --bootstrap`; default: 0, off)",
    )
    opt.add_agnostic_share(p)
    p.add_argument(
        "--examples",
        type=int,
        default=defaults.n_examples,
        help=f"example prompts and generations shown per probe set (default: {defaults.n_examples})",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines; print only the report's path")
    return p


def check_intact(store: str) -> None:
    """A store with a damaged dataset is refused (a report must not summarise damaged data)."""
    from neuronoverlap.errors import InputError
    from neuronoverlap.store.verify import verify_store

    report = verify_store(store)
    if not report.ok:
        name, reason = next(iter(report.damaged.items()))
        more = f" and {len(report.damaged) - 1} more" if len(report.damaged) > 1 else ""
        raise InputError(
            f"{store}: {name} is damaged ({reason}){more}; `neuronoverlap verify {store}` lists them"
        )


def report_options(args) -> ReportOptions:
    """The `ReportOptions` of the parsed flags (a bad value is an `InputError` naming its flag)."""
    return opt.options_from_flags(
        ReportOptions,
        args,
        {"bootstrap": "--bootstrap", "n_examples": "--examples"},
        spectrum=opt.options_from_flags(SpectrumOptions, args, opt.SPECTRUM_FLAGS),
    )


def run_report(args) -> int:
    from neuronoverlap.pipeline.report import report

    options = report_options(args)
    check_intact(args.store)

    def log(message: str) -> None:
        print(f"report: {message}", file=sys.stderr, flush=True)

    outputs = report(args.store, args.out, options=options, log=None if args.quiet else log)
    if args.quiet:
        print(outputs.html)
        return 0
    for note in outputs.missing:
        print(f"not in the store: {note}", file=sys.stderr)
    print(f"report of {args.store} written to {outputs.out_dir}:")
    for path in outputs.paths():
        print(f"  {path}")
    return 0
