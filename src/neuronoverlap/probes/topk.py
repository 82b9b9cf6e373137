"""Top-activating contexts, kept while streaming: per neuron, the k samples (FLORES sentences or
probe samples) with the largest activation, where it occurred and its value.

A sample's activation of a neuron is its maximum of `act_fn(gate)` over the sample's counted
tokens, at the first position that reaches it; a sample without counted tokens has none. The k
largest are kept in the order (value descending, sample index ascending): an exact rule, so
the top-k of a union of parts is the top-k of the parts' top-ks, whatever the split (batches,
resumed runs, shards, `merge`). Fewer than k samples leave empty slots: value -inf, sample and
position -1.

Like the other statistics, it is reduced inside the hooks: per layer one masked max over
positions on the device, and per batch one stable sort of [layer, neuron, k + batch]
candidates. No per-token activation leaves the hook.
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from neuronoverlap.errors import InputError
from neuronoverlap.options import DEFAULT_TOP_K
from neuronoverlap.store.contexts import FIELDS, empty_top, merge_top

__all__ = ["DEFAULT_TOP_K", "TopActivations", "empty_top", "merge_top", "token_spans"]


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"--top-k must be at least 1, got {k}")
    return int(k)


class TopActivations:
    """An `ActivationConsumer` keeping each neuron's top-k samples (see the module docstring).

    Feed one forward's layers through `consume`, then call `end_batch(first, offsets)`: the
    batch's samples are numbered `first`, `first + 1`, ... and each row's positions counted
    from its first real token (`offsets`: the left padding of each row).
    """

    def __init__(self, n_layers: int, d_mlp: int, k: int = DEFAULT_TOP_K):
        self.k = check_k(k)
        self.n_layers, self.d_mlp = n_layers, d_mlp
        self._top: dict[str, Tensor] | None = None  # on the activations' device
        self._loaded = empty_top(n_layers, d_mlp, self.k)
        self._batch_value: list[Tensor | None] = [None] * n_layers
        self._batch_position: list[Tensor | None] = [None] * n_layers

    def consume(
        self,
        layer: int,
        activation: Float[Tensor, "batch pos neuron"],
        count_mask: Bool[Tensor, "batch pos"],
    ) -> None:
        masked = activation.masked_fill(~count_mask[..., None], -torch.inf)
        value, position = masked.max(dim=1)  # the first position of the maximum
        self._batch_value[layer] = value.float()
        self._batch_position[layer] = position.int()

    def end_batch(self, first: int, offsets: Int[Tensor, " batch"] | None = None) -> None:
        """Merge the batch's candidates into the top-k (`offsets` None: no left padding)."""
        if self._batch_value[0] is None:
            return
        value = torch.stack(self._batch_value).transpose(1, 2)  # [layer, neuron, batch]
        position = torch.stack(self._batch_position).transpose(1, 2)
        device, n = value.device, value.shape[-1]
        if offsets is not None:
            position = position - offsets.to(device=device, dtype=torch.int32)
        sample = (first + torch.arange(n, device=device, dtype=torch.int32)).expand_as(position)
        top = self._device_top(device)
        # Running entries are in (value desc, sample asc) order and all precede this batch's
        # samples, so a stable sort by value alone keeps ties in sample order: the exact rule.
        values = torch.cat([top["value"], value], dim=-1)
        order = torch.sort(values, dim=-1, descending=True, stable=True).indices[..., : self.k]
        top["value"] = values.gather(-1, order)
        top["sample"] = torch.cat([top["sample"], sample], dim=-1).gather(-1, order)
        top["position"] = torch.cat([top["position"], position], dim=-1).gather(-1, order)
        empty = top["value"] == -torch.inf
        top["sample"] = top["sample"].masked_fill(empty, -1)
        top["position"] = top["position"].masked_fill(empty, -1)
        self._batch_value = [None] * self.n_layers
        self._batch_position = [None] * self.n_layers

    def _device_top(self, device) -> dict[str, Tensor]:
        if self._top is None:
            self._top = {name: torch.from_numpy(self._loaded[name]).to(device) for name in FIELDS}
        return self._top

    def result(self) -> dict[str, np.ndarray]:
        """value float32, sample int32, position int32, each [layer, neuron, k]."""
        if self._top is None:
            return {name: array.copy() for name, array in self._loaded.items()}
        return {name: self._top[name].cpu().numpy().copy() for name in FIELDS}

    def state_dict(self) -> dict[str, np.ndarray]:
        return {f"top_{name}": array for name, array in self.result().items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        loaded = {name: np.asarray(state[f"top_{name}"]) for name in FIELDS}
        if loaded["value"].shape != (self.n_layers, self.d_mlp, self.k):
            raise InputError(f"a saved top-k of shape {loaded['value'].shape} does not fit k = {self.k}")
        self._loaded = {
            "value": loaded["value"].astype(np.float32),
            "sample": loaded["sample"].astype(np.int32),
            "position": loaded["position"].astype(np.int32),
        }
        self._top = None


def left_padding(count_mask: Bool[Tensor, "batch pos"]) -> Int[Tensor, " batch"]:
    """Each row's left padding when every real token is counted (a corpus forward)."""
    return count_mask.shape[1] - count_mask.sum(-1)


def token_spans(tokenizer, texts: list[str]) -> dict[str, np.ndarray]:
    """Each text's tokens as character spans [start, end) into the text (special tokens: an
    empty span), as the model's tokenizer splits it: `token_spans` [token, 2] int32, texts one
    after another, and `text_tokens` [text] int32. With them a context is read back from the
    text alone (docs/store.md)."""
    encoded = tokenizer(list(texts), return_offsets_mapping=True)
    spans = [np.asarray(offsets, dtype=np.int32).reshape(-1, 2) for offsets in encoded["offset_mapping"]]
    return {
        "token_spans": np.concatenate(spans) if spans else np.zeros((0, 2), np.int32),
        "text_tokens": np.array([len(s) for s in spans], dtype=np.int32),
    }
