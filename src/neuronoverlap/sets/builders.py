"""Builders of the method's neuron sets (method.md section 3) from corpus and probe statistics.

- Active set A_x of a language (FLORES statistics) or of a probe set (per-sample statistics).
- Overlap O(s,t): default the active set of the s<->t probe set, both directions pooled;
  alternative A_s & A_t from FLORES.
- Language-specific S_x = A_x - (union of the other languages' A_y).
- Bridge-specific B(b; s,t): default (active(b<->s) | active(b<->t)) - O(s,t) from probes;
  alternative A_b - (A_s | A_t) from FLORES.
Every set carries metadata: kind, mode, inputs and the selection parameters (docs/sets.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from jaxtyping import Bool, Float, Int

from neuronoverlap.errors import InputError
from neuronoverlap.sets.core import NeuronSet, check_same_shape
from neuronoverlap.sets.pooling import WEIGHTING, WeightedMean
from neuronoverlap.sets.selection import (
    DEFAULT_TOP_RATE,
    check_choice,
    check_rate,
    check_scores,
    lape_masks,
    threshold_mask,
    top_count,
    top_rate_mask,
)

RULES = ("top_rate", "threshold", "lape")
POOLING = ("pooled", "vote")
STATISTICS = ("probability", "mean")


@dataclass(frozen=True)
class ProbeSamples:
    """One probe set's per-sample statistic, e.g. name "zh-ja" with its `prob` array.

    `values` [sample, layer, neuron] is a numpy array or anything sliced like one (an h5py
    dataset is read a chunk of samples at a time); `statistic` says what it holds:
    "probability" (share of the sample's tokens where the neuron fires) or "mean" (mean
    activation value, what the reference's probe_activation.py records).
    """

    name: str
    values: Any
    tokens: Int[np.ndarray, " sample"]
    statistic: str = "probability"

    def __post_init__(self) -> None:
        check_choice("probe statistic", self.statistic, STATISTICS)
        shape = tuple(self.values.shape)
        tokens = np.asarray(self.tokens)
        if len(shape) != 3 or 0 in shape:
            raise InputError(f"probe set {self.name}: values must be [sample, layer, neuron]")
        if tokens.shape != (shape[0],):
            raise InputError(f"probe set {self.name}: {shape[0]} samples but {tokens.size} token counts")
        if (tokens < 0).any() or tokens.sum() <= 0:
            raise InputError(f"probe set {self.name}: token counts must be >= 0, not all 0")

    @property
    def model_shape(self) -> tuple[int, int]:
        return tuple(self.values.shape[1:])  # type: ignore[return-value]

    def chunks(self, size: int = 64):
        """(values [c, layer, neuron] float64, tokens [c]) blocks of samples."""
        tokens = np.asarray(self.tokens, dtype=np.float64)
        for start in range(0, len(tokens), size):
            block = np.asarray(self.values[start : start + size], dtype=np.float64)
            if not np.isfinite(block).all():
                raise InputError(f"probe set {self.name}: values contain NaN or infinities")
            if self.statistic == "probability" and (block.min() < 0 or block.max() > 1):
                raise InputError(f"probe set {self.name}: probabilities outside [0, 1]")
            yield block, tokens[start : start + size]


# ---- statistics ----------------------------------------------------------------------------
def activation_probability(
    fire_count: Int[np.ndarray, "layer neuron"], n_tokens: int
) -> Float[np.ndarray, "layer neuron"]:
    """Corpus activation probability: fire_count / n_tokens."""
    counts = np.asarray(fire_count)
    if counts.ndim != 2 or n_tokens <= 0 or counts.min() < 0 or counts.max() > n_tokens:
        raise InputError("fire counts are a 2-D array in [0, n_tokens] with n_tokens > 0")
    return counts / float(n_tokens)


def mean_activation(
    value_sum: Float[np.ndarray, "layer neuron"], n_tokens: int
) -> Float[np.ndarray, "layer neuron"]:
    """Corpus mean activation value: value_sum / n_tokens."""
    if n_tokens <= 0:
        raise InputError("the token count must be > 0")
    return check_scores(value_sum, "value sums") / float(n_tokens)


def _as_list(probes: ProbeSamples | Sequence[ProbeSamples]) -> list[ProbeSamples]:
    listed = [probes] if isinstance(probes, ProbeSamples) else list(probes)
    if not listed:
        raise InputError("no probe set given")
    shapes = {p.model_shape for p in listed}
    statistics = {p.statistic for p in listed}
    if len(shapes) > 1 or len(statistics) > 1:
        raise InputError("pooled probe sets must share model shape and statistic")
    return listed


def pooled_scores(
    probes: ProbeSamples | Sequence[ProbeSamples], weighting: str = "tokens"
) -> Float[np.ndarray, "layer neuron"]:
    """The probe samples pooled into one score per neuron.

    "tokens": token-weighted mean (for probabilities: total fires / total tokens, as if the
    samples were one corpus); "samples": plain mean over samples.
    """
    check_choice("weighting", weighting, WEIGHTING)
    pool = WeightedMean(weighting)
    for probe in _as_list(probes):
        for block, tokens in probe.chunks():
            pool.add(block, tokens)
    return pool.result()


def sample_votes(
    probes: ProbeSamples | Sequence[ProbeSamples], selection: Mapping[str, Any]
) -> tuple[Int[np.ndarray, "layer neuron"], int]:
    """How many samples select each neuron by their own `selection`; and the sample count."""
    listed = _as_list(probes)
    votes = np.zeros(listed[0].model_shape, dtype=np.int64)
    n_samples = 0
    for probe in listed:
        for block, _ in probe.chunks():
            for sample in block:
                votes += _select(sample, selection)[0]
            n_samples += len(block)
    return votes, n_samples


# ---- selection with metadata ---------------------------------------------------------------
def selection_params(
    rule: str = "top_rate",
    top_rate: float = DEFAULT_TOP_RATE,
    threshold: float | None = None,
    inclusive: bool = False,
    count_rule: str = "ceil",
    ties: str = "include",
) -> dict[str, Any]:
    """The validated parameters of a top-rate or threshold selection, as recorded."""
    check_choice("selection rule", rule, RULES[:2])
    if rule == "threshold":
        if threshold is None:
            raise InputError("the threshold rule needs a threshold")
        return {"rule": rule, "threshold": float(threshold), "inclusive": bool(inclusive)}
    check_choice("count rule", count_rule, ("ceil", "reference"))
    check_choice("tie rule", ties, ("include", "exact"))
    return {
        "rule": rule,
        "top_rate": check_rate("top_rate", top_rate),
        "count_rule": count_rule,
        "ties": ties,
    }


def _select(scores: np.ndarray, params: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    if params["rule"] == "threshold":
        mask = threshold_mask(scores, params["threshold"], params["inclusive"])
        return mask, {"n_selected": int(mask.sum())}
    mask, cut = top_rate_mask(scores, params["top_rate"], params["count_rule"], params["ties"])
    n_target = top_count(mask.size, params["top_rate"], params["count_rule"])
    return mask, {"n_selected": int(mask.sum()), "n_target": n_target, "score_cut": cut}


def select_neurons(
    scores: Float[np.ndarray, "layer neuron"], label: str | None = None, **params: Any
) -> NeuronSet:
    """A NeuronSet from scores by `selection_params(**params)`, recorded in its metadata."""
    chosen = selection_params(**params)
    mask, result = _select(check_scores(scores), chosen)
    return NeuronSet(mask, label, {"selection": chosen, "result": result})


# ---- active sets ---------------------------------------------------------------------------
def language_active_sets(
    probabilities: Mapping[str, Float[np.ndarray, "layer neuron"]],
    rule: str = "top_rate",
    top_rate: float = DEFAULT_TOP_RATE,
    threshold: float | None = None,
    inclusive: bool = False,
    count_rule: str = "ceil",
    ties: str = "include",
    filter_rate: float = 0.95,
    activation_bar_ratio: float = 0.95,
) -> dict[str, NeuronSet]:
    """A_x per language from corpus activation probabilities (FLORES).

    rule "top_rate" (default, reference): each language's own top `top_rate` of all neurons;
    "threshold": probability > `threshold`; "lape": LAPE's language-specific neurons
    (`filter_rate`, `top_rate`, `activation_bar_ratio`).
    """
    check_choice("selection rule", rule, RULES)
    if not probabilities:
        raise InputError("no language given")
    base = {"kind": "active", "mode": "corpus"}
    if rule == "lape":
        masks, info = lape_masks(probabilities, filter_rate, top_rate, activation_bar_ratio)
        chosen = {
            "rule": "lape",
            "filter_rate": filter_rate,
            "top_rate": top_rate,
            "activation_bar_ratio": activation_bar_ratio,
            "languages": list(masks),
        }
        return {
            code: NeuronSet(
                mask,
                code,
                {
                    **base,
                    "inputs": [code],
                    "selection": chosen,
                    "result": {**info, "n_selected": int(mask.sum())},
                },
            )
            for code, mask in masks.items()
        }
    params = selection_params(rule, top_rate, threshold, inclusive, count_rule, ties)
    sets = {}
    for code, probability in probabilities.items():
        values = check_scores(probability, f"probabilities of {code}")
        if values.min() < 0 or values.max() > 1:
            raise InputError(f"activation probabilities of {code} must lie in [0, 1]")
        found = select_neurons(values, code, **params)
        sets[code] = NeuronSet(found.mask, code, {**base, "inputs": [code], **found.metadata})
    return sets


def probe_active_set(
    probes: ProbeSamples | Sequence[ProbeSamples],
    pooling: str = "pooled",
    weighting: str = "tokens",
    vote_share: float = 0.5,
    label: str | None = None,
    exclude: Bool[np.ndarray, "layer neuron"] | None = None,
    **params: Any,
) -> NeuronSet:
    """The active set of one probe set, or of several pooled (e.g. both directions).

    pooling "pooled" (default, the reference's per-input percentile with the probe set as the
    input): pool the samples into one score per neuron (`weighting`), then select (`params`:
    rule, top_rate, threshold, count_rule, ties). "vote": select within every sample, keep the
    neurons chosen by at least `vote_share` of the samples. `exclude` (e.g. the language-agnostic
    neurons): left out of the candidates before selecting, so a top-rate set keeps its size.
    """
    check_choice("pooling", pooling, POOLING)
    listed = _as_list(probes)
    chosen = selection_params(**params)
    chosen["statistic"] = listed[0].statistic
    chosen["pooling"] = pooling
    if exclude is not None:
        exclude = np.asarray(exclude, dtype=bool)
        if exclude.shape != listed[0].model_shape:
            raise InputError(
                f"the excluded neurons are {exclude.shape}, the probe sets {listed[0].model_shape}"
            )
    if pooling == "pooled":
        chosen["weighting"] = check_choice("weighting", weighting, WEIGHTING)
        scores = pooled_scores(listed, weighting)
        if exclude is not None:  # below every other score: never selected, ties unaffected
            scores = np.where(exclude, scores.min() - 1.0, scores)
        mask, result = _select(scores, chosen)
    else:
        chosen["vote_share"] = check_rate("vote_share", vote_share)
        votes, n_samples = sample_votes(listed, chosen)
        mask = votes >= vote_share * n_samples - 1e-9
        if exclude is not None:
            mask &= ~exclude
        result = {"n_selected": int(mask.sum()), "n_samples": n_samples}
    if exclude is not None:
        result["n_excluded"] = int(exclude.sum())
    names = [p.name for p in listed]
    label = label if label is not None else "+".join(names)
    metadata = {"kind": "active", "mode": "probe", "inputs": names, "selection": chosen, "result": result}
    return NeuronSet(mask, label, metadata)


# ---- derived sets --------------------------------------------------------------------------
def _derived(
    kind: str, mode: str, label: str, mask: np.ndarray, *inputs: NeuronSet, **extra: Any
) -> NeuronSet:
    selections = {s.label or f"input{i}": s.metadata.get("selection") for i, s in enumerate(inputs)}
    metadata: dict[str, Any] = {"kind": kind, "mode": mode, "inputs": list(selections), **extra}
    distinct = {repr(v) for v in selections.values()}
    if len(distinct) == 1:
        metadata["selection"] = next(iter(selections.values()))
    else:
        metadata["selections"] = selections
    return NeuronSet(mask, label, metadata)


def overlap_from_probes(
    forward: ProbeSamples, backward: ProbeSamples | None = None, **selection: Any
) -> NeuronSet:
    """O(s,t), default: the active set of the s->t probe set pooled with t->s.

    `selection`: the keywords of `probe_active_set` (pooling, weighting, rule, top_rate...).
    """
    probes = [forward] if backward is None else [forward, backward]
    active = probe_active_set(probes, **selection)
    pair = forward.name
    metadata = {**active.metadata, "kind": "overlap", "pair": pair, "definition": "pooled"}
    return NeuronSet(active.mask, f"overlap {pair}", metadata)


def overlap_from_directions(forward: ProbeSamples, backward: ProbeSamples, **selection: Any) -> NeuronSet:
    """O(s,t) = A(s->t) & A(t->s): each direction's own active set, then their intersection.

    `selection`: the keywords of `probe_active_set`, applied to each direction alone.
    """
    source = probe_active_set(forward, **selection)
    both = source & probe_active_set(backward, **selection)
    chosen = source.metadata["selection"]
    metadata = {
        "kind": "overlap",
        "mode": "probe",
        "inputs": [forward.name, backward.name],
        "selection": chosen,
        "result": {"n_selected": len(both)},
        "pair": forward.name,
        "definition": "directions",
    }
    return NeuronSet(both.mask, f"overlap {forward.name}", metadata)


def overlap_from_corpus(active_source: NeuronSet, active_target: NeuronSet) -> NeuronSet:
    """O(s,t), corpus alternative: A_s & A_t."""
    pair = f"{active_source.label}-{active_target.label}"
    both = active_source & active_target
    return _derived(
        "overlap",
        "corpus",
        f"overlap {pair}",
        both.mask,
        active_source,
        active_target,
        pair=pair,
        definition="corpus",
    )


#: The definitions of O(s,t) (docs/sets.md): the pooled s<->t probe set (default), the
#: intersection of the two directions' active sets, and the intersection of the FLORES sets.
OVERLAP_DEFINITIONS = ("pooled", "directions", "corpus")


def overlap_set(
    definition: str = "pooled",
    forward: ProbeSamples | None = None,
    backward: ProbeSamples | None = None,
    active_source: NeuronSet | None = None,
    active_target: NeuronSet | None = None,
    **selection: Any,
) -> NeuronSet:
    """O(s,t) by `definition`; the set's metadata records it under "definition"."""
    check_choice("overlap definition", definition, OVERLAP_DEFINITIONS)
    if definition == "corpus":
        if active_source is None or active_target is None:
            raise InputError("the corpus overlap needs the two languages' active sets")
        return overlap_from_corpus(active_source, active_target)
    if forward is None or (definition == "directions" and backward is None):
        raise InputError(f"the {definition} overlap needs the s->t and t->s probe sets")
    if definition == "directions":
        return overlap_from_directions(forward, backward, **selection)
    return overlap_from_probes(forward, backward, **selection)


def language_specific(active: Mapping[str, NeuronSet]) -> dict[str, NeuronSet]:
    """S_x = A_x minus the union of the other languages' active sets, for every x."""
    if len(active) < 2:
        raise InputError("language-specific neurons need at least two languages")
    codes = list(active)
    check_same_shape(*active.values())
    counts = np.sum([active[c].mask for c in codes], axis=0, dtype=np.int64)
    return {
        code: _derived(
            "language_specific",
            active[code].metadata.get("mode", "corpus"),
            f"specific {code}",
            active[code].mask & (counts == 1),
            *(active[c] for c in codes),
            language=code,
        )
        for code in codes
    }


def bridge_specific_from_probes(
    bridge_source: NeuronSet,
    bridge_target: NeuronSet,
    overlap: NeuronSet,
    bridge: str | None = None,
) -> NeuronSet:
    """B(b; s,t), default: (active(b<->s) | active(b<->t)) - O(s,t), all from probe sets."""
    found = (bridge_source | bridge_target) - overlap
    name = bridge or bridge_source.label or "bridge"
    return _derived(
        "bridge_specific",
        "probe",
        f"bridge {name} for {overlap.label}",
        found.mask,
        bridge_source,
        bridge_target,
        overlap,
        bridge=name,
    )


def bridge_specific_from_corpus(
    active_bridge: NeuronSet, active_source: NeuronSet, active_target: NeuronSet
) -> NeuronSet:
    """B(b; s,t), corpus alternative: A_b - (A_s | A_t)."""
    found = active_bridge - (active_source | active_target)
    pair = f"{active_source.label}-{active_target.label}"
    return _derived(
        "bridge_specific",
        "corpus",
        f"bridge {active_bridge.label} for {pair}",
        found.mask,
        active_bridge,
        active_source,
        active_target,
        bridge=active_bridge.label,
        pair=pair,
    )
