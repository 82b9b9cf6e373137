"""`intervene`: change a neuron set's activations inside any forward pass or generation.

A neuron (l, j) is act_fn(gate_j) of block l's MLP (`act_fn(blocks.{l}.mlp.hook_pre)`). It reaches
the model only through `hook_post` = act_fn(gate) * up (gated MLPs; `hook_post` = act_fn(gate) in
plain ones), the input of the down projection. So an intervention rewrites channel j of
`blocks.{l}.mlp.hook_post`, where "set the activation to v" is exactly "post_j := v * up_j"
(`up` read at `hook_pre_linear` of the same forward):

- ``zero``: a = 0, post_j := 0: the neuron's column of the down projection contributes nothing
  (LAPE's deactivation);
- ``mean`` / ``value``: a := v_j (its mean over a corpus or probe set; a language's statistic);
- ``scale``: a := factor * a, post_j := factor * post_j;
- ``add``: a := a + v_j (steering by a direction, e.g. mean(lang b) - mean(lang a) on the set).

The hooks are plain PyTorch forward hooks on the TransformerLens hook points, so they act on
every forward of the model while the context is open (prefill and every decode step, cached or
not, batched, and any recording forward: a recorder still sees act_fn(gate) of an intervened
neuron, and the intervention's effect on every later neuron), whatever hooks the caller adds with
`run_with_hooks`, and they survive TransformerLens's `reset_hooks`. They are removed on exit, on an
exception too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from neuronoverlap.errors import InputError
from neuronoverlap.models.interface import NeuronModel
from neuronoverlap.sets import NeuronSet

KINDS = ("zero", "mean", "value", "scale", "add")
#: kinds that take per-neuron `values`, and the one that takes `factor`.
VALUE_KINDS = ("mean", "value", "add")


def as_neuron_set(model_shape: tuple[int, int], neurons: NeuronSet | Iterable[tuple[int, int]]) -> NeuronSet:
    """`neurons` (a `NeuronSet` or (layer, neuron) pairs) as a non-empty set of this model shape."""
    n_layers, d_mlp = model_shape
    if isinstance(neurons, NeuronSet):
        if neurons.shape != model_shape:
            name = f" {neurons.label!r}" if neurons.label else ""
            raise InputError(
                f"neuron set{name} is of a {neurons.shape[0]}x{neurons.shape[1]} model; "
                f"this model is {n_layers}x{d_mlp}"
            )
        chosen = neurons
    else:
        pairs = list(neurons)
        bad = [p for p in pairs if not (isinstance(p, (tuple, list)) and len(p) == 2)]
        if bad:
            raise InputError(f"neurons are (layer, neuron) pairs; got {bad[0]!r}")
        for layer, neuron in pairs:
            if not 0 <= int(layer) < n_layers or not 0 <= int(neuron) < d_mlp:
                raise InputError(
                    f"neuron ({layer}, {neuron}) out of range: layers 0..{n_layers - 1}, "
                    f"neurons 0..{d_mlp - 1}"
                )
        chosen = NeuronSet.from_indices([(int(a), int(b)) for a, b in pairs], shape=model_shape)
    if len(chosen) == 0:
        raise InputError("the neuron set to intervene on is empty")
    return chosen


def _finite(name: str, array: np.ndarray) -> np.ndarray:
    if not np.isfinite(array).all():
        raise InputError(f"{name} holds NaN or infinite values")
    return array


def per_member(
    name: str, given: Any, neurons: NeuronSet, model_shape: tuple[int, int]
) -> Float[np.ndarray, " member"]:
    """`given` (a scalar, one value per member in `to_list()` order, or a [n_layers, d_mlp] array)
    as one float per member of `neurons`."""
    array = np.asarray(given.detach().cpu() if isinstance(given, Tensor) else given, dtype=np.float64)
    members = neurons.to_indices()
    if array.ndim == 0:
        array = np.full(len(members), float(array))
    elif array.shape == model_shape:
        array = array[members[:, 0], members[:, 1]]
    elif array.shape != (len(members),):
        raise InputError(
            f"{name} has shape {array.shape}; give a number, one value per neuron ({len(members)}) "
            f"or a [n_layers, d_mlp] array {model_shape}"
        )
    return _finite(name, array)


@dataclass(frozen=True)
class LayerEdit:
    """What the intervention does to one layer: channels `index` of hook_post."""

    layer: int
    index: Int[Tensor, " k"]
    values: Float[Tensor, " k"] | None  # target activation (mean, value), shift (add), factor (scale)


@dataclass(frozen=True)
class Intervention:
    """A checked intervention: the set, the kind and one number per member (or none for zero)."""

    neurons: NeuronSet
    kind: str
    values: Float[np.ndarray, " member"] | None

    @classmethod
    def build(
        cls,
        model_shape: tuple[int, int],
        neurons: NeuronSet | Iterable[tuple[int, int]],
        kind: str = "zero",
        *,
        values: Any = None,
        factor: Any = None,
    ) -> Intervention:
        """Check everything (one-line `InputError`s) before any hook is attached."""
        if kind not in KINDS:
            raise InputError(f"unknown intervention kind {kind!r}; choose one of {', '.join(KINDS)}")
        chosen = as_neuron_set(model_shape, neurons)
        if kind == "zero":
            if values is not None or factor is not None:
                raise InputError("a 'zero' intervention takes neither values nor a factor")
            return cls(chosen, kind, None)
        if kind == "scale":
            if factor is None or values is not None:
                raise InputError("a 'scale' intervention takes a factor (and no values)")
            return cls(chosen, kind, per_member("factor", factor, chosen, model_shape))
        if values is None or factor is not None:
            raise InputError(f"a {kind!r} intervention takes values (and no factor)")
        return cls(chosen, kind, per_member("values", values, chosen, model_shape))

    def layer_edits(self, device: torch.device | str = "cpu") -> list[LayerEdit]:
        members = self.neurons.to_indices()
        edits = []
        for layer in np.unique(members[:, 0]):
            rows = members[:, 0] == layer
            index = torch.as_tensor(members[rows, 1], dtype=torch.long, device=device)
            values = None if self.values is None else torch.as_tensor(self.values[rows], device=device)
            edits.append(LayerEdit(int(layer), index, values))
        return edits

    def describe(self) -> str:
        n_layers = int((self.neurons.per_layer_counts() > 0).sum())
        return f"{self.kind} on {len(self.neurons)} neurons in {n_layers} layers"


def edited_post(kind: str, post: Tensor, up: Tensor | None, edit: LayerEdit) -> Tensor:
    """hook_post with the edit's channels rewritten (a new tensor; `post` is left alone)."""
    index = edit.index
    if kind == "zero":
        return post.index_fill(-1, index, 0.0)
    values = edit.values.to(post.dtype)
    if kind == "scale":
        new = post.index_select(-1, index) * values
    else:
        up_k = up.index_select(-1, index) if up is not None else torch.ones((), dtype=post.dtype)
        new = values * up_k
        if kind == "add":
            new = post.index_select(-1, index) + new
    return post.index_copy(-1, index, new)


def hook_points(model: NeuronModel, layer: int) -> tuple[Any, Any | None]:
    """The `hook_post` and (gated MLPs) `hook_pre_linear` hook points of `layer`."""
    points = model.backend.hook_dict
    post = points.get(f"blocks.{layer}.mlp.hook_post")
    if post is None:
        raise InputError(f"{model.name} has no blocks.{layer}.mlp.hook_post to intervene at")
    return post, points.get(f"blocks.{layer}.mlp.hook_pre_linear")


@contextmanager
def attached(model: NeuronModel, intervention: Intervention) -> Iterator[None]:
    """Attach the intervention's hooks for the block; removed however it ends."""
    handles = []
    try:
        for edit in intervention.layer_edits(model.device):
            post_point, up_point = hook_points(model, edit.layer)
            seen: dict[str, Tensor] = {}
            if up_point is not None and intervention.kind in VALUE_KINDS:

                def keep_up(module, inputs, output, seen=seen):
                    seen["up"] = output

                handles.append(up_point.register_forward_hook(keep_up))

            def rewrite(module, inputs, output, seen=seen, edit=edit):
                return edited_post(intervention.kind, output, seen.pop("up", None), edit)

            handles.append(post_point.register_forward_hook(rewrite))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def intervene(
    model: NeuronModel,
    neurons: NeuronSet | Sequence[tuple[int, int]],
    kind: str = "zero",
    *,
    values: Any = None,
    factor: Any = None,
) -> Iterator[Intervention]:
    """Intervene on `neurons` in every forward of `model` inside the block (module docstring).

    Args:
        model: a `NeuronModel` (TransformerLens 4 `TransformerBridge` or 3.x `HookedTransformer`).
        neurons: a `NeuronSet` of this model's shape, or (layer, neuron) pairs; not empty.
        kind: "zero", "mean", "value", "scale" or "add".
        values: for mean / value (the activation to fix) and add (the shift): a number, one value
            per neuron in `NeuronSet.to_list()` order, or a [n_layers, d_mlp] array (e.g. a
            corpus's `mean_activation()`, see `stored_statistic`).
        factor: for scale: a number or one per neuron.

    Yields:
        The checked `Intervention`. Bad input is an `InputError` before any hook is attached.

    >>> from neuronoverlap.models import load_model
    >>> model = load_model("tiny-llama")
    >>> batch = model.encode(["The capital of France is"])
    >>> with intervene(model, [(1, 3), (1, 7)], "zero") as done:
    ...     logits, _ = model.step(batch.input_ids, batch.attention_mask, batch.position_ids)
    >>> done.describe()
    'zero on 2 neurons in 1 layers'
    """
    intervention = Intervention.build(
        (model.n_layers, model.d_mlp), neurons, kind, values=values, factor=factor
    )
    with attached(model, intervention):
        yield intervention
