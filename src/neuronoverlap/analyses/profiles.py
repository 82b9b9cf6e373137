"""Three analyses as results on the shelf (`neuronoverlap.results`): where the probe overlaps O(s,t)
sit over the layers (`OverlapProfile`), how similar the languages' corpus active sets are
(`LanguageSimilarity`), and the spectrum against the taxonomy with its bootstrap intervals
(`SpectrumSummary`, computed by `pipeline.spectrum.spectrum_summary`). Each is computed with one
`SpectrumOptions` (the selection rule: top rate, count rule, ties, agnostic share), which it
records; its `to_dict()` is the section of the report's `report.json`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from neuronoverlap.analyses.agnostic import agnostic_record, probe_agnostic_neurons
from neuronoverlap.analyses.layerwise import layerwise_overlap, pairwise_overlaps
from neuronoverlap.analyses.similarity import activation_cosine, jaccard, overlap_counts
from neuronoverlap.analyses.snapshot import active_sets_for
from neuronoverlap.jsonable import to_plain
from neuronoverlap.options import SpectrumOptions
from neuronoverlap.results import body, header
from neuronoverlap.sets import ProbeSamples, overlap_from_probes
from neuronoverlap.store import schema


def _agnostic(document: Mapping[str, Any]) -> dict[str, Any]:
    """The keys `agnostic_record` writes."""
    return {k: v for k, v in document.items() if k.startswith(("agnostic_", "n_agnostic"))}


class _Shelved:
    """to_dict/from_dict of the frozen dataclasses below: fields in order, the language-agnostic
    record (`agnostic`) spliced in where `AGNOSTIC_AT` says, as `agnostic_record` writes it."""

    AGNOSTIC_AT: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        out = header(self)
        for f in fields(self):
            if f.name == "agnostic":
                continue
            if f.name == self.AGNOSTIC_AT:
                out.update(self.agnostic)
            out[f.name] = getattr(self, f.name)
        return out

    @classmethod
    def from_dict(cls, document: dict[str, Any]):
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in body(document).items() if k in names}
        if "agnostic" in names:
            values["agnostic"] = _agnostic(document)
        return cls(**values)


@dataclass(frozen=True)
class OverlapProfile(_Shelved):
    """O(s,t) of every pair whose probe sets are stored both ways: its size and per-layer counts
    and shares of d_mlp, and the counts and shares per third of depth (early, middle, final)."""

    kind: ClassVar[str] = "overlap-profile"
    FORMAT: ClassVar[int] = 1
    AGNOSTIC_AT: ClassVar[str] = "definition"

    definition: str
    pairs: list[str]
    sizes: list[int]
    counts: list[list[int]]  # [pair][layer]
    shares: list[list[float]]
    third_counts: list[list[int]]  # [pair][third]
    third_shares: list[list[float]]
    selection: dict[str, Any]
    agnostic: dict[str, Any]

    @property
    def key(self) -> str:
        return "overlap-profile"


@dataclass(frozen=True)
class LanguageSimilarity(_Shelved):
    """Jaccard, shared counts and cosine (over shared neurons) of the corpus active sets, and
    where the pairwise overlaps A_a & A_b sit over the layers."""

    kind: ClassVar[str] = "language-similarity"
    FORMAT: ClassVar[int] = 1
    AGNOSTIC_AT: ClassVar[str] = "pair_layers"

    languages: list[str]
    active_set_sizes: list[int]
    jaccard: list[list[float]]
    overlap: list[list[int]]
    cosine: list[list[float | None]]
    active_sets: str
    agnostic: dict[str, Any]
    pair_layers: dict[str, Any]

    @property
    def key(self) -> str:
        return "language-similarity"


@dataclass(frozen=True)
class SpectrumSummary(_Shelved):
    """The spectrum of the languages against the taxonomy: the Mantel test, the cophenetic
    correlation and the dendrogram's fit; `intervals`: the block bootstrap's (None without it);
    `files`: what `write_spectrum_outputs` wrote."""

    kind: ClassVar[str] = "spectrum"
    FORMAT: ClassVar[int] = 1

    intervals: dict[str, Any] | None
    measure: str
    languages: list[str]
    linkage: str | None
    mantel: dict[str, Any]
    cophenetic_vs_taxonomy: float | None
    dendrogram_fit: Any
    files: dict[str, str]

    @property
    def key(self) -> str:
        return f"spectrum-{self.measure}"


def both_way_pairs(names: list[str]) -> list[tuple[str, str]]:
    """(s, t) for every pair whose s-t and t-s probe sets are both stored, each pair once."""
    have = set(names)
    pairs = []
    for name in names:
        src, tgt = schema.parse_probe_set_name(name)
        if schema.probe_set_name(tgt, src) in have and (tgt, src) not in pairs:
            pairs.append((src, tgt))
    return pairs


def _probe_samples(view) -> ProbeSamples:
    return ProbeSamples(view.name, view.lazy("probability"), view.tokens(), statistic="probability")


def overlap_profile(store, pairs: list[tuple[str, str]], options: SpectrumOptions) -> OverlapProfile:
    """O(s,t) per layer (active set of the s<->t probe sets pooled) for each pair in `store`;
    with `options.agnostic_share`, chosen among the neurons that are not language-agnostic by
    every probe set of these pairs (analyses/agnostic.py)."""
    selection: dict[str, Any] = {"top_rate": options.top_rate, "count_rule": options.count_rule}
    selection["ties"] = options.ties
    agnostic = names = None
    if options.agnostic_share is not None:
        names = [schema.probe_set_name(*d) for s, t in pairs for d in ((s, t), (t, s))]
        probes = [_probe_samples(store.probes(n)) for n in names]
        agnostic = probe_agnostic_neurons(probes, options.agnostic_share)
        selection["exclude"] = agnostic
    overlaps = {
        f"{s}-{t}": overlap_from_probes(
            _probe_samples(store.probes(s, t)), _probe_samples(store.probes(t, s)), **selection
        )
        for s, t in pairs
    }
    layered = layerwise_overlap(overlaps)
    first = next(iter(overlaps.values()))
    return OverlapProfile(
        definition="O(s,t): top top_rate of all neurons by the token-weighted activation "
        "probability of the s->t and t->s probe samples pooled"
        + ("" if agnostic is None else ", among the neurons not language-agnostic"),
        pairs=list(layered.pairs),
        sizes=[len(s) for s in overlaps.values()],
        counts=to_plain(layered.counts),
        shares=to_plain(layered.shares),
        third_counts=to_plain(layered.third_counts()),
        third_shares=to_plain(layered.third_shares()),
        selection=to_plain(first.metadata.get("selection", {})),
        agnostic=to_plain(agnostic_record(agnostic, options.agnostic_share, names)),
    )


def language_similarity(
    probabilities: Mapping[str, np.ndarray], options: SpectrumOptions
) -> LanguageSimilarity:
    """Jaccard, overlap counts and cosine of the corpus active sets (`options`' selection rule),
    and the layers their pairwise overlaps sit in."""
    sets, agnostic = active_sets_for(probabilities, options)
    layered = layerwise_overlap(pairwise_overlaps(sets))
    counts = layered.counts
    return LanguageSimilarity(
        languages=list(probabilities),
        active_set_sizes=[len(sets[c]) for c in probabilities],
        jaccard=to_plain(jaccard(sets).values),
        overlap=to_plain(overlap_counts(sets).values),
        cosine=to_plain(activation_cosine(probabilities, sets, options.cosine_neurons).values),
        active_sets=f"top {options.top_rate} of all neurons by FLORES activation probability"
        + ("" if agnostic is None else ", among the neurons not language-agnostic"),
        agnostic=to_plain(agnostic_record(agnostic, options.agnostic_share)),
        pair_layers=to_plain(
            {
                "pairs": layered.pairs,
                "counts": counts,
                "mean_counts": counts.mean(axis=0),
                "min_counts": counts.min(axis=0),
                "max_counts": counts.max(axis=0),
                "mean_third_shares": layered.third_shares().mean(axis=0),
            }
        ),
    )
