"""Language similarity from neurons: overlap counts, Jaccard, cosine of activation
probabilities over shared neurons (the reference's measure) and linear CKA of profiles.

Every function returns a `LanguageMatrix` whose `values` are [lang, lang] (whole model) or
[layer, lang, lang] (`per_layer=True`), rows and columns in `languages` order. A similarity
is 0 where there is nothing to compare (no neuron in the union or the intersection, a
zero-norm or constant profile); the diagonal is 1 except for such degenerate languages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from jaxtyping import Bool, Float

from neuronoverlap.errors import InputError
from neuronoverlap.hsic.estimators import cka
from neuronoverlap.options import CKA_SAMPLES, COSINE_NEURONS
from neuronoverlap.sets import NeuronSet, check_same_shape


@dataclass(frozen=True)
class LanguageMatrix:
    """A language-by-language matrix (or one per layer) and how it was computed."""

    languages: list[str]
    values: np.ndarray
    measure: str
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def per_layer(self) -> bool:
        return self.values.ndim == 3

    def layer(self, layer: int) -> LanguageMatrix:
        if not self.per_layer:
            raise InputError(f"the {self.measure} matrix is not per layer")
        return LanguageMatrix(
            self.languages, self.values[layer], self.measure, {**self.parameters, "layer": layer}
        )


def _masks(sets: Mapping[str, NeuronSet]) -> tuple[list[str], np.ndarray]:
    if not sets:
        raise InputError("no language given")
    check_same_shape(*sets.values())
    codes = list(sets)
    return codes, np.stack([sets[c].mask for c in codes])


def _profiles(
    probabilities: Mapping[str, Float[np.ndarray, "layer neuron"]],
) -> tuple[list[str], np.ndarray]:
    if not probabilities:
        raise InputError("no language given")
    codes = list(probabilities)
    arrays = [np.asarray(probabilities[c], dtype=np.float64) for c in codes]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1 or arrays[0].ndim != 2:
        raise InputError(f"activation probabilities must share one 2-D shape; got {shapes}")
    stacked = np.stack(arrays)
    if not np.isfinite(stacked).all():
        raise InputError("activation probabilities contain NaN or infinite values")
    return codes, stacked


def _per_layer(func, *arrays: np.ndarray) -> np.ndarray:
    """Apply `func` to [lang, features] slices: whole model, or one call per layer."""
    return np.stack([func(*(a[:, layer, :] for a in arrays)) for layer in range(arrays[0].shape[1])])


def _whole(func, *arrays: np.ndarray) -> np.ndarray:
    return func(*(a.reshape(a.shape[0], -1) for a in arrays))


def _safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(
        numerator, denominator, out=np.zeros_like(numerator, dtype=np.float64), where=denominator > 0
    )


# ---- set-based --------------------------------------------------------------------------
def _overlap(masks: np.ndarray) -> np.ndarray:
    as_float = masks.astype(np.float32)
    return np.rint(as_float @ as_float.T).astype(np.int64)


def _jaccard(masks: np.ndarray) -> np.ndarray:
    shared = _overlap(masks)
    sizes = np.diag(shared)
    return _safe_ratio(shared.astype(np.float64), sizes[:, None] + sizes[None, :] - shared)


def overlap_counts(sets: Mapping[str, NeuronSet], per_layer: bool = False) -> LanguageMatrix:
    """|A_i & A_j| for every pair (diagonal: |A_i|)."""
    codes, masks = _masks(sets)
    values = _per_layer(_overlap, masks) if per_layer else _whole(_overlap, masks)
    return LanguageMatrix(codes, values, "overlap")


def jaccard(sets: Mapping[str, NeuronSet], per_layer: bool = False) -> LanguageMatrix:
    """|A_i & A_j| / |A_i | A_j| (0 when both are empty)."""
    codes, masks = _masks(sets)
    values = _per_layer(_jaccard, masks) if per_layer else _whole(_jaccard, masks)
    return LanguageMatrix(codes, values, "jaccard")


# ---- cosine over shared neurons -----------------------------------------------------------
def _cosine(profiles: np.ndarray, masks: np.ndarray | None, neurons: str) -> np.ndarray:
    squares = profiles**2
    if neurons == "all":
        dot = profiles @ profiles.T
        norms = squares.sum(axis=1)
        norm_i, norm_j = norms[:, None], norms[None, :]
    elif neurons == "intersection":
        kept = profiles * masks
        dot = kept @ kept.T
        norm_i = (squares * masks) @ masks.T.astype(np.float64)  # [i, j]: sum over A_i & A_j
        norm_j = norm_i.T
    else:
        outside = 1.0 - masks
        dropped = profiles * outside
        dot = profiles @ profiles.T - dropped @ dropped.T
        norm_i = squares.sum(axis=1)[:, None] - (squares * outside) @ outside.T
        norm_j = norm_i.T
    cosine = _safe_ratio(dot, np.sqrt(np.clip(norm_i, 0, None) * np.clip(norm_j, 0, None)))
    self_norm = np.diag(np.broadcast_to(norm_i, cosine.shape))
    np.fill_diagonal(cosine, (self_norm > 0).astype(np.float64))
    return np.clip(cosine, -1.0, 1.0)


def activation_cosine(
    probabilities: Mapping[str, Float[np.ndarray, "layer neuron"]],
    sets: Mapping[str, NeuronSet] | None = None,
    neurons: str = "intersection",
    per_layer: bool = False,
) -> LanguageMatrix:
    """Cosine of two languages' activation probabilities over shared neurons.

    neurons "intersection" (default, the reference's measure): the neurons in A_i & A_j;
    "union": A_i | A_j; "all": every neuron (then `sets` is not needed).
    """
    if neurons not in COSINE_NEURONS:
        raise InputError(f"unknown neuron choice {neurons!r}; use one of {', '.join(COSINE_NEURONS)}")
    codes, profiles = _profiles(probabilities)
    masks = None
    if neurons != "all":
        if sets is None:
            raise InputError(f"the cosine over the {neurons} of active sets needs the sets")
        if list(sets) != codes:
            raise InputError("probabilities and sets must list the same languages in one order")
        _, masks = _masks(sets)
        if masks.shape[1:] != profiles.shape[1:]:
            raise InputError("neuron sets and probabilities have different model shapes")
        masks = masks.astype(np.float64)
    arrays = (profiles,) if masks is None else (profiles, masks)

    def func(p: np.ndarray, m: np.ndarray | None = None) -> np.ndarray:
        return _cosine(p, m, neurons)

    values = _per_layer(func, *arrays) if per_layer else _whole(func, *arrays)
    return LanguageMatrix(codes, values, "cosine", {"neurons": neurons})


# ---- CKA ----------------------------------------------------------------------------------
def linear_cka(x: Float[np.ndarray, "sample feature_x"], y: Float[np.ndarray, "sample feature_y"]) -> float:
    """Linear CKA (Kornblith et al. 2019) of two representations of the same samples:
    `neuronoverlap.hsic.cka` with the linear kernel (0 when either side is constant).

    Builds two [sample, sample] Gram matrices; the language matrices below use closed forms.
    """
    return cka(x, y, kernel="linear")


def _cka_neurons(profiles: np.ndarray) -> np.ndarray:
    """Neurons as samples, one feature: linear CKA is the squared Pearson correlation."""
    centred = profiles - profiles.mean(axis=1, keepdims=True)
    gram = centred @ centred.T
    variance = np.diag(gram)
    cka = _safe_ratio(gram**2, variance[:, None] * variance[None, :])
    np.fill_diagonal(cka, (variance > 0).astype(np.float64))
    return np.clip(cka, 0.0, 1.0)


def _cka_layers(profiles: np.ndarray) -> np.ndarray:
    """Layers as samples, neuron index as feature: CKA of the centred [layer, layer] Grams."""
    centred = profiles - profiles.mean(axis=1, keepdims=True)
    grams = np.einsum("ild,imd->ilm", centred, centred).reshape(len(profiles), -1)
    inner = grams @ grams.T
    norms = np.sqrt(np.diag(inner))
    cka = _safe_ratio(inner, norms[:, None] * norms[None, :])
    np.fill_diagonal(cka, (norms > 0).astype(np.float64))
    return np.clip(cka, 0.0, 1.0)


def activation_cka(
    probabilities: Mapping[str, Float[np.ndarray, "layer neuron"]],
    samples: str = "neurons",
    per_layer: bool = False,
    exclude: Bool[np.ndarray, "layer neuron"] | None = None,
) -> LanguageMatrix:
    """Linear CKA between languages' activation-probability profiles.

    samples "neurons" (default): every neuron is a sample with one feature, its probability;
    linear CKA is then the squared Pearson correlation of the two flattened profiles (per
    layer: over that layer's neurons). "layers": the L layers are the samples and the neuron
    index within a layer the feature; compares the layer-by-layer Gram structure (whole model
    only; neuron j of two layers is not the same neuron, so read it with care).
    `exclude`: neurons left out of the samples (e.g. language-agnostic ones; "neurons" only).
    """
    if samples not in CKA_SAMPLES:
        raise InputError(f"unknown CKA samples {samples!r}; use one of {', '.join(CKA_SAMPLES)}")
    codes, profiles = _profiles(probabilities)
    if exclude is not None:
        if samples == "layers":
            raise InputError("CKA with layers as samples cannot leave neurons out")
        keep = ~np.asarray(exclude, dtype=bool)
        if keep.shape != profiles.shape[1:]:
            raise InputError("the excluded neurons and the probabilities have different shapes")
        if per_layer:
            values = np.stack(
                [_cka_neurons(profiles[:, layer, keep[layer]]) for layer in range(keep.shape[0])]
            )
        else:
            values = _cka_neurons(profiles[:, keep])
        return LanguageMatrix(codes, values, "cka", {"samples": samples, "excluded": int((~keep).sum())})
    if samples == "layers":
        if per_layer:
            raise InputError("CKA with layers as samples has no per-layer version")
        values = _cka_layers(profiles)
    else:
        values = _per_layer(_cka_neurons, profiles) if per_layer else _whole(_cka_neurons, profiles)
    return LanguageMatrix(codes, values, "cka", {"samples": samples})
