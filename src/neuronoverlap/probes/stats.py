"""Streaming activation statistics, reduced inside the hooks (no activation cache is kept).

Shaped like baukit's running statistics, one protocol for all of them (`StreamingStatistic`):
create, feed each forward pass through `consume` (the `ActivationConsumer` protocol of
`neuronoverlap.models`), close it with `end_batch`, read the numbers out with `result`; a half-done
tally is saved and resumed with `state_dict` / `load_state_dict`. A neuron fires on a token when its
activation `act_fn(gate)` is > 0; positions outside the count mask (padding, positions already
counted) never count. Fire counts are integers from the hook to the store.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from jaxtyping import Bool, Float, Int, UInt
from torch import Tensor

from neuronoverlap.errors import InputError
from neuronoverlap.probes.topk import TopActivations, left_padding
from neuronoverlap.store.counts import FIRES_DTYPE


@runtime_checkable
class StreamingStatistic(Protocol):
    """A statistic reduced inside the hooks, batch by batch (module docstring)."""

    def consume(
        self, layer: int, activation: Float[Tensor, "batch pos neuron"], count_mask: Bool[Tensor, "batch pos"]
    ) -> None: ...

    def end_batch(self, n_inputs: int) -> None: ...

    def result(self) -> Any: ...

    def state_dict(self) -> dict[str, np.ndarray]: ...

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None: ...


class ProbeBatchStats:
    """Per-sample sums for one batch of probes: value sum and (integer) fire count per (layer,
    neuron); with `top_k`, the batch's top-k samples per neuron (`top`, ended by the recorder).
    Generation feeds it one forward pass per token; the batch is its whole life, so `end_batch`
    has nothing to fold."""

    def __init__(self, batch_size: int, n_layers: int, d_mlp: int, device="cpu", top_k: int | None = None):
        self.value_sum = torch.zeros(batch_size, n_layers, d_mlp, dtype=torch.float64, device=device)
        self.fire_count = torch.zeros(batch_size, n_layers, d_mlp, dtype=torch.int32, device=device)
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
        self.fire_count[:, layer] += ((activation > 0) & count_mask[..., None]).sum(dim=1, dtype=torch.int32)
        if layer == 0:
            self.tokens += count_mask.sum(-1)
        if self.top is not None:
            self.top.consume(layer, activation, count_mask)

    def end_batch(self, n_inputs: int) -> None:
        """Nothing to fold: the object holds one batch."""

    def fires(self) -> UInt[np.ndarray, "sample layer neuron"]:
        """The fire counts, as the store keeps them (`store.counts.FIRES_DTYPE`)."""
        if self.tokens.numel() and int(self.tokens.max()) > np.iinfo(FIRES_DTYPE).max:
            raise InputError(f"a probe sample counts {int(self.tokens.max())} tokens, more than uint16 holds")
        return self.fire_count.cpu().numpy().astype(FIRES_DTYPE)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {
            "value_sum": self.value_sum.cpu().numpy().copy(),
            "fire_count": self.fire_count.cpu().numpy().copy(),
            "tokens": self.tokens.cpu().numpy().copy(),
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        device = self.value_sum.device
        self.value_sum = torch.as_tensor(np.asarray(state["value_sum"], np.float64), device=device)
        self.fire_count = torch.as_tensor(np.asarray(state["fire_count"], np.int32), device=device)
        self.tokens = torch.as_tensor(np.asarray(state["tokens"], np.int64), device=device)

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
        prob = (self.fire_count.double() / tokens).float().cpu().numpy()  # = store.counts.probability
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

    def result(self) -> tuple[Float[np.ndarray, "layer neuron"], Float[np.ndarray, "layer neuron"], int]:
        """(activation probability, mean activation, token count) of the language so far."""
        tokens = max(self.n_tokens, 1)
        return self.fire_count / tokens, self.value_sum / tokens, self.n_tokens

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
