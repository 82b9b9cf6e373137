"""Batched greedy generation and next-token scoring for the evaluations: prompts sorted by
length, cut into batches, answers returned in the prompts' order.

Prefix reuse (`prefix_cache=True`, the default): the tokens every prompt of the call begins
with (a few-shot prefix, a passage) are read once and their keys and values reused for every
batch, which prefills only the suffixes (`models.prefix`). Only where the model's KV-cache
self-check passed; otherwise, or with `prefix_cache=False`, every prompt is read whole. The
greedy text is the same either way (tests/test_prefix_reuse.py)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from neuronoverlap.errors import InputError
from neuronoverlap.models import NeuronModel, StopRule, generate_greedy, next_token_log_probs
from neuronoverlap.models.prefix import SharedPrefix, find_prefix, prefix_usable, token_ids


def generate_texts(
    model: NeuronModel,
    prompts: Sequence[str],
    stop: StopRule,
    batch_size: int = 16,
    progress: bool = True,
    desc: str = "generate",
    *,
    prefix_cache: bool = True,
) -> list[str]:
    """The greedy continuation of every prompt, in the order given.

    Prompts are batched longest first, so that a batch holds prompts of similar length (little
    padding) and the largest batch runs first (an out-of-memory error shows at once). With
    `prefix_cache`, their shared prefix is read once (module docstring).
    """
    texts: list[str] = [""] * len(prompts)
    prefix = shared_prefix_of(model, prompts, prefix_cache)
    for chunk in _batches(prompts, batch_size, progress, desc):
        part = [prompts[i] for i in chunk]
        if prefix is None:
            generations = generate_greedy(model, part, stop)
        else:
            generations = generate_greedy(model, part, stop, prefix=prefix)
        for i, generation in zip(chunk, generations, strict=True):
            texts[i] = generation.text
    return texts


def score_choices(
    model: NeuronModel,
    prompts: Sequence[str],
    choices: dict[str, list[int]],
    batch_size: int = 16,
    progress: bool = True,
    desc: str = "score",
    *,
    prefix_cache: bool = True,
) -> list[dict[str, float]]:
    """For every prompt, each choice's log-probability as the next token: the log of the summed
    probability of its token ids (e.g. " A" and "A"). Batched as generate_texts."""
    if not choices or any(not ids for ids in choices.values()):
        raise InputError("every choice needs at least one token id")
    scores: list[dict[str, float]] = [{} for _ in prompts]
    prefix = shared_prefix_of(model, prompts, prefix_cache)
    for chunk in _batches(prompts, batch_size, progress, desc):
        part = [prompts[i] for i in chunk]
        if prefix is None:
            log_probs = next_token_log_probs(model, part)
        else:
            log_probs = next_token_log_probs(model, part, prefix=prefix)
        for row, i in enumerate(chunk):
            scores[i] = {
                choice: float(torch.logsumexp(log_probs[row, ids], dim=0)) for choice, ids in choices.items()
            }
    return scores


def shared_prefix_of(model: NeuronModel, prompts: Sequence[str], prefix_cache: bool) -> SharedPrefix | None:
    """The prefilled prefix all `prompts` share, or None (turned off, not exact on this model,
    or too short to help)."""
    if not prefix_cache or len(prompts) < 1 or not prefix_usable(model):
        return None
    return find_prefix(model, token_ids(model, prompts))


def _batches(prompts: Sequence[str], batch_size: int, progress: bool, desc: str):
    """Index lists of batches, longest prompts first, with a progress bar over prompts."""
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    with tqdm(total=len(prompts), desc=desc, unit="prompt", disable=not progress, leave=False) as bar:
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            yield chunk
            bar.update(len(chunk))
