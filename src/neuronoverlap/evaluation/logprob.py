"""BLI gold log-probability: per prompt, the best teacher-forced log-probability of any gold.

A minimal version kept by the interventions issue until the evaluation issue's prefix-cached
one (same name, signature and meaning) lands; `prefix_cache` is accepted and has no effect
here: every (prompt, gold) is scored in full.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from jaxtyping import Float

from neuronoverlap.errors import InputError
from neuronoverlap.models.interface import NeuronModel


def gold_logprobs(
    model: NeuronModel,
    prompts: Sequence[str],
    golds: Sequence[Sequence[str]],
    *,
    batch_size: int = 16,
    prefix_cache: bool = True,
) -> Float[np.ndarray, " prompt"]:
    """max over the golds of prompt i of sum_k log p(gold token k | prompt, gold tokens < k).

    Each gold is the text that follows the prompt (e.g. '"Hund"' after 'English:"dog"→Deutsch:'),
    encoded on its own; one float per prompt.
    """
    from neuronoverlap.interventions.scoring import continuation_texts, score_texts

    if len(prompts) != len(golds):
        raise InputError(f"{len(prompts)} prompts for {len(golds)} gold lists")
    if any(len(g) == 0 for g in golds):
        raise InputError("every prompt needs at least one gold answer")
    owner = np.repeat(np.arange(len(prompts)), [len(g) for g in golds])
    flat_prompts = [prompts[i] for i in owner]
    flat_golds = [gold for group in golds for gold in group]
    nll = score_texts(model, continuation_texts(model, flat_prompts, flat_golds), batch_size=batch_size)
    best = np.full(len(prompts), -np.inf)
    np.maximum.at(best, owner, -nll)
    return best
