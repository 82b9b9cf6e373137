"""Look up single neurons in a store: how often and how strongly they fire in each language's
corpus and each probe set, and which stored neuron sets hold them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from neuronoverlap.errors import InputError
from neuronoverlap.sets.pooling import pooled_mean
from neuronoverlap.store import Store

_NEURON = re.compile(r"^\s*(\d+)\s*[:.]\s*(\d+)\s*$")


@dataclass(frozen=True)
class Firing:
    """Token-weighted activation probability (share of tokens with act > 0) and mean activation."""

    probability: float
    mean: float
    tokens: int


@dataclass(frozen=True)
class NeuronReport:
    layer: int
    neuron: int
    corpora: dict[str, Firing]  # language -> its FLORES-200 corpus statistics
    probes: dict[str, Firing]  # probe set (src-tgt) -> pooled over its samples' tokens
    sets: list[str]  # stored neuron sets that hold the neuron

    def to_dict(self) -> dict:
        return asdict(self)


def parse_neuron(text: str) -> tuple[int, int]:
    """'LAYER:NEURON' (or 'LAYER.NEURON') -> (layer, neuron)."""
    match = _NEURON.match(text)
    if not match:
        raise InputError(f"a neuron is LAYER:NEURON, e.g. 3:1205; got {text!r}")
    return int(match.group(1)), int(match.group(2))


def _check(store: Store, layer: int, neuron: int) -> None:
    if not 0 <= layer < store.n_layers:
        raise InputError(f"layer {layer} out of range 0..{store.n_layers - 1} for {store.model_name}")
    if not 0 <= neuron < store.d_mlp:
        raise InputError(f"neuron {neuron} out of range 0..{store.d_mlp - 1} for {store.model_name}")


def _corpus_firing(store: Store) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    firing = {}
    for lang in store.corpora():
        view = store.corpus(lang)
        firing[lang] = (view.activation_probability(), view.mean_activation(), view.n_tokens)
    return firing


def _probe_firing(
    store: Store, name: str, layers: Sequence[int]
) -> dict[int, tuple[np.ndarray, np.ndarray, int]]:
    """Token-weighted probability and mean of every neuron of each layer over a probe set."""
    view = store.probes(name)
    tokens = view.tokens()
    return {
        layer: (
            pooled_mean(view.layer(layer, "probability"), tokens),
            pooled_mean(view.layer(layer, "mean"), tokens),
            int(tokens.sum()),
        )
        for layer in layers
    }


def _firing_at(values: tuple[np.ndarray, np.ndarray, int], index) -> Firing:
    probability, mean, tokens = values
    return Firing(float(probability[index]), float(mean[index]), tokens)


def query_neurons(store: Store, neurons: Sequence[tuple[int, int]]) -> list[NeuronReport]:
    """A NeuronReport for each (layer, neuron), reading only the layers asked for."""
    if not neurons:
        raise InputError("no neurons to look up")
    for layer, neuron in neurons:
        _check(store, layer, neuron)
    corpora = _corpus_firing(store)
    layers = sorted({layer for layer, _ in neurons})
    probes = {name: _probe_firing(store, name, layers) for name in store.probe_sets()}
    stored_sets = {name: store.neuron_set(name) for name in store.neuron_set_names()}
    reports = []
    for layer, neuron in neurons:
        reports.append(
            NeuronReport(
                layer=layer,
                neuron=neuron,
                corpora={lang: _firing_at(values, (layer, neuron)) for lang, values in corpora.items()},
                probes={name: _firing_at(by_layer[layer], neuron) for name, by_layer in probes.items()},
                sets=[name for name, members in stored_sets.items() if (layer, neuron) in members],
            )
        )
    return reports


def format_report(report: NeuronReport) -> str:
    """A plain-text table of one NeuronReport."""
    lines = [f"neuron {report.layer}:{report.neuron}"]
    for title, rows in (("corpus", report.corpora), ("probe set", report.probes)):
        if not rows:
            continue
        lines.append(f"  {title:10s} P(active)  mean act   tokens")
        ordered = sorted(rows.items(), key=lambda item: -item[1].probability)
        lines += [f"  {name:10s} {f.probability:9.3f}  {f.mean:+8.4f}  {f.tokens:7d}" for name, f in ordered]
    lines.append(f"  in sets: {', '.join(report.sets) if report.sets else 'none'}")
    return "\n".join(lines)
