"""`gold_logprobs` with golds written out in full (answer="{a}", as the interventions pass them)
against a brute-force loop over plain next-token log-probabilities, one token at a time."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuronoverlap import InputError
from neuronoverlap.evaluation.logprob import gold_logprobs


def brute_force(model, prompt, gold):
    ids = model.tokenizer(prompt)["input_ids"]
    tail = model.tokenizer(gold, add_special_tokens=False)["input_ids"]
    total = 0.0
    for k, token in enumerate(tail):
        batch = torch.tensor([ids + tail[:k]])
        logits, _ = model.step(
            batch, torch.ones_like(batch), torch.arange(batch.shape[1])[None], use_cache=False
        )
        total += float(torch.log_softmax(logits[0, -1].double(), -1)[token])
    return total


def test_gold_logprobs_is_the_best_golds_summed_log_probability(tiny_llama):
    prompts = ['English:"dog"→Deutsch:', "日本語: 水\nEnglish:"]
    golds = [['"Hund"', '"Köter"'], [" water"]]
    got = gold_logprobs(tiny_llama, prompts, golds, batch_size=2, answer="{a}")
    expected = [max(brute_force(tiny_llama, p, g) for g in gs) for p, gs in zip(prompts, golds, strict=True)]
    assert np.allclose(got, expected, atol=1e-4)


def test_gold_logprobs_refuses_a_prompt_without_golds(tiny_llama):
    with pytest.raises(InputError, match="has no gold answer"):
        gold_logprobs(tiny_llama, ["a"], [[]])
