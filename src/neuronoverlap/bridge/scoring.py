"""Bridge selection on arrays: activations and neuron sets in, a `BridgeSelection` out.

What a researcher holding a TransformerLens cache has: per window layer l the activations
[n_samples, d_mlp] over the s<->t probe samples, the overlap set O(s,t) and each candidate's
bridge-specific set B(b; s,t). Per layer (docs/hsic.md, "Calibrated bridge selection" and
"The repaired score"):

0. Nuisance (optional, `nuisance`): each neuron's activations residualised on the covariates
   (the store path: counted tokens and direction); their R^2 is reported per set.
1. S = pairwise score of every neuron of O_l against every neuron of layer l, once
   (hsic/columns.py); the raw score of any set J of the layer is the max-mean of S[:, J].
2. Calibration pool: the neurons of layer l outside O(s,t) (B_l lies in it); `pool="matched"`
   (default) draws each random set bin by bin from B_l's firing-probability bins
   (`ACTIVITY_EDGES`, short bins merged: `matched_groups`), `pool="layer"` uniformly. R random
   sets per key, in `n_draws` independent draws, give mean and sd of the raw score:
   effect_l(b) = raw_l(b) - mean, z_l(b) = (raw_l(b) - mean) / sd, each averaged over the
   draws (their spread is the statistic's Monte Carlo error). A further R random "bridges"
   per key give the empirical p-value of the window-mean z, (1 + #{T_r >= T}) / (1 + R):
   exact when B is, within each layer, a uniformly random set of its pool; Holm-adjusted over
   the candidates beside it.
3. effect(b) (the default ranking statistic) and calibrated(b) = the means over the window
   layers with a non-empty O_l (the same for every bridge) of effect_l(b) and z_l(b), 0 (the
   null expectation) where B_l is empty.
4. Bootstrap (optional): resample probe word pairs with replacement, both directions of a pair
   together. With `resample_sets` (the store path) O and every B are rebuilt on each resample
   by their own rule, the scores recomputed on the resampled samples, and the random sets
   drawn afresh; without it the sets are held fixed and a resample is a reweighting of the
   full-sample Gram matrices by the sample counts (hsic/reweighted.py), calibrated by draw
   r mod n_draws.
5. Permutation test (optional): the raw window score against permutations of B's samples
   within each direction (s->t, t->s), the same permutation in every layer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor
from tqdm.auto import tqdm

from neuronoverlap.bridge.result import METHODS, BootstrapSummary, BridgeSelection, rank
from neuronoverlap.errors import InputError
from neuronoverlap.hsic.columns import SCORE_KINDS, overlap_bandwidth, overlap_scores, set_scores
from neuronoverlap.hsic.independence import stratified_permutations
from neuronoverlap.hsic.maxmean import permuted_max_mean, score_operands
from neuronoverlap.hsic.pairwise import MEMORY_BUDGET_BYTES, feature_count
from neuronoverlap.hsic.reference import reference_bridge_score, reference_zscore
from neuronoverlap.hsic.reweighted import ReweightedScores
from neuronoverlap.options import CALIBRATION_POOLS
from neuronoverlap.sets import NeuronSet
from neuronoverlap.stats.permutation import permutation_pvalue

#: Below this standard deviation (relative to the mean's size) the random-set scores are taken
#: as constant and z_l = 0.
FLAT_SD = 1e-12

#: Calibration pools: "matched" (default) draws each random set from the same firing-probability
#: bins (`ACTIVITY_EDGES`) as B_l's neurons, bin by bin; "layer" draws uniformly from the layer
#: outside O(s,t) (the pool before issue 26). The names are `options.CALIBRATION_POOLS`.
POOLS = CALIBRATION_POOLS

#: Bin edges of the activity-matched pool, on a neuron's pooled firing probability over the s<->t
#: probe samples: fine near 1, where bridge-specific neurons lie (median 0.996 on Gemma-3-270M).
ACTIVITY_EDGES = (
    *(0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    *(0.95, 0.98, 0.99, 0.995, 0.999, 1.0),
)
N_BINS = len(ACTIVITY_EDGES) - 1


def activity_bins(activity: Float[np.ndarray, " neuron"]) -> Int[np.ndarray, " neuron"]:
    """Each neuron's bin (0 .. N_BINS - 1) of `ACTIVITY_EDGES`; 1.0 falls in the last."""
    return np.digitize(np.asarray(activity, dtype=np.float64), ACTIVITY_EDGES[1:-1])


#: A group of activity bins must hold at least this many times the neurons drawn from it;
#: otherwise it is merged with a neighbouring group (else a bin holding little besides B's own
#: neurons would make every random set B itself).
MIN_POOL_FACTOR = 5


def matched_groups(
    needed: Int[np.ndarray, " bin"], available: Int[np.ndarray, " bin"]
) -> tuple[tuple[int, int, int], ...]:
    """Adjacent activity bins grouped until each group the bridge draws from holds at least
    MIN_POOL_FACTOR times its count (or the group is every bin): ((first, last, count), ...)
    for the groups with count > 0. A short group merges with the neighbour holding more neurons."""
    groups = [[i, i, int(needed[i]), int(available[i])] for i in range(len(needed))]
    while len(groups) > 1:
        short = [g for g, (_, _, k, m) in enumerate(groups) if k and m < MIN_POOL_FACTOR * k]
        if not short:
            break
        g = short[0]
        left = groups[g - 1][3] if g > 0 else -1
        right = groups[g + 1][3] if g + 1 < len(groups) else -1
        other = g - 1 if left >= right else g + 1
        a, b = sorted((g, other))
        groups[a] = [groups[a][0], groups[b][1], groups[a][2] + groups[b][2], groups[a][3] + groups[b][3]]
        del groups[b]
    return tuple((first, last, k) for first, last, k, _ in groups if k)


def activity_proxy(activations: Float[np.ndarray, "sample neuron"]) -> Float[np.ndarray, " neuron"]:
    """The activity the arrays path matches on when no firing probability is given: the share
    of samples whose mean activation is > 0."""
    return (np.asarray(activations) > 0).mean(axis=0)


def draw_sets(
    pool: Int[np.ndarray, " pool"], size: int, count: int, rng: np.random.Generator
) -> Int[np.ndarray, "set size"]:
    """`count` uniformly random `size`-subsets of `pool` (without replacement within a set)."""
    keys = rng.random((count, len(pool)))
    return (
        pool[np.argpartition(keys, size - 1, axis=1)[:, :size]]
        if size < len(pool)
        else np.tile(pool, (count, 1))
    )


def _mean_sd(values: Tensor) -> tuple[float, float]:
    return float(values.mean()), float(values.std()) if values.numel() > 1 else 0.0


def _z(value, mean: float, sd: float):
    """(value - mean) / sd, 0 where the random-set scores are flat (sd ~ 0); value: a number
    or an array."""
    if sd <= FLAT_SD * max(abs(mean), 1e-300):
        return value * 0.0
    return (value - mean) / sd


class _Layer:
    """One window layer: its rows, O_l, each bridge's B_l and the random sets.

    A bridge's random sets are keyed by what they match: (|B_l|,) for the "layer" pool, the
    count of B_l's neurons in each activity bin for the "matched" pool. `n_draws` independent
    draws of `n_random` calibration sets per key; one further draw of `n_random` random
    "bridges" per key for the empirical p-value."""

    def __init__(
        self,
        layer: int,
        rows: Tensor,
        overlap: Int[np.ndarray, " n"],
        bridge_columns: dict[str, np.ndarray],
        n_random: int,
        rng: np.random.Generator,
        excluded: Int[np.ndarray, " m"] | None = None,
        bins: Int[np.ndarray, " neuron"] | None = None,
        n_draws: int = 1,
        with_tests: bool = True,
    ):
        self.layer, self.rows, self.overlap, self.bridge_columns = layer, rows, overlap, bridge_columns
        outside = overlap if excluded is None else np.union1d(overlap, excluded)
        self.pool = np.setdiff1d(np.arange(rows.shape[0]), outside)
        self.bins = bins
        self.keys = {b: self.key(c) for b, c in bridge_columns.items() if len(c)}
        distinct = sorted(set(self.keys.values()))
        self.calibration = {k: [self.draw(k, n_random, rng) for _ in range(n_draws)] for k in distinct}
        self.tests = {k: self.draw(k, n_random, rng) for k in distinct} if with_tests else {}
        self.reweighted: ReweightedScores | None = None

    def key(self, columns: np.ndarray) -> tuple:
        """(|B_l|,) for the layer pool; for the matched pool ((first bin, last bin, count), ...):
        B_l's neurons counted per group of adjacent bins (`matched_groups`)."""
        if self.bins is None:
            return (len(columns),)
        needed = np.bincount(self.bins[columns], minlength=N_BINS)
        available = np.bincount(self.bins[self.pool], minlength=N_BINS)
        return matched_groups(needed, available)

    def draw(self, key: tuple, count: int, rng: np.random.Generator) -> np.ndarray:
        """`count` random sets matching `key` (see `key`)."""
        if self.bins is None:
            return draw_sets(self.pool, key[0], count, rng)
        parts = []
        for first, last, k in key:
            members = self.pool[(self.bins[self.pool] >= first) & (self.bins[self.pool] <= last)]
            if len(members) < k:
                raise InputError(
                    f"layer {self.layer}: a bridge set holds {k} neurons of activity bins {first}-{last} "
                    f"but the calibration pool only {len(members)} (does B overlap O or the excluded?)"
                )
            parts.append(draw_sets(members, k, count, rng))
        return np.concatenate(parts, axis=1)

    def columns(self, with_tests: bool) -> np.ndarray:
        """Every column the scores need: the bridges' and the random sets'."""
        parts = [c for c in self.bridge_columns.values()]
        parts += [s for draws in self.calibration.values() for s in draws]
        if with_tests:
            parts += list(self.tests.values())
        return np.unique(np.concatenate([np.ravel(p) for p in parts]).astype(np.int64))

    def score(
        self,
        kind: str,
        counts: Tensor | None = None,
        with_tests: bool = True,
        layer_matrix: Tensor | None = None,
        layer_columns: Int[np.ndarray, " column"] | None = None,
    ) -> _LayerScores:
        """The layer's scores (`_LayerScores`); with `counts` (how often each sample is drawn)
        those of a bootstrap resample, kernels held fixed; with `layer_matrix` (O_l against the
        sorted `layer_columns`, a superset of the columns needed, already scored) that matrix."""
        columns = self.columns(with_tests)
        if layer_matrix is not None:
            matrix = layer_matrix[:, torch.from_numpy(np.searchsorted(layer_columns, columns))]
        elif counts is None:
            matrix = overlap_scores(self.rows[self.overlap], self.rows[columns], kind)
        else:
            if self.reweighted is None:
                self.reweighted = ReweightedScores(self.rows[self.overlap], self.rows[columns], kind)
            matrix = self.reweighted.score(counts)
        column_max = matrix.amax(dim=0)

        def scored(sets: np.ndarray) -> Tensor:
            local = torch.from_numpy(np.searchsorted(columns, sets))
            return set_scores(matrix, local, column_max)

        calibration = {
            k: np.array([_mean_sd(scored(sets)) for sets in draws]) for k, draws in self.calibration.items()
        }
        out = _LayerScores()
        for b, cols in self.bridge_columns.items():
            if len(cols) == 0:
                continue
            raw = float(scored(cols[None])[0])
            cal = calibration[self.keys[b]]
            out.raw[b] = raw
            out.calibration[b] = cal
            out.effect[b] = raw - cal[:, 0]
            out.z[b] = np.array([_z(raw, mean, sd) for mean, sd in cal])
        if with_tests:
            for k, sets in self.tests.items():
                values = scored(sets).double().numpy()
                out.tests[k] = np.mean([_z(values, mean, sd) for mean, sd in calibration[k]], axis=0)
        return out

    def budget(self, columns: np.ndarray) -> int:
        """A memory budget that keeps B's features whole (not rebuilt for every block of O)."""
        n = self.rows.shape[1]
        return max(MEMORY_BUDGET_BYTES, 4 * len(columns) * feature_count(n, True) * self.rows.element_size())

    def reference(self, samples: Tensor | None = None) -> dict[str, float | None]:
        """The reference code's score of each bridge (bandwidth from O_l and B_l), on the
        samples listed in `samples` (a resample: z-scores and bandwidth re-estimated)."""
        rows = self.rows if samples is None else self.rows[:, samples]
        return {
            b: None
            if len(cols) == 0
            else reference_bridge_score(
                rows[self.overlap], rows[torch.from_numpy(cols)], memory_budget_bytes=self.budget(cols)
            )
            for b, cols in self.bridge_columns.items()
        }


class _LayerScores:
    """One layer's scores, per bridge with a non-empty B_l: raw; calibration [draw, (mean, sd)];
    effect and z per draw [draw]; tests: per key, the random bridges' z (mean over draws)."""

    def __init__(self):
        self.raw: dict[str, float] = {}
        self.calibration: dict[str, np.ndarray] = {}
        self.effect: dict[str, np.ndarray] = {}
        self.z: dict[str, np.ndarray] = {}
        self.tests: dict[tuple[int, ...], np.ndarray] = {}

    def statistic(self, method: str, b: str) -> np.ndarray | None:
        """Per draw, the layer statistic `method` ranks by (None: B_l empty)."""
        if b not in self.raw:
            return None
        return self.effect[b] if method == "effect" else self.z[b]


def _window_mean(per_layer: dict[int, float | None], empty_as: float | None):
    values = [v if v is not None else empty_as for v in per_layer.values()]
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def default_directions(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The store's layout: n/2 s->t samples, then the t->s samples of the same word pairs."""
    if n % 2:
        raise InputError(f"{n} samples cannot be split into s->t and t->s halves; pass directions and units")
    half = n // 2
    return np.repeat([0, 1], half), np.tile(np.arange(half), 2)


def check_choices(method: str, pool: str, n_draws) -> None:
    """The one-line errors of an unknown ranking statistic or pool, or too few draws."""
    if method not in METHODS:
        raise InputError(f"unknown method {method!r} (ranking statistic); use one of {', '.join(METHODS)}")
    if pool not in POOLS:
        raise InputError(f"unknown calibration pool {pool!r}; use one of {', '.join(POOLS)}")
    if int(n_draws) != n_draws or n_draws < 2:
        raise InputError(f"n_draws (calibration draws) must be an integer >= 2, got {n_draws!r}")


def _check_inputs(
    activations,
    overlap,
    bridges,
    directions,
    units,
    score,
    n_random,
    n_bootstrap,
    n_permutations,
    level,
):
    if score not in SCORE_KINDS:
        raise InputError(f"unknown pairwise score {score!r}; use one of {', '.join(SCORE_KINDS)}")
    if not bridges:
        raise InputError("no candidate bridges")
    if not activations:
        raise InputError("no window layers: activations is empty")
    for name, value, least in (
        ("n_random", n_random, 2),
        ("n_bootstrap", n_bootstrap, 0),
        ("n_permutations", n_permutations, 0),
    ):
        if int(value) != value or value < least:
            raise InputError(f"{name} must be an integer >= {least}, got {value!r}")
    if not 0 < level < 1:
        raise InputError(f"level must be in (0, 1), got {level}")
    shapes = {overlap.shape} | {s.shape for s in bridges.values()}
    if len(shapes) != 1:
        raise InputError(f"neuron sets of different model shapes: {sorted(shapes)}")
    n_layers, d_mlp = overlap.shape
    counts = set()
    for layer, acts in activations.items():
        if not 0 <= layer < n_layers:
            raise InputError(f"layer {layer} is outside the sets' 0..{n_layers - 1}")
        if acts.ndim != 2 or acts.shape[1] != d_mlp:
            raise InputError(
                f"layer {layer}: activations must be [n_samples, {d_mlp}], got {tuple(acts.shape)}"
            )
        if not np.isfinite(acts).all():
            raise InputError(f"layer {layer}: activations hold NaN or infinite values")
        counts.add(acts.shape[0])
    if len(counts) != 1:
        raise InputError(f"layers have different sample counts: {sorted(counts)}")
    n = counts.pop()
    if n < 4:
        raise InputError(f"need at least 4 samples, got {n}")
    if directions is None and units is None:
        directions, units = default_directions(n)
    elif directions is None or units is None:
        raise InputError("pass both directions and units, or neither")
    directions, units = np.asarray(directions), np.asarray(units)
    if directions.shape != (n,) or units.shape != (n,):
        raise InputError(f"directions and units must have one entry per sample ({n})")
    return directions, units


def holm(pvalues: Mapping[str, float]) -> dict[str, float]:
    """Holm's step-down adjustment of p-values over the candidates (family-wise error)."""
    names = sorted(pvalues, key=lambda b: pvalues[b])
    m, running, out = len(names), 0.0, {}
    for i, b in enumerate(names):
        running = max(running, min(1.0, (m - i) * pvalues[b]))
        out[b] = running
    return {b: out[b] for b in pvalues}


def residualise(
    rows: Float[np.ndarray, "neuron sample"], nuisance: Float[np.ndarray, "sample covariate"]
) -> tuple[Float[np.ndarray, "neuron sample"], Float[np.ndarray, " neuron"], Float[np.ndarray, " neuron"]]:
    """Rows minus their least-squares fit on [1, nuisance]; also each row's explained and total
    sum of squares (for the nuisance R^2 of a set: explained over total, summed over its rows)."""
    design = np.column_stack([np.ones(len(nuisance)), nuisance])
    coef, *_ = np.linalg.lstsq(design, rows.T, rcond=None)
    fitted = (design @ coef).T
    centred = rows - rows.mean(axis=1, keepdims=True)
    explained = ((fitted - rows.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    return rows - fitted + rows.mean(axis=1, keepdims=True), explained, (centred**2).sum(axis=1)


def _nuisance_r2(sums: dict[int, tuple[np.ndarray, np.ndarray]], neurons: NeuronSet) -> float | None:
    explained = total = 0.0
    for layer, (ss_fit, ss_total) in sums.items():
        columns = neurons.layer(layer)
        explained += float(ss_fit[columns].sum())
        total += float(ss_total[columns].sum())
    return explained / total if total > 0 else None


def select_from_activations(
    activations: Mapping[int, Float[np.ndarray, "sample neuron"]],
    overlap: NeuronSet,
    bridges: Mapping[str, NeuronSet],
    *,
    src: str = "s",
    tgt: str = "t",
    directions: Int[np.ndarray, " sample"] | None = None,
    units: Int[np.ndarray, " sample"] | None = None,
    method: str = "effect",
    score: str = "reference",
    pool: str = "matched",
    activity: Mapping[int, Float[np.ndarray, " neuron"]] | None = None,
    n_random: int = 200,
    n_draws: int = 5,
    n_bootstrap: int = 200,
    n_permutations: int = 0,
    level: float = 0.95,
    seed: int = 0,
    progress: bool = False,
    parameters: Mapping | None = None,
    with_reference: bool = True,
    exclude: Bool[np.ndarray, "layer neuron"] | None = None,
    nuisance: Float[np.ndarray, "sample covariate"] | None = None,
    resample_sets: ResampleSets | None = None,
) -> BridgeSelection:
    """Score the candidate bridges (module docstring) and rank them by `method`.

    activations: window layer id -> [n_samples, d_mlp] (float); directions: 0 for s->t, 1 for
    t->s per sample; units: the probe word pair of each sample (its two directions share it).
    Default for both: the first half s->t, the second half t->s of the same pairs in order.
    method: "effect" (default; raw minus the random sets' mean), "calibrated" (z) or
    "reference". pool: "matched" (default; random sets from B_l's activity bins, `activity`:
    layer -> each neuron's firing probability, default `activity_proxy`) or "layer".
    n_draws: independent draws of the n_random calibration sets, averaged.
    with_reference=False skips the reference code's score (its bandwidth changes with every
    bridge, so it cannot reuse the layer matrix; the dearest part at large shapes).
    exclude: neurons left out of the calibration pool too (the language-agnostic ones, which
    O and B leave out), so that the random sets are drawn where B could lie.
    nuisance: covariates [n_samples, c] (e.g. token count, direction) the activations are
    residualised on before scoring; their R^2 per set is reported.
    resample_sets: rebuilds (O, {b: B}) on a bootstrap resample (given its s<->t sample indices
    and a generator); with it the bootstrap rescores on rebuilt sets, without it the sets are
    held fixed.
    """
    check_choices(method, pool, n_draws)
    if method == "reference" and not with_reference:
        raise InputError("method 'reference' ranks by the reference score: with_reference=True")
    directions, units = _check_inputs(
        activations,
        overlap,
        bridges,
        directions,
        units,
        score,
        n_random,
        n_bootstrap,
        n_permutations,
        level,
    )
    if exclude is not None and np.shape(exclude) != overlap.shape:
        raise InputError(f"the excluded neurons are {np.shape(exclude)}, the sets {overlap.shape}")
    n = len(units)
    if nuisance is not None:
        nuisance = np.asarray(nuisance, dtype=np.float64).reshape(n, -1)
    candidates = list(bridges)
    window = sorted(activations)
    streams = np.random.SeedSequence(seed).spawn(3)
    rng_sets = np.random.default_rng(streams[0])
    rows_of, bins_of, sums = {}, {}, {}
    for layer in window:
        rows = np.ascontiguousarray(np.asarray(activations[layer], np.float64).T)
        if nuisance is not None:
            rows, *sums[layer] = residualise(rows, nuisance)
        rows_of[layer] = torch.from_numpy(np.ascontiguousarray(rows))
        if pool == "matched":
            level_of = activity_proxy(activations[layer]) if activity is None else activity[layer]
            bins_of[layer] = activity_bins(level_of)
    excluded_of = {layer: None if exclude is None else np.flatnonzero(exclude[layer]) for layer in window}
    layers = []
    for layer in window:
        o_idx = overlap.layer(layer)
        if len(o_idx) == 0:
            continue
        columns = {b: bridges[b].layer(layer) for b in candidates}
        layers.append(
            _Layer(
                layer,
                rows_of[layer],
                o_idx,
                columns,
                n_random,
                rng_sets,
                excluded_of[layer],
                bins_of.get(layer),
                n_draws,
            )
        )
    if not layers:
        raise InputError(f"O({src},{tgt}) has no neurons in the window layers {window}")
    scored = [lay.layer for lay in layers]

    sizes = {
        b: {layer: [len(overlap.layer(layer)), len(bridges[b].layer(layer))] for layer in window}
        for b in candidates
    }
    raw_l = {b: {} for b in candidates}
    z_l = {b: {} for b in candidates}
    effect_l = {b: {} for b in candidates}
    ref_l = {b: {} for b in candidates}
    calibration = {b: {} for b in candidates}
    by_draw = {b: np.zeros(n_draws) for b in candidates}  # the ranking statistic per draw (window sum)
    test_sum = {b: np.zeros(n_random) for b in candidates}
    bar = tqdm(layers, desc=f"bridge {src}-{tgt} calibration", unit="layer", disable=not progress)
    for lay in bar:
        out = lay.score(score)
        reference = lay.reference() if with_reference else dict.fromkeys(candidates)
        for b in candidates:
            ref_l[b][lay.layer] = reference[b]
            if b not in out.raw:
                raw_l[b][lay.layer] = z_l[b][lay.layer] = effect_l[b][lay.layer] = None
                calibration[b][lay.layer] = None
                continue
            raw_l[b][lay.layer] = out.raw[b]
            z_l[b][lay.layer] = float(out.z[b].mean())
            effect_l[b][lay.layer] = float(out.effect[b].mean())
            calibration[b][lay.layer] = [float(v) for v in out.calibration[b].mean(axis=0)]
            if method != "reference":
                by_draw[b] += out.statistic(method, b)
            test_sum[b] += out.tests[lay.keys[b]]
    for b in candidates:  # layers of the window without O_l: nothing to score for any bridge
        for layer in window:
            for series in (raw_l, z_l, effect_l, ref_l, calibration):
                series[b].setdefault(layer, None)
    calibrated = {b: _window_mean({k: z_l[b][k] for k in scored}, 0.0) for b in candidates}
    effect = {b: _window_mean({k: effect_l[b][k] for k in scored}, 0.0) for b in candidates}
    pvalues = {}
    for b in candidates:
        # a mean of unit-scale z-scores: ties are judged on the scale of its terms (scale=1)
        pvalues[b] = permutation_pvalue(np.float64(calibrated[b]), test_sum[b] / len(scored), scale=1.0)
    raw_scores = {b: _window_mean(raw_l[b], None) for b in candidates}
    reference_scores = {b: _window_mean(ref_l[b], None) for b in candidates}
    calibration_error = None
    if method != "reference":
        calibration_error = {
            b: float(np.std(by_draw[b] / len(scored), ddof=1) / np.sqrt(n_draws)) for b in candidates
        }

    statistic = {"effect": effect, "calibrated": calibrated, "reference": reference_scores}[method]
    bootstrap = None
    if n_bootstrap:
        arguments = (candidates, units, method, score, n_bootstrap, level, statistic)
        if resample_sets is None:
            bootstrap = _bootstrap(layers, *arguments, np.random.default_rng(streams[1]), progress, n_draws)
        else:
            scene = _Scene(window, rows_of, overlap, excluded_of, bins_of, n_random)
            bootstrap = _rebuilt_bootstrap(
                scene, resample_sets, *arguments, np.random.default_rng(streams[1]), progress
            )
    permutation_pvalues = None
    if n_permutations:
        permutation_pvalues = _permutation_test(
            layers, candidates, directions, score, n_permutations, streams[2]
        )
    nuisance_r2 = None
    if nuisance is not None:
        nuisance_r2 = {"overlap": _nuisance_r2(sums, overlap)}
        nuisance_r2.update({b: _nuisance_r2(sums, bridges[b]) for b in candidates})
    pool_rule = (
        "random sets from the same firing-probability bins as B_l's neurons (bins "
        + ", ".join(f"{e:g}" for e in ACTIVITY_EDGES)
        + "), bin by bin, from the layer's neurons outside O(s,t)"
        if pool == "matched"
        else "uniform random sets of size |B_l| from the layer's neurons outside O(s,t)"
    )
    return BridgeSelection(
        src,
        tgt,
        method,
        score,
        candidates,
        window,
        overlap,
        dict(bridges),
        sizes,
        raw_l,
        z_l,
        ref_l,
        calibration,
        raw_scores,
        calibrated,
        pvalues,
        reference_scores,
        bootstrap,
        permutation_pvalues,
        {
            **(parameters or {}),
            "n_random": n_random,
            "n_draws": n_draws,
            "n_bootstrap": n_bootstrap,
            "n_permutations": n_permutations,
            "seed": seed,
            "n_samples": int(n),
            "n_units": int(len(np.unique(units))),
            "layers_without_overlap": [layer for layer in window if layer not in scored],
            "pool": pool,
            "calibration_pool": pool_rule + ("" if exclude is None else ", not language-agnostic"),
            "activity": None
            if pool != "matched"
            else ("given" if activity is not None else "share of samples with mean activation > 0"),
            "residualised_on": None if nuisance is None else int(nuisance.shape[1]),
            "empty_bridge_layer": "effect_l = z_l = 0 in the window mean; dropped from raw and reference",
            "bandwidth": "from O_l alone" if score == "reference" else "each neuron's median",
            "tie_break": "candidate order",
        },
        effect=effect,
        per_layer_effect=effect_l,
        holm_pvalues=holm(pvalues),
        calibration_error=calibration_error,
        nuisance_r2=nuisance_r2,
    )


#: Rebuilds (O, {b: B}) on a resample: (the s<->t sample indices drawn, a generator) -> sets.
ResampleSets = Callable[[np.ndarray, np.random.Generator], tuple[NeuronSet, Mapping[str, NeuronSet]]]


def resample_units(units: Int[np.ndarray, " sample"], rng: np.random.Generator) -> Int[np.ndarray, " sample"]:
    """Sample indices of one bootstrap resample: units drawn with replacement, all of a unit's
    samples (both directions) taken each time it is drawn."""
    labels, inverse = np.unique(units, return_inverse=True)
    members = [np.flatnonzero(inverse == u) for u in range(len(labels))]
    drawn = rng.integers(0, len(labels), len(labels))
    return np.concatenate([members[u] for u in drawn])


def _layer_statistic(lay: _Layer, out: _LayerScores | None, method: str, b: str, draw: int | None):
    """A layer's ranking statistic of b on a resample (nan: none), averaged over draws or of one."""
    if out is None:
        return np.nan
    values = out.statistic(method, b)
    if values is None:
        return np.nan if method == "reference" else 0.0
    return float(values.mean() if draw is None else values[draw])


def _bootstrap(
    layers, candidates, units, method, score, n_resamples, level, statistic, rng, progress, n_draws
) -> BootstrapSummary:
    # All resamples are drawn first; then layer by layer, so that only one layer's reweighting
    # (its columns' kernel features or Gram matrices) is held at a time and built once.
    # Resample r is calibrated by draw r mod n_draws of the random sets.
    drawn = [resample_units(units, rng) for _ in range(n_resamples)]
    counts = [torch.from_numpy(np.bincount(samples, minlength=len(units))) for samples in drawn]
    per_layer = np.full((n_resamples, len(layers), len(candidates)), np.nan)  # nan: no statistic
    bar = tqdm(total=n_resamples * len(layers), desc="bootstrap", unit="layer", disable=not progress)
    for position, lay in enumerate(layers):
        for r, samples in enumerate(drawn):
            if method == "reference":
                ref = lay.reference(torch.from_numpy(samples))
                per_layer[r, position] = [np.nan if ref[b] is None else ref[b] for b in candidates]
            else:
                out = lay.score(score, counts[r], with_tests=False)
                per_layer[r, position] = [
                    _layer_statistic(lay, out, method, b, r % n_draws) for b in candidates
                ]
            bar.update()
        lay.reweighted = None
    bar.close()
    return _summary(per_layer, candidates, method, level, statistic, sets_rebuilt=False, n_draws=n_draws)


class _Scene:
    """What a rebuilt-set resample needs besides the sets: the window's rows, the full-sample
    overlap, excluded neurons, activity bins and the random-set count."""

    def __init__(self, window, rows_of, overlap, excluded_of, bins_of, n_random):
        self.window, self.rows_of, self.overlap, self.excluded_of = window, rows_of, overlap, excluded_of
        self.bins_of, self.n_random = bins_of, n_random

    def bandwidth(self, layer: int, kind: str) -> float | None:
        """The "reference" kind's bandwidth of the full-sample O_l (None: not that kind, or O_l empty)."""
        full = self.overlap.layer(layer)
        if kind != "reference" or len(full) == 0:
            return None
        return overlap_bandwidth(reference_zscore(self.rows_of[layer][torch.from_numpy(full)]))


def _rebuilt_bootstrap(
    scene: _Scene,
    resample_sets,
    candidates,
    units,
    method,
    score,
    n_resamples,
    level,
    statistic,
    rng,
    progress,
) -> BootstrapSummary:
    """Each resample: the sets rebuilt by their own rule on it (`resample_sets`) and a fresh
    draw of random sets. The kernels (z-scores, bandwidth of the full-sample O_l) stay those of
    the full sample, as in the fixed-set bootstrap, so that per layer one reweighting of the
    union of the resamples' overlap sets against every neuron serves every resample; the
    reference method rescores on the resampled samples (its kernels re-estimated)."""
    drawn = [resample_units(units, rng) for _ in range(n_resamples)]
    rebuilt = [
        resample_sets(samples, rng)
        for samples in tqdm(drawn, desc="bootstrap: sets rebuilt", unit="resample", disable=not progress)
    ]
    n = len(units)
    per_layer = np.full((n_resamples, len(scene.window), len(candidates)), np.nan)
    bar = tqdm(total=n_resamples * len(scene.window), desc="bootstrap", unit="layer", disable=not progress)
    for position, layer in enumerate(scene.window):
        rows = scene.rows_of[layer]
        overlaps = [overlap.layer(layer) for overlap, _ in rebuilt]
        layers = [
            None
            if len(overlaps[r]) == 0
            else _Layer(
                layer,
                rows,
                overlaps[r],
                {b: rebuilt[r][1][b].layer(layer) for b in candidates},
                scene.n_random,
                rng,
                scene.excluded_of[layer],
                scene.bins_of.get(layer),
                n_draws=1,
                with_tests=False,
            )
            for r in range(n_resamples)
        ]
        kept = [lay for lay in layers if lay is not None]
        if method != "reference" and kept:
            # one reweighting per layer: the union of the resamples' O_l against the union of
            # the columns they score (B's and the random sets', which the matched pool keeps
            # to B's activity bins)
            union_o = np.unique(np.concatenate([lay.overlap for lay in kept])).astype(np.int64)
            union_c = np.unique(np.concatenate([lay.columns(False) for lay in kept])).astype(np.int64)
            reweighted = ReweightedScores(
                rows[torch.from_numpy(union_o)],
                rows[torch.from_numpy(union_c)],
                score,
                bandwidth=scene.bandwidth(layer, score),
            )
        for r, (lay, samples) in enumerate(zip(layers, drawn, strict=True)):
            bar.update()
            if lay is None:
                continue
            if method == "reference":
                ref = lay.reference(torch.from_numpy(samples))
                per_layer[r, position] = [np.nan if ref[b] is None else ref[b] for b in candidates]
                continue
            counts = torch.from_numpy(np.bincount(samples, minlength=n))
            matrix = reweighted.score(counts)[torch.from_numpy(np.searchsorted(union_o, lay.overlap))]
            out = lay.score(score, with_tests=False, layer_matrix=matrix, layer_columns=union_c)
            per_layer[r, position] = [_layer_statistic(lay, out, method, b, 0) for b in candidates]
    bar.close()
    return _summary(per_layer, candidates, method, level, statistic, sets_rebuilt=True, n_draws=1)


def _summary(per_layer, candidates, method, level, statistic, sets_rebuilt, n_draws) -> BootstrapSummary:
    """Intervals, top-two difference, selection probability and its Monte Carlo error from
    per-resample, per-layer statistics (nan: no statistic in that layer)."""
    n_resamples = per_layer.shape[0]
    # a resample's statistic: the window mean of its layers' values (effect and z: an empty B_l
    # is 0, already in per_layer; layers without O_l and reference's empty layers are nan, dropped)
    values = np.full((n_resamples, len(candidates)), np.nan)
    firsts = np.zeros(len(candidates))
    for r in range(n_resamples):
        stat = {}
        for i, b in enumerate(candidates):
            kept = per_layer[r, :, i][~np.isnan(per_layer[r, :, i])]
            stat[b] = float(np.mean(kept)) if len(kept) else None
        values[r] = [np.nan if stat[b] is None else stat[b] for b in candidates]
        firsts[candidates.index(rank(stat, candidates)[0])] += 1
    tail = (1 - level) / 2
    intervals = {}
    for i, b in enumerate(candidates):
        column = values[:, i][~np.isnan(values[:, i])]
        intervals[b] = (
            [float(np.quantile(column, tail)), float(np.quantile(column, 1 - tail))]
            if len(column)
            else [None, None]
        )
    top_two = None
    full = rank(statistic, candidates)
    if len(candidates) >= 2 and statistic[full[1]] is not None:
        first, second = candidates.index(full[0]), candidates.index(full[1])
        difference = values[:, first] - values[:, second]
        difference = difference[~np.isnan(difference)]
        interval = [float(np.quantile(difference, tail)), float(np.quantile(difference, 1 - tail))]
        top_two = {
            "first": full[0],
            "second": full[1],
            "difference": float(statistic[full[0]] - statistic[full[1]]),
            "interval": interval,
            "share_first_ahead": float(np.mean(difference > 0)),
            "near_tie": bool(interval[0] <= 0 <= interval[1]),
        }
    probability = {b: float(firsts[i] / n_resamples) for i, b in enumerate(candidates)}
    return BootstrapSummary(
        n_resamples,
        method,
        level,
        intervals,
        top_two,
        probability,
        sets_rebuilt=sets_rebuilt,
        probability_error={b: float(np.sqrt(p * (1 - p) / n_resamples)) for b, p in probability.items()},
        calibration_draws=n_draws,
    )


def _operands(lay: _Layer, columns: np.ndarray, kind: str):
    rows_o, rows_b = lay.rows[lay.overlap], lay.rows[torch.from_numpy(columns)]
    sigma = overlap_bandwidth(reference_zscore(rows_o)) if kind == "reference" else None
    return score_operands(rows_o, rows_b, kind, "gaussian", "median", "biased", reference_sigma=sigma)


def _permutation_test(layers, candidates, directions, kind, n_permutations, seed):
    """p-value of the raw window score against permutations of B's samples within direction."""
    orders = stratified_permutations(directions, n_permutations, seed)
    n = orders.shape[1]
    identity = torch.arange(n)[None]
    pvalues = {}
    for b in candidates:
        observed, null, count = 0.0, torch.zeros(n_permutations, dtype=torch.float64), 0
        for lay in layers:
            columns = lay.bridge_columns[b]
            if len(columns) == 0:
                continue
            left, right = _operands(lay, columns, kind)
            observed += float(permuted_max_mean(left, right, identity)[0])
            null += permuted_max_mean(left, right, orders)
            count += 1
        if count == 0:
            pvalues[b] = 1.0
            continue
        pvalues[b] = permutation_pvalue(np.float64(observed), null.numpy())
    return pvalues
