"""Batched greedy generation with activation hooks.

Left padding, an attention mask and (on a TransformerBridge) the Hugging Face KV cache; each
sample stops on its own at a newline, a closing quote, the end-of-sequence token or
`max_new_tokens`. Every position the model processes is counted once: the prompt's real tokens
on the first step, then each still-running sample's newest token. The last generated token is
not fed back (nothing reads its activations), as in Hugging Face `generate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from neuronoverlap.models.interface import ActivationConsumer, NeuronModel

#: Characters that close a quoted answer, in the scripts of the registry.
CLOSING_QUOTES = '"”»」』'
OPENING_QUOTES = '"“«「『„'


@dataclass(frozen=True)
class StopRule:
    """When a sample's generation ends (besides the end-of-sequence token)."""

    max_new_tokens: int = 30
    stop_at_newline: bool = True
    stop_at_closing_quote: bool = True

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
    n_prompt_tokens: int = 0
    n_counted_tokens: int = 0  # prompt tokens + generated tokens fed back to the model


def generate_greedy(
    model: NeuronModel,
    prompts: Sequence[str],
    stop: StopRule = StopRule(),  # noqa: B008 (frozen, immutable)
    consumer: ActivationConsumer | None = None,
) -> list[Generation]:
    """Greedy continuations of `prompts`, all in one batch, feeding activations to `consumer`."""
    batch = model.encode(prompts)
    n = batch.input_ids.shape[0]
    attention = batch.attention_mask
    positions = batch.position_ids
    eos = model.tokenizer.eos_token_id
    pad = model.tokenizer.pad_token_id
    running = torch.ones(n, dtype=torch.bool, device=attention.device)
    generated: list[list[int]] = [[] for _ in range(n)]
    counted = attention.sum(-1).tolist()

    logits, past = model.step(batch.input_ids, attention, positions, consumer=consumer)
    full_ids = batch.input_ids
    for step_index in range(stop.max_new_tokens):
        next_ids = logits[:, -1].argmax(-1)
        next_ids = torch.where(running, next_ids, torch.full_like(next_ids, pad))
        for i in running.nonzero().flatten().tolist():
            token = int(next_ids[i])
            generated[i].append(token)
            if token == eos or stop.is_done(model.decode(generated[i])):
                running[i] = False
        if not running.any() or step_index == stop.max_new_tokens - 1:
            break
        # Feed the newest token of the running samples; finished ones ride along as padding.
        attention = torch.cat([attention, running.long()[:, None]], dim=1)
        positions = positions[:, -1:] + 1
        full_ids = torch.cat([full_ids, next_ids[:, None]], dim=1)
        count_mask = running[:, None].clone()
        for i in running.nonzero().flatten().tolist():
            counted[i] += 1
        if model.supports_kv_cache:
            logits, past = model.step(
                next_ids[:, None],
                attention,
                positions,
                past=past,
                consumer=consumer,
                count_mask=count_mask,
            )
        else:
            mask = torch.zeros_like(full_ids, dtype=torch.bool)
            mask[:, -1] = running
            logits, _ = model.step(full_ids, attention, None, consumer=consumer, count_mask=mask)
    prompt_lengths = batch.attention_mask.sum(-1).tolist()
    return [
        Generation(
            prompt=prompts[i],
            text=model.decode(generated[i]),
            token_ids=generated[i],
            n_prompt_tokens=int(prompt_lengths[i]),
            n_counted_tokens=int(counted[i]),
        )
        for i in range(n)
    ]


def next_token_log_probs(model: NeuronModel, prompts: Sequence[str]) -> torch.Tensor:
    """log p(next token | prompt) over the vocabulary for each prompt, in one batch ->
    [batch, vocab] (float32 on the CPU). Left padding puts every prompt's last token last."""
    batch = model.encode(prompts)
    logits, _ = model.step(batch.input_ids, batch.attention_mask, batch.position_ids)
    return torch.log_softmax(logits[:, -1].float(), dim=-1).cpu()
