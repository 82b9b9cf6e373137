"""The bootstrap of the bridge score (step 4 of `bridge.scoring`): probe word pairs resampled
with both directions together; the sets held fixed (a reweighting of the full-sample Gram
matrices) or rebuilt by their own rule on each resample; intervals, the top two's difference
and the selection probability with its Monte Carlo error."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
from jaxtyping import Int
from tqdm.auto import tqdm

from neuronoverlap.bridge.calibration import LayerScores, WindowLayer
from neuronoverlap.bridge.result import BootstrapSummary, rank
from neuronoverlap.hsic.columns import overlap_bandwidth
from neuronoverlap.hsic.reference import reference_zscore
from neuronoverlap.hsic.reweighted import ReweightedScores
from neuronoverlap.sets import NeuronSet

#: Rebuilds (O, {b: B}) on a resample: (the s<->t sample indices drawn, a generator) -> sets.
ResampleSets = Callable[[np.ndarray, np.random.Generator], tuple[NeuronSet, Mapping[str, NeuronSet]]]


def resample_units(units: Int[np.ndarray, " sample"], rng: np.random.Generator) -> Int[np.ndarray, " sample"]:
    """Sample indices of one bootstrap resample: units drawn with replacement, all of a unit's
    samples (both directions) taken each time it is drawn."""
    labels, inverse = np.unique(units, return_inverse=True)
    members = [np.flatnonzero(inverse == u) for u in range(len(labels))]
    drawn = rng.integers(0, len(labels), len(labels))
    return np.concatenate([members[u] for u in drawn])


def layer_statistic(lay: WindowLayer, out: LayerScores | None, method: str, b: str, draw: int | None):
    """A layer's ranking statistic of b on a resample (nan: none), averaged over draws or of one."""
    if out is None:
        return np.nan
    values = out.statistic(method, b)
    if values is None:
        return np.nan if method == "reference" else 0.0
    return float(values.mean() if draw is None else values[draw])


def fixed_set_bootstrap(
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
                    layer_statistic(lay, out, method, b, r % n_draws) for b in candidates
                ]
            bar.update()
        lay.reweighted = None
    bar.close()
    return summarise_resamples(
        per_layer, candidates, method, level, statistic, sets_rebuilt=False, n_draws=n_draws
    )


class Scene:
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


def rebuilt_bootstrap(
    scene: Scene,
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
            else WindowLayer(
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
            per_layer[r, position] = [layer_statistic(lay, out, method, b, 0) for b in candidates]
    bar.close()
    return summarise_resamples(per_layer, candidates, method, level, statistic, sets_rebuilt=True, n_draws=1)


def summarise_resamples(
    per_layer, candidates, method, level, statistic, sets_rebuilt, n_draws
) -> BootstrapSummary:
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
