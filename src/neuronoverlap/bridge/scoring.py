"""Bridge selection on arrays: activations and neuron sets in, a `BridgeSelection` out.

What a researcher holding a TransformerLens cache has: per window layer l the activations
[n_samples, d_mlp] over the s<->t probe samples, the overlap set O(s,t) and each candidate's
bridge-specific set B(b; s,t). Per layer (docs/hsic.md, "Calibrated bridge selection" and
"The repaired score"):

0. Nuisance (optional, `nuisance`): each neuron's activations residualised on the covariates
   (the store path: counted tokens and direction); their R^2 is reported per set.
1. S = pairwise score of every neuron of O_l against every neuron of layer l, once
   (hsic/columns.py); the raw score of any set J of the layer is the max-mean of S[:, J].
2. Calibration pool (`bridge/calibration.py`): the neurons of layer l outside O(s,t) (B_l lies in
   it); `pool="matched"` (default) draws each random set bin by bin from B_l's firing-probability
   bins (`ACTIVITY_EDGES`, short bins merged: `matched_groups`), `pool="layer"` uniformly. R
   random sets per key, in `n_draws` independent draws, give mean and sd of the raw score:
   effect_l(b) = raw_l(b) - mean, z_l(b) = (raw_l(b) - mean) / sd, each averaged over the draws
   (their spread is the statistic's Monte Carlo error). A further R random "bridges" per key give
   the empirical p-value of the window-mean z, (1 + #{T_r >= T}) / (1 + R): exact when B is,
   within each layer, a uniformly random set of its pool; Holm-adjusted over the candidates
   beside it.
3. effect(b) (the default ranking statistic) and calibrated(b) = the means over the window
   layers with a non-empty O_l (the same for every bridge) of effect_l(b) and z_l(b), 0 (the
   null expectation) where B_l is empty.
4. Bootstrap (optional; `bridge/bootstrap.py`): resample probe word pairs with replacement, both
   directions of a pair together. With `resample_sets` (the store path) O and every B are rebuilt
   on each resample by their own rule, the scores recomputed on the resampled samples, and the
   random sets drawn afresh; without it the sets are held fixed and a resample is a reweighting
   of the full-sample Gram matrices by the sample counts (hsic/reweighted.py), calibrated by draw
   r mod n_draws.
5. Permutation test (optional): the raw window score against permutations of B's samples
   within each direction (s->t, t->s), the same permutation in every layer.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from tqdm.auto import tqdm

from neuronoverlap.bridge.bootstrap import ResampleSets, Scene, fixed_set_bootstrap, rebuilt_bootstrap
from neuronoverlap.bridge.calibration import (
    ACTIVITY_EDGES,
    POOLS,
    WindowLayer,
    activity_bins,
    activity_proxy,
)
from neuronoverlap.bridge.result import METHODS, BridgeSelection
from neuronoverlap.errors import InputError
from neuronoverlap.hsic.columns import SCORE_KINDS, overlap_bandwidth
from neuronoverlap.hsic.independence import stratified_permutations
from neuronoverlap.hsic.maxmean import permuted_max_mean, score_operands
from neuronoverlap.hsic.reference import reference_zscore
from neuronoverlap.sets import NeuronSet
from neuronoverlap.stats.multiplicity import holm
from neuronoverlap.stats.permutation import permutation_pvalue


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
            WindowLayer(
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
            bootstrap = fixed_set_bootstrap(
                layers, *arguments, np.random.default_rng(streams[1]), progress, n_draws
            )
        else:
            scene = Scene(window, rows_of, overlap, excluded_of, bins_of, n_random)
            bootstrap = rebuilt_bootstrap(
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


def _operands(lay: WindowLayer, columns: np.ndarray, kind: str):
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
