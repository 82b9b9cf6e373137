"""Gather what a store holds into one plain, JSON-ready dict (the content of `report.json`).

Nothing here draws or formats: `figures`, `tables`, `html` and `markdown` read this dict.
The analyses are the toolkit's own (`neuronoverlap.sets`, `neuronoverlap.analyses`); the
language spectrum is written by `write_spectrum_outputs` into `spectrum_dir`.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from collections.abc import Callable, Mapping
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from neuronoverlap import __version__
from neuronoverlap.analyses import (
    THIRDS,
    activation_cosine,
    jaccard,
    layer_thirds,
    layerwise_overlap,
    overlap_counts,
    pairwise_overlaps,
    write_spectrum_outputs,
)
from neuronoverlap.analyses.agnostic import agnostic_record, probe_agnostic_neurons
from neuronoverlap.analyses.snapshot import SpectrumSettings, active_sets_for
from neuronoverlap.numbers import decimals, fixed, p_is, permutation_floor, probability
from neuronoverlap.options import DEFAULT_TOP_RATE
from neuronoverlap.report.verdict import choice_rule, first_place, first_place_note
from neuronoverlap.sets import ProbeSamples, language_active_sets, overlap_from_probes
from neuronoverlap.store import Store, schema
from neuronoverlap.store.reader import ProbeSetView

EVALUATION_PREFIXES = ("bli-", "mrc-")
BRIDGE_PREFIX = "bridge-"
# Parameters of a probe set shown per set in the data-sources table, not among the shared ones.
PER_SET_KEYS = ("src", "tgt", "data_source", "data_sha256", "n_samples")


def to_plain(value: Any) -> Any:
    """Numpy scalars/arrays -> Python, NaN/inf -> None, tuples -> lists, recursively."""
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def _parse_json(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def provenance(store: Store) -> dict[str, Any]:
    """The store file, the model that wrote it and the store's root attributes."""
    attrs = {key: to_plain(_parse_json(value)) for key, value in store.attrs.items()}
    return {
        "store": str(store.path.resolve()),
        "store_bytes": store.path.stat().st_size,
        "model_name": store.model_name,
        "model_fingerprint": store.fingerprint,
        "n_layers": store.n_layers,
        "d_mlp": store.d_mlp,
        "n_neurons": store.n_layers * store.d_mlp,
        "model_config": attrs.get("model_config", {}),
        "activation_definition": attrs.get("activation_definition"),
        "toolkit_version": attrs.get("toolkit_version"),
        "schema_version": attrs.get("schema_version"),
        "created": attrs.get("created"),
        "modified": attrs.get("modified"),
        "attributes": attrs,
    }


def _view(store: Store, name: str) -> ProbeSetView:
    return store.probes(name)


def probe_set_summary(store: Store, name: str, n_examples: int) -> dict[str, Any]:
    """Samples, tokens, template, composition and a few prompt -> generation examples."""
    view = _view(store, name)
    params = view.params
    tokens = view.tokens()
    fields = ("prompts", "generations", "source_words", "target_words")
    strings = {field: view.strings(field)[:n_examples] for field in fields}
    examples = [
        {"prompt": p, "generation": g, "source_word": s, "target_word": t}
        for p, g, s, t in zip(*(strings[f] for f in fields), strict=True)
    ]
    return {
        "name": name,
        "src": view.src,
        "tgt": view.tgt,
        "n_samples": int(tokens.shape[0]),
        "mean_tokens": float(tokens.mean()) if tokens.size else None,
        "total_tokens": int(tokens.sum()),
        "template": params.get("template"),
        "composed": bool(params.get("composed", False)),
        "params": to_plain(params),
        "examples": examples,
    }


def shared_parameters(
    params: Mapping[str, Mapping[str, Any]], skip: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """One row per parameter key: its value when every input shares it, else the inputs
    grouped by value (`{"key", "shared": bool, "value" | "by_value": {value: [names]}}`)."""
    keys = sorted({key for p in params.values() for key in p} - set(skip))
    rows = []
    for key in keys:
        groups: dict[str, list[str]] = {}
        for name, p in params.items():
            value = json.dumps(p.get(key), ensure_ascii=False, sort_keys=True) if key in p else "(absent)"
            groups.setdefault(value, []).append(name)
        if len(groups) == 1:
            rows.append({"key": key, "shared": True, "value": _parse_json(next(iter(groups)))})
        else:
            rows.append({"key": key, "shared": False, "by_value": groups})
    return rows


def _probe_samples(view: ProbeSetView) -> ProbeSamples:
    return ProbeSamples(view.name, view.lazy("probability"), view.tokens(), statistic="probability")


def both_way_pairs(names: list[str]) -> list[tuple[str, str]]:
    """(s, t) for every pair whose s-t and t-s probe sets are both stored, each pair once."""
    have = set(names)
    pairs = []
    for name in names:
        src, tgt = schema.parse_probe_set_name(name)
        if schema.probe_set_name(tgt, src) in have and (tgt, src) not in pairs:
            pairs.append((src, tgt))
    return pairs


def probe_overlap(
    store: Store, pairs: list[tuple[str, str]], top_rate: float, agnostic_share: float | None = None
) -> dict[str, Any]:
    """O(s,t) per layer (active set of the s<->t probe sets pooled), and its thirds; with
    `agnostic_share`, chosen among the neurons that are not language-agnostic by every probe
    set of these pairs (analyses/agnostic.py)."""
    selection: dict[str, Any] = {"top_rate": top_rate}
    agnostic = names = None
    if agnostic_share is not None:
        names = [schema.probe_set_name(*d) for s, t in pairs for d in ((s, t), (t, s))]
        agnostic = probe_agnostic_neurons([_probe_samples(store.probes(n)) for n in names], agnostic_share)
        selection["exclude"] = agnostic
    overlaps = {
        f"{s}-{t}": overlap_from_probes(
            _probe_samples(store.probes(s, t)), _probe_samples(store.probes(t, s)), **selection
        )
        for s, t in pairs
    }
    layered = layerwise_overlap(overlaps)
    first = next(iter(overlaps.values()))
    return {
        **agnostic_record(agnostic, agnostic_share, names),
        "definition": "O(s,t): top top_rate of all neurons by the token-weighted activation "
        "probability of the s->t and t->s probe samples pooled"
        + ("" if agnostic is None else ", among the neurons not language-agnostic"),
        "pairs": layered.pairs,
        "sizes": [len(s) for s in overlaps.values()],
        "counts": layered.counts,
        "shares": layered.shares,
        "third_counts": layered.third_counts(),
        "third_shares": layered.third_shares(),
        "selection": first.metadata.get("selection", {}),
    }


def corpus_summary(store: Store, lang: str) -> dict[str, Any]:
    view = store.corpus(lang)
    params = view.params
    return {
        "lang": lang,
        "n_tokens": view.n_tokens,
        "n_sentences": params.get("n_sentences"),
        "split": params.get("split"),
        "params": to_plain(params),
    }


def language_similarity(
    probabilities: Mapping[str, np.ndarray], top_rate: float, agnostic_share: float | None = None
) -> dict[str, Any]:
    """Jaccard, overlap counts and cosine (over shared neurons) of the corpus active sets, and
    where the pairwise overlaps A_a & A_b sit over the layers; with `agnostic_share`, the sets
    are chosen among the neurons that are not language-agnostic by these corpora."""
    agnostic = None
    if agnostic_share is None:
        sets = language_active_sets(probabilities, top_rate=top_rate)
    else:
        sets, agnostic = active_sets_for(
            probabilities, SpectrumSettings(top_rate=top_rate, agnostic_share=agnostic_share)
        )
    layered = layerwise_overlap(pairwise_overlaps(sets))
    counts = layered.counts
    return {
        "languages": list(probabilities),
        "active_set_sizes": [len(sets[c]) for c in probabilities],
        "jaccard": jaccard(sets).values,
        "overlap": overlap_counts(sets).values,
        "cosine": activation_cosine(probabilities, sets).values,
        "active_sets": f"top {top_rate} of all neurons by FLORES activation probability"
        + ("" if agnostic is None else ", among the neurons not language-agnostic"),
        **agnostic_record(agnostic, agnostic_share),
        "pair_layers": {
            "pairs": layered.pairs,
            "counts": counts,
            "mean_counts": counts.mean(axis=0),
            "min_counts": counts.min(axis=0),
            "max_counts": counts.max(axis=0),
            "mean_third_shares": layered.third_shares().mean(axis=0),
        },
    }


def pair_intervals(result: Any) -> list[dict[str, Any]]:
    """Every pair's shared count, Jaccard and CKA with its bootstrap interval."""
    codes = result.estimate.languages
    bounds = {m: result.interval(f"matrix_{m}") for m in ("overlap", "jaccard", "cka")}
    rows = []
    for i, j in combinations(range(len(codes)), 2):
        row: dict[str, Any] = {"pair": f"{codes[i]}-{codes[j]}"}
        for m, (low, high) in bounds.items():
            row[m] = [float(result.estimate.matrices[m][i, j]), float(low[i, j]), float(high[i, j])]
        rows.append(row)
    return rows


def spectrum(
    probabilities: Mapping[str, np.ndarray],
    out_dir: Path,
    top_rate: float,
    measure: str,
    permutations: int,
    seed: int,
    blocks: Any = None,
    bootstrap: int = 0,
    agnostic_share: float | None = None,
) -> dict[str, Any]:
    """The spectrum against the taxonomy, written by `write_spectrum_outputs`; with `blocks`
    (per-sentence statistics) and `bootstrap` resamples, also its intervals."""
    intervals = None
    if blocks is not None and bootstrap > 0:
        from neuronoverlap.analyses.uncertainty import bootstrap_summary, write_uncertain_spectrum

        outputs, result, partial = write_uncertain_spectrum(
            out_dir,
            blocks,
            resamples=bootstrap,
            n_permutations=permutations,
            seed=seed,
            top_rate=top_rate,
            measure=measure,
            agnostic_share=agnostic_share,
        )
        summary = bootstrap_summary(result)
        intervals = {
            "parameters": {
                k: summary["parameters"][k] for k in ("resamples", "level", "block_size", "n_blocks")
            },
            "mantel_r": summary["mantel_r"],
            "cophenetic_vs_taxonomy": summary["cophenetic_vs_taxonomy"],
            "partial_mantel": {
                name: {
                    **summary["partial_mantel_r"][name],
                    "pvalue": test.pvalue,
                    "n_permutations": test.n_permutations,
                }
                for name, test in partial.items()
            },
            "mean_third_shares": summary["mean_third_shares"],
            "mean_third_share_differences": summary["mean_third_share_differences"],
            "dendrogram_support": summary["dendrogram_support"],
            "pairs": pair_intervals(result),
        }
    else:
        outputs = write_spectrum_outputs(
            out_dir,
            probabilities,
            top_rate=top_rate,
            measure=measure,
            n_permutations=permutations,
            seed=seed,
            agnostic_share=agnostic_share,
        )
    mantel = outputs.mantel
    return {
        "intervals": intervals,
        "measure": measure,
        "languages": outputs.languages,
        "linkage": outputs.spectrum.parameters.get("linkage"),
        "mantel": mantel.to_dict(),
        "cophenetic_vs_taxonomy": outputs.cophenetic_correlation,
        "dendrogram_fit": outputs.spectrum.dendrogram_fit,
        "files": {key: str(path) for key, path in outputs.paths.items()},
    }


def bridge_result(name: str, document: dict[str, Any]) -> dict[str, Any]:
    """A stored bridge selection with its table rows (ranking order) and per-layer series."""
    ranking = document.get("ranking") or sorted(
        document.get("candidates", []), key=lambda b: -(document.get("scores", {}).get(b) or 0)
    )
    intervals = (document.get("bootstrap") or {}).get("intervals") or {}
    rows = [
        {
            "rank": rank,
            "bridge": b,
            "score": document.get("scores", {}).get(b),
            "pvalue": document.get("pvalues", {}).get(b),
            "probability": (document.get("selection_probability") or {}).get(b),
            "interval": intervals.get(b, [None, None]),
            "chosen": b == document.get("chosen"),
        }
        for rank, b in enumerate(ranking, start=1)
    ]
    per_layer = document.get("per_layer", {})
    sizes = document.get("set_sizes", {})
    layers = sorted({int(k) for series in per_layer.values() for k in series})
    layer_rows = [
        {
            "layer": layer,
            "bridge": b,
            "score": per_layer.get(b, {}).get(str(layer)),
            "overlap_neurons": (sizes.get(b, {}).get(str(layer)) or [None, None])[0],
            "bridge_neurons": (sizes.get(b, {}).get(str(layer)) or [None, None])[1],
        }
        for layer in layers
        for b in ranking
    ]
    choice = _choice(document)
    return {
        "name": name,
        "src": document.get("src"),
        "tgt": document.get("tgt"),
        "method": document.get("method"),
        "chosen": document.get("chosen"),
        "choice": choice,  # the verdict's (report.verdict.choice_rule)
        "label": first_place(choice),  # "chosen", or "ranked first" when there is no clear choice
        "window": document.get("window", layers),
        "layers": layers,
        "rows": rows,
        "layer_rows": layer_rows,
        "document": to_plain(document),
    }


def _choice(document: dict[str, Any]) -> str:
    """The verdict's choice (`report.verdict.choice_rule`); 'unreadable' for a broken document."""
    try:
        return choice_rule(document)
    except (KeyError, TypeError, IndexError, AttributeError):
        return "unreadable"


def evaluation_result(name: str, document: dict[str, Any]) -> dict[str, Any]:
    """An evaluation document: conditions with accuracy and intervals, the comparisons with
    zero-shot and the oracle when those keys are there; the whole document always."""
    conditions = []
    for condition, values in (document.get("conditions") or {}).items():
        if isinstance(values, Mapping) and "accuracy" in values:
            conditions.append(
                {
                    "condition": condition,
                    **{
                        k: values.get(k)
                        for k in (
                            "bridge",
                            "accuracy",
                            "ci_low",
                            "ci_high",
                            "wilson_low",
                            "wilson_high",
                            "n",
                            "n_hits",
                            "confidence",
                        )
                    },
                }
            )
    comparisons = []
    for bridge, values in (document.get("comparisons") or {}).items():
        if isinstance(values, Mapping):
            mcnemar = values.get("mcnemar") or {}
            ci = values.get("difference_ci") or [None, None]
            comparisons.append(
                {
                    "bridge": bridge,
                    "difference": values.get("difference"),
                    "ci_low": ci[0],
                    "ci_high": ci[1],
                    "mcnemar_pvalue": mcnemar.get("pvalue"),
                    "only_zero_shot": mcnemar.get("only_a"),
                    "only_bridge": mcnemar.get("only_b"),
                    "method": mcnemar.get("method"),
                }
            )
    # Zero-shot first, then the reference, then the bridges (the store sorts JSON keys).
    order = {
        c["condition"]: i
        for i, c in enumerate(
            sorted(conditions, key=lambda c: {"zero-shot": 0, "reference": 1}.get(c["condition"], 2))
        )
    }
    conditions.sort(key=lambda c: order[c["condition"]])
    diagnostics = [
        {"condition": condition, **values}
        for condition, values in (document.get("diagnostics") or {}).items()
        if isinstance(values, Mapping)
    ]
    diagnostics.sort(key=lambda d: order.get(d["condition"], len(order)))
    task = document.get("task") or name.split("-", 1)[0]
    return {
        "name": name,
        "task": task,
        "conditions": conditions,
        "comparisons": comparisons,
        "diagnostics": to_plain(diagnostics),
        "oracle": to_plain(document.get("oracle")),
        "document": to_plain(document),
    }


def neuron_sets(store: Store) -> list[dict[str, Any]]:
    rows = []
    for name in store.neuron_set_names():
        with store.h5_group(schema.SETS, name) as node:
            attrs = {k: to_plain(v) for k, v in node.attrs.items()}
        rows.append(
            {
                "name": name,
                "size": attrs.get("size"),
                "label": attrs.get("label"),
                "metadata": _parse_json(attrs.get("metadata")),
            }
        )
    return rows


def missing_notes(data: dict[str, Any]) -> list[str]:
    """What the store lacks for each section, with the command that records it."""
    notes = []
    if not data["probe_sets"]:
        notes.append("no probe sets in this store: run `neuronoverlap probe --pair s-t --bridges en,...`")
    elif data["probe_overlap"] is None:
        notes.append(
            "no pair with both directions among the probe sets: the layer-wise "
            "overlap O(s,t) needs s-t and t-s (`neuronoverlap probe --pair s-t`)"
        )
    n_corpora = len(data["corpora"])
    if n_corpora == 0:
        notes.append("no corpora in this store: run `neuronoverlap corpus --langs en,de,...`")
    elif n_corpora < 2:
        notes.append(
            "one corpus only: language similarity needs at least two (`neuronoverlap corpus --langs ...`)"
        )
    if 0 < n_corpora < 3:
        notes.append(
            "fewer than three corpora: no dendrogram or Mantel test (the spectrum "
            "needs at least three languages)"
        )
    if not data["bridges"]:
        notes.append("no bridge selection in this store: run `neuronoverlap select-bridge --pair s-t`")
    if not data["evaluations"]:
        notes.append(
            "no evaluation results (bli-*, mrc-*) in this store: run `neuronoverlap "
            "evaluate bli --pair s-t --bridge b --store STORE` (or mrc) to keep one here"
        )
    return notes


def collect(
    store_path: str | Path,
    spectrum_dir: str | Path,
    top_rate: float = DEFAULT_TOP_RATE,
    spectrum_measure: str = "jaccard",
    permutations: int = 999,
    seed: int = 0,
    n_examples: int = 3,
    log: Callable[[str], None] | None = None,
    bootstrap: int = 0,
    agnostic_share: float | None = None,
) -> dict[str, Any]:
    """Everything the report shows, as plain data. The spectrum files go to `spectrum_dir`;
    `bootstrap` > 0 adds its intervals when the store has per-sentence statistics;
    `agnostic_share`: the language-agnostic rule for the probe overlaps and the corpus sets."""
    say = log or (lambda message: None)
    store = Store(store_path)
    data: dict[str, Any] = {
        "report": {
            "generated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "toolkit_version": __version__,
            "parameters": {
                "top_rate": top_rate,
                "spectrum_measure": spectrum_measure,
                "mantel_permutations": permutations,
                "seed": seed,
                "examples_per_probe_set": n_examples,
                "agnostic_share": agnostic_share,
            },
        },
        "provenance": provenance(store),
        "layer_thirds": {name: list(layers) for name, layers in layer_thirds(store.n_layers).items()},
    }

    names = store.probe_sets()
    say(f"probe sets: {len(names)}")
    data["probe_sets"] = [probe_set_summary(store, name, n_examples) for name in names]
    params = {p["name"]: p["params"] for p in data["probe_sets"]}
    data["probe_parameters"] = shared_parameters(params, skip=PER_SET_KEYS)
    pairs = both_way_pairs(names)
    data["probe_overlap"] = probe_overlap(store, pairs, top_rate, agnostic_share) if pairs else None

    langs = store.corpora()
    say(f"corpora: {len(langs)}")
    data["corpora"] = [corpus_summary(store, lang) for lang in langs]
    data["corpus_parameters"] = shared_parameters(
        {c["lang"]: c["params"] for c in data["corpora"]},
        skip=("lang", "data_source", "data_sha256", "n_sentences"),
    )
    probabilities = {lang: store.corpus(lang).activation_probability() for lang in langs}
    data["similarity"] = (
        language_similarity(probabilities, top_rate, agnostic_share) if len(langs) >= 2 else None
    )
    if len(langs) >= 3:
        say(f"language spectrum of {len(langs)} languages ({permutations} Mantel permutations)")
        blocks = None
        if bootstrap > 0:
            from neuronoverlap.analyses.sentences import load_blocks, sentence_languages

            if set(langs) <= set(sentence_languages(store_path)):
                say(f"spectrum intervals: {bootstrap} bootstrap resamples")
                blocks = load_blocks(store_path, langs)
        data["spectrum"] = spectrum(
            probabilities,
            Path(spectrum_dir),
            top_rate,
            spectrum_measure,
            permutations,
            seed,
            blocks,
            bootstrap,
            agnostic_share,
        )
    else:
        data["spectrum"] = None

    data["data_sources"] = [
        {
            "kind": "probe set",
            "name": p["name"],
            "data_source": p["params"].get("data_source"),
            "data_sha256": p["params"].get("data_sha256"),
            "n": p["n_samples"],
            "seed": p["params"].get("seed"),
        }
        for p in data["probe_sets"]
    ] + [
        {
            "kind": "corpus",
            "name": c["lang"],
            "data_source": c["params"].get("data_source"),
            "data_sha256": c["params"].get("data_sha256"),
            "n": c["n_sentences"],
            "seed": c["params"].get("seed"),
        }
        for c in data["corpora"]
    ]

    results = store.group_names("results")
    say(f"results: {len(results)}")
    data["bridges"], data["evaluations"], data["other_results"] = [], [], []
    for name in results:
        document = store.get_json("results", name)
        if name.startswith(BRIDGE_PREFIX) and isinstance(document, dict):
            data["bridges"].append(bridge_result(name, document))
        elif name.startswith(EVALUATION_PREFIXES) and isinstance(document, dict):
            data["evaluations"].append(evaluation_result(name, document))
        else:
            data["other_results"].append({"name": name, "document": to_plain(document)})
    data["neuron_sets"] = neuron_sets(store)
    data["missing"] = missing_notes(data)
    return to_plain(data)


NO_ANSWER = (
    "No bridge selection in this store, so no answer yet: run `neuronoverlap select-bridge --pair s-t`."
)


def verdicts(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The verdict (`report.verdict.bridge_verdict`) of each stored bridge selection, with the
    BLI result of the same pair (`bli-S-T`) when the store has one."""
    from neuronoverlap.errors import InputError
    from neuronoverlap.report.verdict import bridge_verdict

    bli = {e["name"]: e["document"] for e in data["evaluations"]}
    out = []
    for bridge in data["bridges"]:
        document = bridge["document"]
        try:
            verdict = bridge_verdict(document, bli.get(f"bli-{bridge['src']}-{bridge['tgt']}"))
        except InputError as exc:
            out.append(
                {
                    "src": bridge["src"],
                    "tgt": bridge["tgt"],
                    "chosen": bridge["chosen"],
                    "choice": "unreadable",
                    "effect": "not evaluated",
                    "headline": f"{bridge['name']}: no verdict ({exc}).",
                    "lines": [],
                }
            )
            continue
        out.append(verdict.to_dict())
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
    overlap = data.get("probe_overlap")
    if overlap:
        lines += overlap_lines(overlap)
    similarity = data.get("similarity")
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
    spectrum_data = data.get("spectrum")
    if spectrum_data:
        mantel = spectrum_data["mantel"]
        lines.append(
            f"Spectrum ({spectrum_data['measure']}) vs taxonomy: Mantel r = "
            f"{fmt(mantel['statistic'])}, "
            f"{p_is(mantel['pvalue'], floor=permutation_floor(mantel['n_permutations']))} "
            f"({mantel['n_permutations']} permutations); cophenetic r = "
            f"{fmt(spectrum_data['cophenetic_vs_taxonomy'])}."
        )
        intervals = spectrum_data.get("intervals")
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
