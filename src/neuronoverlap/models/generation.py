"""Generate, then record: batched greedy generation, then one teacher-forced recording pass.

Generation produces the tokens only. It uses the model's KV cache when the load-time self-check
(`NeuronModel.kv_cache_ok`) found cached and uncached logits equal, else it re-runs the whole
sequence at every step. Each sample stops on its own (`StopRule`) at the end-of-sequence token or
`max_new_tokens`, and by default at a newline or after a closing quote.

Generation and next-token scoring can start from a shared prefix's keys and values
(`models.prefix`): the prompts' common leading tokens are read once and only the suffixes are
prefilled; the greedy tokens are those of the whole-prompt path.

Recording never depends on the cache: one forward over prompt + generated tokens (left padded,
hooks on, stopped after the last hooked layer, no logits) feeds the activations to the consumer.
The last generated token is not fed back (nothing reads its activations), as in Hugging Face
`generate`. Which positions count is the `count` rule: every real token (`"all"`), or only the
probe word's tokens and the fed-back answer tokens (`"answer"`, BOS and template excluded).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from neuronoverlap import options
from neuronoverlap.errors import InputError
from neuronoverlap.models.interface import ActivationConsumer, Batch, NeuronModel, positions_of
from neuronoverlap.models.prefix import SharedPrefix, suffix_batch, token_ids

#: Characters that close a quoted answer, in the scripts of the registry.
CLOSING_QUOTES = '"”»」』'
OPENING_QUOTES = '"“«「『„'

#: Named stop rules: "quote" (the default) ends a quoted answer at its closing quote, so that
#: the text the model writes after the answer (the next line of an imagined list) is not
#: recorded; "reference" is BridgeX-ICL's rule: a newline or 30 tokens.
STOP_RULES = options.STOP_RULES
COUNT_RULES = options.TOKEN_COUNTS


@dataclass(frozen=True)
class StopRule:
    """When a sample's generation ends (besides the end-of-sequence token)."""

    max_new_tokens: int = 30
    stop_at_newline: bool = True
    stop_at_closing_quote: bool = True

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise InputError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")

    @classmethod
    def named(cls, name: str, max_new_tokens: int = 30) -> StopRule:
        if name not in STOP_RULES:
            raise InputError(f"unknown stop rule {name!r}; choose one of {', '.join(STOP_RULES)}")
        return cls(max_new_tokens, stop_at_newline=True, stop_at_closing_quote=name == "quote")

    def is_done(self, generated_text: str) -> bool:
        if self.stop_at_newline and "\n" in generated_text:
            return True
        if self.stop_at_closing_quote:
            body = generated_text.lstrip()
            if body[:1] in OPENING_QUOTES:
                body = body[1:]
            if any(q in body for q in CLOSING_QUOTES):
                return True
        return False


@dataclass
class Generation:
    prompt: str
    text: str
    token_ids: list[int] = field(default_factory=list)
    prompt_ids: list[int] = field(default_factory=list)
    n_prompt_tokens: int = 0
    n_counted_tokens: int = 0  # positions the recording pass counted

    @property
    def fed_ids(self) -> list[int]:
        """Prompt + generated tokens the model read (the last generated one is not fed back)."""
        return self.prompt_ids + self.token_ids[:-1]


def _decode_greedy(
    model: NeuronModel,
    input_ids: Int[Tensor, "batch pos"],
    attention: Int[Tensor, "batch total"],
    positions: Int[Tensor, "batch pos"],
    stop: StopRule,
    past: Any = None,
) -> list[list[int]]:
    """Greedy tokens for each left-padded row of `input_ids`, cached or not. With `past` (a
    shared prefix's expanded KV cache), `input_ids` are the suffixes after it and `attention`
    covers prefix and suffix (`models.prefix`); then a row that has stopped leaves the batch
    (its cache rows are dropped). Otherwise a stopped row rides along as padding, as it always
    has (so whole-prompt generation, and the probes recorded with it, are unchanged)."""
    n = input_ids.shape[0]
    eos, pad = model.tokenizer.eos_token_id, model.tokenizer.pad_token_id
    generated: list[list[int]] = [[] for _ in range(n)]
    shrink = past is not None
    use_cache = shrink or (model.supports_kv_cache and model.kv_cache_ok)
    logits, past = model.step(input_ids, attention, positions, past=past, use_cache=use_cache)
    live = list(range(n))  # the original row of each row still in the batch
    running = torch.ones(n, dtype=torch.bool, device=attention.device)
    full_ids = input_ids
    for step_index in range(stop.max_new_tokens):
        next_ids = logits[:, -1].argmax(-1)
        if not shrink:
            next_ids = torch.where(running, next_ids, torch.full_like(next_ids, pad))
        keep = []
        for row, i in enumerate(live):
            if not running[i]:
                continue
            token = int(next_ids[row])
            generated[i].append(token)
            if token == eos or stop.is_done(model.decode(generated[i])):
                running[i] = False
            else:
                keep.append(row)
        if not keep or step_index == stop.max_new_tokens - 1:
            break
        if shrink and len(keep) < len(live):
            index = torch.tensor(keep, dtype=torch.long, device=attention.device)
            past.batch_select_indices(index)
            attention, positions, next_ids = attention[index], positions[index], next_ids[index]
            live = [live[row] for row in keep]
        # Feed the newest token of the running samples; finished ones (if any) ride along as padding.
        attention = torch.cat([attention, running[live].long()[:, None]], dim=1)
        if use_cache:
            positions = positions[:, -1:] + 1
            logits, past = model.step(next_ids[:, None], attention, positions, past=past)
        else:
            full_ids = torch.cat([full_ids, next_ids[:, None]], dim=1)
            logits, _ = model.step(full_ids, attention, positions_of(attention), use_cache=False)
    return generated


def generate_tokens(
    model: NeuronModel,
    prompts: Sequence[str],
    stop: StopRule = StopRule(),  # noqa: B008 (frozen, immutable)
    *,
    prefix: SharedPrefix | None = None,
) -> list[Generation]:
    """Greedy continuations of `prompts`, all in one batch (no activations recorded). With a
    `prefix` (`models.prefix.find_prefix`) that every prompt's tokens begin with, its keys and
    values are reused and only the suffixes are prefilled."""
    if prefix is None:
        batch = model.encode(prompts)
        generated = _decode_greedy(model, batch.input_ids, batch.attention_mask, batch.position_ids, stop)
        all_ids = [batch.input_ids[i][batch.attention_mask[i].bool()].tolist() for i in range(len(prompts))]
    else:
        all_ids = token_ids(model, prompts)
        suffixes = suffix_batch(model, prefix, all_ids)
        past = prefix.expanded(len(prompts))
        generated = _decode_greedy(
            model, suffixes.input_ids, suffixes.attention, suffixes.positions, stop, past=past
        )
    generations = []
    for i, prompt in enumerate(prompts):
        prompt_ids = all_ids[i]
        generations.append(
            Generation(
                prompt=prompt,
                text=model.decode(generated[i]),
                token_ids=generated[i],
                prompt_ids=prompt_ids,
                n_prompt_tokens=len(prompt_ids),
                n_counted_tokens=len(prompt_ids) + len(generated[i]) - 1,
            )
        )
    return generations


def _word_token_mask(
    model: NeuronModel, prompts: Sequence[str], word_spans: Sequence[tuple[int, int]]
) -> list[list[bool]]:
    """For each prompt, which of its tokens overlap the characters [start, end) of its word."""
    if len(word_spans) != len(prompts):
        raise InputError(f"{len(word_spans)} word spans for {len(prompts)} prompts")
    encoded = model.tokenizer(list(prompts), return_offsets_mapping=True)
    masks = []
    for offsets, (start, end) in zip(encoded["offset_mapping"], word_spans, strict=True):
        masks.append([b > a and a < end and b > start for a, b in offsets])
    return masks


def teacher_forced_batch(
    generations: Sequence[Generation],
    pad_id: int,
    device,
    word_masks: Sequence[Sequence[bool]] | None = None,
) -> tuple[Batch, Bool[Tensor, "batch pos"]]:
    """Left-padded prompt + fed-back answer tokens and the mask of the positions to count
    (all real tokens, or the word's and the answer's when `word_masks` is given)."""
    sequences = [g.fed_ids for g in generations]
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
    count = torch.zeros((len(sequences), width), dtype=torch.bool)
    for i, (g, seq) in enumerate(zip(generations, sequences, strict=True)):
        offset = width - len(seq)
        ids[i, offset:] = torch.tensor(seq, dtype=torch.long)
        attention[i, offset:] = 1
        if word_masks is None:
            count[i, offset:] = True
        else:
            prompt_mask = torch.tensor(list(word_masks[i]), dtype=torch.bool)
            if len(prompt_mask) != len(g.prompt_ids):
                raise InputError("word mask and prompt tokens differ in length")
            count[i, offset : offset + len(g.prompt_ids)] = prompt_mask
            count[i, offset + len(g.prompt_ids) :] = True
    return Batch(ids.to(device), attention.to(device)), count.to(device)


def record_generations(
    model: NeuronModel,
    generations: Sequence[Generation],
    consumer: ActivationConsumer,
    count: str = "all",
    word_spans: Sequence[tuple[int, int]] | None = None,
) -> None:
    """One teacher-forced forward over prompt + fed-back answer, feeding `consumer`."""
    if count not in COUNT_RULES:
        raise InputError(f"unknown count rule {count!r}; choose one of {', '.join(COUNT_RULES)}")
    word_masks = None
    if count == "answer":
        if word_spans is None:
            raise InputError("counting answer positions needs the word's character span")
        word_masks = _word_token_mask(model, [g.prompt for g in generations], word_spans)
    batch, count_mask = teacher_forced_batch(
        generations, model.tokenizer.pad_token_id, model.device, word_masks
    )
    model.record_forward(batch.input_ids, batch.attention_mask, consumer, count_mask)
    for g, row in zip(generations, count_mask.sum(-1).tolist(), strict=True):
        g.n_counted_tokens = int(row)


def generate_greedy(
    model: NeuronModel,
    prompts: Sequence[str],
    stop: StopRule = StopRule(),  # noqa: B008 (frozen, immutable)
    consumer: ActivationConsumer | None = None,
    count: str = "all",
    word_spans: Sequence[tuple[int, int]] | None = None,
    *,
    prefix: SharedPrefix | None = None,
) -> list[Generation]:
    """Generate (reusing a shared `prefix`'s keys and values when given), then (with a
    `consumer`) record: see the module docstring."""
    generations = generate_tokens(model, prompts, stop, prefix=prefix)
    if consumer is not None:
        record_generations(model, generations, consumer, count, word_spans)
    return generations


def next_token_log_probs(
    model: NeuronModel, prompts: Sequence[str], *, prefix: SharedPrefix | None = None
) -> Float[Tensor, "batch vocab"]:
    """log p(next token | prompt) over the vocabulary for each prompt, in one batch ->
    [batch, vocab] (float32 on the CPU). Left padding puts every prompt's last token last. With
    a shared `prefix`, only the suffixes are read (see `generate_tokens`)."""
    if prefix is None:
        batch = model.encode(prompts)
        logits, _ = model.step(batch.input_ids, batch.attention_mask, batch.position_ids, use_cache=False)
    else:
        suffixes = suffix_batch(model, prefix, token_ids(model, prompts))
        past = prefix.expanded(len(prompts))
        logits, _ = model.step(suffixes.input_ids, suffixes.attention, suffixes.positions, past=past)
    return torch.log_softmax(logits[:, -1].float(), dim=-1).cpu()
