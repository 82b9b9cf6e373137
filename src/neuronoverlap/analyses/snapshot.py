"""Every number the spectrum reports, computed from one set of activation probabilities.

`spectrum_statistics` is run once on the full data (the point estimates the writer prints) and
once per bootstrap resample (`bootstrap.py`), so estimates and intervals come from one rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from jaxtyping import Bool, Float, Int

from neuronoverlap.analyses.agnostic import agnostic_neurons, without_agnostic
from neuronoverlap.analyses.layerwise import layerwise_overlap, pairwise_overlaps
from neuronoverlap.analyses.similarity import (
    LanguageMatrix,
    activation_cka,
    activation_cosine,
    jaccard,
    overlap_counts,
)
from neuronoverlap.analyses.spectrum import (
    cluster_languages,
    cophenetic_correlation,
    similarity_to_distance,
    taxonomy_distances,
)
from neuronoverlap.errors import InputError
from neuronoverlap.options import SpectrumOptions
from neuronoverlap.sets import NeuronSet, language_active_sets

MATRICES = ("overlap", "jaccard", "cosine", "cka")
TAXONOMY_LEVELS = {1: "same genus", 2: "same family, other genus", 3: "different families"}


#: The spectrum's options (one class: `neuronoverlap.options.SpectrumOptions`), by its older name.
SpectrumSettings = SpectrumOptions


def active_sets_for(
    probabilities: Mapping[str, Float[np.ndarray, "layer neuron"]], settings: SpectrumSettings
) -> tuple[dict[str, NeuronSet], Bool[np.ndarray, "layer neuron"] | None]:
    """Each language's top-`top_rate` set, chosen among the non-agnostic neurons if the rule is on."""
    agnostic = None
    scores = probabilities
    if settings.agnostic_share is not None:
        agnostic = agnostic_neurons(probabilities, settings.agnostic_share)
        scores = without_agnostic(probabilities, agnostic)
    sets = language_active_sets(
        scores, top_rate=settings.top_rate, count_rule=settings.count_rule, ties=settings.ties
    )
    if agnostic is not None:
        sets = {
            code: s.with_label(
                s.label, agnostic_share=settings.agnostic_share, n_agnostic_excluded=int(agnostic.sum())
            )
            for code, s in sets.items()
        }
    return sets, agnostic


def similarity_matrices(
    probabilities: Mapping[str, Float[np.ndarray, "layer neuron"]],
    sets: Mapping[str, NeuronSet],
    settings: SpectrumSettings,
    agnostic: Bool[np.ndarray, "layer neuron"] | None = None,
    per_layer: bool = False,
) -> dict[str, LanguageMatrix]:
    """Overlap counts, Jaccard, cosine over shared neurons and CKA (agnostic neurons left out)."""
    exclude = agnostic if agnostic is not None and agnostic.any() else None
    return {
        "overlap": overlap_counts(sets, per_layer=per_layer),
        "jaccard": jaccard(sets, per_layer=per_layer),
        "cosine": activation_cosine(probabilities, sets, settings.cosine_neurons, per_layer=per_layer),
        "cka": activation_cka(
            probabilities,
            samples="neurons" if per_layer else settings.cka_samples,
            per_layer=per_layer,
            exclude=exclude,
        ),
    }


def dendrogram_clusters(linkage: np.ndarray, codes: list[str]) -> list[frozenset[str]]:
    """The clusters (internal nodes, root excluded) of a scipy linkage, as sets of languages."""
    members: list[frozenset[str]] = [frozenset([c]) for c in codes]
    for left, right, *_ in linkage:
        members.append(members[int(left)] | members[int(right)])
    return members[len(codes) : -1]


def taxonomy_level_means(values: np.ndarray, taxonomy: np.ndarray) -> Float[np.ndarray, " level"]:
    """Mean of a pairwise matrix over the pairs at taxonomy distance 1, 2 and 3 (NaN if none)."""
    upper = np.triu_indices(len(values), k=1)
    level = taxonomy[upper]
    return np.array(
        [values[upper][level == d].mean() if (level == d).any() else np.nan for d in TAXONOMY_LEVELS]
    )


@dataclass(frozen=True)
class SpectrumSnapshot:
    """The spectrum's numbers from one set of probabilities."""

    languages: list[str]
    matrices: dict[str, np.ndarray]  # name -> [lang, lang]
    pairs: list[str]
    layer_counts: Int[np.ndarray, "pair layer"]
    third_counts: Int[np.ndarray, "pair third"]
    third_shares: Float[np.ndarray, "pair third"]
    mantel_r: float
    cophenetic: float
    clusters: list[frozenset[str]]
    level_means: dict[str, np.ndarray]  # "jaccard", "overlap" -> [level]
    n_agnostic: int
    partial_r: dict[str, float] = field(default_factory=dict)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    upper = np.triu_indices(len(a), k=1)
    x, y = a[upper], b[upper]
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def spectrum_statistics(
    probabilities: Mapping[str, Float[np.ndarray, "layer neuron"]],
    settings: SpectrumSettings,
    controls: Mapping[str, Mapping[str, np.ndarray]] | None = None,
) -> SpectrumSnapshot:
    """All spectrum numbers; `controls`: named sets of control matrices for partial Mantel r."""
    from neuronoverlap.analyses.mantel import partial_correlation

    codes = list(probabilities)
    if len(codes) < 3:
        raise InputError("a language spectrum needs at least three languages")
    sets, agnostic = active_sets_for(probabilities, settings)
    matrices = {
        name: m.values for name, m in similarity_matrices(probabilities, sets, settings, agnostic).items()
    }
    layered = layerwise_overlap(pairwise_overlaps(sets))
    taxonomy = taxonomy_distances(codes)
    distance = similarity_to_distance(matrices[settings.measure])
    linkage = cluster_languages(distance, settings.linkage)
    partial = {}
    for name, matrices_of_control in (controls or {}).items():
        try:
            partial[name] = partial_correlation(distance, taxonomy, matrices_of_control)
        except InputError:
            partial[name] = float("nan")
    return SpectrumSnapshot(
        languages=codes,
        matrices=matrices,
        pairs=[f"{a}-{b}" for a, b in combinations(codes, 2)],
        layer_counts=layered.counts,
        third_counts=layered.third_counts(),
        third_shares=layered.third_shares(),
        mantel_r=_pearson(distance, taxonomy),
        cophenetic=cophenetic_correlation(linkage, taxonomy),
        clusters=dendrogram_clusters(linkage, codes),
        level_means={name: taxonomy_level_means(matrices[name], taxonomy) for name in ("jaccard", "overlap")},
        n_agnostic=0 if agnostic is None else int(agnostic.sum()),
        partial_r=partial,
    )
