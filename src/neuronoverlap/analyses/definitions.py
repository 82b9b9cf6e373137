"""Compare the definitions of the overlap O(s,t) on a store (docs/findings.md, section 2).

For each pair with both probe directions and both corpora stored: the pooled, directions and
corpus overlaps (`sets.overlap_set`), their size, depth profile, how many of their neurons are
language-agnostic by the pre-set rule, and their Jaccard with the pooled and corpus sets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from neuronoverlap.analyses.agnostic import agnostic_neurons
from neuronoverlap.analyses.layerwise import THIRDS, layer_thirds
from neuronoverlap.errors import InputError
from neuronoverlap.sets import (
    DEFAULT_TOP_RATE,
    OVERLAP_DEFINITIONS,
    NeuronSet,
    ProbeSamples,
    language_active_sets,
    overlap_set,
)
from neuronoverlap.store import Store


def _jaccard(a: NeuronSet, b: NeuronSet) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def compare_overlap_definitions(
    store: Store,
    pairs: Sequence[tuple[str, str]],
    probabilities: Mapping[str, np.ndarray],
    top_rate: float = DEFAULT_TOP_RATE,
    agnostic_share: float = 0.9,
) -> list[dict[str, Any]]:
    """One row per pair and definition. `probabilities`: corpus activation probabilities of
    the languages the agnostic rule is taken over (they must include every pair's languages)."""
    active = language_active_sets(probabilities, top_rate=top_rate)
    agnostic = agnostic_neurons(probabilities, agnostic_share)
    thirds = layer_thirds(store.n_layers)
    rows = []
    for s, t in pairs:
        if s not in active or t not in active:
            raise InputError(f"no corpus probabilities for the pair {s}-{t}")
        forward, backward = (
            ProbeSamples(f"{a}-{b}", store.probes(a, b).lazy("probability"), store.probes(a, b).tokens())
            for a, b in ((s, t), (t, s))
        )
        sets = {
            d: overlap_set(d, forward, backward, active[s], active[t], top_rate=top_rate)
            for d in OVERLAP_DEFINITIONS
        }
        for definition, neurons in sets.items():
            counts = neurons.per_layer_counts()
            size = max(len(neurons), 1)
            rows.append(
                {
                    "pair": f"{s}-{t}",
                    "definition": definition,
                    "neurons": len(neurons),
                    **{f"share_{name}": counts[list(thirds[name])].sum() / size for name in THIRDS},
                    "per_layer": counts.tolist(),
                    "agnostic": int((neurons.mask & agnostic).sum()),
                    "jaccard_with_pooled": _jaccard(neurons, sets["pooled"]),
                    "jaccard_with_corpus": _jaccard(neurons, sets["corpus"]),
                    "score_cut": neurons.metadata.get("result", {}).get("score_cut"),
                }
            )
    return rows


def definitions_table(rows: list[dict[str, Any]]) -> str:
    """The comparison as a Markdown table."""
    lines = [
        "| pair | definition | neurons | early / middle / final | largest layer | agnostic | "
        "Jaccard with pooled | Jaccard with corpus |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        layer = int(np.argmax(r["per_layer"]))
        lines.append(
            f"| {r['pair']} | {r['definition']} | {r['neurons']} | {r['share_early']:.0%} / "
            f"{r['share_middle']:.0%} / {r['share_final']:.0%} | {layer} ({r['per_layer'][layer]}) "
            f"| {r['agnostic']} | {r['jaccard_with_pooled']:.3f} | {r['jaccard_with_corpus']:.3f} |"
        )
    return "\n".join(lines)
