"""The model's own competence in each leg of the bridged route, measured on train words.

For a pair (s, t) and a candidate b, the model translates (greedy, the validation study's direct
prompts: one-word lines with `shots` train-split examples, the same stop rule) `n` source words
of the s-b **train** dictionary into b, less every source word of the s-t test split (the words
the study evaluates), and `n` words of the b-t train dictionary into t. p@1 as the study scores
it (`extraction.is_hit` of the first answer word against every gold translation).

Rules: `competence` = acc(s -> b) * acc(b -> t), the chance that both steps succeed were they
independent; `competence-step1` = acc(s -> b) alone (today's `step-1` rule reads the same leg,
but on the test words); `competence-step2` = acc(b -> t).

A leg is measured once per `legs` cache: the second leg b -> t reads no pair-specific word (no
exclusion), so every pair with target t and candidate b shares it (a full-size study's 130
candidates need about 25 distinct second legs); the cache holds (accuracy, words) by every
argument of `leg_accuracy`, and a leg's result does not depend on what ran before it (greedy
generation of the same prompts in the same batches).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from neuronoverlap.data import load_dictionary
from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.bli import PROMPT_STYLES, direct_prefix
from neuronoverlap.evaluation.extraction import extract_answer, is_hit
from neuronoverlap.evaluation.generate import generate_texts
from neuronoverlap.evaluation.protocol import load_examples
from neuronoverlap.models import NeuronModel, StopRule
from neuronoverlap.probes.prompts import render

COMPETENCE_RULES = ("competence", "competence-step1", "competence-step2")

#: Measured legs: (src, tgt, exclude, n, seed, shots, batch size, data dir) -> (accuracy, words).
LegCache = dict


def leg_words(
    src: str,
    tgt: str,
    *,
    n: int,
    seed: int,
    shots: int,
    exclude: Sequence[str] = (),
    data_dir: str | None = None,
):
    """(few-shot examples, `n` seeded train words of src-tgt, neither in `exclude` nor among
    the examples)."""
    prompts = PROMPT_STYLES["study"]
    examples = load_examples(src, [tgt], [], shots, seed, exclude, prompts.non_identical_shots, data_dir)
    dictionary = load_dictionary(src, tgt, split="train", data_dir=data_dir)
    skip = set(exclude) | {e.source for e in examples}
    usable = [w for w in dictionary.source_words if w not in skip]
    if not usable:
        raise InputError(f"no {src}-{tgt} train word is left to measure competence on")
    order = np.random.default_rng(seed).permutation(len(usable))[:n]
    return examples, [usable[int(i)] for i in sorted(order)], dictionary


def leg_accuracy(
    model: NeuronModel,
    src: str,
    tgt: str,
    *,
    n: int,
    seed: int,
    shots: int = 5,
    exclude: Sequence[str] = (),
    batch_size: int = 16,
    max_new_tokens: int = 8,
    data_dir: str | None = None,
) -> tuple[float, int]:
    """p@1 of src -> tgt on `leg_words`, and the number of words."""
    prompts = PROMPT_STYLES["study"]
    examples, words, dictionary = leg_words(
        src, tgt, n=n, seed=seed, shots=shots, exclude=exclude, data_dir=data_dir
    )
    prefix = direct_prefix(prompts, src, tgt, examples)
    queries = [prefix + render(prompts.direct, src, tgt, w, prompts.names) for w in words]
    stop = StopRule(max_new_tokens=max_new_tokens, stop_at_newline=True, stop_at_closing_quote=True)
    texts = generate_texts(model, queries, stop, batch_size, False)
    hits = [is_hit(extract_answer(x), dictionary.translations[w]) for x, w in zip(texts, words, strict=True)]
    return float(np.mean(hits)), len(words)


def competence_scores(
    model: NeuronModel,
    src: str,
    tgt: str,
    bridges: Sequence[str],
    *,
    n: int = 100,
    seed: int = 0,
    shots: int = 5,
    batch_size: int = 16,
    data_dir: str | None = None,
    legs: LegCache | None = None,
) -> dict[str, dict[str, float]]:
    """rule -> bridge -> score for `competence`, `competence-step1` and `competence-step2`.
    `legs`: a cache shared by calls (module docstring); None measures every leg."""
    if n < 1:
        raise InputError(f"competence needs n >= 1 words, got {n}")
    try:
        test_words = load_dictionary(src, tgt, split="test", data_dir=data_dir).source_words
    except InputError:
        test_words = ()
    options = dict(n=n, seed=seed, shots=shots, batch_size=batch_size, data_dir=data_dir)
    legs = {} if legs is None else legs

    def leg(a: str, b: str, exclude: Sequence[str] = ()) -> float:
        key = (a, b, tuple(exclude), n, seed, shots, batch_size, data_dir)
        if key not in legs:
            legs[key] = leg_accuracy(model, a, b, exclude=exclude, **options)
        return legs[key][0]

    out: dict[str, dict[str, float]] = {rule: {} for rule in COMPETENCE_RULES}
    for b in bridges:
        first = leg(src, b, test_words)
        second = leg(b, tgt)
        out["competence-step1"][b] = first
        out["competence-step2"][b] = second
        out["competence"][b] = first * second
    return out
