"""Bridge selection from a store: a thin loader over `select_from_activations`.

1. Neuron sets from the store's probe sets (docs/sets.md): the overlap O(s,t) = active set of
   the s<->t probe set (both directions pooled), and for each candidate b the bridge-specific
   B(b; s,t) = (active(b<->s) | active(b<->t)) - O(s,t).
2. Per layer l of the window: the activations (mean act_fn(gate) per sample) over the s<->t
   probe samples (s->t then t->s), each sample's direction and its probe word pair.
3. The scoring, calibration and bootstrap: bridge/scoring.py; definitions: docs/hsic.md.

Per-layer results are keyed by the real layer id (the reference keys them by list position).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from jaxtyping import Float

from neuronoverlap.bridge.result import BridgeSelection
from neuronoverlap.bridge.scoring import select_from_activations
from neuronoverlap.errors import InputError
from neuronoverlap.languages import DEFAULT_BRIDGES, get_language
from neuronoverlap.options import DEFAULT_TOP_RATE, BridgeOptions
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


def needed_probe_sets(src: str, tgt: str, bridges: list[str]) -> list[str]:
    """The names of every probe set `probe_pairs` stands for, each direction."""
    return [schema.probe_set_name(*d) for a, b in probe_pairs(src, tgt, bridges) for d in ((a, b), (b, a))]


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
    left out of every set (chosen among the others, so each active set keeps its size)."""
    _require_probe_sets(store, src, tgt, bridges)
    selection = {"top_rate": top_rate}
    if agnostic is not None:
        selection["exclude"] = agnostic
    overlap = overlap_from_probes(
        _probe_samples(store, src, tgt), _probe_samples(store, tgt, src), **selection
    )
    specific = {}
    for b in bridges:
        with_src = probe_active_set(
            [_probe_samples(store, b, src), _probe_samples(store, src, b)],
            label=f"{b}<->{src}",
            **selection,
        )
        with_tgt = probe_active_set(
            [_probe_samples(store, b, tgt), _probe_samples(store, tgt, b)],
            label=f"{b}<->{tgt}",
            **selection,
        )
        specific[b] = bridge_specific_from_probes(with_src, with_tgt, overlap, bridge=b)
    return overlap, specific


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
    permutations, seed, the language-agnostic rule), recorded whole with the result;
    `changes`: fields of it to change, e.g. `select_bridge(store, "zh", "ja", method="reference")`.
    With `agnostic_share` (`bridge_agnostic`), neurons above this activation probability in every
    probe set read are left out of O(s,t), every B(b; s,t) and the calibration pool."""
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
    parameters = {
        "top_rate": top_rate,
        "overlap": "active set of the s<->t probe set (both directions pooled)",
        "bridge_specific": "(active(b<->s) | active(b<->t)) - O(s,t)",
        "activations": "mean act_fn(gate) per probe sample, s->t and t->s samples",
        "window_fractions": list(window_fractions) if window is None else None,
        "store": str(store.path),
        "model": store.model_name,
        "model_fingerprint": store.fingerprint,
        "overlap_size": len(overlap),
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
    )
    return replace(result, options=options)
