"""Selection rules: from per-neuron scores [n_layers, d_mlp] to neuron masks.

- top rate (the reference's rule): the `top_rate` share of *all* n_layers * d_mlp neurons with
  the highest score, one percentile per input (docs/sets.md gives the count and tie rules);
- fixed threshold: score > threshold (or >= with `inclusive=True`);
- LAPE (Tang et al. 2024): language-specific neurons from several languages' probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from jaxtyping import Bool, Float

from neuronoverlap.errors import InputError
from neuronoverlap.options import COUNT_RULES, DEFAULT_TOP_RATE, TIES


def check_rate(name: str, rate: float) -> float:
    rate = float(rate)
    if not 0.0 < rate <= 1.0:
        raise InputError(f"{name} is a share in (0, 1]; got {rate}")
    return rate


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise InputError(f"unknown {name} {value!r}; use one of {', '.join(choices)}")
    return value


def check_scores(scores: Any, name: str = "scores") -> np.ndarray:
    array = np.asarray(scores, dtype=np.float64)
    if array.ndim != 2 or 0 in array.shape:
        raise InputError(f"{name} must be a 2-D [n_layers, d_mlp] array; got shape {array.shape}")
    if not np.isfinite(array).all():
        raise InputError(f"{name} contain NaN or infinite values")
    return array


def top_count(n_neurons: int, top_rate: float, count_rule: str = "ceil") -> int:
    """How many neurons "the top `top_rate`" of `n_neurons` is.

    "ceil": ceil(top_rate * n) (after rounding the product to 9 decimals, so 0.07 * 100 is 7).
    "reference": n - round(n * (1 - top_rate)) + 1, what `kthvalue(k=round(n * (1 - top_rate)))`
    followed by `>=` selects in BridgeX-ICL's language_similarity.py (one more than the rate).
    Both are clamped to [1, n].
    """
    check_rate("top_rate", top_rate)
    check_choice("count rule", count_rule, COUNT_RULES)
    if count_rule == "ceil":
        count = math.ceil(round(top_rate * n_neurons, 9))
    else:
        count = n_neurons - round(n_neurons * (1 - top_rate)) + 1
    return min(max(count, 1), n_neurons)


def top_rate_mask(
    scores: Float[np.ndarray, "layer neuron"],
    top_rate: float = DEFAULT_TOP_RATE,
    count_rule: str = "ceil",
    ties: str = "include",
    tiebreak: Float[np.ndarray, "layer neuron"] | None = None,
) -> tuple[Bool[np.ndarray, "layer neuron"], float]:
    """The top `top_rate` of all neurons by score, and the score of the last one taken.

    `ties="include"` (reference): every neuron scoring >= the k-th highest score, so the set can
    exceed k = `top_count(...)` when scores tie at the cut. `ties="exact"`: exactly k neurons,
    ties at the cut broken by the higher `tiebreak` score, then the lower (layer, neuron).
    """
    values = check_scores(scores)
    check_choice("tie rule", ties, TIES)
    flat = values.ravel()
    count = top_count(flat.size, top_rate, count_rule)
    cut = float(np.partition(flat, flat.size - count)[flat.size - count])
    if ties == "include":
        return values >= cut, cut
    secondary = np.zeros_like(flat) if tiebreak is None else check_scores(tiebreak).ravel()
    if secondary.size != flat.size:
        raise InputError("tiebreak scores must have the shape of the scores")
    order = np.lexsort((np.arange(flat.size), -secondary, -flat))
    mask = np.zeros(flat.size, dtype=bool)
    mask[order[:count]] = True
    return mask.reshape(values.shape), cut


def threshold_mask(
    scores: Float[np.ndarray, "layer neuron"], threshold: float, inclusive: bool = False
) -> Bool[np.ndarray, "layer neuron"]:
    """Neurons whose score is > `threshold` (>= with `inclusive`)."""
    values = check_scores(scores)
    return values >= threshold if inclusive else values > threshold


def kth_smallest(values: np.ndarray, share: float) -> float:
    """`torch.kthvalue(values, round(len * share))` with k clamped to [1, len]."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    k = min(max(round(flat.size * share), 1), flat.size)
    return float(np.partition(flat, k - 1)[k - 1])


def lape_masks(
    probabilities: Mapping[str, Float[np.ndarray, "layer neuron"]],
    filter_rate: float = 0.95,
    top_rate: float = DEFAULT_TOP_RATE,
    activation_bar_ratio: float = 0.95,
) -> tuple[dict[str, Bool[np.ndarray, "layer neuron"]], dict[str, Any]]:
    """LAPE language-specific neurons (Tang et al. 2024, identify.py), one mask per language.

    1. Normalise each neuron's activation probabilities over the languages; entropy of that.
    2. Keep neurons where some language's probability is > the `filter_rate` quantile of all
       probabilities (all neurons, all languages; k-th smallest with k = round(M * rate)).
    3. Of those, the round(n_neurons * top_rate) with the lowest entropy (ties: lower index).
       LAPE takes them from all neurons and so may pick filtered-out ones when too few pass;
       here only neurons that pass are taken.
    4. Assign each to every language whose probability is > the `activation_bar_ratio`
       quantile of all probabilities.
    Returns the masks and the cut values (for metadata).
    """
    if len(probabilities) < 2:
        raise InputError("LAPE compares languages: it needs at least two")
    for name, rate in (
        ("filter_rate", filter_rate),
        ("top_rate", top_rate),
        ("activation_bar_ratio", activation_bar_ratio),
    ):
        check_rate(name, rate)
    codes = list(probabilities)
    stacked = np.stack([check_scores(probabilities[c], f"probabilities of {c}") for c in codes], axis=-1)
    if stacked.min() < 0 or stacked.max() > 1:
        raise InputError("activation probabilities must lie in [0, 1]")
    total = stacked.sum(axis=-1, keepdims=True)
    normed = np.divide(stacked, total, out=np.zeros_like(stacked), where=total > 0)
    logs = np.log(normed, out=np.zeros_like(normed), where=normed > 0)
    entropy = -(normed * logs).sum(axis=-1).ravel()
    filter_value = kth_smallest(stacked, filter_rate)
    passes = (stacked > filter_value).any(axis=-1).ravel()
    count = round(entropy.size * top_rate)
    candidates = np.flatnonzero(passes)
    chosen = candidates[np.argsort(entropy[candidates], kind="stable")[:count]]
    bar = kth_smallest(stacked, activation_bar_ratio)
    flat = stacked.reshape(-1, len(codes))
    masks = {}
    for i, code in enumerate(codes):
        mask = np.zeros(entropy.size, dtype=bool)
        mask[chosen[flat[chosen, i] > bar]] = True
        masks[code] = mask.reshape(stacked.shape[:2])
    info = {"filter_value": filter_value, "activation_bar": bar, "n_low_entropy": int(chosen.size)}
    return masks, info
