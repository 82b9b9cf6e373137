"""Judging a bridge rule as the literature judges language choice (LANGRANK, NN-Rank): top-1
hit, regret, NDCG@k and Kendall tau against held-out accuracies, with intervals.

A rule gives every candidate bridge of a pair a score (higher: better; ties allowed). Per pair
the test words are halved at random many times, both ways (as `study.held_out_regret`): a rule
that reads evaluation data (`step-1`: the source -> bridge accuracy) reads half A only; every
measure is taken on half B, where the gain of a bridge is its accuracy on B.

- `hit`: the rule's top choice is the best bridge of half B. Ties on either side are split
  evenly: |rule's tied top ∩ B's tied best| / (|rule's tied top| * |B's tied best|), the
  probability that random tie-breaks agree (a rule whose scores are all equal scores 1/k).
- `regret`: acc_B of the bridge best on half A minus acc_B of the rule's choice (tied top
  choices averaged): `study.held_out_regret`'s number.
- `ndcg`: NDCG@k of the rule's ranking with gain = accuracy on B, ties handled as the
  expectation over random tie-breaks (McSherry & Najork 2008: each position a tied group
  spans gets the group's mean gain); 0 when every gain is 0 (as scikit-learn).
- `tau`: Kendall's tau-b between the scores and the accuracies on B (NaN when either is
  constant; such halvings are left out of the mean).

Pooled (`judge`): each measure's mean over pairs, with a bootstrap interval that resamples
the words of each pair with replacement (conditional on the pairs studied; the resamples and
their centring are `study.pool`'s), and
for each rule the paired difference of its regret and the baseline's (always English) on the
same resamples, with an interval: a rule beats the baseline when that interval lies below 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from jaxtyping import Float

from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.study import (
    PairData,
    _half_means,
    _oracle_value,
    _signs,
    _split_weights,
    debiased,
)
from neuronoverlap.languages import taxonomy_distance

MEASURES = ("hit", "regret", "ndcg", "tau")
STEP1 = "step-1"  # the one rule that reads evaluation data: half A's source -> bridge accuracy


def builtin_scores(pair: PairData, rule: str) -> dict[str, float] | None:
    """Scores of the study's own rules (None: the rule does not apply to the pair):
    `english` (1 for English, 0 otherwise), `random` (all equal: the expectation over a uniform
    choice), `typology` (nearer the target, then the source, in the registry's taxonomy; English first
    among equals, other ties kept), `hsic` (the selection's scores)."""
    if rule == "english":
        return {b: float(b == "en") for b in pair.bridges} if "en" in pair.bridges else None
    if rule == "random":
        return dict.fromkeys(pair.bridges, 0.0)
    if rule == "typology":
        return {
            b: -(10.0 * taxonomy_distance(b, pair.tgt) + taxonomy_distance(b, pair.src)) + 0.5 * (b == "en")
            for b in pair.bridges
        }
    if rule == "hsic":
        return dict(pair.scores) if pair.scores is not None else None
    raise InputError(f"{rule!r} has no built-in scores")


def hit_rate(
    scores: Float[np.ndarray, "bridge rep"], gains: Float[np.ndarray, "bridge rep"]
) -> Float[np.ndarray, " rep"]:
    """Tie-split top-1 agreement of the scores' best with the gains' best."""
    top = scores == scores.max(axis=0, keepdims=True)
    best = gains == gains.max(axis=0, keepdims=True)
    return (top & best).sum(axis=0) / (top.sum(axis=0) * best.sum(axis=0))


def ndcg_at(
    scores: Float[np.ndarray, "bridge rep"], gains: Float[np.ndarray, "bridge rep"], k: int
) -> Float[np.ndarray, " rep"]:
    """Tie-aware NDCG@k (each tied group's positions get its mean gain); 0 where the ideal DCG
    is 0."""
    n = scores.shape[0]
    discount = np.zeros(n + 1)
    discount[1:] = np.cumsum(np.where(np.arange(n) < k, 1 / np.log2(np.arange(n) + 2), 0.0))
    above = (scores[None, :, :] > scores[:, None, :]).sum(axis=1)  # (bridge, rep): group start
    tied = scores[None, :, :] == scores[:, None, :]  # (bridge, bridge, rep)
    size = tied.sum(axis=1)
    group_gain = (tied * gains[None, :, :]).sum(axis=1) / size
    span = discount[above + size] - discount[above]  # the discounts of the group's positions
    dcg = (group_gain * span / size).sum(axis=0)
    ideal = (np.sort(gains, axis=0)[::-1] * np.diff(discount)[:, None]).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ideal > 0, dcg / ideal, 0.0)


def tau_b(
    scores: Float[np.ndarray, "bridge rep"], gains: Float[np.ndarray, "bridge rep"]
) -> Float[np.ndarray, " rep"]:
    """Kendall's tau-b over the bridges, per rep (NaN where either side is constant)."""
    sx, sy = _signs(scores.T), _signs(gains.T)
    denominator = np.sqrt((sx != 0).sum(axis=1) * (sy != 0).sum(axis=1).astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (sx * sy).sum(axis=1) / denominator, np.nan)


def _measures(
    pair: PairData,
    rules: Mapping[str, Mapping[str, float] | None],
    wa: np.ndarray,
    wb: np.ndarray,
    k: int,
) -> dict[tuple[str, str], np.ndarray]:
    """(rule, measure) -> per-halving values, the rule reading half A, measured on half B."""
    acc_a, acc_b = _half_means(pair.hits, wa), _half_means(pair.hits, wb)
    oracle = _oracle_value(acc_a, acc_b)
    out = {}
    for rule, fixed in rules.items():
        if rule == STEP1:
            if pair.step1 is None:
                continue
            s = _half_means(pair.step1, wa)
            s = np.where(np.isnan(s), -np.inf, s)
        elif fixed is None:
            continue
        else:
            s = np.repeat(np.array([fixed[b] for b in pair.bridges], float)[:, None], acc_b.shape[1], 1)
        top = s == s.max(axis=0, keepdims=True)
        out[(rule, "regret")] = oracle - (acc_b * top).sum(axis=0) / top.sum(axis=0)
        out[(rule, "hit")] = hit_rate(s, acc_b)
        out[(rule, "ndcg")] = ndcg_at(s, acc_b, k)
        out[(rule, "tau")] = tau_b(s, acc_b)
    return out


def _both_ways(pair, rules, wa, wb, k, reps) -> dict[tuple[str, str], np.ndarray]:
    """Each halving in both roles, averaged over a rep's halvings (NaN-aware): (rep,)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        one, other = _measures(pair, rules, wa, wb, k), _measures(pair, rules, wb, wa, k)
    out = {}
    for key in one:
        values = np.stack([one[key], other[key]], axis=1).reshape(reps, -1)
        with np.errstate(invalid="ignore"):
            known = ~np.isnan(values)
            mean = np.where(known, values, 0).sum(axis=1) / np.maximum(known.sum(axis=1), 1)
        out[key] = np.where(known.any(axis=1), mean, np.nan)
    return out


@dataclass(frozen=True)
class Estimate:
    """A pooled value with its bootstrap interval and the number of pairs it covers."""

    value: float
    low: float
    high: float
    n_pairs: int


@dataclass(frozen=True)
class ChoiceSummary:
    """Per rule and measure the pooled estimate; per rule the paired regret difference against
    the baseline (negative: the rule loses less than the baseline); per pair the point values.
    A typed result (kind "bridge-choice")."""

    kind: ClassVar[str] = "bridge-choice"
    FORMAT: ClassVar[int] = 1

    measures: dict[str, dict[str, Estimate]]
    versus_baseline: dict[str, Estimate]
    per_pair: dict[str, dict[str, dict[str, float]]]
    baseline: str
    k: int
    confidence: float
    n_bootstrap: int

    @property
    def key(self) -> str:
        return f"bridge-choice-{'-'.join(sorted(self.per_pair))}"

    def beats_baseline(self) -> list[str]:
        """The rules whose regret minus the baseline's has an interval entirely below 0."""
        return [r for r, e in self.versus_baseline.items() if e.high < 0]

    def to_dict(self) -> dict:
        def est(e: Estimate) -> dict:
            return {"value": e.value, "ci_low": e.low, "ci_high": e.high, "n_pairs": e.n_pairs}

        return {
            "kind": self.kind,
            "format": self.FORMAT,
            "measures": {r: {m: est(e) for m, e in ms.items()} for r, ms in self.measures.items()},
            "versus_baseline": {r: est(e) for r, e in self.versus_baseline.items()},
            "per_pair": self.per_pair,
            "baseline": self.baseline,
            "k": self.k,
            "confidence": self.confidence,
            "n_bootstrap": self.n_bootstrap,
            "beats_baseline": self.beats_baseline(),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> ChoiceSummary:
        if d.get("kind") != cls.kind or d.get("format") != cls.FORMAT:
            raise InputError(f"not a bridge-choice result of format {cls.FORMAT}: {d.get('kind')!r}")

        def est(e: Mapping) -> Estimate:
            return Estimate(float(e["value"]), float(e["ci_low"]), float(e["ci_high"]), int(e["n_pairs"]))

        return cls(
            {r: {m: est(e) for m, e in ms.items()} for r, ms in d["measures"].items()},
            {r: est(e) for r, e in d["versus_baseline"].items()},
            {n: {r: dict(v) for r, v in rules.items()} for n, rules in d["per_pair"].items()},
            str(d["baseline"]),
            int(d["k"]),
            float(d["confidence"]),
            int(d["n_bootstrap"]),
        )


def rule_table(
    pairs: Sequence[PairData],
    predictors: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    rules: Sequence[str] = ("english", "random", STEP1, "typology", "hsic"),
) -> dict[str, dict[str, dict[str, float] | None]]:
    """rule -> pair name -> scores per bridge (None: the rule does not apply): the built-in
    `rules` plus `predictors` (rule -> pair name -> bridge -> score; a pair it lacks: None)."""
    table: dict[str, dict[str, dict[str, float] | None]] = {}
    for rule in rules:
        table[rule] = {p.name: None if rule == STEP1 else builtin_scores(p, rule) for p in pairs}
    for rule, by_pair in (predictors or {}).items():
        if rule in table:
            raise InputError(f"rule {rule!r} is given twice")
        table[rule] = {}
        for p in pairs:
            scores = by_pair.get(p.name)
            if scores is not None and set(scores) != set(p.bridges):
                raise InputError(f"rule {rule!r} must score exactly the bridges of {p.name}")
            table[rule][p.name] = None if scores is None else dict(scores)
    return table


def judge(
    pairs: Sequence[PairData],
    predictors: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    *,
    rules: Sequence[str] = ("english", "random", STEP1, "typology", "hsic"),
    baseline: str = "english",
    k: int = 3,
    n_splits: int = 200,
    n_bootstrap: int = 1000,
    bootstrap_splits: int = 8,
    confidence: float = 0.95,
    seed: int = 0,
) -> ChoiceSummary:
    """Every rule's hit, regret, NDCG@k and tau pooled over `pairs`, with intervals, and its
    regret minus the baseline's (see the module docstring)."""
    if not pairs:
        raise InputError("judging rules needs at least one pair")
    if not 0 < confidence < 1:
        raise InputError(f"confidence must be between 0 and 1, got {confidence}")
    if k < 1:
        raise InputError(f"NDCG@k needs k >= 1, got {k}")
    if n_splits < 1 or n_bootstrap < 1 or bootstrap_splits < 1:
        raise InputError("splits and bootstrap resamples must be at least 1")
    names = [p.name for p in pairs]
    if len(set(names)) != len(names):
        raise InputError(f"a pair appears twice: {', '.join(names)}")
    table = rule_table(pairs, predictors, rules)
    if baseline not in table:
        raise InputError(f"the baseline {baseline!r} is not a rule; rules: {', '.join(table)}")
    rng = np.random.default_rng(seed)
    point: dict[str, dict[tuple[str, str], float]] = {}
    draws: dict[str, dict[tuple[str, str], np.ndarray]] = {}
    for p in pairs:
        by_rule = {r: table[r][p.name] for r in table}
        n = p.hits.shape[1]
        wa, wb = _split_weights(n, 1, n_splits, np.random.default_rng(seed), False)
        point[p.name] = {key: float(v[0]) for key, v in _both_ways(p, by_rule, wa, wb, k, 1).items()}
        wa, wb = _split_weights(n, n_bootstrap, bootstrap_splits, rng, True)
        draws[p.name] = _both_ways(p, by_rule, wa, wb, k, n_bootstrap)
    alpha = (1 - confidence) / 2

    def pooled(keys: Sequence[tuple[str, tuple[str, str]]], sign: Sequence[int] = (1,)) -> Estimate | None:
        """Mean over the pairs having every key of `keys`, of sum(sign * value)."""
        have = [n for n in names if all(key in point[n] for _, key in keys)]
        values = [[point[n][key] for _, key in keys] for n in have]
        estimates = np.array([sum(s * v for s, v in zip(sign, row, strict=True)) for row in values])
        per_pair = estimates[~np.isnan(estimates)]
        if not per_pair.size:
            return None
        stacked = debiased(
            np.array([sum(s * draws[n][key] for s, (_, key) in zip(sign, keys, strict=True)) for n in have]),
            estimates,
        )
        known = ~np.isnan(stacked)  # tau is undefined in a resample where a side is constant
        boot = np.where(known, stacked, 0).sum(axis=0) / np.maximum(known.sum(axis=0), 1)
        boot = boot[known.any(axis=0)]
        low, high = np.quantile(boot, [alpha, 1 - alpha]) if boot.size else (math.nan, math.nan)
        return Estimate(float(np.mean(per_pair)), float(low), float(high), len(per_pair))

    measures: dict[str, dict[str, Estimate]] = {}
    versus: dict[str, Estimate] = {}
    for rule in table:
        for m in MEASURES:
            e = pooled([(rule, (rule, m))])
            if e is not None:
                measures.setdefault(rule, {})[m] = e
        if rule != baseline and rule in measures:
            e = pooled([(rule, (rule, "regret")), (baseline, (baseline, "regret"))], (1, -1))
            if e is not None:
                versus[rule] = e
    per_pair = {n: {r: {m: v for (rr, m), v in point[n].items() if rr == r} for r in table} for n in names}
    return ChoiceSummary(measures, versus, per_pair, baseline, k, confidence, n_bootstrap)


def choice_table(summary: ChoiceSummary | Mapping) -> str:
    """Plain text: per rule the pooled measures with intervals and the regret difference
    against the baseline (from a `ChoiceSummary` or its `to_dict()`)."""
    d = summary.to_dict() if isinstance(summary, ChoiceSummary) else summary

    def cell(e) -> str:
        return f"{e['value']:+.3f} [{e['ci_low']:+.3f},{e['ci_high']:+.3f}]" if e is not None else "-"

    names = ("hit", "regret", f"NDCG@{d['k']}", "tau", f"regret - {d['baseline']}")
    rows = [f"{'rule':<22} " + " ".join(f"{n:>21}" for n in names)]
    for rule, ms in d["measures"].items():
        cells = [cell(ms.get(m)) for m in MEASURES] + [cell(d["versus_baseline"].get(rule))]
        rows.append(f"{rule:<22} " + " ".join(f"{c:>21}" for c in cells))
    won = d["beats_baseline"]
    rows.append(
        f"rules whose regret is below {d['baseline']}'s with a {d['confidence']:.0%} interval "
        f"excluding 0: {', '.join(won) if won else 'none'}"
    )
    return "\n".join(rows)
