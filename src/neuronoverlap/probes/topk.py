"""Top-activating contexts, kept while streaming: per neuron, the k samples (FLORES sentences or
probe samples) with the largest activation, where it occurred and its value.

A sample's activation of a neuron is its maximum of `act_fn(gate)` over the sample's counted
tokens, at the first position that reaches it; a sample without counted tokens has none. The k
largest are kept in the order (value descending, sample index ascending): an exact rule, so
the top-k of a union of parts is the top-k of the parts' top-ks, whatever the split (batches,
resumed runs, shards, `merge`). Fewer than k samples leave empty slots: value -inf, sample and
position -1.

Like the other statistics, it is reduced inside the hooks, on the activations' device: per layer
each sample's maximum over its counted positions, one stable sort of [neuron, k + batch]
candidates, and the position of the entries new to the top-k only (one gather of their rows).
No per-token activation leaves the hook.
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

    Feed each forward's layers through `consume`, then call `end_batch(offsets)`: samples are
    numbered in the order they arrive, from `first`, and each position is counted from its row's
    first real token (`offsets`: each row's left padding; None: none).
    """

    def __init__(self, n_layers: int, d_mlp: int, k: int = DEFAULT_TOP_K, first: int = 0):
        self.k = check_k(k)
        self.n_layers, self.d_mlp = n_layers, d_mlp
        self.seen = first  # the number of the current batch's first sample
        self._top: dict[str, Tensor] | None = None  # on the activations' device
        self._loaded = empty_top(n_layers, d_mlp, self.k)
        self._rows: list[int] | None = None  # each row's left padding, when only it is masked
        self._batch = 0

    def consume(
        self,
        layer: int,
        activation: Float[Tensor, "batch pos neuron"],
        count_mask: Bool[Tensor, "batch pos"],
    ) -> None:
        """Merge this layer's per-sample maxima into its top-k; find the position of each new
        entry only (one gather of its rows), not of every (sample, neuron)."""
        if layer == 0 or self._rows is None:
            self._batch, self._rows = activation.shape[0], _left_aligned(count_mask)
        top, k = self._device_top(activation.device), self.k
        maxima = _row_maxima(activation, count_mask, self._rows)  # [batch, neuron]
        values = torch.cat([top["value"][layer], maxima.float().T], dim=1)
        # Running entries are in (value desc, sample asc) order and all precede this batch's
        # samples, so a stable sort by value alone keeps ties in sample order: the exact rule.
        order = torch.sort(values, dim=-1, descending=True, stable=True).indices[:, :k]
        value = values.gather(1, order)
        new = order >= k
        kept = order.clamp(max=k - 1)
        sample = torch.where(new, self.seen + order - k, top["sample"][layer].gather(1, kept))
        position = top["position"][layer].gather(1, kept)
        neuron, slot = (new & (value > -torch.inf)).nonzero(as_tuple=True)
        if neuron.numel():
            row = order[neuron, slot] - k
            position[neuron, slot] = _first_positions(activation, count_mask, self._rows, row, neuron)
        empty = value == -torch.inf
        top["value"][layer] = value
        top["sample"][layer] = sample.int().masked_fill(empty, -1)
        top["position"][layer] = position.masked_fill(empty, -1)

    def end_batch(self, offsets: Int[Tensor, " batch"] | None = None) -> None:
        """Count this batch's positions from each row's first real token; the next batch's
        samples are numbered after this one's."""
        if self._top is not None and offsets is not None:
            batch = (self._top["sample"] >= self.seen) & (self._top["sample"] >= 0)
            row = (self._top["sample"] - self.seen).clamp(min=0, max=len(offsets) - 1).long()
            shift = offsets.to(self._top["position"].device, torch.int32)[row]
            self._top["position"] = torch.where(batch, self._top["position"] - shift, self._top["position"])
        self.seen += self._batch
        self._batch, self._rows = 0, None

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

    def load_state_dict(self, state: dict[str, np.ndarray], seen: int) -> None:
        """Resume from a saved top-k of the first `seen` samples."""
        loaded = {name: np.asarray(state[f"top_{name}"]) for name in FIELDS}
        if loaded["value"].shape != (self.n_layers, self.d_mlp, self.k):
            raise InputError(f"a saved top-k of shape {loaded['value'].shape} does not fit k = {self.k}")
        self._loaded = {
            "value": loaded["value"].astype(np.float32),
            "sample": loaded["sample"].astype(np.int32),
            "position": loaded["position"].astype(np.int32),
        }
        self._top, self.seen = None, seen


def _left_aligned(count_mask: Bool[Tensor, "batch pos"]) -> list[int] | None:
    """Each row's left padding when the mask counts every position after it (a corpus forward,
    the probes' 'all' rule), else None."""
    width = count_mask.shape[1]
    padding = width - count_mask.sum(-1)
    aligned = torch.arange(width, device=count_mask.device)[None, :] >= padding[:, None]
    return padding.tolist() if bool((aligned == count_mask).all()) else None


def _first_positions(
    activation: Float[Tensor, "batch pos neuron"],
    count_mask: Bool[Tensor, "batch pos"],
    rows: list[int] | None,
    row: Int[Tensor, " entry"],
    neuron: Int[Tensor, " entry"],
) -> Int[Tensor, " entry"]:
    """For each entry (row, neuron) the first counted position of the row's maximum: one
    `index_select` of the entries' neurons per row and a max over positions (torch returns the
    first of equal maxima); cheaper than a gather of scattered rows."""
    found = torch.empty_like(row, dtype=torch.int32)
    by_row = torch.argsort(row, stable=True)
    start = 0
    for b, count in enumerate(torch.bincount(row, minlength=activation.shape[0]).tolist()):
        if count:
            pick = by_row[start : start + count]
            pad = 0 if rows is None else rows[b]
            block = activation[b, pad:].index_select(1, neuron[pick])  # [pos, entry]
            if rows is None:
                block = block.masked_fill(~count_mask[b][:, None], -torch.inf)
            found[pick] = block.max(dim=0).indices.int() + pad
        start += count
    return found


def _row_maxima(
    activation: Float[Tensor, "batch pos neuron"],
    count_mask: Bool[Tensor, "batch pos"],
    rows: list[int] | None,
) -> Float[Tensor, "batch neuron"]:
    """Each sample's largest activation over its counted positions (-inf: none counted). Rows
    masked on the left only are reduced over their real positions alone (no masked copy)."""
    if rows is None:
        return activation.masked_fill(~count_mask[..., None], -torch.inf).amax(dim=1)
    empty = torch.full(activation.shape[2:], -torch.inf, dtype=activation.dtype, device=activation.device)
    width = activation.shape[1]
    return torch.stack(
        [activation[b, pad:].amax(dim=0) if pad < width else empty for b, pad in enumerate(rows)]
    )


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
