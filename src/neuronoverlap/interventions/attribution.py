"""Attribution patching: a first-order estimate of every neuron's intervention effect at once.

For a score S (the mean over items of `item_nll`) and an intervention that moves neuron (l, j)'s
contribution post_{l,j} to post'_{l,j} at every position, the effect of intervening on a set N is
estimated by sum_{(l,j) in N} sum_{positions} dS/dpost_{l,j} * (post'_{l,j} - post_{l,j}), from one
forward and one backward pass (Syed, Rager & Conmy 2023; Nanda 2023). The estimate is additive over
neurons, so any number of sets cost one index-sum each. It is exact for a set whose effect is
linear in its activations (the limit of a small `scale` around 1) and an approximation otherwise:
the experiments report its agreement with the exact effect on the sets run both ways.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from neuronoverlap.errors import InputError
from neuronoverlap.interventions.hooks import KINDS, hook_points
from neuronoverlap.interventions.scoring import ScoredTexts, batch_nll
from neuronoverlap.models.interface import NeuronModel


def full_array(name: str, given: Any, shape: tuple[int, int]) -> Float[np.ndarray, "layer neuron"]:
    """A number or a [n_layers, d_mlp] array as a finite [n_layers, d_mlp] array."""
    array = np.asarray(given, dtype=np.float64)
    if array.ndim == 0:
        array = np.full(shape, float(array))
    if array.shape != shape:
        raise InputError(f"{name} has shape {array.shape}; the null needs a number or a {shape} array")
    if not np.isfinite(array).all():
        raise InputError(f"{name} holds NaN or infinite values")
    return array


def post_change(
    kind: str, post: Tensor, up: Tensor | None, values: Tensor | None
) -> Float[Tensor, "b pos neuron"]:
    """post' - post for every neuron of a layer at once (values / factor per neuron)."""
    if kind == "zero":
        return -post
    if kind == "scale":
        return (values - 1) * post
    up = up if up is not None else torch.ones_like(post)
    if kind == "add":
        return values * up
    return values * up - post  # mean, value


def attribution_scores(
    model: NeuronModel,
    texts: ScoredTexts,
    kind: str = "zero",
    *,
    values: Any = None,
    factor: Any = None,
    batch_size: int = 8,
) -> Float[np.ndarray, "layer neuron"]:
    """Estimated change of the mean item score when each neuron alone gets the intervention.

    `values` (mean / value / add) and `factor` (scale) are numbers or [n_layers, d_mlp] arrays:
    every neuron needs its own, since any neuron may be drawn into a random set.
    """
    if kind not in KINDS:
        raise InputError(f"unknown intervention kind {kind!r}; choose one of {', '.join(KINDS)}")
    shape = (model.n_layers, model.d_mlp)
    given = factor if kind == "scale" else values
    per_neuron = None
    if kind != "zero":
        if given is None:
            raise InputError(f"a {kind!r} attribution needs {'a factor' if kind == 'scale' else 'values'}")
        per_neuron = torch.as_tensor(full_array("factor" if kind == "scale" else "values", given, shape))
    scores = torch.zeros(shape, dtype=torch.float64)
    for ids, attention, scored in texts.batches(batch_size, model.device):
        posts, ups, grads = _post_gradients(model, ids, attention, scored, texts.reduce, len(texts))
        real = attention.to(torch.float64)[..., None]
        for layer, grad in enumerate(grads):
            layer_values = None if per_neuron is None else per_neuron[layer].to(posts[layer].dtype)
            change = post_change(kind, posts[layer], ups.get(layer), layer_values)
            scores[layer] += (grad.double() * change.double() * real).sum((0, 1)).cpu()
    return scores.numpy()


def _post_gradients(model: NeuronModel, ids, attention, scored, reduce: str, n_items: int):
    """One forward and backward: every layer's hook_post, its up projection (gated MLPs) and
    d(sum of item scores / n_items) / d hook_post."""
    posts: dict[int, Tensor] = {}
    ups: dict[int, Tensor] = {}
    deltas: dict[int, Tensor] = {}

    def keep_up(layer: int):
        def hook(module, inputs, output):
            ups[layer] = output.detach()

        return hook

    def open_post(layer: int):
        def hook(module, inputs, output):
            posts[layer] = output.detach()
            deltas[layer] = torch.zeros_like(output, requires_grad=True)
            return output + deltas[layer]

        return hook

    handles = []
    try:
        for layer in range(model.n_layers):
            post_point, up_point = hook_points(model, layer)
            if up_point is not None:
                handles.append(up_point.register_forward_hook(keep_up(layer)))
            handles.append(post_point.register_forward_hook(open_post(layer)))
        with torch.enable_grad():
            total = batch_nll(model, ids, attention, scored, reduce).sum() / n_items
            grads = torch.autograd.grad(total, [deltas[layer] for layer in range(model.n_layers)])
    finally:
        for handle in handles:
            handle.remove()
    return posts, ups, grads
