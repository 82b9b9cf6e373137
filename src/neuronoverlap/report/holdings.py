"""What a store holds, described for the report: provenance (model, attributes), each probe set
(samples, tokens, examples), each corpus, the parameters they share, the neuron sets; and what it
lacks, with the command that records it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from neuronoverlap.jsonable import to_plain
from neuronoverlap.store import Store, schema
from neuronoverlap.store.reader import ProbeSetView


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
