"""Statistics of the bridge-selection validation study: does a rule pick the best bridge?

Per pair the study has, for every candidate bridge, the hit of each test word (a share in
[0, 1] when averaged over example seeds), and for each selection rule a chosen bridge. The best
bridge in hindsight (the oracle) is the maximum of noisy accuracies, so comparing a rule with
the oracle measured on the same words is biased in the oracle's favour. Here the oracle is
**chosen on one half of the words and measured on the other** (`held_out_regret`): over many
random halvings, both ways, regret = acc_B(argmax acc_A) - acc_B(rule's choice). A rule that
reads evaluation data (the best step-1 accuracy) reads only half A too. Ties in the oracle's
choice are split evenly (the mean over the tied bridges).

Rules (`RULES`): `hsic` (the selection's highest score), `english`, `random` (the expectation
over a uniform choice: the mean over bridges, no draw), `step-1` (the bridge the model
translates the source into best), `typology` (the nearest bridge in the registry's taxonomy to
the target, then to the source; English first among equals), `target-share` (issue 26: the
largest share of B(b) among the target's own language-specific neurons, bridge/target.py).

Pooled over pairs (`pool`): each rule's mean regret with a bootstrap interval (the words of
each pair resampled with replacement, each resample's regret again averaged over halvings of its
draws, both ways, the draws centred on the estimate: `_split_weights`, `debiased`; conditional
on the pairs studied), the share of
pairs whose choice is in the top 2 by held-out accuracy, and Kendall's tau-b between the
selection scores and the accuracies, averaged over pairs, with a permutation test (scores
permuted within each pair; exact when there are few permutations).

Two rules compared (`pool`'s `differences`): the **paired accuracy difference**
regret(b) - regret(a) = acc_B(a's choice) - acc_B(b's choice), averaged over halvings and pairs
(the held-out oracle cancels out of it; positive: rule a is better), with the same word
bootstrap (each resample's halvings shared by both rules, so the interval is paired). Every
regret and difference also gets a **pairs-and-words interval** (`ci_low_pairs`,
`ci_high_pairs`): each resample draws the pairs with replacement and, within each drawn pair,
one word-bootstrap resample, so that it speaks for "pairs like these", not only these pairs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from jaxtyping import Float

from neuronoverlap.errors import InputError
from neuronoverlap.languages import DEFAULT_BRIDGES, taxonomy_distance
from neuronoverlap.stats.permutation import permutation_pvalue

RULES = ("hsic", "english", "random", "step-1", "typology", "target-share")


@dataclass
class PairData:
    """One pair's outcomes: `hits[i, j]` the hit of word j through bridges[i] (mean over
    example seeds); `step1[i, j]` whether step 1 gave a gold bridge word (NaN: not in the
    src-bridge dictionary); `scores` the selection's score per bridge (None: no selection)."""

    src: str
    tgt: str
    bridges: list[str]
    hits: Float[np.ndarray, "bridge word"]
    step1: Float[np.ndarray, "bridge word"] | None = None
    scores: dict[str, float] | None = None
    zero_shot: Float[np.ndarray, " word"] | None = None
    target_share: dict[str, float] | None = None  # issue 26: |B(b) & S_t| / |B(b)| (bridge/target.py)

    def __post_init__(self) -> None:
        self.hits = np.asarray(self.hits, dtype=np.float64)
        if self.hits.ndim != 2 or self.hits.shape[0] != len(self.bridges):
            raise InputError(f"{self.name}: hits must be bridges x words, got {self.hits.shape}")
        if self.hits.shape[1] < 2:
            raise InputError(f"{self.name}: the held-out oracle needs at least 2 words")
        if self.step1 is not None:
            self.step1 = np.asarray(self.step1, dtype=np.float64)
            if self.step1.shape != self.hits.shape:
                raise InputError(f"{self.name}: step1 must have the shape of hits")
        if self.scores is not None and set(self.scores) != set(self.bridges):
            raise InputError(f"{self.name}: scores must cover exactly the bridges")
        if self.target_share is not None and set(self.target_share) != set(self.bridges):
            raise InputError(f"{self.name}: target shares must cover exactly the bridges")

    @property
    def name(self) -> str:
        return f"{self.src}-{self.tgt}"


def typology_choice(src: str, tgt: str, bridges: Sequence[str]) -> str:
    """The bridge nearest the target in the taxonomy, then nearest the source; English first
    among equals, then the order given."""
    return min(
        bridges,
        key=lambda b: (
            taxonomy_distance(b, tgt),
            taxonomy_distance(b, src),
            b != "en",
            list(bridges).index(b),
        ),
    )


def _argmax_first(values: Float[np.ndarray, " bridge"]) -> int:
    return int(np.argmax(values))


def fixed_choice(pair: PairData, rule: str) -> str | None:
    """The bridge a rule picks without evaluation data (None: the rule does not apply)."""
    if rule == "hsic":
        if pair.scores is None:
            return None
        return pair.bridges[_argmax_first(np.array([pair.scores[b] for b in pair.bridges]))]
    if rule == "english":
        return "en" if "en" in pair.bridges else None
    if rule == "typology":
        return typology_choice(pair.src, pair.tgt, pair.bridges)
    if rule == "target-share":
        if pair.target_share is None:
            return None
        shares = [-np.inf if pair.target_share[b] is None else pair.target_share[b] for b in pair.bridges]
        return pair.bridges[_argmax_first(np.array(shares))]
    raise InputError(f"{rule!r} is not a fixed rule")


def _oracle_value(acc_a: np.ndarray, acc_b: np.ndarray) -> np.ndarray:
    """acc_B of the argmax of acc_A, ties split evenly; both (bridge, rep)."""
    best = acc_a == acc_a.max(axis=0, keepdims=True)
    return (acc_b * best).sum(axis=0) / best.sum(axis=0)


def _half_means(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(bridge, rep) means of `values` (bridge, word) under per-rep word weights (rep, word),
    ignoring NaN values."""
    known = ~np.isnan(values)
    total = np.where(known, values, 0.0) @ weights.T
    count = known.astype(np.float64) @ weights.T
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def _split_weights(n: int, reps: int, splits: int, rng: np.random.Generator, resample: bool):
    """Word weights (reps * splits, word) of half A and half B: `splits` random halvings per rep.

    Without `resample` the words themselves are halved. With it, each rep first draws n words
    with replacement (a bootstrap resample) and its halvings halve those n *draws*, so each half
    is n // 2 draws from the sample, as each half of the real words is n // 2 words from the
    population (a word drawn twice may fall in both halves, as two independent samples may share
    a word). Halving the words instead, with their bootstrap counts as weights, gives each half
    1.5 times the variance of a real half and anti-correlated halves: the held-out oracle is then
    weaker in the resamples than in the data and the intervals of regret, hit, NDCG and tau
    shift away from the estimate (docs/evaluation.md, "Statistics")."""
    rows = reps * splits
    halves = np.argsort(rng.random((rows, n)), axis=1) < n // 2  # True: half A
    if not resample:
        return halves.astype(np.float64), (~halves).astype(np.float64)
    draws = np.repeat(rng.integers(0, n, size=(reps, n)), splits, axis=0)  # (rows, draw)
    cells = draws + n * np.arange(rows)[:, None]  # (row, word) as one index

    def counts(mask: np.ndarray) -> np.ndarray:
        return np.bincount(cells[mask], minlength=rows * n).reshape(rows, n).astype(np.float64)

    return counts(halves), counts(~halves)


def _regrets(pair: PairData, wa: np.ndarray, wb: np.ndarray) -> dict[str, np.ndarray]:
    """Per rep, each rule's regret on half B against the oracle chosen on half A, and the share
    of reps with the choice in the top 2 of half B (key 'top2:rule')."""
    acc_a, acc_b = _half_means(pair.hits, wa), _half_means(pair.hits, wb)
    oracle = _oracle_value(acc_a, acc_b)
    out: dict[str, np.ndarray] = {"oracle": oracle}
    rank_b = 1 + (acc_b[None, :, :] > acc_b[:, None, :]).sum(axis=1)  # (bridge, rep)
    for rule in RULES:
        if rule == "random":
            out[rule] = oracle - acc_b.mean(axis=0)
            out[f"top2:{rule}"] = (rank_b <= 2).mean(axis=0)
        elif rule == "step-1":
            if pair.step1 is None:
                continue
            step1_a = _half_means(pair.step1, wa)
            filled = np.where(np.isnan(step1_a), -np.inf, step1_a)
            best = filled == filled.max(axis=0, keepdims=True)
            out[rule] = oracle - (acc_b * best).sum(axis=0) / best.sum(axis=0)
            out[f"top2:{rule}"] = ((rank_b <= 2) * best).sum(axis=0) / best.sum(axis=0)
        else:
            choice = fixed_choice(pair, rule)
            if choice is None:
                continue
            i = pair.bridges.index(choice)
            out[rule] = oracle - acc_b[i]
            out[f"top2:{rule}"] = (rank_b[i] <= 2).astype(np.float64)
    return out


def held_out_regret(pair: PairData, n_splits: int = 200, seed: int = 0) -> dict[str, float]:
    """Each rule's mean regret over `n_splits` random halvings of the words, both ways (the
    halves swap roles), and its share of halvings with the choice in the top 2 of the
    measuring half (`top2:rule`); `oracle` is the oracle's mean held-out accuracy."""
    if n_splits < 1:
        raise InputError(f"n_splits must be at least 1, got {n_splits}")
    wa, wb = _split_weights(pair.hits.shape[1], 1, n_splits, np.random.default_rng(seed), False)
    return {k: float(v[0]) for k, v in _both_ways(pair, wa, wb, 1).items()}


def _both_ways(pair: PairData, wa: np.ndarray, wb: np.ndarray, reps: int) -> dict[str, np.ndarray]:
    """`_regrets` with the halves in both roles, averaged over each rep's halvings: (rep,)."""
    with np.errstate(invalid="ignore", divide="ignore"):  # a resampled half may be empty
        one, other = _regrets(pair, wa, wb), _regrets(pair, wb, wa)
    out = {}
    for k in one:
        values = np.stack([one[k], other[k]], axis=1).reshape(reps, -1)
        known = ~np.isnan(values)
        out[k] = np.where(known, values, 0).sum(axis=1) / np.maximum(known.sum(axis=1), 1)
        out[k][~known.any(axis=1)] = np.nan
    return out


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b of two sequences (nan when either is constant)."""
    sx, sy = _signs(np.asarray(x, float)), _signs(np.asarray(y, float))
    denominator = math.sqrt(float((sx != 0).sum()) * float((sy != 0).sum()))
    return float((sx * sy).sum() / denominator) if denominator else math.nan


def _signs(values: np.ndarray) -> np.ndarray:
    """sign(v_i - v_j) over i < j, along the last axis."""
    i, j = np.triu_indices(values.shape[-1], k=1)
    return np.sign(values[..., i] - values[..., j])


@dataclass(frozen=True)
class TauTest:
    """Mean Kendall tau-b over pairs between scores and accuracies, and its permutation test
    (H1: positive association; p = (1 + #null >= observed) / (1 + permutations), or the exact
    share when every permutation is enumerated)."""

    tau: float
    per_pair: dict[str, float]
    pvalue: float
    n_permutations: int
    exact: bool


def pooled_kendall_tau(
    scores: Mapping[str, Sequence[float]],
    accuracies: Mapping[str, Sequence[float]],
    n_permutations: int = 9999,
    seed: int = 0,
    exact_below: int = 20_000,
) -> TauTest:
    """Kendall's tau-b per pair (scores against accuracies over its bridges), averaged over the
    pairs where it is defined, tested by permuting each pair's scores independently."""
    names = [k for k in scores if k in accuracies]
    per_pair = {k: kendall_tau_b(scores[k], accuracies[k]) for k in names}
    used = [k for k in names if not math.isnan(per_pair[k])]
    if not used:
        return TauTest(math.nan, per_pair, math.nan, 0, False)
    parts = []
    for k in used:
        sx, sy = _signs(np.asarray(scores[k], float)), _signs(np.asarray(accuracies[k], float))
        parts.append(
            (np.asarray(scores[k], float), sy, math.sqrt(float((sx != 0).sum()) * float((sy != 0).sum())))
        )
    observed = float(np.mean([per_pair[k] for k in used]))
    total = math.prod(math.factorial(len(p[0])) for p in parts)
    rng = np.random.default_rng(seed)
    if total <= exact_below:
        perms = [np.array(list(itertools.permutations(range(len(p[0]))))) for p in parts]
        taus = [(_signs(p[0][perm]) @ p[1]) / p[2] for p, perm in zip(parts, perms, strict=True)]
        grids = np.meshgrid(*taus, indexing="ij")
        null = np.mean([g.ravel() for g in grids], axis=0)
        pvalue = permutation_pvalue(np.float64(observed), null, scale=1.0, exact=True)
        return TauTest(observed, per_pair, pvalue, total, True)
    null = np.zeros(n_permutations)
    for values, sy, denominator in parts:
        perm = np.argsort(rng.random((n_permutations, values.size)), axis=1)
        null += (_signs(values[perm]) @ sy) / denominator
    null /= len(parts)
    pvalue = permutation_pvalue(np.float64(observed), null, scale=1.0)
    return TauTest(observed, per_pair, pvalue, n_permutations, False)


@dataclass
class StudySummary:
    """Pooled results: per rule the mean regret [interval], the share of pairs in the top 2 and
    the number of pairs it applied to; per pair the held-out values; the tau test."""

    rules: dict[str, dict[str, float]]
    per_pair: dict[str, dict[str, float]]
    tau: TauTest | None
    confidence: float
    n_bootstrap: int
    extra: dict = field(default_factory=dict)
    differences: dict[str, dict[str, float]] = field(default_factory=dict)  # "a-b": a better if > 0


def pool(
    pairs: Sequence[PairData],
    n_splits: int = 200,
    n_bootstrap: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    n_permutations: int = 9999,
    bootstrap_splits: int = 8,
) -> StudySummary:
    """Pool the held-out regret of every rule over `pairs` (see the module docstring)."""
    if not pairs:
        raise InputError("the study needs at least one pair")
    if not 0 < confidence < 1:
        raise InputError(f"confidence must be between 0 and 1, got {confidence}")
    names = [p.name for p in pairs]
    if len(set(names)) != len(names):
        raise InputError(f"a pair appears twice in the study: {', '.join(names)}")
    per_pair = {p.name: held_out_regret(p, n_splits, seed) for p in pairs}
    rng = np.random.default_rng(seed + 1)
    draws: dict[str, list[np.ndarray]] = {}
    for p in pairs:
        wa, wb = _split_weights(p.hits.shape[1], n_bootstrap, bootstrap_splits, rng, True)
        for key, values in _both_ways(p, wa, wb, n_bootstrap).items():
            draws.setdefault(key, []).append(values)
    alpha = (1 - confidence) / 2
    pair_rng = np.random.default_rng(seed + 2)
    rules: dict[str, dict[str, float]] = {}
    for rule in RULES:
        have = [p.name for p in pairs if rule in per_pair[p.name]]
        if not have:
            continue
        boot = np.stack(draws[rule])  # (pair in `have`, resample)
        estimates = np.array([per_pair[k][rule] for k in have])
        rules[rule] = {
            "mean_regret": float(np.mean(estimates)),
            **_intervals(boot, estimates, alpha, pair_rng),
            "share_top2": float(np.mean([per_pair[k][f"top2:{rule}"] for k in have])),
            "n_pairs": len(have),
        }
    differences = {}
    for a, b in itertools.combinations(list(rules), 2):
        both = [i for i, p in enumerate(pairs) if a in per_pair[p.name] and b in per_pair[p.name]]
        if not both:
            continue
        index = {rule: [p.name for p in pairs if rule in per_pair[p.name]] for rule in (a, b)}
        rows = [
            draws[b][index[b].index(pairs[i].name)] - draws[a][index[a].index(pairs[i].name)] for i in both
        ]
        estimates = np.array([per_pair[pairs[i].name][b] - per_pair[pairs[i].name][a] for i in both])
        differences[f"{a}-{b}"] = {
            "rules": [a, b],  # the key alone is ambiguous where a rule's name holds '-' (step-1)
            "difference": float(np.mean(estimates)),
            **_intervals(np.stack(rows), estimates, alpha, pair_rng),
            "n_pairs": len(both),
        }
    tau = None
    scored = [p for p in pairs if p.scores is not None]
    if scored:
        tau = pooled_kendall_tau(
            {p.name: [p.scores[b] for b in p.bridges] for p in scored},
            {p.name: list(p.hits.mean(axis=1)) for p in scored},
            n_permutations=n_permutations,
            seed=seed,
        )
    return StudySummary(rules, per_pair, tau, confidence, n_bootstrap, differences=differences)


def debiased(
    draws: Float[np.ndarray, "pair resample"], estimates: Float[np.ndarray, " pair"]
) -> Float[np.ndarray, "pair resample"]:
    """Each pair's bootstrap draws moved so that their median is the pair's estimate (the
    bootstrap's estimate of median bias taken out, as the bias-corrected percentile interval
    does). The held-out oracle's regret and hit are not smooth in the accuracies: a resample's
    own spread of accuracies (noise, where the bridges are equal) moves their bootstrap
    distribution away from the estimate, and a plain percentile interval then misses the truth
    (docs/evaluation.md, "Statistics"). NaN draws stay NaN; a pair without a finite estimate or
    any finite draw is left as it is."""
    finite = ~np.isnan(draws).all(axis=1) & np.isfinite(estimates)
    centre = np.zeros(len(draws))
    centre[finite] = np.nanmedian(draws[finite], axis=1)
    bias = np.where(finite, centre - estimates, 0.0)
    return draws - bias[:, None]


def _intervals(
    boot: Float[np.ndarray, "pair resample"],
    estimates: Float[np.ndarray, " pair"],
    alpha: float,
    rng: np.random.Generator,
) -> dict:
    """Percentile intervals of the mean over pairs, from draws centred on each pair's estimate
    (`debiased`): words resampled (`ci_low`, `ci_high`; the pairs fixed), and pairs and words
    resampled (`ci_low_pairs`, `ci_high_pairs`). Resamples with a NaN (an empty half, only with
    very few words) are left out."""
    boot = debiased(boot, np.asarray(estimates, dtype=np.float64))
    n_pairs, n_resamples = boot.shape
    words = boot.mean(axis=0)
    drawn = rng.integers(0, n_pairs, size=(n_resamples, n_pairs))
    both = boot[drawn, np.arange(n_resamples)[:, None]].mean(axis=1)
    out = {}
    for name, values in (("", words), ("_pairs", both)):
        values = values[~np.isnan(values)]
        low, high = np.quantile(values, [alpha, 1 - alpha]) if values.size else (math.nan, math.nan)
        out[f"ci_low{name}"], out[f"ci_high{name}"] = float(low), float(high)
    return out


def simulate_pair(
    true_accuracy: Sequence[float],
    n_words: int,
    rng: np.random.Generator,
    difficulty_sd: float = 1.0,
    scores: Callable[[np.ndarray], np.ndarray] | None = None,
    src: str = "fi",
    tgt: str = "hu",
) -> PairData:
    """A simulated pair whose bridges are the first candidates of DEFAULT_BRIDGES: word j's hit
    through bridge i is Bernoulli(sigmoid(logit(p_i) + d_j)), with item difficulty
    d_j ~ N(0, difficulty_sd) shared across bridges (as real words are). `scores(p)` gives the
    selection's scores (None: no selection)."""
    p = np.asarray(true_accuracy, float)
    if p.size > len(DEFAULT_BRIDGES):
        raise InputError(f"at most {len(DEFAULT_BRIDGES)} simulated bridges")
    names = list(DEFAULT_BRIDGES[: p.size])
    d = rng.normal(0, difficulty_sd, n_words)
    logits = np.log(p / (1 - p))[:, None] + d[None, :]
    hits = (rng.random((p.size, n_words)) < 1 / (1 + np.exp(-logits))).astype(float)
    s = None if scores is None else dict(zip(names, map(float, scores(p)), strict=True))
    return PairData(src, tgt, names, hits, scores=s)
