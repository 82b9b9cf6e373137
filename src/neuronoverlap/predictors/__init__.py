"""Bridge predictors: rules that rank the candidate bridges of a pair from data the toolkit
records or ships, never from the pair's evaluation results. Each family returns, per rule, the
scores of the bridges (higher: better), ready for `evaluation.choice.judge`. Fixed in code;
nothing is fitted (docs/evaluation.md, "Pre-registered: bridge predictors").

Families (`FAMILIES`: family -> its rules) and what they read:
- `uriel` (lang2vec's shipped URIEL files): `uriel`, `uriel-<distance>` (`uriel.py`);
- `latent` (the model: one forward per train word): `latent` (`latent.py`);
- `competence` (the model: greedy BLI on train words): `competence`, `competence-step1`,
  `competence-step2` (`competence.py`);
- `neuron-sets` (the store's probe sets and FLORES corpora): `cka`, `overlap-size`,
  `corpus-jaccard` (`stored.py`; `hsic` is the study's own rule);
- `representation` (the store's per-sentence FLORES statistics): `representation`,
  `representation-target` (`stored.py`).
"""

from __future__ import annotations

from collections.abc import Sequence

from tqdm.auto import tqdm

from neuronoverlap.errors import InputError
from neuronoverlap.predictors.competence import COMPETENCE_RULES, competence_scores
from neuronoverlap.predictors.latent import LatentProfile, latent_profile
from neuronoverlap.predictors.stored import (
    NEURON_SET_RULES,
    REPRESENTATION_RULES,
    neuron_set_scores,
    representation_scores,
)
from neuronoverlap.predictors.uriel import KINDS, uriel_distance, uriel_scores

FAMILIES: dict[str, tuple[str, ...]] = {
    "uriel": ("uriel", *(f"uriel-{k}" for k in KINDS)),
    "latent": ("latent",),
    "competence": COMPETENCE_RULES,
    "neuron-sets": NEURON_SET_RULES,
    "representation": REPRESENTATION_RULES,
}
NEEDS_MODEL = ("latent", "competence")
NEEDS_STORE = ("neuron-sets", "representation")


def parse_families(spec: str | Sequence[str] | None) -> list[str]:
    """'uriel,latent' / a list / 'all' / 'none' or None -> family names, checked."""
    if spec is None:
        return []
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    names = [s for s in names if s]
    if names == ["none"]:
        return []
    if names == ["all"]:
        return list(FAMILIES)
    unknown = [s for s in names if s not in FAMILIES]
    if unknown:
        raise InputError(f"unknown predictor {unknown[0]!r}; known: {', '.join(FAMILIES)}, all, none")
    return list(dict.fromkeys(names))


def predictor_table(
    pairs: Sequence,
    families: str | Sequence[str],
    *,
    model=None,
    store=None,
    n: int = 100,
    seed: int = 0,
    window: Sequence[int] | None = None,
    data_dir: str | None = None,
    progress: bool = False,
    legs: dict | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """rule -> pair name -> bridge -> score for every rule of `families`, over `pairs` (objects
    with `src`, `tgt`, `bridges`; only those are read, never their evaluation results).
    `n`: train words of the model-run families; `window`: the store families' middle layers
    (default: the selection's); `latent` keeps its own layers (`latent.latent_window`).
    `legs`: competence's leg cache (`competence.LegCache`), shared by the pairs of this call
    and, when given, by the caller's other calls."""
    names = parse_families(families)
    if model is None and (need := [f for f in names if f in NEEDS_MODEL]):
        raise InputError(f"predictor {need[0]!r} needs a model")
    if store is None and (need := [f for f in names if f in NEEDS_STORE]):
        raise InputError(f"predictor {need[0]!r} needs a store")
    table: dict[str, dict[str, dict[str, float]]] = {}
    legs = {} if legs is None else legs
    steps = [(f, p) for f in names for p in pairs]
    for family, pair in tqdm(steps, desc="predictors", disable=not progress, leave=False):
        src, tgt, bridges = pair.src, pair.tgt, list(pair.bridges)
        if family == "uriel":
            found = uriel_scores(src, tgt, bridges)
        elif family == "latent":
            profile = latent_profile(
                model, src, tgt, bridges, n=n, seed=seed, data_dir=data_dir, progress=False
            )
            found = {"latent": profile.scores()}
        elif family == "competence":
            found = competence_scores(model, src, tgt, bridges, n=n, seed=seed, data_dir=data_dir, legs=legs)
        elif family == "neuron-sets":
            found = neuron_set_scores(store, src, tgt, bridges, window=window)
        else:
            found = representation_scores(store, src, tgt, bridges, window=window)
        for rule, scores in found.items():
            table.setdefault(rule, {})[f"{src}-{tgt}"] = dict(scores)
    return table


__all__ = [
    "FAMILIES",
    "LatentProfile",
    "competence_scores",
    "latent_profile",
    "neuron_set_scores",
    "parse_families",
    "predictor_table",
    "representation_scores",
    "uriel_distance",
    "uriel_scores",
]
