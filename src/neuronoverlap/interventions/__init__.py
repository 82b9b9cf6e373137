"""Causal tests on neuron sets: ablate, fix, scale and steer them inside any forward or
generation (`intervene`), score texts (`score_texts`), estimate every neuron's effect at once
(`attribution_scores`), and compare a set's effect with size-matched random sets (`random_sets`).

    import neuronoverlap as no
    with no.intervene(model, neurons, "zero"):
        ...  # any forward, generation or recording of `model`
"""

from neuronoverlap.interventions.attribution import attribution_scores
from neuronoverlap.interventions.hooks import KINDS, Intervention, intervene
from neuronoverlap.interventions.null import empirical_pvalue, random_sets, z_score
from neuronoverlap.interventions.scoring import (
    ScoredTexts,
    continuation_texts,
    score_texts,
    sentence_texts,
)

__all__ = [
    "KINDS",
    "Intervention",
    "ScoredTexts",
    "attribution_scores",
    "continuation_texts",
    "empirical_pvalue",
    "intervene",
    "random_sets",
    "score_texts",
    "sentence_texts",
    "z_score",
]
