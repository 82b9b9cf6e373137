"""Teacher-forced scores of texts: token NLL of sentences (perplexity) and of continuations
(a gold answer after a prompt), one number per item, differentiable when grad is on.

An item is a token sequence and the mask of the positions whose token is scored (predicted
from the tokens before it). Perplexity items score every token after the first of a FLORES
sentence (the tokenizer's BOS, where it adds one, is the first); continuation items score the
continuation's tokens, encoded on their own after the prompt's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from neuronoverlap.errors import InputError
from neuronoverlap.models.interface import NeuronModel, positions_of

REDUCTIONS = ("mean", "sum")


@dataclass(frozen=True)
class ScoredTexts:
    """Token sequences and the tokens that count; `reduce`: "mean" (token NLL, perplexity's
    log) or "sum" (a continuation's negative log-probability)."""

    sequences: tuple[tuple[int, ...], ...]
    scored: tuple[tuple[bool, ...], ...]
    reduce: str = "mean"

    def __post_init__(self):
        if not self.sequences:
            raise InputError("no texts to score")
        if self.reduce not in REDUCTIONS:
            raise InputError(f"unknown reduction {self.reduce!r}; choose one of {', '.join(REDUCTIONS)}")
        for seq, mask in zip(self.sequences, self.scored, strict=True):
            if len(seq) != len(mask) or not any(mask[1:]) or mask[0]:
                raise InputError("a scored text needs an unscored first token and a scored token")

    def __len__(self) -> int:
        return len(self.sequences)

    def batches(
        self, batch_size: int, device
    ) -> Iterator[tuple[Int[Tensor, "b pos"], Int[Tensor, "b pos"], Bool[Tensor, "b pos"]]]:
        """Left-padded (input_ids, attention_mask, scored) batches in item order."""
        if batch_size < 1:
            raise InputError(f"batch size must be at least 1, got {batch_size}")
        for start in range(0, len(self), batch_size):
            seqs = self.sequences[start : start + batch_size]
            masks = self.scored[start : start + batch_size]
            width = max(len(s) for s in seqs)
            ids = torch.zeros((len(seqs), width), dtype=torch.long)
            attention = torch.zeros_like(ids)
            scored = torch.zeros((len(seqs), width), dtype=torch.bool)
            for i, (seq, mask) in enumerate(zip(seqs, masks, strict=True)):
                ids[i, width - len(seq) :] = torch.tensor(seq)
                attention[i, width - len(seq) :] = 1
                scored[i, width - len(seq) :] = torch.tensor(mask)
            yield ids.to(device), attention.to(device), scored.to(device)


def sentence_texts(model: NeuronModel, sentences: Sequence[str], *, max_tokens: int = 128) -> ScoredTexts:
    """Perplexity items: every token after the first, the first `max_tokens` tokens of each."""
    if not sentences:
        raise InputError("no sentences to score")
    encoded = model.tokenizer(list(sentences))["input_ids"]
    sequences = tuple(tuple(ids[:max_tokens]) for ids in encoded)
    if any(len(s) < 2 for s in sequences):
        raise InputError("a sentence to score needs at least two tokens")
    return ScoredTexts(sequences, tuple((False,) + (True,) * (len(s) - 1) for s in sequences), "mean")


def continuation_texts(
    model: NeuronModel, prompts: Sequence[str], continuations: Sequence[str]
) -> ScoredTexts:
    """Items scoring each continuation's tokens (summed NLL) after its prompt."""
    if len(prompts) != len(continuations) or not prompts:
        raise InputError(f"{len(prompts)} prompts for {len(continuations)} continuations")
    heads = model.tokenizer(list(prompts))["input_ids"]
    tails = model.tokenizer(list(continuations), add_special_tokens=False)["input_ids"]
    if any(not t for t in tails):
        raise InputError("an empty continuation cannot be scored")
    sequences = tuple(tuple(h) + tuple(t) for h, t in zip(heads, tails, strict=True))
    scored = tuple((False,) * len(h) + (True,) * len(t) for h, t in zip(heads, tails, strict=True))
    return ScoredTexts(sequences, scored, "sum")


def forward_logits(
    model: NeuronModel,
    input_ids: Int[Tensor, "b pos"],
    attention_mask: Int[Tensor, "b pos"],
    keep: int | None = None,
) -> Float[Tensor, "b kept vocab"]:
    """Logits of a left-padded batch, no cache (grad as the caller has it): at every position,
    or at the last `keep` (`NeuronModel.logits`; the unembedding of a 262k vocabulary at every
    position of a long prompt is most of a forward, and a continuation needs only its own)."""
    return model.logits(input_ids, attention_mask, positions_of(attention_mask), keep)


def kept_positions(scored: Bool[Tensor, "b pos"]) -> int:
    """The trailing positions whose logits a batch's scores read: from the one before its
    earliest scored token to the end (a continuation's few; a sentence's all)."""
    first = int(scored.any(0).nonzero()[0, 0])
    return scored.shape[1] - first + 1


def batch_nll(
    model: NeuronModel,
    input_ids: Int[Tensor, "b pos"],
    attention_mask: Int[Tensor, "b pos"],
    scored: Bool[Tensor, "b pos"],
    reduce: str,
) -> Float[Tensor, " b"]:
    """`item_nll` of one batch, unembedding only the positions it reads (`kept_positions`)."""
    keep = kept_positions(scored)
    logits = forward_logits(model, input_ids, attention_mask, keep=keep)
    return item_nll(logits, input_ids[:, -keep:], scored[:, -keep:], reduce)


def item_nll(
    logits: Float[Tensor, "b pos vocab"],
    input_ids: Int[Tensor, "b pos"],
    scored: Bool[Tensor, "b pos"],
    reduce: str,
) -> Float[Tensor, " b"]:
    """Per item: mean (or sum) of -log p(token | before) over its scored tokens (a fused cross
    entropy: no [b, pos, vocab] log-probabilities are kept)."""
    mask = scored[:, 1:]
    targets = torch.where(mask, input_ids[:, 1:], torch.full_like(input_ids[:, 1:], -100))
    flat = logits[:, :-1].reshape(-1, logits.shape[-1])
    dtype = torch.promote_types(logits.dtype, torch.float32)
    token_nll = torch.nn.functional.cross_entropy(flat.to(dtype), targets.reshape(-1), reduction="none")
    total = token_nll.view(targets.shape).sum(-1)  # ignored (unscored, padding) tokens give 0
    return total / mask.sum(-1) if reduce == "mean" else total


def by_length(texts: ScoredTexts) -> tuple[ScoredTexts, Int[np.ndarray, " item"]]:
    """The items sorted by token count (stable), and the order that restores the original: batches
    of similar lengths waste little on padding."""
    order = np.argsort([len(s) for s in texts.sequences], kind="stable")
    sorted_texts = ScoredTexts(
        tuple(texts.sequences[i] for i in order), tuple(texts.scored[i] for i in order), texts.reduce
    )
    return sorted_texts, np.argsort(order, kind="stable")


def score_texts(model: NeuronModel, texts: ScoredTexts, *, batch_size: int = 8) -> Float[np.ndarray, " item"]:
    """One score per item (mean token NLL, or summed NLL) under whatever hooks are attached, in
    item order (batched by length, `by_length`)."""
    sorted_texts, restore = by_length(texts)
    out = []
    with torch.inference_mode():
        for ids, attention, scored in sorted_texts.batches(batch_size, model.device):
            out.append(batch_nll(model, ids, attention, scored, texts.reduce).double().cpu())
    return torch.cat(out).numpy()[restore]
