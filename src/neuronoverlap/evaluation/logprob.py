"""The gold-answer score: how probable the model finds a word's gold translation after the prompt.

`gold_logprobs` scores each prompt by teacher forcing, no generation: for every gold g of the
prompt's word, the continuation `answer.format(a=g)` (" Wasser" after "Deutsch:" in the lines
and study styles; '"Wasser"' in the paper style) is appended and one forward reads all of it.

The rule (one place): a gold's score is the **sum** of the log-probabilities of its tokens, each
given the prompt and the gold's earlier tokens: log p(gold string | prompt), in nats, **not
normalised** by the number of tokens (a longer gold has more chances to lose probability, as it
has when generated). No end-of-line is scored after it, so a gold also counts as the start of a
longer answer. A word's score is the **best (maximum) over its golds**, as p@1 counts a hit on
any gold. Tokens: the continuation's tokens are those the tokeniser gives the prompt and the
continuation together, after the prompt's own tokens; where the two merge across the boundary
(the prompt's tokens are not a prefix), the continuation is tokenised on its own and appended.

Rows (prompt, gold) are batched (`batch_size` rows per forward), the prompts' shared prefix read
once (`models.prefix`, with `prefix_cache`). Intervals and paired comparisons mirror p@1's
(`evaluation.statistics`): a percentile bootstrap interval of each condition's mean over words,
the paired bootstrap interval of a bridge's mean difference from zero-shot, and a two-sided
paired sign-flip permutation test of that difference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from jaxtyping import Float
from tqdm.auto import tqdm

from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.statistics import _check_confidence
from neuronoverlap.models import NeuronModel
from neuronoverlap.models.interface import positions_of
from neuronoverlap.models.prefix import SharedPrefix, find_prefix, prefix_usable, suffix_batch, token_ids
from neuronoverlap.stats.permutation import permutation_pvalue

#: The evaluation metrics: precision@1 of the greedy answer, the gold log-probability, or both.
METRICS = ("p@1", "logprob", "both")


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise InputError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    return metric


def _continuation_ids(model: NeuronModel, prompt_ids: list[int], full_ids: list[int], text: str) -> list[int]:
    """The continuation's tokens after the prompt's (see the module docstring)."""
    if full_ids[: len(prompt_ids)] == prompt_ids and len(full_ids) > len(prompt_ids):
        return full_ids[len(prompt_ids) :]
    return list(model.tokenizer(text, add_special_tokens=False)["input_ids"])


@torch.inference_mode()
def _row_scores(
    model: NeuronModel, rows: Sequence[tuple[list[int], int]], prefix: SharedPrefix | None
) -> list[float]:
    """Sum of the log-probs of each row's last `n` tokens, rows = (token ids, n), one forward."""
    keep = max(n for _, n in rows) + 1
    sequences = [ids for ids, _ in rows]
    if prefix is not None:
        batch = suffix_batch(model, prefix, sequences)
        logits, _ = model.step(
            batch.input_ids,
            batch.attention,
            batch.positions,
            past=prefix.expanded(len(rows)),
            logits_to_keep=keep,
        )
    else:
        width = max(len(s) for s in sequences)
        ids = torch.full((len(rows), width), model.tokenizer.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for r, seq in enumerate(sequences):
            ids[r, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
            attention[r, width - len(seq) :] = 1
        ids, attention = ids.to(model.device), attention.to(model.device)
        logits, _ = model.step(ids, attention, positions_of(attention), use_cache=False, logits_to_keep=keep)
    log_probs = torch.log_softmax(logits[:, -keep:].float(), dim=-1)
    scores = []
    for r, (seq, n) in enumerate(rows):
        targets = torch.tensor(seq[-n:], dtype=torch.long, device=log_probs.device)
        predicted = log_probs[r, keep - n - 1 : keep - 1]  # position t predicts token t + 1
        scores.append(float(predicted.gather(-1, targets[:, None]).sum()))
    return scores


def gold_logprobs(
    model: NeuronModel,
    prompts: Sequence[str],
    golds: Sequence[Sequence[str]],
    *,
    batch_size: int = 16,
    prefix_cache: bool = True,
    answer: str = " {a}",
    progress: bool = False,
) -> Float[np.ndarray, " prompt"]:
    """Per prompt, the best teacher-forced log-probability (nats) over its golds, each gold
    written after the prompt as `answer` renders it (module docstring: the sum of the gold's
    token log-probs, not normalised; the maximum over golds). One forward per batch of
    (prompt, gold) rows, no generation; the prompts' shared prefix read once with `prefix_cache`."""
    if len(golds) != len(prompts):
        raise InputError(f"{len(golds)} gold lists for {len(prompts)} prompts")
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    if "{a}" not in answer:
        raise InputError(f"the answer template {answer!r} lacks {{a}}")
    if not prompts:
        return np.zeros(0)
    owners, texts = [], []
    for i, words in enumerate(golds):
        words = [w for w in words if w]
        if not words:
            raise InputError(f"prompt {i} has no gold answer to score")
        for word in words:
            owners.append(i)
            texts.append(answer.format(a=word))
    prompt_ids = token_ids(model, prompts)
    full_ids = token_ids(model, [prompts[i] + t for i, t in zip(owners, texts, strict=True)])
    rows = []
    for i, full, text in zip(owners, full_ids, texts, strict=True):
        continuation = _continuation_ids(model, prompt_ids[i], full, text)
        rows.append((prompt_ids[i] + continuation, len(continuation)))
    prefix = find_prefix(model, prompt_ids) if prefix_cache and prefix_usable(model) else None
    order = sorted(range(len(rows)), key=lambda r: -len(rows[r][0]))
    scores = np.empty(len(rows))
    with tqdm(total=len(rows), desc="gold log-prob", unit="row", disable=not progress, leave=False) as bar:
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            scores[chunk] = _row_scores(model, [rows[r] for r in chunk], prefix)
            bar.update(len(chunk))
    best = np.full(len(prompts), -np.inf)
    np.maximum.at(best, np.array(owners), scores)
    return best


def mean_interval(
    values: Sequence[float], confidence: float = 0.95, n_resamples: int = 10_000, seed: int = 0
) -> dict[str, float]:
    """The mean of `values` with its percentile bootstrap interval (values resampled)."""
    _check_confidence(confidence)
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return {"mean": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": 0, "confidence": confidence}
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_resamples, x.size))].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return {
        "mean": float(x.mean()),
        "ci_low": float(low),
        "ci_high": float(high),
        "n": int(x.size),
        "confidence": confidence,
    }


def paired_difference(
    a: Sequence[float], b: Sequence[float], confidence: float = 0.95, n_resamples: int = 10_000, seed: int = 0
) -> dict[str, float]:
    """mean(b - a) over the same words, its paired bootstrap interval and the two-sided paired
    sign-flip permutation p-value (H0: the differences are symmetric about 0)."""
    d = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    out = mean_interval(d, confidence, n_resamples, seed)
    if d.size == 0:
        return {**out, "pvalue": math.nan}
    signs = np.random.default_rng(seed + 1).choice([-1.0, 1.0], size=(n_resamples, d.size))
    null = (signs * d).mean(axis=1)
    pvalue = permutation_pvalue(np.float64(d.mean()), null, "two-sided", scale=float(np.abs(d).mean()))
    return {"difference": out.pop("mean"), **out, "pvalue": float(pvalue)}


def summarise_logprobs(
    values: Mapping[str, Sequence[float]],
    bridges: Sequence[str],
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> dict:
    """The JSON's "logprob" section: per condition the mean gold log-prob [interval] and every
    word's value; per bridge its paired difference from zero-shot; the best bridge by mean."""
    from neuronoverlap.evaluation.results import ZERO_SHOT, bridge_condition

    conditions = {
        name: {**mean_interval(v, confidence, n_resamples, seed), "values": [float(x) for x in v]}
        for name, v in values.items()
    }
    comparisons = {
        b: paired_difference(values[ZERO_SHOT], values[bridge_condition(b)], confidence, n_resamples, seed)
        for b in bridges
        if ZERO_SHOT in values and bridge_condition(b) in values
    }
    means = {b: conditions[bridge_condition(b)]["mean"] for b in bridges if bridge_condition(b) in conditions}
    return {
        "rule": "sum of the gold's token log-probs (nats, not normalised), best over golds",
        "conditions": conditions,
        "comparisons": comparisons,
        "best_bridge": max(means, key=means.get) if means else None,
    }


def logprob_table(section: Mapping) -> str:
    """Plain-text rows of a "logprob" section."""
    rows = [f"{'condition':<14} {'gold log-prob':>13}  {'95% CI (bootstrap)':<20} {'n':>5}"]
    for name, c in section["conditions"].items():
        rows.append(
            f"{name:<14} {c['mean']:>13.3f}  [{c['ci_low']:.3f}, {c['ci_high']:.3f}]{'':<2} {c['n']:>5}"
        )
    for bridge, d in section["comparisons"].items():
        rows.append(
            f"bridge:{bridge} - zero-shot (log-prob): {d['difference']:+.3f} "
            f"[{d['ci_low']:+.3f}, {d['ci_high']:+.3f}], sign-flip p = {d['pvalue']:.3g}"
        )
    if section.get("best_bridge"):
        rows.append(f"best bridge by gold log-prob: {section['best_bridge']}")
    return "\n".join(rows)
