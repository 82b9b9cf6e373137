"""Gather what the report shows into one plain, JSON-ready dict (the content of `report.json`).

Nothing here computes an analysis or draws: the results come typed from `pipeline.report.gather`
(the store's shelf and what it lacks, computed there with the report's options) and are laid out
here as rows; `figures`, `tables`, `html` and `markdown` read this dict.
"""

from __future__ import annotations

import datetime as _dt
import re
from itertools import combinations
from typing import Any

import numpy as np

from neuronoverlap import __version__
from neuronoverlap.analyses.layerwise import THIRDS, layer_thirds
from neuronoverlap.evaluation.results import ZERO_SHOT, condition_bridge
from neuronoverlap.jsonable import to_plain
from neuronoverlap.numbers import decimals, fixed, p_is, permutation_floor, probability
from neuronoverlap.report.holdings import (
    corpus_summary,
    missing_notes,
    neuron_sets,
    probe_set_summary,
    provenance,
    shared_parameters,
)
from neuronoverlap.report.verdict import choice_rule, first_place, first_place_note
from neuronoverlap.results import body, kind_of
from neuronoverlap.store import schema

#: Tasks whose stored documents the report lays out as evaluations (a free-form one as a table).
EVALUATION_TASKS = ("bli", "mrc")
# Parameters of a probe set shown per set in the data-sources table, not among the shared ones.
PER_SET_KEYS = ("src", "tgt", "data_source", "data_sha256", "n_samples")


def bridge_result(name: str, selection, document: dict[str, Any]) -> dict[str, Any]:
    """A stored `BridgeSelection` with its table rows (ranking order), per-layer series and the
    stored `document` as it is."""
    ranking, chosen = selection.ranking(), selection.chosen
    boot = selection.bootstrap
    choice = choice_rule(selection)
    rows = [
        {
            "rank": rank,
            "bridge": b,
            "score": selection.scores[b],
            "pvalue": selection.pvalues[b],
            "probability": None if boot is None else boot.selection_probability[b],
            "interval": [None, None] if boot is None else boot.intervals[b],
            "chosen": b == chosen,
        }
        for rank, b in enumerate(ranking, start=1)
    ]
    layers = sorted({layer for series in selection.per_layer.values() for layer in series})
    layer_rows = [
        {
            "layer": layer,
            "bridge": b,
            "score": selection.per_layer[b][layer],
            "overlap_neurons": selection.set_sizes[b][layer][0],
            "bridge_neurons": selection.set_sizes[b][layer][1],
        }
        for layer in layers
        for b in ranking
    ]
    return {
        "name": name,
        "src": selection.src,
        "tgt": selection.tgt,
        "method": selection.method,
        "chosen": chosen,
        "choice": choice,  # the verdict's (report.verdict.choice_rule)
        "label": first_place(choice),  # "chosen", or "ranked first" when there is no clear choice
        "window": selection.window,
        "layers": layers,
        "rows": rows,
        "layer_rows": layer_rows,
        "document": to_plain(document),
    }


#: Condition order in the tables: zero-shot first, then the reference, then the bridges.
CONDITION_ORDER = {ZERO_SHOT: 0, "reference": 1}


def evaluation_result(name: str, result, document: dict[str, Any]) -> dict[str, Any]:
    """An `EvaluationResult` as rows: conditions with accuracy and intervals, the comparisons
    with zero-shot, the diagnostics and the oracle; a free-form document (`result` None) as it is."""
    if result is None:
        task = schema.result_task(name)[0]
        return {
            "name": name,
            "task": task,
            "conditions": [],
            "comparisons": [],
            "diagnostics": [],
            "oracle": None,
            "document": to_plain(document),
        }
    names = sorted(result.conditions, key=lambda c: CONDITION_ORDER.get(c, 2))
    conditions = [
        {"condition": c, "bridge": condition_bridge(c), **result.conditions[c].accuracy.to_dict()}
        for c in names
    ]
    comparisons = [
        {
            "bridge": bridge,
            "difference": c.difference,
            "ci_low": c.difference_ci[0],
            "ci_high": c.difference_ci[1],
            "mcnemar_pvalue": c.mcnemar.pvalue,
            "only_zero_shot": c.mcnemar.only_a,
            "only_bridge": c.mcnemar.only_b,
            "method": c.mcnemar.method,
        }
        for bridge, c in result.comparisons.items()
    ]
    order = {c: i for i, c in enumerate(names)}
    diagnostics = [{"condition": c, **values} for c, values in result.diagnostics.items()]
    diagnostics.sort(key=lambda d: order.get(d["condition"], len(order)))
    return {
        "name": name,
        "task": result.task,
        "conditions": to_plain(conditions),
        "comparisons": to_plain(comparisons),
        "diagnostics": to_plain(diagnostics),
        "oracle": None if result.oracle is None else to_plain(result.oracle.to_dict()),
        "document": to_plain(document),
    }


def collect(shelf) -> dict[str, Any]:
    """Everything the report shows, as plain data, from a `pipeline.report.ReportShelf`."""
    store, options = shelf.store, shelf.options
    rule = options.spectrum
    data: dict[str, Any] = {
        "report": {
            "generated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "toolkit_version": __version__,
            "parameters": {
                "top_rate": rule.top_rate,
                "spectrum_measure": rule.measure,
                "mantel_permutations": rule.n_permutations,
                "seed": rule.seed,
                "examples_per_probe_set": options.n_examples,
                "agnostic_share": rule.agnostic_share,
            },
        },
        "provenance": provenance(store),
        "layer_thirds": {name: list(layers) for name, layers in layer_thirds(store.n_layers).items()},
    }
    data["probe_sets"] = [probe_set_summary(store, name, options.n_examples) for name in store.probe_sets()]
    params = {p["name"]: p["params"] for p in data["probe_sets"]}
    data["probe_parameters"] = shared_parameters(params, skip=PER_SET_KEYS)
    data["probe_overlap"] = None if shelf.profile is None else body(shelf.profile.to_dict())
    data["corpora"] = [corpus_summary(store, lang) for lang in store.corpora()]
    data["corpus_parameters"] = shared_parameters(
        {c["lang"]: c["params"] for c in data["corpora"]},
        skip=("lang", "data_source", "data_sha256", "n_sentences"),
    )
    data["similarity"] = None if shelf.similarity is None else body(shelf.similarity.to_dict())
    data["spectrum"] = None if shelf.spectrum is None else body(shelf.spectrum.to_dict())
    data["data_sources"] = [
        {
            "kind": kind,
            "name": entry[key],
            "data_source": entry["params"].get("data_source"),
            "data_sha256": entry["params"].get("data_sha256"),
            "n": entry[n],
            "seed": entry["params"].get("seed"),
        }
        for kind, key, n, entries in (
            ("probe set", "name", "n_samples", data["probe_sets"]),
            ("corpus", "lang", "n_sentences", data["corpora"]),
        )
        for entry in entries
    ]
    documents, typed = shelf.documents, {**shelf.selections, **shelf.evaluations, **shelf.interventions}
    data["bridges"] = [bridge_result(name, s, documents[name]) for name, s in shelf.selections.items()]
    evaluations = {name: evaluation_result(name, r, documents[name]) for name, r in shelf.evaluations.items()}
    others = {}
    interventions = {  # the "Do these neurons matter?" section, with the options each recorded
        name: {**to_plain(documents[name]), "described": r.describe()}
        for name, r in shelf.interventions.items()
    }
    for name, document in documents.items():
        if name in typed:
            continue
        if kind_of(name, document) == "intervention":  # not readable as one: shown as stored
            interventions[name] = to_plain(document)
        elif isinstance(document, dict) and schema.result_task(name)[0] in EVALUATION_TASKS:
            evaluations[name] = evaluation_result(name, None, document)  # free-form: shown as a table
        else:
            others[name] = {"name": name, "document": to_plain(document)}
    data["evaluations"] = [evaluations[name] for name in sorted(evaluations)]
    data["other_results"] = [others[name] for name in sorted(others)]
    data["interventions"] = [interventions[name] for name in sorted(interventions)]
    data["neuron_sets"] = neuron_sets(store)
    data["missing"] = missing_notes(data)
    return to_plain(data)


NO_ANSWER = (
    "No bridge selection in this store, so no answer yet: run `neuronoverlap select-bridge --pair s-t`."
)


def verdicts(shelf) -> list[dict[str, Any]]:
    """The verdict (`report.verdict.bridge_verdict`) of each stored bridge selection, with the
    BLI result of the same pair (`bli-S-T`) when the store has one."""
    from neuronoverlap.report.verdict import bridge_verdict

    out = []
    for selection in shelf.selections.values():
        bli = shelf.evaluations.get(schema.evaluation_result_name("bli", f"{selection.src}-{selection.tgt}"))
        out.append(bridge_verdict(selection, bli).to_dict())
    return out


def headline(data: dict[str, Any]) -> list[str]:
    """The report's headline findings, one sentence each (for the HTML and summary.md)."""
    lines = []
    prov = data["provenance"]
    counts = ", ".join(
        _count(len(data[key]), singular, plural)
        for key, singular, plural in (
            ("probe_sets", "probe set", "probe sets"),
            ("corpora", "corpus", "corpora"),
            ("bridges", "bridge selection", "bridge selections"),
            ("evaluations", "evaluation result", "evaluation results"),
        )
    )
    lines.append(
        f"{prov['model_name']} ({prov['model_fingerprint']}): {prov['n_layers']} layers "
        f"x {prov['d_mlp']} MLP neurons; {counts}."
    )
    overlap = data["probe_overlap"]
    if overlap:
        lines += overlap_lines(overlap)
    similarity = data["similarity"]
    if similarity:
        codes, values = similarity["languages"], np.array(similarity["jaccard"])
        pairs = sorted(combinations(range(len(codes)), 2), key=lambda ij: -values[ij])
        best, worst = pairs[0], pairs[-1]
        lines.append(
            f"Most similar languages by Jaccard of active sets: {codes[best[0]]}-"
            f"{codes[best[1]]} ({values[best]:.3f}); least: {codes[worst[0]]}-"
            f"{codes[worst[1]]} ({values[worst]:.3f})."
        )
        shares = similarity["pair_layers"]["mean_third_shares"]
        lines.append(
            "Corpus overlaps A_a & A_b, mean share per third: "
            + ", ".join(f"{name} {share:.0%}" for name, share in zip(THIRDS, shares, strict=True))
            + "."
        )
    spectrum_data = data["spectrum"]
    if spectrum_data:
        mantel = spectrum_data["mantel"]
        lines.append(
            f"Spectrum ({spectrum_data['measure']}) vs taxonomy: Mantel r = "
            f"{fmt(mantel['statistic'])}, "
            f"{p_is(mantel['pvalue'], floor=permutation_floor(mantel['n_permutations']))} "
            f"({mantel['n_permutations']} permutations); cophenetic r = "
            f"{fmt(spectrum_data['cophenetic_vs_taxonomy'])}."
        )
        intervals = spectrum_data["intervals"]
        if intervals:
            r, level = intervals["mantel_r"], intervals["parameters"]["level"]
            partial = intervals["partial_mantel"]["script_and_subword"]
            places = decimals((r["low"], r["high"]))
            floor = permutation_floor(partial["n_permutations"]) if "n_permutations" in partial else None
            lines.append(
                f"Bootstrap {level:.0%} interval of Mantel r: [{fixed(r['low'], places)}, "
                f"{fixed(r['high'], places)}]; partial Mantel r given script and subword "
                f"overlap: {fixed(partial['estimate'], decimals((partial['low'], partial['high'])))}"
                f" ({p_is(partial['pvalue'], floor=floor)})."
            )
    for bridge in data["bridges"]:
        chosen = next((r for r in bridge["rows"] if r["chosen"]), None)
        if chosen:
            n_random = (bridge["document"].get("parameters") or {}).get("n_random")
            places = decimals(*(r["interval"] for r in bridge["rows"]))
            floor = permutation_floor(n_random) if n_random else None
            lines.append(
                f"Bridge for {bridge['src']}->{bridge['tgt']} ({bridge['method']}): "
                f"{chosen['bridge']}{first_place_note(bridge.get('choice'))}: "
                f"score {fixed(chosen['score'], places)}, {p_is(chosen['pvalue'], floor=floor)}, "
                f"selection probability {probability(chosen['probability'])}."
            )
    for evaluation in data["evaluations"]:
        if evaluation["conditions"]:
            places = decimals(*((c.get("ci_low"), c.get("ci_high")) for c in evaluation["conditions"]))
            parts = ", ".join(
                f"{c['condition']} {fixed(c['accuracy'], places)}" for c in evaluation["conditions"]
            )
            lines.append(f"{evaluation['name']}: accuracy {parts}.")
    return lines


#: Up to this many pairs, the summary gives each pair's O(s,t) its own line; beyond, one line of
#: ranges (the per-pair numbers are in the table "Where O(s,t) sits").
OVERLAP_LINES = 3


def overlap_lines(overlap: dict[str, Any]) -> list[str]:
    """|O(s,t)| and its share per third: a line per pair, or one line of ranges for many pairs."""
    pairs, sizes, shares = overlap["pairs"], overlap["sizes"], np.array(overlap["third_shares"])
    if len(pairs) <= OVERLAP_LINES:
        return [
            f"O({pair}) has {size} neurons: "
            + ", ".join(f"{name} {share:.0%}" for name, share in zip(THIRDS, row, strict=True))
            + "."
            for pair, size, row in zip(pairs, sizes, shares, strict=True)
        ]
    parts = ", ".join(
        f"{name} {shares[:, k].min():.0%}-{shares[:, k].max():.0%}" for k, name in enumerate(THIRDS)
    )
    return [
        f"O(s,t) of {len(pairs)} pairs: {min(sizes)}-{max(sizes)} neurons each; share per "
        f"third (lowest-highest over the pairs): {parts}."
    ]


def _count(n: int, singular: str, plural: str) -> str:
    return f"{n} {singular if n == 1 else plural}"


def fmt(value: Any) -> str:
    """Numbers for people: 4 significant digits, 'n/a' for missing."""
    if value is None:
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    text = f"{value:.4g}"
    if text in ("1", "-1") and value != round(value):
        text = f"{value:.10g}"  # a cosine of 0.999996 is not 1
    return text


def slug(name: str) -> str:
    """A file-name-safe version of a result name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
