"""The pre-set rule for language-agnostic neurons.

A neuron is language-agnostic when it fires on more than `share` of the tokens in *every*
language of the analysis: activation probability p_x(l, j) > share for all x. The rule is fixed
before an analysis looks at its results (`share` is a parameter; docs/analyses.md gives the
value docs/findings.md uses) and is applied the same way everywhere: agnostic neurons are
removed from the candidates before each language's active set is selected (so A_x is still the
top `top_rate` of all neurons, taken among the others), and from the profiles CKA compares.

The probabilities are those the analysis reads: FLORES corpora for the corpus sets and the
spectrum (`agnostic_neurons`); for the probe-set-based sets (O(s,t), B(b; s,t) in bridge
selection and the report) each probe set's token-weighted activation probability, one per
direction of every probe set read (`probe_agnostic_neurons`): a store need not hold corpora,
and every language of the analysis appears in them, each in both directions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from jaxtyping import Bool, Float

from neuronoverlap.errors import InputError
from neuronoverlap.sets.builders import ProbeSamples, pooled_scores


def check_share(share: float | None) -> float | None:
    if share is None:
        return None
    share = float(share)
    if not 0.0 <= share < 1.0:
        raise InputError(f"the language-agnostic share is in [0, 1); got {share}")
    return share


def agnostic_neurons(
    probabilities: Mapping[str, Float[np.ndarray, "layer neuron"]], share: float
) -> Bool[np.ndarray, "layer neuron"]:
    """Neurons whose activation probability exceeds `share` in every given language."""
    share = check_share(share)
    if not probabilities:
        raise InputError("no language given")
    lowest = np.min(np.stack([np.asarray(p, dtype=np.float64) for p in probabilities.values()]), axis=0)
    return lowest > share


def probe_agnostic_neurons(probes: Sequence[ProbeSamples], share: float) -> Bool[np.ndarray, "layer neuron"]:
    """Neurons whose token-weighted activation probability exceeds `share` in every probe set."""
    if not probes:
        raise InputError("no probe set given")
    if any(p.statistic != "probability" for p in probes):
        raise InputError("the language-agnostic rule reads activation probabilities")
    return agnostic_neurons({p.name: pooled_scores(p, "tokens") for p in probes}, share)


def without_agnostic(
    probabilities: Mapping[str, Float[np.ndarray, "layer neuron"]],
    agnostic: Bool[np.ndarray, "layer neuron"],
) -> dict[str, np.ndarray]:
    """Probabilities with the agnostic neurons set to 0, for selecting active sets among the rest."""
    return {code: np.where(agnostic, 0.0, p) for code, p in probabilities.items()}


def agnostic_record(
    agnostic: Bool[np.ndarray, "layer neuron"] | None, share: float | None, over: Sequence[str] | None = None
) -> dict:
    """What the outputs record of the rule: the share, how many neurons, and per layer; `over`:
    the probe sets (or languages) it was taken over, when the record names them."""
    if agnostic is None:
        return {"agnostic_share": None, "n_agnostic": 0}
    record = {
        "agnostic_share": share,
        "n_agnostic": int(agnostic.sum()),
        "agnostic_per_layer": agnostic.sum(axis=1).astype(int).tolist(),
    }
    if over is not None:
        record["agnostic_over"] = list(over)
    return record
