"""Commands on single neurons (issue 29): `agreement` (do a neuron's top sentences agree across
languages?) and `export-neurons` (cards as JSON for neuron browsers)."""

from __future__ import annotations

import json

from neuronoverlap.cli import options as opt
from neuronoverlap.errors import InputError


def add_parsers(sub) -> None:
    p = opt.add_command(
        sub,
        "agreement",
        run_agreement,
        help="cross-lingual agreement of neurons' top-activating sentences (parallel FLORES)",
        description="For each neuron, the mean over language pairs of the Jaccard index of its "
        "top-k FLORES sentences (line i is the same sentence in every language), against the "
        "shuffle null (chance) with a shuffle p-value; for each neuron set, its members' mean "
        "agreement against random neurons with the same count in each layer. Needs corpora "
        "recorded with contexts (`corpus`, schema 3). See docs/neurons.md.",
    )
    opt.add_store_option(p, default=None, what=" with contexts")
    p.add_argument("neurons", nargs="*", metavar="LAYER:NEURON", help="neurons to score, e.g. 12:77")
    p.add_argument(
        "--set",
        action="append",
        default=None,
        dest="sets",
        metavar="NAME",
        help="a stored neuron set to compare with random neurons (repeatable; default: every stored set "
        "when no neurons are given)",
    )
    p.add_argument("--langs", default=None, help="languages compared (default: every corpus with contexts)")
    p.add_argument(
        "--random-sets", type=int, default=1000, help="random layer-matched sets per set (default: 1000)"
    )
    p.add_argument("--shuffles", type=int, default=999, help="shuffles for a neuron's p-value (default: 999)")
    opt.add_seed(p)
    p.add_argument("--json", action="store_true", help="print JSON")

    p = opt.add_command(
        sub,
        "export-neurons",
        run_export,
        help="write neuron cards as JSON (activation records for neuron browsers)",
        description="Write a card per neuron: activation probability per language, top contexts per "
        "language as activation records (tokens, values, maxValue, maxValueTokenIndex; close to "
        "Neuronpedia's), cross-lingual agreement and the sets that hold it. Layout and field "
        "mapping in docs/neurons.md. With --model, every context token's value is recomputed; "
        "without, `values` is null and only maxValue (stored) is given.",
    )
    opt.add_store_option(p, default=None, what=" with contexts")
    p.add_argument("neurons", nargs="*", metavar="LAYER:NEURON", help="neurons to export, e.g. 12:77")
    p.add_argument(
        "--set", default=None, dest="set_name", metavar="NAME", help="export members of a stored set"
    )
    p.add_argument(
        "--top", type=int, default=20, help="with --set: its N most active members (mean corpus P(active))"
    )
    p.add_argument("--width", type=int, default=6, help="tokens of context either side (default: 6)")
    p.add_argument("--out", required=True, help="the JSON file to write")
    opt.add_model_options(p)
    opt.add_data_option(p)


def _store(args):
    from neuronoverlap.store import Store

    if not args.store:
        raise InputError(f"`neuronoverlap {args.command}` needs a store: --store STORE")
    return Store(args.store)


def run_agreement(args) -> int:
    import numpy as np

    from neuronoverlap.neurons.agreement import (
        neuron_p_values,
        parallel_corpora,
        set_agreement,
        store_agreement,
        stored_samples,
    )
    from neuronoverlap.query import _check, parse_neuron

    if args.shuffles < 1:
        raise InputError(f"--shuffles must be at least 1, got {args.shuffles}")
    store = _store(args)
    langs = None if args.langs is None else [x.strip() for x in args.langs.split(",") if x.strip()]
    neurons = [parse_neuron(text) for text in args.neurons]
    for layer, neuron in neurons:
        _check(store, layer, neuron)
    agreement, chance, langs = store_agreement(store, langs)
    _, n_sentences = parallel_corpora(store, langs)
    document = {
        "store": str(store.path),
        "langs": langs,
        "n_sentences": n_sentences,
        "neurons": [],
        "sets": [],
    }
    if neurons:
        samples = stored_samples(store, langs)
        index = tuple(np.array(x) for x in zip(*neurons, strict=True))
        p = neuron_p_values({k: v[index] for k, v in samples.items()}, n_sentences, args.shuffles, args.seed)
        for (layer, neuron), p_value in zip(neurons, p, strict=True):
            document["neurons"].append(
                {
                    "layer": layer,
                    "neuron": neuron,
                    "agreement": float(agreement[layer, neuron]),
                    "chance": float(chance[layer, neuron]),
                    "p_value": float(p_value),
                }
            )
    names = args.sets if args.sets is not None else ([] if neurons else store.neuron_set_names())
    for name in names:
        members = store.neuron_set(name).mask
        result = set_agreement(
            agreement, chance, members, name=name, langs=langs, n_random=args.random_sets, seed=args.seed
        )
        document["sets"].append(result.to_dict())
    if args.json:
        print(json.dumps(document, indent=2))
        return 0
    print(f"store: {store.path}  languages: {','.join(langs)}  ({n_sentences} parallel sentences)")
    for row in document["neurons"]:
        print(
            f"neuron {row['layer']}:{row['neuron']}  agreement {row['agreement']:.3f}  "
            f"chance {row['chance']:.3f}  shuffle p {row['p_value']:.3g}"
        )
    from neuronoverlap.neurons.agreement import SetAgreement

    for d in document["sets"]:
        print(SetAgreement.from_dict(d).line())
    return 0


def run_export(args) -> int:
    from pathlib import Path

    from neuronoverlap.neurons.cards import build_cards, top_members
    from neuronoverlap.query import parse_neuron

    if args.top < 1 or args.width < 0:
        raise InputError("--top must be at least 1 and --width at least 0")
    store = _store(args)
    neurons = [parse_neuron(text) for text in args.neurons]
    if args.set_name:
        neurons += [n for n in top_members(store, args.set_name, args.top) if n not in neurons]
    if not neurons:
        raise InputError("export-neurons needs neurons (LAYER:NEURON ...) or --set NAME")
    model = None
    if args.model:
        model = opt.model_source(args).load(store.path)
    cards = build_cards(
        store, neurons, width=args.width, model=model, name=args.set_name or "cards", data_dir=args.data_dir
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(cards.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    n_records = sum(len(c.records) for c in cards.cards)
    print(f"{len(cards.cards)} neuron cards, {n_records} activation records -> {out}")
    return 0
