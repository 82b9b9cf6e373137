"""Commands on stores: `store-info`, `neuron`, `verify`, `merge`, `store-upgrade`."""

from __future__ import annotations

import argparse
import json

from neuronoverlap.cli import options as opt
from neuronoverlap.errors import InputError


def add_parsers(sub) -> None:
    p = opt.add_command(
        sub,
        "store-info",
        run_store_info,
        help="list what a store holds",
        description="Print the model, probe sets, corpora, neuron sets and library versions of a store.",
    )
    opt.add_store_argument(p)

    p = opt.add_command(
        sub,
        "neuron",
        run_neuron,
        help="look up neurons: where they fire and which neuron sets hold them",
        description="For each neuron LAYER:NEURON, print its activation probability (share of "
        "tokens with act > 0) and mean activation in every stored FLORES-200 "
        "corpus and probe set (token-weighted over the set's samples), and the "
        "stored neuron sets that hold it, and (where the corpora hold them, schema 3) each "
        "language's top-activating FLORES sentences with the firing token in [[ ]] "
        "(docs/neurons.md). Reads only the layers asked for.",
    )
    p.add_argument("--store", required=False, default=None, help="path of the HDF5 store")
    p.add_argument(
        "items",
        nargs=argparse.REMAINDER,
        metavar="[STORE] LAYER:NEURON ...",
        help="the neurons, e.g. 3:1205 10:77 (the store may come first instead of --store)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument(
        "--contexts",
        type=int,
        default=None,
        metavar="N",
        help="top-activating FLORES sentences shown per language, the firing token in [[ ]] "
        "(default: 3 when the store holds them; --json gives all k; 0: none)",
    )
    p.add_argument(
        "--width", type=int, default=6, help="tokens of context either side of the firing token (default: 6)"
    )

    p = opt.add_command(
        sub,
        "verify",
        run_verify,
        help="check every dataset and checksum of a store",
        description="Read every dataset of a store (fletcher32 on chunked arrays) and check the "
        "sha256 checksum of every dataset's attributes and of strings, scalars, JSON results "
        "and neuron sets. Lists each damaged object by name and exits with code 2 if any is; "
        "objects of stores written before checksums are listed as having none.",
    )
    opt.add_store_argument(p)
    p.add_argument(
        "--shards",
        nargs="+",
        default=None,
        metavar="SHARD",
        help="verify these shard stores instead, and that together they hold every unit of one "
        "work plan, each once (what `merge` needs)",
    )

    p = opt.add_command(
        sub,
        "merge",
        run_merge,
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

    p = opt.add_command(
        sub,
        "store-upgrade",
        run_store_upgrade,
        help="rewrite a schema-1 or schema-2 store as schema 3",
        description="Convert a store written by an older toolkit to schema 3: schema 1's float32 "
        "activation probabilities become uint16 fire counts (read back as the same float32 values); "
        "schema 3's top-activating contexts cannot be made without the model, so the upgraded store "
        "holds none. Lossless and checked; a store that cannot be converted exactly is left as it is.",
    )
    opt.add_store_argument(p)


def store_of(args, required: bool = True) -> str | None:
    """The store of a command that takes `--store STORE` or STORE alone (not two different ones)."""
    given = [s for s in (getattr(args, "store_positional", None), args.store) if s]
    if len(set(given)) > 1:
        raise InputError(f"two stores given ({given[0]} and {given[1]}): give one, as --store STORE")
    if not given and required:
        raise InputError(f"`neuronoverlap {args.command}` needs a store: --store STORE")
    return given[0] if given else None


def run_store_info(args) -> int:
    from neuronoverlap.store import Store

    with Store(store_of(args)) as store:
        print(f"store:       {store.path}")
        print(f"model:       {store.model_name} ({store.fingerprint}), {store.n_layers} x {store.d_mlp}")
        precisions = set()
        for name in store.probe_sets():
            view = store.probes(name)
            precisions.add(_precision(view.params))
            print(
                f"probe set:   {name:8s} {view.n_samples} samples  template {view.params.get('template')!r}"
                f"  {_precision(view.params)}"
            )
        for lang in store.corpora():
            corpus = store.corpus(lang)
            precisions.add(_precision(corpus.params))
            print(f"corpus:      {lang:8s} {corpus.n_tokens} tokens  {_precision(corpus.params)}")
        if len(precisions) > 1:
            print(f"precision:   MIXED across sets ({'; '.join(sorted(precisions))}): compare with care")
        for name in store.neuron_set_names():
            print(f"neuron set:  {name}")
        for name in store.group_names("results"):
            print(f"result:      {name}")
        _print_store_versions(store)
    return 0


def _precision(params: dict) -> str:
    """'float32 on cpu': what a set was recorded with (sets stored before it was recorded: unknown)."""
    if "dtype" not in params:
        return "dtype not recorded"
    return f"{params['dtype']} on {params.get('device', '?')}"


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
        params = store.probes(name).params
        if "library_versions" in params:
            differences += [
                f"{d} (probe set {name})" for d in version_differences(json.loads(params["library_versions"]))
            ]
    if differences:
        print("differs:     this install vs the store: " + "; ".join(dict.fromkeys(differences)))


def run_neuron(args) -> int:
    from neuronoverlap.query import format_report, parse_neuron, query_neurons
    from neuronoverlap.store import Store

    items = list(args.items)  # everything after the first positional, options included
    if "--json" in items:
        items.remove("--json")
        args.json = True
    for flag in ("--contexts", "--width"):
        if flag in items:
            at = items.index(flag)
            if at + 1 >= len(items) or not items[at + 1].isdigit():
                raise InputError(f"{flag} needs a whole number of at least 0")
            setattr(args, flag[2:], int(items.pop(at + 1)))
            items.pop(at)
    if "--store" in items:
        at = items.index("--store")
        if at + 1 >= len(items):
            raise InputError("--store needs a path")
        args.store = items.pop(at + 1)
        items.pop(at)
    if args.store is None:
        if len(items) < 2:
            raise InputError(
                "`neuronoverlap neuron` needs a store and neurons: --store STORE LAYER:NEURON ..."
            )
        args.store = items.pop(0)
    if not items:
        raise InputError("`neuronoverlap neuron` needs neurons: LAYER:NEURON, e.g. 3:1205")
    neurons = [parse_neuron(text) for text in items]
    if args.contexts is not None and args.contexts < 0 or args.width < 0:
        raise InputError("--contexts and --width must be at least 0")
    with Store(args.store) as store:
        reports = query_neurons(store, neurons)
        contexts = {}
        if args.contexts != 0:  # issue 29: the top-activating sentences of each language
            from neuronoverlap.neurons.contexts import neuron_contexts

            contexts = neuron_contexts(store, neurons, width=args.width, required=args.contexts is not None)
        if args.json:
            document = {
                "store": str(store.path),
                "model": store.model_name,
                "neurons": [
                    {
                        **r.to_dict(),
                        "contexts": {
                            lang: [c.to_dict() for c in items]
                            for lang, items in contexts.get((r.layer, r.neuron), {}).items()
                        },
                    }
                    for r in reports
                ],
            }
            print(json.dumps(document, indent=2, ensure_ascii=False))
            return 0
        print(f"store: {store.path}  model: {store.model_name}, {store.n_layers} x {store.d_mlp}")
        for report in reports:
            print(format_report(report))
            if contexts.get((report.layer, report.neuron)):
                from neuronoverlap.neurons.contexts import format_contexts

                print("\n".join(format_contexts(contexts[report.layer, report.neuron], args.contexts or 3)))
        if args.contexts is None and not any(v for per in contexts.values() for v in per.values()):
            from neuronoverlap.store.contexts import HINT

            print(f"(no top-activating contexts in this store; {HINT})")
    return 0


def run_verify(args) -> int:
    from neuronoverlap.store.verify import verify_shards, verify_store

    if args.shards:
        if store_of(args, required=False):
            raise InputError("verify takes a store or --shards, not both")
        reports, summary = verify_shards(args.shards)
        for report in reports:
            print("\n".join(report.lines()), flush=True)
        damaged = [name for report in reports for name in report.damaged]
        if damaged:
            raise InputError(f"{len(damaged)} damaged in the shards: {', '.join(damaged)}")
        print(summary)
        return 0
    path = store_of(args)
    report = verify_store(path)
    print("\n".join(report.lines()), flush=True)
    if not report.ok:
        raise InputError(f"{path}: {len(report.damaged)} damaged: {', '.join(report.damaged)}")
    return 0


def run_merge(args) -> int:
    from neuronoverlap.store.merge import merge_shards

    summary = merge_shards(args.out, args.shards, link=args.link)
    copied = f"{summary['chunk_bytes'] / 2**20:.1f} MiB of compressed chunks copied"
    what = "linked (a view)" if args.link else copied
    print(
        f"merged {len(args.shards)} shards: {summary['units']} units of {summary['probe_sets']} probe sets, "
        f"{what} -> {args.out}"
    )
    return 0


def run_store_upgrade(args) -> int:
    from neuronoverlap.store.upgrade import upgrade_store

    path = store_of(args)
    version, converted = upgrade_store(path)
    from neuronoverlap.store.schema import SCHEMA_VERSION

    if version == SCHEMA_VERSION:
        print(f"{path}: already schema {SCHEMA_VERSION}")
    else:
        print(
            f"{path}: schema {version} -> {SCHEMA_VERSION} ({len(converted)} probe sets converted to fire "
            "counts; no top-activating contexts: record corpora anew for them)"
        )
    return 0
