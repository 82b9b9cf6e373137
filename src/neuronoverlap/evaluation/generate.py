"""Batched greedy generation and next-token scoring for the evaluations: prompts sorted by
length, cut into batches, answers returned in the prompts' order."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from neuronoverlap.errors import InputError
from neuronoverlap.models import NeuronModel, StopRule, generate_greedy, next_token_log_probs


def generate_texts(
    model: NeuronModel,
    prompts: Sequence[str],
    stop: StopRule,
    batch_size: int = 16,
    progress: bool = True,
    desc: str = "generate",
) -> list[str]:
    """The greedy continuation of every prompt, in the order given.

    Prompts are batched longest first, so that a batch holds prompts of similar length (little
    padding) and the largest batch runs first (an out-of-memory error shows at once).
    """
    texts: list[str] = [""] * len(prompts)
    for chunk in _batches(prompts, batch_size, progress, desc):
        generations = generate_greedy(model, [prompts[i] for i in chunk], stop)
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
) -> list[dict[str, float]]:
    """For every prompt, each choice's log-probability as the next token: the log of the summed
    probability of its token ids (e.g. " A" and "A"). Batched as generate_texts."""
    if not choices or any(not ids for ids in choices.values()):
        raise InputError("every choice needs at least one token id")
    scores: list[dict[str, float]] = [{} for _ in prompts]
    for chunk in _batches(prompts, batch_size, progress, desc):
        log_probs = next_token_log_probs(model, [prompts[i] for i in chunk])
        for row, i in enumerate(chunk):
            scores[i] = {
                choice: float(torch.logsumexp(log_probs[row, ids], dim=0)) for choice, ids in choices.items()
            }
    return scores


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
