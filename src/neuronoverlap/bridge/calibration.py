"""The calibration of the bridge score, layer by layer (step 2 of `bridge.scoring`): the pool the
random sets are drawn from (the layer outside O(s,t), uniformly or matched to B_l's activity
bins), the random sets, and one layer's raw, effect and z scores against them."""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from neuronoverlap.errors import InputError
from neuronoverlap.hsic.columns import overlap_scores, set_scores
from neuronoverlap.hsic.pairwise import MEMORY_BUDGET_BYTES, feature_count
from neuronoverlap.hsic.reference import reference_bridge_score
from neuronoverlap.hsic.reweighted import ReweightedScores
from neuronoverlap.options import CALIBRATION_POOLS

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


def mean_sd(values: Tensor) -> tuple[float, float]:
    return float(values.mean()), float(values.std()) if values.numel() > 1 else 0.0


def z_score(value, mean: float, sd: float):
    """(value - mean) / sd, 0 where the random-set scores are flat (sd ~ 0); value: a number
    or an array."""
    if sd <= FLAT_SD * max(abs(mean), 1e-300):
        return value * 0.0
    return (value - mean) / sd


class WindowLayer:
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
    ) -> LayerScores:
        """The layer's scores (`LayerScores`); with `counts` (how often each sample is drawn)
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
            k: np.array([mean_sd(scored(sets)) for sets in draws]) for k, draws in self.calibration.items()
        }
        out = LayerScores()
        for b, cols in self.bridge_columns.items():
            if len(cols) == 0:
                continue
            raw = float(scored(cols[None])[0])
            cal = calibration[self.keys[b]]
            out.raw[b] = raw
            out.calibration[b] = cal
            out.effect[b] = raw - cal[:, 0]
            out.z[b] = np.array([z_score(raw, mean, sd) for mean, sd in cal])
        if with_tests:
            for k, sets in self.tests.items():
                values = scored(sets).double().numpy()
                out.tests[k] = np.mean([z_score(values, mean, sd) for mean, sd in calibration[k]], axis=0)
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


class LayerScores:
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
