"""The pre-set rule for language-agnostic neurons.

A neuron is language-agnostic when it fires on more than `share` of the tokens in *every*
language of the analysis: activation probability p_x(l, j) > share for all x. The rule is fixed
before an analysis looks at its results (`share` is a parameter; docs/analyses.md gives the
value docs/findings.md uses) and is applied the same way everywhere: agnostic neurons are
removed from the candidates before each language's active set is selected (so A_x is still the
top `top_rate` of all neurons, taken among the others), and from the profiles CKA compares.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from jaxtyping import Bool, Float

from neuronoverlap.errors import InputError


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


def without_agnostic(
    probabilities: Mapping[str, Float[np.ndarray, "layer neuron"]],
    agnostic: Bool[np.ndarray, "layer neuron"],
) -> dict[str, np.ndarray]:
    """Probabilities with the agnostic neurons set to 0, for selecting active sets among the rest."""
    return {code: np.where(agnostic, 0.0, p) for code, p in probabilities.items()}


def agnostic_record(agnostic: Bool[np.ndarray, "layer neuron"] | None, share: float | None) -> dict:
    """What the outputs record of the rule: the share, how many neurons, and per layer."""
    if agnostic is None:
        return {"agnostic_share": None, "n_agnostic": 0}
    return {
        "agnostic_share": share,
        "n_agnostic": int(agnostic.sum()),
        "agnostic_per_layer": agnostic.sum(axis=1).astype(int).tolist(),
    }
