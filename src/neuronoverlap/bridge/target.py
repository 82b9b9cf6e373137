"""The direction-aware score of issue 26: the target share of a bridge's specific neurons.

target_share(b) = |B(b; s,t) & S_t| / |B(b; s,t)|, with S_t the target's own language-specific
neurons (`target_specific`: the corpus rule S_t = A_t minus the other languages' active sets,
or LAPE's neurons assigned to t alone), the always-on (language-agnostic) neurons left out. Unlike
the HSIC score it is not symmetric in s and t: de-fr and fr-de get different shares. It is the
study's rule "target-share" (evaluation/study.py).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from jaxtyping import Float

from neuronoverlap.errors import InputError
from neuronoverlap.options import DEFAULT_TOP_RATE
from neuronoverlap.sets import NeuronSet
from neuronoverlap.sets.builders import language_active_sets, language_specific

#: Neurons firing on more than this share of tokens in every language are left out of S_t.
TARGET_AGNOSTIC_SHARE = 0.9

SPECIFIC_RULES = ("corpus", "lape")


def target_specific(
    probabilities: Mapping[str, Float[np.ndarray, "layer neuron"]],
    target: str,
    *,
    rule: str = "corpus",
    top_rate: float = DEFAULT_TOP_RATE,
    agnostic_share: float = TARGET_AGNOSTIC_SHARE,
) -> NeuronSet:
    """S_t from corpus activation probabilities of several languages (target among them):
    rule "corpus": A_t minus the union of the others' active sets (top `top_rate` each);
    "lape": LAPE's neurons of t that LAPE assigns to no other language. Neurons above
    `agnostic_share` in every language are left out (before selecting)."""
    from neuronoverlap.analyses.agnostic import agnostic_neurons, without_agnostic

    if rule not in SPECIFIC_RULES:
        raise InputError(f"unknown target-specific rule {rule!r}; use one of {', '.join(SPECIFIC_RULES)}")
    if target not in probabilities or len(probabilities) < 2:
        raise InputError(f"S_{target} needs the target's and at least one other language's probabilities")
    agnostic = agnostic_neurons(probabilities, agnostic_share)
    kept = without_agnostic(probabilities, agnostic)
    if rule == "lape":
        active = language_active_sets(kept, rule="lape", top_rate=top_rate)
    else:
        active = language_active_sets(kept, top_rate=top_rate)
    specific = language_specific(active)[target]
    return NeuronSet(specific.mask & ~agnostic, f"specific {target}", {**specific.metadata, "rule": rule})


def target_share(bridges: Mapping[str, NeuronSet], specific_target: NeuronSet) -> dict[str, float | None]:
    """|B(b) & S_t| / |B(b)| per candidate (None where B(b) is empty)."""
    out = {}
    for b, neurons in bridges.items():
        if neurons.shape != specific_target.shape:
            raise InputError(f"B({b}) is {neurons.shape}, S_t {specific_target.shape}")
        size = len(neurons)
        out[b] = None if size == 0 else len(neurons & specific_target) / size
    return out


def store_target_shares(
    store,
    src: str,
    tgt: str,
    bridges: list[str],
    *,
    languages: list[str] | None = None,
    rule: str = "corpus",
    top_rate: float = DEFAULT_TOP_RATE,
    agnostic_share: float = TARGET_AGNOSTIC_SHARE,
) -> dict[str, float | None]:
    """The target share of each candidate from a store: B(b; s,t) from its probe sets (as the
    selection builds them, `bridge_sets`), S_t from its corpus statistics of `languages`
    (default: every language with corpus statistics in the store)."""
    from neuronoverlap.bridge.loader import bridge_sets
    from neuronoverlap.store import Store

    store = store if isinstance(store, Store) else Store(store)
    with store:
        codes = list(store.corpora()) if languages is None else list(languages)
        probabilities = {code: store.corpus(code).activation_probability() for code in codes}
        _, specific = bridge_sets(store, src, tgt, list(bridges), top_rate)
    own = target_specific(probabilities, tgt, rule=rule, top_rate=top_rate, agnostic_share=agnostic_share)
    return target_share(specific, own)
