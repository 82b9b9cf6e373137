"""Bridge predictors read from a store's recorded statistics (no model run): the neuron-set
family on the probe sets the HSIC selection reads, and the representation similarity of
FLORES parallel sentences. All over the selection's middle-layer window (`bridge.layer_window`).

Neuron-set family (per candidate b of the pair s, t; O(s,t) and the active sets as the HSIC
selection builds them, `bridge.loader`, top 1% by default):
- `cka`: linear CKA (Kornblith et al. 2019) between the activations of O(s,t) and of the
  bridge-specific set B(b; s,t) over the s<->t probe samples, per window layer, averaged over
  the layers where both are non-empty (0 when none is): the multivariate counterpart of the
  paper's pairwise-HSIC score (`hsic`, the study's own rule);
- `overlap-size`: how many neurons of O(s,t) the bridge's probe active sets (b<->s and b<->t,
  united) share, in the window;
- `corpus-jaccard`: Jaccard index of the FLORES active sets A_b and A_t, in the window.

Representation similarity (NN-Rank style, Ebrahimi et al. 2025), from the per-sentence
statistics `neuronoverlap spectrum --bootstrap` records (`corpus_sentences`): each FLORES
sentence is the vector of its per-neuron activation probabilities (fires / tokens) over the
window layers; since FLORES is parallel, sentence i in b and in t say the same thing;
- `representation-target`: linear CKA of b's and t's sentence vectors;
- `representation`: the mean of CKA(b, t) and CKA(b, s).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from neuronoverlap.analyses.similarity import linear_cka
from neuronoverlap.bridge.loader import _probe_samples, bridge_sets, layer_window, pair_activations
from neuronoverlap.errors import InputError
from neuronoverlap.options import DEFAULT_TOP_RATE
from neuronoverlap.sets import language_active_sets
from neuronoverlap.sets.builders import probe_active_set
from neuronoverlap.store import Store

NEURON_SET_RULES = ("cka", "overlap-size", "corpus-jaccard")
REPRESENTATION_RULES = ("representation", "representation-target")


def _window(store: Store, window: Sequence[int] | None) -> list[int]:
    return layer_window(store.n_layers, layers=None if window is None else list(window))


def neuron_set_scores(
    store: Store | str,
    src: str,
    tgt: str,
    bridges: Sequence[str],
    *,
    top_rate: float = DEFAULT_TOP_RATE,
    window: Sequence[int] | None = None,
) -> dict[str, dict[str, float]]:
    """rule -> bridge -> score for `cka`, `overlap-size` and `corpus-jaccard` (see the module
    docstring); `corpus-jaccard` only when the store holds the FLORES corpora of t and every b."""
    store = store if isinstance(store, Store) else Store(store)
    bridges = list(bridges)
    layers = _window(store, window)
    overlap, specific = bridge_sets(store, src, tgt, bridges, top_rate)
    o_mask = overlap.mask
    out: dict[str, dict[str, float]] = {rule: {} for rule in NEURON_SET_RULES}
    activations = {layer: pair_activations(store, src, tgt, layer) for layer in layers}
    for b in bridges:
        b_mask = specific[b].mask
        values = []
        for layer in layers:
            x, y = activations[layer][:, o_mask[layer]], activations[layer][:, b_mask[layer]]
            if x.shape[1] and y.shape[1]:
                values.append(linear_cka(x, y))
        out["cka"][b] = float(np.mean(values)) if values else 0.0
        united = (
            probe_active_set(
                [_probe_samples(store, b, src), _probe_samples(store, src, b)], top_rate=top_rate
            ).mask
            | probe_active_set(
                [_probe_samples(store, b, tgt), _probe_samples(store, tgt, b)], top_rate=top_rate
            ).mask
        )
        out["overlap-size"][b] = float((united & o_mask)[layers].sum())
    corpora = set(store.corpora())
    if {tgt, *bridges} <= corpora:
        probabilities = {lang: store.corpus(lang).activation_probability() for lang in {tgt, *bridges}}
        active = {k: v.mask for k, v in language_active_sets(probabilities, top_rate=top_rate).items()}
        for b in bridges:
            both = (active[b] & active[tgt])[layers].sum()
            either = (active[b] | active[tgt])[layers].sum()
            out["corpus-jaccard"][b] = float(both / either) if either else 0.0
    else:
        del out["corpus-jaccard"]
    return out


def sentence_vectors(store_path, lang: str, layers: Sequence[int]) -> np.ndarray:
    """[sentence, window neuron] per-sentence activation probabilities of one language."""
    from neuronoverlap.analyses.sentences import load_sentence_counts

    counts = load_sentence_counts(store_path, lang)
    fires = counts.fire_count[:, list(layers), :].reshape(counts.n_sentences, -1).astype(np.float64)
    return fires / np.maximum(counts.tokens, 1)[:, None]


def representation_scores(
    store: Store | str, src: str, tgt: str, bridges: Sequence[str], *, window: Sequence[int] | None = None
) -> dict[str, dict[str, float]]:
    """rule -> bridge -> score for `representation` and `representation-target`."""
    from neuronoverlap.analyses.sentences import load_sentence_counts

    store = store if isinstance(store, Store) else Store(store)
    layers = _window(store, window)
    langs = list(dict.fromkeys([src, tgt, *bridges]))
    corpus = {lang: load_sentence_counts(store.path, lang).params for lang in langs}
    seen = {(p.get("split"), p.get("n_sentences"), p.get("tokenizer")) for p in corpus.values()}
    if len(seen) != 1:
        raise InputError(f"per-sentence statistics of {', '.join(langs)} cover different FLORES sentences")
    vectors = {lang: sentence_vectors(store.path, lang, layers) for lang in langs}
    to_t = {b: linear_cka(vectors[b], vectors[tgt]) for b in bridges}
    to_s = {b: linear_cka(vectors[b], vectors[src]) for b in bridges}
    return {
        "representation-target": to_t,
        "representation": {b: (to_t[b] + to_s[b]) / 2 for b in bridges},
    }
