"""Batched greedy generation for the evaluations: prompts sorted by length, cut into batches for
`generate_greedy`, answers returned in the prompts' order."""

from __future__ import annotations

from collections.abc import Sequence

from tqdm.auto import tqdm

from neuronoverlap.errors import InputError
from neuronoverlap.models import NeuronModel, StopRule, generate_greedy


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
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    texts: list[str] = [""] * len(prompts)
    with tqdm(total=len(prompts), desc=desc, unit="prompt", disable=not progress,
              leave=False) as bar:
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            generations = generate_greedy(model, [prompts[i] for i in chunk], stop)
            for i, generation in zip(chunk, generations, strict=True):
                texts[i] = generation.text
            bar.update(len(chunk))
    return texts
