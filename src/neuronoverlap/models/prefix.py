"""Prefix reuse: the keys and values of the tokens every prompt of a call begins with, computed
once and reused for every prompt, so that only each prompt's suffix is prefilled.

The shared prefix is found on tokens, not text: it is the longest run of token ids that every
prompt's own tokenisation begins with (`common_prefix_ids`), less at least one token per prompt.
So a prompt's tokens are always the prefix's tokens followed by its suffix's, exactly: where a
text boundary would merge into one token (the last example line's "\\n" with what follows, a word
split by the shared text), the split simply falls one token earlier, where the tokeniser agrees.
A causal model's keys and values of the first P tokens depend only on those tokens and their
positions 0..P-1, so reusing them is exact up to floating-point summation order.

A batch then reads as [prefix keys/values][left-padded suffixes]: the attention mask is ones over
the prefix, the suffixes' own mask after it (padding sits between prefix and suffix, masked out),
and each suffix token's position is P + its index among its row's real suffix tokens, the
position it has in the whole prompt.

Only where the model's load-time KV-cache self-check passed (`NeuronModel.kv_cache_ok`); elsewhere
(a failed check, TransformerLens 3.x without an HF cache) `prefix_usable` says no, once with a
note on stderr, and callers take the uncached path. Prefills are kept per model (a few, most
recent first), so later calls with the same prefix reuse them.
"""

from __future__ import annotations

import copy
import sys
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from neuronoverlap.errors import InputError
from neuronoverlap.models.interface import NeuronModel, positions_of

#: Fewer shared tokens than this (BOS alone, say) are not worth a cache.
MIN_PREFIX_TOKENS = 2
#: Prefills kept per model.
KEPT_PREFIXES = 8

_kept: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_noted: weakref.WeakSet = weakref.WeakSet()


@dataclass
class SharedPrefix:
    """The token ids of a shared prefix and the model's KV cache of them (batch 1)."""

    ids: tuple[int, ...]
    past: Any

    @property
    def n_tokens(self) -> int:
        return len(self.ids)

    def expanded(self, n: int) -> Any:
        """A fresh copy of the cache repeated for `n` rows (the steps that follow extend it)."""
        past = copy.deepcopy(self.past)
        if n > 1:
            past.batch_repeat_interleave(n)
        return past


def prefix_usable(model: NeuronModel) -> bool:
    """Whether prefix reuse is exact on this model (its KV cache passed the self-check); the
    first 'no' for a model is said once on stderr."""
    ok = bool(getattr(model, "supports_kv_cache", False) and getattr(model, "kv_cache_ok", False))
    if not ok and hasattr(model, "kv_cache_status") and model not in _noted:
        _noted.add(model)
        print(
            f"neuronoverlap: note: prefix reuse off for {model.name} ({model.kv_cache_status}); "
            "every prompt is read whole",
            file=sys.stderr,
            flush=True,
        )
    return ok


def token_ids(model: NeuronModel, prompts: Sequence[str]) -> list[list[int]]:
    """Each prompt's token ids as `model.encode` makes them (special tokens included, no padding)."""
    return [list(ids) for ids in model.tokenizer(list(prompts))["input_ids"]]


def common_prefix_ids(sequences: Sequence[Sequence[int]]) -> list[int]:
    """The longest run of ids every sequence begins with, leaving each at least one id."""
    if not sequences:
        return []
    limit = min(len(s) for s in sequences) - 1
    first = sequences[0]
    n = 0
    while n < limit and all(s[n] == first[n] for s in sequences):
        n += 1
    return list(first[:n])


def shared_prefix(model: NeuronModel, ids: Sequence[int]) -> SharedPrefix:
    """The prefill of `ids` (one forward, batch 1), or the kept one of an earlier call."""
    key = tuple(int(i) for i in ids)
    if not key:
        raise InputError("an empty prefix has nothing to reuse")
    kept = _kept.setdefault(model, OrderedDict())
    if key in kept:
        kept.move_to_end(key)
        return kept[key]
    input_ids = torch.tensor([key], dtype=torch.long, device=model.device)
    attention = torch.ones_like(input_ids)
    _, past = model.step(input_ids, attention, positions_of(attention), use_cache=True)
    kept[key] = SharedPrefix(key, past)
    while len(kept) > KEPT_PREFIXES:
        kept.popitem(last=False)
    return kept[key]


def find_prefix(model: NeuronModel, ids: Sequence[Sequence[int]]) -> SharedPrefix | None:
    """The shared prefix of these token sequences, prefilled, or None when too short to help."""
    common = common_prefix_ids(ids)
    return shared_prefix(model, common) if len(common) >= MIN_PREFIX_TOKENS else None


@dataclass
class SuffixBatch:
    """Left-padded suffixes after a shared prefix: ids [batch, suffix]; `attention` covers the
    prefix and the suffixes [batch, prefix + suffix]; `positions` are the suffix tokens' places
    in the whole prompt [batch, suffix]."""

    input_ids: Int[Tensor, "batch suffix"]
    attention: Int[Tensor, "batch total"]
    positions: Int[Tensor, "batch suffix"]


def suffix_batch(model: NeuronModel, prefix: SharedPrefix, ids: Sequence[Sequence[int]]) -> SuffixBatch:
    """The suffixes of token sequences that begin with `prefix`, left padded."""
    p = prefix.n_tokens
    suffixes = []
    for seq in ids:
        if tuple(seq[:p]) != prefix.ids or len(seq) <= p:
            raise InputError("a prompt does not begin with the shared prefix's tokens")
        suffixes.append(list(seq[p:]))
    width = max(len(s) for s in suffixes)
    pad = model.tokenizer.pad_token_id
    input_ids = torch.full((len(suffixes), width), pad, dtype=torch.long)
    mask = torch.zeros((len(suffixes), width), dtype=torch.long)
    for row, s in enumerate(suffixes):
        input_ids[row, width - len(s) :] = torch.tensor(s, dtype=torch.long)
        mask[row, width - len(s) :] = 1
    attention = torch.cat([torch.ones((len(suffixes), p), dtype=torch.long), mask], dim=1)
    device = model.device
    return SuffixBatch(input_ids.to(device), attention.to(device), (p + positions_of(mask)).to(device))
