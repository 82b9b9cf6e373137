"""Bridge selection on arrays: activations and neuron sets in, a `BridgeSelection` out.

What a researcher holding a TransformerLens cache has: per window layer l the activations
[n_samples, d_mlp] over the s<->t probe samples, the overlap set O(s,t) and each candidate's
bridge-specific set B(b; s,t). Per layer (docs/hsic.md, "Calibrated bridge selection"):

1. S = pairwise score of every neuron of O_l against every neuron of layer l, once
   (hsic/columns.py); the raw score of any set J of the layer is the max-mean of S[:, J].
2. Calibration pool: the neurons of layer l outside O(s,t) (B_l lies in it). For each size
   k = |B_l| that occurs, R random k-sets drawn uniformly from the pool give the mean and
   standard deviation of the raw score; z_l(b) = (raw_l(b) - mean) / sd. A second, independent
   R draws per size make R random "bridges" (one k-set per layer, k = |B_l| of that bridge)
   whose calibrated scores give the empirical p-value (1 + #{T_r >= T}) / (1 + R): exact when
   B is, within each layer, a uniformly random set of the pool.
3. calibrated(b) = mean over the window layers with a non-empty O_l (the same for every
   bridge) of z_l(b), with z_l = 0 (the null expectation) where B_l is empty.
4. Bootstrap (optional): resample probe word pairs with replacement, both directions of a pair
   together, and rescore S and the calibration (the same random sets) on the resample: the
   kernels (z-scores, bandwidth) are those of the full sample, so a resample is a reweighting
   of the full-sample Gram matrices by the sample counts (hsic/reweighted.py); the neuron sets
   are held fixed (docs/hsic.md says why).
5. Permutation test (optional): the raw window score against permutations of B's samples
   within each direction (s->t, t->s), the same permutation in every layer.
"""

from __future__ import annotations

from collections.abc import Mapping

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
from neuronoverlap.sets import NeuronSet
from neuronoverlap.stats.permutation import permutation_pvalue

#: Below this standard deviation (relative to the mean's size) the random-set scores are taken
#: as constant and z_l = 0.
FLAT_SD = 1e-12


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
    """One window layer: its rows, O_l, each bridge's B_l and the random sets."""

    def __init__(
        self,
        layer: int,
        rows: Tensor,
        overlap: Int[np.ndarray, " n"],
        bridge_columns: dict[str, np.ndarray],
        n_random: int,
        rng: np.random.Generator,
        excluded: Int[np.ndarray, " m"] | None = None,
    ):
        self.layer, self.rows, self.overlap, self.bridge_columns = layer, rows, overlap, bridge_columns
        outside = overlap if excluded is None else np.union1d(overlap, excluded)
        self.pool = np.setdiff1d(np.arange(rows.shape[0]), outside)
        sizes = sorted({len(c) for c in bridge_columns.values() if len(c)})
        self.calibration = {k: draw_sets(self.pool, k, n_random, rng) for k in sizes}
        self.tests = {k: draw_sets(self.pool, k, n_random, rng) for k in sizes}
        self.reweighted: ReweightedScores | None = None

    def columns(self, with_tests: bool) -> np.ndarray:
        """Every column the scores need: the bridges' and the random sets'."""
        parts = [c for c in self.bridge_columns.values()] + list(self.calibration.values())
        if with_tests:
            parts += list(self.tests.values())
        return np.unique(np.concatenate([np.ravel(p) for p in parts]).astype(np.int64))

    def score(self, kind: str, counts: Tensor | None = None, with_tests: bool = True):
        """(raw per bridge, [mean, sd] per size, z per bridge, test z per size); with `counts`
        (how often each sample is drawn) those of a bootstrap resample, kernels held fixed."""
        columns = self.columns(with_tests)
        if counts is None:
            matrix = overlap_scores(self.rows[self.overlap], self.rows[columns], kind)
        else:
            if self.reweighted is None:
                self.reweighted = ReweightedScores(self.rows[self.overlap], self.rows[columns], kind)
            matrix = self.reweighted.score(counts)
        column_max = matrix.amax(dim=0)

        def local(sets: np.ndarray) -> Tensor:
            return torch.from_numpy(np.searchsorted(columns, sets))

        calibration = {
            k: _mean_sd(set_scores(matrix, local(sets), column_max)) for k, sets in self.calibration.items()
        }
        raw, z = {}, {}
        for b, cols in self.bridge_columns.items():
            if len(cols) == 0:
                raw[b], z[b] = None, 0.0
                continue
            raw[b] = float(set_scores(matrix, local(cols[None]), column_max)[0])
            z[b] = _z(raw[b], *calibration[len(cols)])
        tests = {}
        if with_tests:
            for k, sets in self.tests.items():
                values = set_scores(matrix, local(sets), column_max).double().numpy()
                tests[k] = _z(values, *calibration[k])
        return raw, calibration, z, tests

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


def _check_inputs(
    activations,
    overlap,
    bridges,
    directions,
    units,
    method,
    score,
    n_random,
    n_bootstrap,
    n_permutations,
    level,
):
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
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


def select_from_activations(
    activations: Mapping[int, Float[np.ndarray, "sample neuron"]],
    overlap: NeuronSet,
    bridges: Mapping[str, NeuronSet],
    *,
    src: str = "s",
    tgt: str = "t",
    directions: Int[np.ndarray, " sample"] | None = None,
    units: Int[np.ndarray, " sample"] | None = None,
    method: str = "calibrated",
    score: str = "reference",
    n_random: int = 200,
    n_bootstrap: int = 200,
    n_permutations: int = 0,
    level: float = 0.95,
    seed: int = 0,
    progress: bool = False,
    parameters: Mapping | None = None,
    with_reference: bool = True,
    exclude: Bool[np.ndarray, "layer neuron"] | None = None,
) -> BridgeSelection:
    """Score the candidate bridges (module docstring) and rank them by `method`.

    activations: window layer id -> [n_samples, d_mlp] (float); directions: 0 for s->t, 1 for
    t->s per sample; units: the probe word pair of each sample (its two directions share it).
    Default for both: the first half s->t, the second half t->s of the same pairs in order.
    with_reference=False skips the reference code's score (its bandwidth changes with every
    bridge, so it cannot reuse the layer matrix; the dearest part at large shapes).
    exclude: neurons left out of the calibration pool too (the language-agnostic ones, which
    O and B leave out), so that the random sets are drawn where B could lie.
    """
    if method == "reference" and not with_reference:
        raise InputError("method 'reference' ranks by the reference score: with_reference=True")
    directions, units = _check_inputs(
        activations,
        overlap,
        bridges,
        directions,
        units,
        method,
        score,
        n_random,
        n_bootstrap,
        n_permutations,
        level,
    )
    if exclude is not None and np.shape(exclude) != overlap.shape:
        raise InputError(f"the excluded neurons are {np.shape(exclude)}, the sets {overlap.shape}")
    candidates = list(bridges)
    window = sorted(activations)
    streams = np.random.SeedSequence(seed).spawn(3)
    rng_sets = np.random.default_rng(streams[0])
    layers = []
    for layer in window:
        o_idx = overlap.layer(layer)
        if len(o_idx) == 0:
            continue
        rows = torch.from_numpy(np.ascontiguousarray(np.asarray(activations[layer], np.float64).T))
        excluded = None if exclude is None else np.flatnonzero(exclude[layer])
        columns = {b: bridges[b].layer(layer) for b in candidates}
        layers.append(_Layer(layer, rows, o_idx, columns, n_random, rng_sets, excluded))
    if not layers:
        raise InputError(f"O({src},{tgt}) has no neurons in the window layers {window}")
    scored = [lay.layer for lay in layers]

    sizes = {
        b: {layer: [len(overlap.layer(layer)), len(bridges[b].layer(layer))] for layer in window}
        for b in candidates
    }
    raw_l = {b: {} for b in candidates}
    z_l = {b: {} for b in candidates}
    ref_l = {b: {} for b in candidates}
    calibration = {b: {} for b in candidates}
    test_sum = {b: np.zeros(n_random) for b in candidates}
    bar = tqdm(layers, desc=f"bridge {src}-{tgt} calibration", unit="layer", disable=not progress)
    for lay in bar:
        raw, cal, z, tests = lay.score(score)
        reference = lay.reference() if with_reference else dict.fromkeys(candidates)
        for b in candidates:
            k = len(lay.bridge_columns[b])
            raw_l[b][lay.layer], ref_l[b][lay.layer] = raw[b], reference[b]
            z_l[b][lay.layer] = z[b] if k else None
            calibration[b][lay.layer] = list(cal[k]) if k else None
            if k:
                test_sum[b] += tests[k]
    for b in candidates:  # layers of the window without O_l: nothing to score for any bridge
        for layer in window:
            for series in (raw_l, z_l, ref_l, calibration):
                series[b].setdefault(layer, None)
    calibrated = {b: _window_mean({k: z_l[b][k] for k in scored}, 0.0) for b in candidates}
    pvalues = {}
    for b in candidates:
        # a mean of unit-scale z-scores: ties are judged on the scale of its terms (scale=1)
        pvalues[b] = permutation_pvalue(np.float64(calibrated[b]), test_sum[b] / len(scored), scale=1.0)
    raw_scores = {b: _window_mean(raw_l[b], None) for b in candidates}
    reference_scores = {b: _window_mean(ref_l[b], None) for b in candidates}

    statistic = calibrated if method == "calibrated" else reference_scores
    bootstrap = None
    if n_bootstrap:
        bootstrap = _bootstrap(
            layers,
            candidates,
            units,
            method,
            score,
            n_bootstrap,
            level,
            statistic,
            np.random.default_rng(streams[1]),
            progress,
        )
    permutation_pvalues = None
    if n_permutations:
        permutation_pvalues = _permutation_test(
            layers, candidates, directions, score, n_permutations, streams[2]
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
            "n_bootstrap": n_bootstrap,
            "n_permutations": n_permutations,
            "seed": seed,
            "n_samples": int(len(units)),
            "n_units": int(len(np.unique(units))),
            "layers_without_overlap": [layer for layer in window if layer not in scored],
            "calibration_pool": "neurons of the same layer outside O(s,t)"
            + ("" if exclude is None else " and not language-agnostic"),
            "empty_bridge_layer": "z_l = 0 in the calibrated mean; dropped from raw and reference",
            "bandwidth": "from O_l alone" if score == "reference" else "each neuron's median",
            "tie_break": "candidate order",
        },
    )


def resample_units(units: Int[np.ndarray, " sample"], rng: np.random.Generator) -> Int[np.ndarray, " sample"]:
    """Sample indices of one bootstrap resample: units drawn with replacement, all of a unit's
    samples (both directions) taken each time it is drawn."""
    labels, inverse = np.unique(units, return_inverse=True)
    members = [np.flatnonzero(inverse == u) for u in range(len(labels))]
    drawn = rng.integers(0, len(labels), len(labels))
    return np.concatenate([members[u] for u in drawn])


def _bootstrap(
    layers, candidates, units, method, score, n_resamples, level, statistic, rng, progress
) -> BootstrapSummary:
    # All resamples are drawn first; then layer by layer, so that only one layer's reweighting
    # (its columns' kernel features or Gram matrices) is held at a time and built once.
    drawn = [resample_units(units, rng) for _ in range(n_resamples)]
    counts = [torch.from_numpy(np.bincount(samples, minlength=len(units))) for samples in drawn]
    per_layer = np.full((n_resamples, len(layers), len(candidates)), np.nan)  # nan: no statistic
    bar = tqdm(total=n_resamples * len(layers), desc="bootstrap", unit="layer", disable=not progress)
    for position, lay in enumerate(layers):
        for r, samples in enumerate(drawn):
            if method == "calibrated":
                _, _, z, _ = lay.score(score, counts[r], with_tests=False)
            else:
                z = lay.reference(torch.from_numpy(samples))
            per_layer[r, position] = [np.nan if z[b] is None else z[b] for b in candidates]
            bar.update()
        lay.reweighted = None
    bar.close()
    # a resample's statistic: the window mean of its layers' values (calibrated: an empty B_l
    # is z = 0, already in per_layer; reference: empty layers are nan and dropped)
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
        top_two = {
            "first": full[0],
            "second": full[1],
            "difference": float(statistic[full[0]] - statistic[full[1]]),
            "interval": [float(np.quantile(difference, tail)), float(np.quantile(difference, 1 - tail))],
            "share_first_ahead": float(np.mean(difference > 0)),
        }
    return BootstrapSummary(
        n_resamples,
        method,
        level,
        intervals,
        top_two,
        {b: float(firsts[i] / n_resamples) for i, b in enumerate(candidates)},
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
