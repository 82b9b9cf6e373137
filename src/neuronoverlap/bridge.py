"""Bridge-language selection for a low-resource pair (s, t), top to bottom in one file.

1. Neuron sets from the store's probe sets (docs/sets.md): the overlap O(s,t) = active set of
   the s<->t probe set (both directions pooled), and for each candidate b the bridge-specific
   B(b; s,t) = (active(b<->s) | active(b<->t)) - O(s,t).
2. Per layer l of the window: the activations (mean act_fn(gate) per sample) over the s<->t
   probe samples of O(s,t) in layer l and of B(b; s,t) in layer l, and their dependence:
   - "reference" (default; the reference code's score): z-scored rows, one shared Gaussian
     bandwidth, tr(K_i H L_j) for every (overlap neuron, bridge neuron) pair,
     score = (mean_i max_j + mean_j max_i) / 2 (unnormalised: comparable across bridges of one
     run, not across sample sizes);
   - "cka": the same max-mean over pairwise CKA (normalised HSIC, Gaussian kernels, median
     bandwidth per neuron), in [0, 1] and comparable across runs;
   - "set": one normalised HSIC (CKA, Gaussian kernels, median bandwidth, z-scored neurons)
     between the two sets, each sample the vector of a set's neurons.
3. The score of b is its mean over the window; a permutation p-value per bridge permutes the
   samples of the bridge side (the same permutation in every layer of the window) and recomputes
   the window mean. Selection probabilities normalise the scores (or a softmax with a
   temperature); the chosen bridge has the highest score.

Per-layer results are keyed by the real layer id (the reference keys them by list position).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from jaxtyping import Float
from tqdm.auto import tqdm

from neuronoverlap.errors import InputError
from neuronoverlap.hsic import max_mean_test, set_hsic, set_hsic_test
from neuronoverlap.languages import DEFAULT_BRIDGES, get_language
from neuronoverlap.sets import (
    NeuronSet,
    ProbeSamples,
    bridge_specific_from_probes,
    overlap_from_probes,
)
from neuronoverlap.sets.builders import probe_active_set
from neuronoverlap.store import Store

METHODS = ("reference", "cka", "set")
PROBABILITY_RULES = ("normalise", "softmax")
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


def _probe_samples(store: Store, src: str, tgt: str, statistic: str = "prob") -> ProbeSamples:
    view = store.probes(src, tgt)
    return ProbeSamples(
        view.name,
        view.lazy(statistic),
        view.tokens(),
        statistic="probability" if statistic == "prob" else "value",
    )


def _missing_probe_sets(store: Store, src: str, tgt: str, candidates: list[str]) -> list[str]:
    needed = (
        [(src, tgt), (tgt, src)]
        + [(b, x) for b in candidates for x in (src, tgt)]
        + [(x, b) for b in candidates for x in (src, tgt)]
    )
    return [f"{a}-{b}" for a, b in needed if not store.has_probes(a, b)]


def bridge_sets(
    store: Store, src: str, tgt: str, candidates: list[str], top_rate: float = 0.01
) -> tuple[NeuronSet, dict[str, NeuronSet]]:
    """O(s,t) and B(b; s,t) for each candidate, from the store's probe sets."""
    missing = _missing_probe_sets(store, src, tgt, candidates)
    if missing:
        raise InputError(
            f"{store.path} lacks probe sets {', '.join(missing)}: record them with "
            "`neuronoverlap probe` (or pass --model to select-bridge)"
        )
    selection = {"top_rate": top_rate}
    overlap = overlap_from_probes(
        _probe_samples(store, src, tgt), _probe_samples(store, tgt, src), **selection
    )
    specific = {}
    for b in candidates:
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


def pair_activations(
    store: Store, src: str, tgt: str, layer: int
) -> Float[np.ndarray, "sample neuron"]:
    """Mean activations of one layer over the s<->t probe samples (s->t then t->s)."""
    return np.concatenate(
        [store.probes(src, tgt).layer(layer, "mean"), store.probes(tgt, src).layer(layer, "mean")],
        axis=0,
    ).astype(np.float64)


def layer_score(
    overlap_rows: Float[np.ndarray, "neuron sample"],
    bridge_rows: Float[np.ndarray, "neuron sample"],
    method: str,
    n_permutations: int,
    seed: int,
) -> tuple[float, np.ndarray]:
    """One layer's score and its permutation null (bridge-side samples permuted; the same
    seed gives the same permutations in every layer)."""
    if method in ("reference", "cka"):
        test = max_mean_test(
            overlap_rows, bridge_rows, mode=method, n_permutations=n_permutations, seed=seed
        )
        return test.statistic, np.asarray(test.null_distribution, dtype=np.float64)
    test = set_hsic_test(overlap_rows, bridge_rows, n_permutations=n_permutations, seed=seed)
    # CKA = HSIC(A,B) / sqrt(HSIC(A,A) HSIC(B,B)); the denominator does not change under
    # permutations of the samples, so it rescales the null distribution too.
    norm = np.sqrt(set_hsic(overlap_rows, overlap_rows) * set_hsic(bridge_rows, bridge_rows))
    if norm <= 0:
        return 0.0, np.zeros(n_permutations)
    return test.statistic / norm, np.asarray(test.null_distribution, dtype=np.float64) / norm


@dataclass
class BridgeSelection:
    """Scores, p-values and selection probabilities of the candidate bridges for (s, t)."""

    src: str
    tgt: str
    method: str
    candidates: list[str]
    window: list[int]
    per_layer: dict[str, dict[int, float | None]]  # bridge -> real layer id -> score
    set_sizes: dict[str, dict[int, list[int]]]  # bridge -> layer -> [|O_l|, |B_l|]
    scores: dict[str, float]
    pvalues: dict[str, float]
    probabilities: dict[str, float]
    chosen: str
    parameters: dict = field(default_factory=dict)

    def ranking(self) -> list[str]:
        return sorted(self.candidates, key=lambda b: (-self.scores[b], b))

    def to_dict(self) -> dict:
        out = asdict(self)
        out["ranking"] = self.ranking()
        out["per_layer"] = {b: {str(k): v for k, v in d.items()} for b, d in self.per_layer.items()}
        out["set_sizes"] = {b: {str(k): v for k, v in d.items()} for b, d in self.set_sizes.items()}
        return out

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")
        return path


def selection_probabilities(
    scores: dict[str, float], rule: str = "normalise", temperature: float = 1.0
) -> dict[str, float]:
    """Scores -> probabilities: divide by their sum (negatives clipped to 0), or a softmax."""
    if rule not in PROBABILITY_RULES:
        raise InputError(
            f"unknown probability rule {rule!r}; use one of {', '.join(PROBABILITY_RULES)}"
        )
    names = list(scores)
    values = np.array([scores[b] for b in names], dtype=np.float64)
    if rule == "softmax":
        if temperature <= 0:
            raise InputError(f"softmax temperature must be > 0, got {temperature}")
        z = values / temperature
        weights = np.exp(z - z.max())
    else:
        weights = np.clip(values, 0, None)
        if weights.sum() == 0:
            weights = np.ones_like(weights)
    weights = weights / weights.sum()
    return {b: float(w) for b, w in zip(names, weights, strict=True)}


def select_bridge(
    store: Store | str | Path,
    src: str,
    tgt: str,
    candidates: list[str] | tuple[str, ...] = DEFAULT_BRIDGES,
    method: str = "reference",
    window: list[int] | None = None,
    window_fractions: tuple[float, float] = DEFAULT_WINDOW_FRACTIONS,
    top_rate: float = 0.01,
    n_permutations: int = 200,
    probability: str = "normalise",
    temperature: float = 1.0,
    seed: int = 0,
    progress: bool = True,
) -> BridgeSelection:
    """Score every candidate bridge for (src, tgt) from the probe sets in `store`."""
    store = store if isinstance(store, Store) else Store(store)
    if method not in METHODS:
        raise InputError(f"unknown scoring method {method!r}; use one of {', '.join(METHODS)}")
    src, tgt = get_language(src).code, get_language(tgt).code
    candidates = [get_language(b).code for b in candidates]
    if not candidates:
        raise InputError("no candidate bridges")
    clash = {src, tgt} & set(candidates)
    if clash:
        raise InputError(f"a bridge cannot be the source or target: {', '.join(sorted(clash))}")
    if n_permutations < 1:
        raise InputError(f"n_permutations must be at least 1, got {n_permutations}")
    layers = layer_window(store.n_layers, window_fractions, window)
    overlap, specific = bridge_sets(store, src, tgt, candidates, top_rate)
    if not any(len(overlap.layer(layer)) for layer in layers):
        raise InputError(
            f"O({src},{tgt}) has no neurons in the window layers {layers}; widen the "
            "window or raise --top-rate"
        )

    per_layer: dict[str, dict[int, float | None]] = {b: {} for b in candidates}
    sizes: dict[str, dict[int, list[int]]] = {b: {} for b in candidates}
    nulls: dict[str, list[np.ndarray]] = {b: [] for b in candidates}
    bar = tqdm(
        total=len(layers) * len(candidates),
        desc=f"bridge {src}-{tgt} ({method})",
        unit="layer",
        disable=not progress,
        dynamic_ncols=True,
    )
    for layer in layers:
        acts = pair_activations(store, src, tgt, layer)
        o_idx = overlap.layer(layer)
        for b in candidates:
            b_idx = specific[b].layer(layer)
            sizes[b][layer] = [int(len(o_idx)), int(len(b_idx))]
            if len(o_idx) == 0 or len(b_idx) == 0:
                per_layer[b][layer] = None  # nothing to compare in this layer
            else:
                score, null = layer_score(
                    acts[:, o_idx].T, acts[:, b_idx].T, method, n_permutations, seed
                )
                per_layer[b][layer] = score
                nulls[b].append(null)
            bar.update(1)
    bar.close()

    scores, pvalues = {}, {}
    for b in candidates:
        observed = [v for v in per_layer[b].values() if v is not None]
        if not observed:
            scores[b], pvalues[b] = 0.0, 1.0
            continue
        scores[b] = float(np.mean(observed))
        # The same seed draws the same permutations in every layer: average them elementwise.
        null_mean = np.mean(nulls[b], axis=0)
        tol = 100 * np.finfo(np.float64).eps * abs(scores[b])
        pvalues[b] = float((1 + np.sum(null_mean >= scores[b] - tol)) / (1 + len(null_mean)))
    probabilities = selection_probabilities(scores, probability, temperature)
    chosen = max(candidates, key=lambda b: (scores[b], -candidates.index(b)))
    parameters = {
        "top_rate": top_rate,
        "overlap": "active set of the s<->t probe set (both directions pooled)",
        "bridge_specific": "(active(b<->s) | active(b<->t)) - O(s,t)",
        "activations": "mean act_fn(gate) per probe sample, s->t and t->s samples",
        "window_fractions": list(window_fractions) if window is None else None,
        "n_permutations": n_permutations,
        "probability": probability,
        "temperature": temperature if probability == "softmax" else None,
        "seed": seed,
        "store": str(store.path),
        "model": store.model_name,
        "model_fingerprint": store.fingerprint,
        "n_samples": int(store.probes(src, tgt).n_samples + store.probes(tgt, src).n_samples),
        "overlap_size": len(overlap),
    }
    for b in candidates:
        if math.isnan(scores[b]):
            raise InputError(f"bridge {b}: the score is NaN (check the store's activations)")
    return BridgeSelection(
        src,
        tgt,
        method,
        candidates,
        layers,
        per_layer,
        sizes,
        scores,
        pvalues,
        probabilities,
        chosen,
        parameters,
    )
