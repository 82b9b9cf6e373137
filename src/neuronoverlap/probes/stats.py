"""Streaming activation statistics, reduced inside the hooks (no activation cache is kept).

Shaped like baukit's running statistics: create, feed batches through `consume` (the
`ActivationConsumer` protocol of `neuronoverlap.models`), read the numbers out. A neuron fires on
a token when its activation `act_fn(gate)` is > 0; positions outside the count mask (padding,
positions already counted) never count.
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from neuronoverlap.probes.topk import TopActivations, left_padding


class ProbeBatchStats:
    """Per-sample sums for one batch of probes: value sum and fire count per (layer, neuron);
    with `top_k`, the batch's top-k samples per neuron (`top`, ended by the recorder)."""

    def __init__(self, batch_size: int, n_layers: int, d_mlp: int, device="cpu", top_k: int | None = None):
        self.value_sum = torch.zeros(batch_size, n_layers, d_mlp, dtype=torch.float64, device=device)
        self.fire_count = torch.zeros(batch_size, n_layers, d_mlp, dtype=torch.float32, device=device)
        self.tokens = torch.zeros(batch_size, dtype=torch.long, device=device)
        self.top = None if top_k is None else TopActivations(n_layers, d_mlp, min(top_k, batch_size))

    def consume(
        self,
        layer: int,
        activation: Float[Tensor, "batch pos neuron"],
        count_mask: Bool[Tensor, "batch pos"],
    ) -> None:
        weight = count_mask.to(activation.dtype)
        self.value_sum[:, layer] += torch.einsum("bpn,bp->bn", activation, weight).double()
        self.fire_count[:, layer] += torch.einsum(
            "bpn,bp->bn", (activation > 0).to(activation.dtype), weight
        ).float()
        if layer == 0:
            self.tokens += count_mask.sum(-1)
        if self.top is not None:
            self.top.consume(layer, activation, count_mask)

    def result(
        self,
    ) -> tuple[
        Float[np.ndarray, "sample layer neuron"],
        Float[np.ndarray, "sample layer neuron"],
        Int[np.ndarray, " sample"],
    ]:
        """(mean activation, activation probability, token count) per sample, as float32/int32."""
        tokens = self.tokens.clamp(min=1).double()[:, None, None]
        mean = (self.value_sum / tokens).float().cpu().numpy()
        prob = (self.fire_count.double() / tokens).float().cpu().numpy()
        return mean, prob, self.tokens.to(torch.int32).cpu().numpy()


class CorpusStats:
    """Language-level totals over a corpus: fire counts, value sums and the token count; with
    `top_k`, each neuron's top-k sentences too (`probes.topk.TopActivations`)."""

    def __init__(self, n_layers: int, d_mlp: int, top_k: int | None = None):
        self.fire_count = np.zeros((n_layers, d_mlp), dtype=np.int64)
        self.value_sum = np.zeros((n_layers, d_mlp), dtype=np.float64)
        self.n_tokens = 0
        self.n_sentences = 0
        self._batch_fire: Tensor | None = None
        self._batch_value: Tensor | None = None
        self.top = None if top_k is None else TopActivations(n_layers, d_mlp, top_k)
        self._padding: Tensor | None = None

    def consume(
        self,
        layer: int,
        activation: Float[Tensor, "batch pos neuron"],
        count_mask: Bool[Tensor, "batch pos"],
    ) -> None:
        if self._batch_fire is None:
            shape = (self.fire_count.shape[0], activation.shape[-1])
            self._batch_fire = torch.zeros(shape, dtype=torch.long, device=activation.device)
            self._batch_value = torch.zeros(shape, dtype=torch.float64, device=activation.device)
        mask = count_mask[..., None]
        self._batch_fire[layer] += ((activation > 0) & mask).sum(dim=(0, 1))
        self._batch_value[layer] += (activation * mask).double().sum(dim=(0, 1))
        if layer == 0:
            self.n_tokens += int(count_mask.sum())
            self._padding = left_padding(count_mask)
        if self.top is not None:
            self.top.consume(layer, activation, count_mask)

    def end_batch(self, n_sentences: int) -> None:
        """Fold the batch's device-side sums into the totals (call after each forward)."""
        if self._batch_fire is not None:
            self.fire_count += self._batch_fire.cpu().numpy()
            self.value_sum += self._batch_value.cpu().numpy()
            self._batch_fire = self._batch_value = None
        if self.top is not None:
            self.top.end_batch(self._padding)
        self.n_sentences += n_sentences

    def state_dict(self) -> dict[str, np.ndarray]:
        state = {
            "fire_count": self.fire_count.copy(),
            "value_sum": self.value_sum.copy(),
            "n_tokens": np.int64(self.n_tokens),
            "n_sentences": np.int64(self.n_sentences),
        }
        return {**state, **(self.top.state_dict() if self.top is not None else {})}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.fire_count = np.array(state["fire_count"], dtype=np.int64)
        self.value_sum = np.array(state["value_sum"], dtype=np.float64)
        self.n_tokens = int(state["n_tokens"])
        self.n_sentences = int(state["n_sentences"])
        if self.top is not None:
            self.top.load_state_dict(state, seen=self.n_sentences)
