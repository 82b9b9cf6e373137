"""Bridge selection from a store: a thin loader over `select_from_activations`.

1. Neuron sets from the store's probe sets (docs/sets.md): the overlap O(s,t) = active set of
   the s<->t probe set (both directions pooled), and for each candidate b the bridge-specific
   B(b; s,t) = (active(b<->s) | active(b<->t)) - O(s,t).
2. Per layer l of the window: the activations (mean act_fn(gate) per sample) over the s<->t
   probe samples (s->t then t->s), each sample's direction and its probe word pair.
3. The activity each neuron is matched on (pooled firing probability over the s<->t samples),
   the nuisance covariates (counted tokens, direction) and the set rebuilder of the bootstrap.
4. The scoring, calibration and bootstrap: bridge/scoring.py; definitions: docs/hsic.md.

Per-layer results are keyed by the real layer id (the reference keys them by list position).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from jaxtyping import Float

from neuronoverlap.bridge.result import BridgeSelection
from neuronoverlap.bridge.scoring import select_from_activations
from neuronoverlap.errors import InputError
from neuronoverlap.languages import DEFAULT_BRIDGES, get_language
from neuronoverlap.options import DEFAULT_TOP_RATE, BridgeOptions
from neuronoverlap.probes.counting import COUNTED_POSITIONS, check_count_rule
from neuronoverlap.sets import (
    NeuronSet,
    ProbeSamples,
    bridge_specific_from_probes,
    overlap_from_probes,
)
from neuronoverlap.sets.builders import probe_active_set
from neuronoverlap.store import Store, schema
from neuronoverlap.versions import library_versions

#: What `agnostic_share` leaves out, as recorded with the selection.
AGNOSTIC_RULE = (
    "neurons whose token-weighted activation probability exceeds agnostic_share in every probe set "
    "read (agnostic_over) are left out of O(s,t), B(b; s,t) and the calibration pool"
)

#: The reference's window, layers 10-21 of LLaMA-3-8B's 32, as fractions of depth: [10/32, 22/32).
DEFAULT_WINDOW_FRACTIONS = (10 / 32, 22 / 32)


def layer_window(
    n_layers: int,
    fractions: tuple[float, float] = DEFAULT_WINDOW_FRACTIONS,
    layers: list[int] | None = None,
) -> list[int]:
    """The middle layers: explicit `layers`, or round(start * L) .. round(end * L) - 1."""
    if layers is not None:
        bad = [layer for layer in layers if not 0 <= layer < n_layers]
        if bad or not layers:
            raise InputError(f"window layers must be within 0..{n_layers - 1}, got {layers}")
        return sorted(set(layers))
    start, end = fractions
    if not 0 <= start < end <= 1:
        raise InputError(f"window fractions must satisfy 0 <= start < end <= 1, got {fractions}")
    first, last = round(start * n_layers), round(end * n_layers)
    return list(range(first, max(last, first + 1)))


def _probe_samples(store: Store, src: str, tgt: str, statistic: str = "probability") -> ProbeSamples:
    view = store.probes(src, tgt)
    return ProbeSamples(view.name, view.lazy(statistic), view.tokens(), statistic=statistic)


def probe_pairs(src: str, tgt: str, bridges: list[str]) -> list[tuple[str, str]]:
    """The language pairs whose probe sets (both directions each) bridge selection needs for
    (src, tgt) and its candidate bridges: the pair itself, and each bridge with both."""
    return [(src, tgt)] + [(b, x) for b in bridges for x in (src, tgt)]


def probe_set_names(pairs: Sequence[tuple[str, str]]) -> list[str]:
    """The names of the probe sets of `pairs`, each in both directions."""
    return [schema.probe_set_name(*d) for a, b in pairs for d in ((a, b), (b, a))]


def needed_probe_sets(src: str, tgt: str, bridges: list[str]) -> list[str]:
    """The names of every probe set `probe_pairs` stands for, each direction."""
    return probe_set_names(probe_pairs(src, tgt, bridges))


def _missing_probe_sets(store: Store, src: str, tgt: str, bridges: list[str]) -> list[str]:
    have = set(store.probe_sets())
    return [name for name in needed_probe_sets(src, tgt, bridges) if name not in have]


def _require_probe_sets(store: Store, src: str, tgt: str, bridges: list[str]) -> None:
    missing = _missing_probe_sets(store, src, tgt, bridges)
    if missing:
        raise InputError(
            f"{store.path} lacks probe sets {', '.join(missing)}: record them with "
            "`neuronoverlap probe` (or pass --model to select-bridge)"
        )


def bridge_agnostic(
    store: Store, src: str, tgt: str, bridges: list[str], share: float
) -> tuple[np.ndarray, list[str]]:
    """The language-agnostic neurons of a selection (analyses/agnostic.py): above `share` in the
    token-weighted activation probability of every probe set it reads; and those probe sets."""
    from neuronoverlap.analyses.agnostic import probe_agnostic_neurons  # scipy: imported when used

    _require_probe_sets(store, src, tgt, bridges)
    names = needed_probe_sets(src, tgt, bridges)
    probes = [_probe_samples(store, *schema.parse_probe_set_name(name)) for name in names]
    return probe_agnostic_neurons(probes, share), names


def bridge_sets(
    store: Store,
    src: str,
    tgt: str,
    bridges: list[str],
    top_rate: float = DEFAULT_TOP_RATE,
    agnostic: np.ndarray | None = None,
) -> tuple[NeuronSet, dict[str, NeuronSet]]:
    """O(s,t) and B(b; s,t) for each candidate, from the store's probe sets; `agnostic`: neurons
    left out of every set (chosen among the others, so each active set keeps its size). Probe
    sets recorded under different count rules are an `InputError` (never mixed)."""
    _require_probe_sets(store, src, tgt, bridges)
    check_count_rule(store, needed_probe_sets(src, tgt, bridges))
    return sets_from_probes(lambda a, b: _probe_samples(store, a, b), src, tgt, bridges, top_rate, agnostic)


def sets_from_probes(
    probe_of, src: str, tgt: str, bridges: list[str], top_rate: float, agnostic: np.ndarray | None
) -> tuple[NeuronSet, dict[str, NeuronSet]]:
    """The sets' rule (module docstring, step 1) on the probe sets `probe_of(a, b)` gives."""
    selection = {"top_rate": top_rate}
    if agnostic is not None:
        selection["exclude"] = agnostic
    overlap = overlap_from_probes(probe_of(src, tgt), probe_of(tgt, src), **selection)
    specific = {}
    for b in bridges:
        with_src = probe_active_set([probe_of(b, src), probe_of(src, b)], label=f"{b}<->{src}", **selection)
        with_tgt = probe_active_set([probe_of(b, tgt), probe_of(tgt, b)], label=f"{b}<->{tgt}", **selection)
        specific[b] = bridge_specific_from_probes(with_src, with_tgt, overlap, bridge=b)
    return overlap, specific


class SetResampler:
    """Rebuilds O(s,t) and every B(b; s,t) on a bootstrap resample (`select_from_activations`'s
    `resample_sets`): the s<->t probe sets take the resample's own samples; each b<->s and b<->t
    probe set is resampled by its own word pairs (both directions of a pair together), and the
    sets' rule is applied to the resampled probe sets. The probe sets' firing probabilities are
    read into memory once."""

    def __init__(self, store: Store, src, tgt, bridges, top_rate, agnostic):
        self.src, self.tgt, self.bridges = src, tgt, list(bridges)
        self.top_rate, self.agnostic = top_rate, agnostic
        self.probes = {}
        for a, b in probe_pairs(src, tgt, self.bridges):
            for x, y in ((a, b), (b, a)):
                view = store.probes(x, y)
                self.probes[(x, y)] = (np.asarray(view.lazy("probability")[:], np.float32), view.tokens())
        self.units = {pair: pair_units(store, *pair)[1] for pair in probe_pairs(src, tgt, self.bridges)[1:]}

    def _resampled(self, x: str, y: str, samples: np.ndarray) -> ProbeSamples:
        values, tokens = self.probes[(x, y)]
        return ProbeSamples(f"{x}-{y}", values[samples], tokens[samples])

    def __call__(self, samples: np.ndarray, rng: np.random.Generator):
        from neuronoverlap.bridge.bootstrap import resample_units

        chosen = {}
        n_forward = len(self.probes[(self.src, self.tgt)][1])
        chosen[(self.src, self.tgt)] = samples[samples < n_forward]
        chosen[(self.tgt, self.src)] = samples[samples >= n_forward] - n_forward
        for (a, b), units in self.units.items():
            drawn = resample_units(units, rng)
            n_ab = len(self.probes[(a, b)][1])
            chosen[(a, b)], chosen[(b, a)] = drawn[drawn < n_ab], drawn[drawn >= n_ab] - n_ab

        def probe_of(x, y):
            return self._resampled(x, y, chosen[(x, y)])

        return sets_from_probes(probe_of, self.src, self.tgt, self.bridges, self.top_rate, self.agnostic)


def pair_activity(store: Store, src: str, tgt: str) -> Float[np.ndarray, "layer neuron"]:
    """Each neuron's pooled firing probability over the s<->t probe samples (token-weighted)."""
    from neuronoverlap.sets.builders import pooled_scores

    return pooled_scores([_probe_samples(store, src, tgt), _probe_samples(store, tgt, src)])


def pair_nuisance(store: Store, src: str, tgt: str) -> Float[np.ndarray, "sample 2"]:
    """The nuisance covariates of the s<->t samples: counted tokens and direction (0 / 1)."""
    tokens = np.concatenate([store.probes(src, tgt).tokens(), store.probes(tgt, src).tokens()])
    directions, _ = pair_units(store, src, tgt)
    return np.column_stack([tokens.astype(np.float64), directions.astype(np.float64)])


def pair_activations(store: Store, src: str, tgt: str, layer: int) -> Float[np.ndarray, "sample neuron"]:
    """Mean activations of one layer over the s<->t probe samples (s->t then t->s)."""
    return np.concatenate(
        [store.probes(src, tgt).layer(layer, "mean"), store.probes(tgt, src).layer(layer, "mean")],
        axis=0,
    ).astype(np.float64)


def pair_units(store: Store, src: str, tgt: str) -> tuple[np.ndarray, np.ndarray]:
    """(directions, units) of the samples of `pair_activations`: 0 for s->t, 1 for t->s; a
    unit is one (s word, t word) pair, so a pair's two directions share it."""
    forward, backward = store.probes(src, tgt), store.probes(tgt, src)
    pairs = list(zip(forward.strings("source_words"), forward.strings("target_words"), strict=True))
    pairs += list(zip(backward.strings("target_words"), backward.strings("source_words"), strict=True))
    ids: dict[tuple[str, str], int] = {}
    units = np.array([ids.setdefault(pair, len(ids)) for pair in pairs], dtype=np.int64)
    directions = np.repeat([0, 1], [forward.n_samples, backward.n_samples])
    return directions, units


def select_bridge(
    store: Store | str | Path,
    src: str,
    tgt: str,
    bridges: list[str] | tuple[str, ...] = DEFAULT_BRIDGES,
    options: BridgeOptions | None = None,
    *,
    window_fractions: tuple[float, float] = DEFAULT_WINDOW_FRACTIONS,
    level: float = 0.95,
    progress: bool = True,
    **changes,
) -> BridgeSelection:
    """Score every candidate bridge for (src, tgt) from the probe sets in `store`: the sets and
    activations are read here, the scoring is `select_from_activations`.

    `options`: the `BridgeOptions` (method, score, window, top rate, random sets, bootstrap,
    permutations, seed, the language-agnostic rule, the calibration pool and draws, the nuisance
    and the bootstrap's rebuilt sets), recorded whole with the result;
    `changes`: fields of it to change, e.g. `select_bridge(store, "zh", "ja", method="reference")`.
    With `agnostic_share` (`bridge_agnostic`), neurons above this activation probability in every
    probe set read are left out of O(s,t), every B(b; s,t) and the calibration pool. The
    "matched" pool matches on each neuron's pooled firing probability over the s<->t probe
    samples (`pair_activity`); `residualise`: the activations residualised on counted tokens and
    direction (`pair_nuisance`) before scoring; `rebuild_sets`: the bootstrap rebuilds O and every
    B on each resample (`SetResampler`)."""
    options = replace(options or BridgeOptions(), **changes)
    store = store if isinstance(store, Store) else Store(store)
    src, tgt = get_language(src).code, get_language(tgt).code
    bridges = [get_language(b).code for b in bridges]
    if not bridges:
        raise InputError("no candidate bridges")
    clash = {src, tgt} & set(bridges)
    if clash:
        raise InputError(f"a bridge cannot be the source or target: {', '.join(sorted(clash))}")
    from neuronoverlap.analyses.agnostic import agnostic_record

    share, top_rate, window = options.agnostic_share, options.top_rate, options.window
    layers = layer_window(store.n_layers, window_fractions, None if window is None else list(window))
    with store:  # one read handle for every read below
        agnostic, read = (None, None)
        if share is not None:
            agnostic, read = bridge_agnostic(store, src, tgt, bridges, share)
        overlap, specific = bridge_sets(store, src, tgt, bridges, top_rate, agnostic)
        if not any(len(overlap.layer(layer)) for layer in layers):
            raise InputError(
                f"O({src},{tgt}) has no neurons in the window layers {layers}; widen the "
                "window or raise --top-rate"
            )
        activations = {layer: pair_activations(store, src, tgt, layer) for layer in layers}
        directions, units = pair_units(store, src, tgt)
        pool, n_draws = options.pool, options.n_draws
        activity = None
        if pool == "matched":
            pooled = pair_activity(store, src, tgt)
            activity = {layer: pooled[layer] for layer in layers}
        nuisance = pair_nuisance(store, src, tgt) if options.residualise else None
        counted = check_count_rule(store, needed_probe_sets(src, tgt, bridges))
        resampler = None
        if options.rebuild_sets and options.n_bootstrap:
            resampler = SetResampler(store, src, tgt, bridges, top_rate, agnostic)
    parameters = {
        "top_rate": top_rate,
        "overlap": "active set of the s<->t probe set (both directions pooled)",
        "bridge_specific": "(active(b<->s) | active(b<->t)) - O(s,t)",
        "activations": "mean act_fn(gate) per probe sample, s->t and t->s samples"
        + (", residualised on counted tokens and direction" if options.residualise else ""),
        "window_fractions": list(window_fractions) if window is None else None,
        "store": str(store.path),
        "model": store.model_name,
        "model_fingerprint": store.fingerprint,
        "overlap_size": len(overlap),
        # the positions the sets' firing probabilities count, one rule for every probe set read
        # (issue 26: word and answer positions under --count answer, the default)
        "count": counted,
        "counted_positions": [COUNTED_POSITIONS[counted]],
        "library_versions": library_versions(),
    }
    parameters.update(agnostic_record(agnostic, share, read))
    if share is not None:
        parameters["agnostic_rule"] = AGNOSTIC_RULE
    result = select_from_activations(
        activations,
        overlap,
        specific,
        src=src,
        tgt=tgt,
        directions=directions,
        units=units,
        method=options.method,
        score=options.score,
        n_random=options.n_random,
        n_bootstrap=options.n_bootstrap,
        n_permutations=options.n_permutations,
        level=level,
        seed=options.seed,
        progress=progress,
        parameters=parameters,
        exclude=agnostic,
        pool=pool,
        activity=activity,
        n_draws=n_draws,
        nuisance=nuisance,
        resample_sets=resampler,
    )
    return replace(result, options=options)
