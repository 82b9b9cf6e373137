"""A neuron set's causal effect on a score, against size-matched random sets.

`set_effect` runs the named set's intervention exactly (its effect with a bootstrap interval
over items, and per layer), `exact_sets` random sets exactly, and `attribution_sets` random sets
through the attribution estimate (one forward and backward pass for all of them); it reports
the empirical p-value and z of the named set against both nulls and how well the estimate
agreed with the exact effect on the sets run both ways.

The effect is the change of the mean item score (token NLL: positive = the model got worse);
`alternative="greater"` asks whether the set hurts more than random sets of its kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from jaxtyping import Float

from neuronoverlap.errors import InputError
from neuronoverlap.interventions.attribution import attribution_scores
from neuronoverlap.interventions.cache import RunCache, run_key
from neuronoverlap.interventions.hooks import Intervention, attached
from neuronoverlap.interventions.null import as_neuron_set, empirical_pvalue, random_sets, z_score
from neuronoverlap.interventions.scoring import ScoredTexts, score_texts
from neuronoverlap.models.interface import NeuronModel
from neuronoverlap.options import NullOptions
from neuronoverlap.sets import NeuronSet


def bootstrap_mean_interval(
    values: Float[np.ndarray, " item"], *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(values), items resampled with replacement."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, (n_resamples, values.size))].mean(1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return (float(low), float(high))


@dataclass(frozen=True)
class SetEffect:
    """One set's effect on one score, with its nulls (plain numbers, JSON-ready via `asdict`)."""

    label: str
    n_neurons: int
    layer_counts: dict[int, int]
    effect: float
    interval: tuple[float, float]
    per_layer: dict[int, float]
    attribution: float
    per_layer_attribution: dict[int, float]
    null_exact: list[float]
    null_exact_attribution: list[float]
    null_attribution: list[float]
    p_exact: float
    z_exact: float
    p_attribution: float
    z_attribution: float
    agreement_r: float
    attribution_error: float
    options: dict[str, Any] = field(default_factory=dict)


def set_effect(
    model: NeuronModel,
    texts: ScoredTexts,
    neurons: NeuronSet,
    *,
    kind: str = "zero",
    values: Any = None,
    factor: Any = None,
    probability: Float[np.ndarray, "layer neuron"] | None = None,
    options: NullOptions = NullOptions(),  # noqa: B008 (frozen)
    baseline: Float[np.ndarray, " item"] | None = None,
    attribution: Float[np.ndarray, "layer neuron"] | None = None,
    batch_size: int = 8,
    exact_per_layer: bool = True,
    exact_null: bool = True,
    cache: RunCache | None = None,
    progress: Callable[[str], None] | None = None,
) -> SetEffect:
    """The effect of intervening on `neurons` (module docstring).

    `values` / `factor` are numbers or [n_layers, d_mlp] arrays, as every random set needs its own;
    `probability` [n_layers, d_mlp] sets the bands (None: uniform within layers). `baseline`
    (the items' scores without intervention) and `attribution` (`attribution_scores` of these
    texts and this intervention) may be passed in when several sets share the texts. The effect
    per layer is exact (one run per layer of the set) or, with `exact_per_layer=False`, the
    attribution estimate only (`per_layer` is then empty). With `exact_null=False` no random set
    is run exactly (the attribution null only: `p_exact`, `z_exact` are nan). `cache`
    (`interventions.cache.RunCache`) keeps every finished scoring, so a killed run resumes.
    """
    shape = (model.n_layers, model.d_mlp)
    for name, given in (("values", values), ("factor", factor)):
        if given is not None and np.ndim(given) not in (0, 2):
            raise InputError(f"{name} must be a number or a [n_layers, d_mlp] array for the null")
    named = Intervention.build(shape, neurons, kind, values=values, factor=factor).neurons
    say = progress or (lambda message: None)

    cache = cache or RunCache(None)
    setting = {"model": model.fingerprint(), "texts": texts, "kind": kind, "values": values, "factor": factor}

    def scores(members: NeuronSet) -> Float[np.ndarray, " item"]:
        def compute():
            with attached(model, Intervention.build(shape, members, kind, values=values, factor=factor)):
                return score_texts(model, texts, batch_size=batch_size)

        return cache.array(run_key(run="score", members=np.flatnonzero(members.mask), **setting), compute)

    def exact(members: NeuronSet) -> Float[np.ndarray, " item"]:
        return scores(members) - baseline

    if baseline is None:
        baseline = cached_scores(model, texts, batch_size=batch_size, cache=cache)
    if attribution is None:
        say("attribution pass")
        attribution = cached_attribution(
            model, texts, kind, values=values, factor=factor, batch_size=batch_size, cache=cache
        )
    say(f"{named.label or 'set'}: exact effect")
    change = exact(named)
    layers = [int(layer) for layer in np.flatnonzero(named.per_layer_counts())]
    per_layer = {}
    for layer in layers if exact_per_layer else []:
        part = np.zeros(shape, dtype=bool)
        part[layer] = named.mask[layer]
        per_layer[layer] = float(exact(NeuronSet(part)).mean()) if len(layers) > 1 else float(change.mean())
    rows = random_sets(
        named,
        max(options.exact_sets, options.attribution_sets),
        probability=probability,
        n_bands=options.n_bands,
        seed=options.seed,
    )
    flat = attribution.ravel()
    null_attribution = flat[rows[: options.attribution_sets]].sum(1)
    null_exact = []
    for i, row in enumerate(rows[: options.exact_sets] if exact_null else []):
        say(f"random set {i + 1}/{options.exact_sets}")
        null_exact.append(float(exact(as_neuron_set(row, shape)).mean()))
    null_exact_attribution = flat[rows[: len(null_exact)]].sum(1)
    effect, estimate = float(change.mean()), float(attribution[named.mask].sum())
    both_exact = np.array([effect, *null_exact])
    both_estimate = np.array([estimate, *null_exact_attribution])
    spread = both_exact.std() > 0 and both_estimate.std() > 0
    return SetEffect(
        label=named.label or "set",
        n_neurons=len(named),
        layer_counts={layer: int(named.per_layer_counts()[layer]) for layer in layers},
        effect=effect,
        interval=bootstrap_mean_interval(
            change, confidence=options.confidence, n_resamples=options.n_resamples, seed=options.seed
        ),
        per_layer=per_layer,
        attribution=estimate,
        per_layer_attribution={layer: float(attribution[layer][named.mask[layer]].sum()) for layer in layers},
        null_exact=null_exact,
        null_exact_attribution=[float(x) for x in null_exact_attribution],
        null_attribution=[float(x) for x in null_attribution],
        p_exact=empirical_pvalue(effect, np.array(null_exact), options.alternative)
        if null_exact
        else float("nan"),
        z_exact=z_score(effect, np.array(null_exact)),
        p_attribution=empirical_pvalue(estimate, null_attribution, options.alternative),
        z_attribution=z_score(estimate, null_attribution),
        agreement_r=float(np.corrcoef(both_exact, both_estimate)[0, 1]) if spread else float("nan"),
        attribution_error=estimate - effect,
        options={
            "kind": kind,
            "n_bands": options.n_bands if probability is not None else 1,
            "seed": options.seed,
            "exact_null": bool(exact_null),
        },
    )


def cached_scores(
    model: NeuronModel, texts: ScoredTexts, *, batch_size: int = 8, cache: RunCache | None = None
) -> Float[np.ndarray, " item"]:
    """`score_texts` without an intervention, kept in `cache`."""
    key = run_key(run="score", members=None, model=model.fingerprint(), texts=texts)
    return (cache or RunCache(None)).array(key, lambda: score_texts(model, texts, batch_size=batch_size))


def cached_attribution(
    model: NeuronModel,
    texts: ScoredTexts,
    kind: str,
    *,
    values: Any = None,
    factor: Any = None,
    batch_size: int = 8,
    cache: RunCache | None = None,
) -> Float[np.ndarray, "layer neuron"]:
    """`attribution_scores`, kept in `cache`."""
    key = run_key(
        run="attribution", model=model.fingerprint(), texts=texts, kind=kind, values=values, factor=factor
    )
    return (cache or RunCache(None)).array(
        key,
        lambda: attribution_scores(model, texts, kind, values=values, factor=factor, batch_size=batch_size),
    )
