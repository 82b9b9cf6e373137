"""Neuron cards: everything a researcher looks at first about a neuron, in one object to browse
(report cards, `report/cards.py`) and export (`neuronoverlap export-neurons`, docs/neurons.md).

A card holds the neuron's activation probability in each language's FLORES corpus, its top
contexts per language (tokens around the firing token, as Neuronpedia's activation records:
tokens, values, max value), its cross-lingual agreement (`agreement.py`) and the stored neuron
sets that hold it. Per-token values of a context's other tokens are not stored; they are
recomputed with the model on request (`model=`), else left out (null).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from neuronoverlap.errors import InputError
from neuronoverlap.neurons.agreement import agreement_scores, parallel_corpora, stored_samples
from neuronoverlap.neurons.contexts import DEFAULT_WINDOW, Context, corpus_sentences, neuron_contexts
from neuronoverlap.results import header, of_kind


@dataclass(frozen=True)
class ActivationRecord:
    """One top context: the tokens of the window, the firing token's index and value; `values`
    (each token's activation) when recomputed with the model."""

    lang: str
    sentence: int
    position: int
    tokens: tuple[str, ...]
    max_value_token_index: int
    max_value: float
    values: tuple[float, ...] | None = None

    def to_dict(self) -> dict:
        return {
            "tokens": list(self.tokens),
            "values": None if self.values is None else list(self.values),
            "maxValue": self.max_value,
            "maxValueTokenIndex": self.max_value_token_index,
            "lang": self.lang,
            "sentence": self.sentence,
            "position": self.position,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ActivationRecord:
        return cls(
            lang=d["lang"],
            sentence=int(d["sentence"]),
            position=int(d["position"]),
            tokens=tuple(d["tokens"]),
            max_value_token_index=int(d["maxValueTokenIndex"]),
            max_value=float(d["maxValue"]),
            values=None if d["values"] is None else tuple(float(v) for v in d["values"]),
        )

    @classmethod
    def of(cls, context: Context) -> ActivationRecord:
        return cls(
            context.source,
            context.sample,
            context.position,
            context.tokens,
            int(context.marked),
            context.value,
        )


@dataclass(frozen=True)
class NeuronCard:
    layer: int
    neuron: int
    probability: tuple[tuple[str, float], ...]  # (language, activation probability) per corpus
    records: tuple[ActivationRecord, ...]  # top contexts, language after language, best first
    agreement: float | None  # mean pairwise Jaccard of the top sentences (None: < 2 languages)
    chance: float | None  # its shuffle-null expectation
    sets: tuple[str, ...]

    @property
    def hook(self) -> str:
        return f"blocks.{self.layer}.mlp.hook_pre"

    def records_of(self, lang: str) -> list[ActivationRecord]:
        return [r for r in self.records if r.lang == lang]

    def to_dict(self) -> dict:
        return {
            "layer": self.layer,
            "index": self.neuron,
            "hook": self.hook,
            "activation": "act_fn(hook_pre)",
            "activation_probability": dict(self.probability),
            "agreement": self.agreement,
            "agreement_chance": self.chance,
            "sets": list(self.sets),
            "maxValue": max((r.max_value for r in self.records), default=None),
            "activations": [r.to_dict() for r in self.records],
        }

    @classmethod
    def from_dict(cls, d: dict) -> NeuronCard:
        return cls(
            layer=int(d["layer"]),
            neuron=int(d["index"]),
            probability=tuple((k, float(v)) for k, v in d["activation_probability"].items()),
            records=tuple(ActivationRecord.from_dict(r) for r in d["activations"]),
            agreement=d["agreement"],
            chance=d["agreement_chance"],
            sets=tuple(d["sets"]),
        )


@dataclass(frozen=True)
class NeuronCards:
    """The cards of some neurons of one store's model (layout: docs/neurons.md)."""

    kind: ClassVar[str] = "neuron-cards"
    FORMAT: ClassVar[int] = 1

    model: str
    langs: tuple[str, ...]
    cards: tuple[NeuronCard, ...]
    name: str = "cards"  # what they are the cards of (a set's name, or 'cards')

    @property
    def key(self) -> str:
        return f"neuron-cards-{self.name}"

    def to_dict(self) -> dict:
        return {
            **header(self),
            "name": self.name,
            "model": self.model,
            "langs": list(self.langs),
            "neurons": [card.to_dict() for card in self.cards],
        }

    @classmethod
    def from_dict(cls, document: dict) -> NeuronCards:
        d = of_kind(cls, document)
        return cls(
            model=d["model"],
            langs=tuple(d["langs"]),
            cards=tuple(NeuronCard.from_dict(c) for c in d["neurons"]),
            name=d["name"],
        )


def top_members(store, set_name: str, n: int) -> list[tuple[int, int]]:
    """The `n` members of a stored set with the highest mean activation probability over the
    corpora (ties: by layer, then index)."""
    mask = store.neuron_set(set_name).mask
    corpora = store.corpora()
    if not corpora:
        raise InputError(f"{store.path} has no corpora to rank the members of {set_name!r} by")
    mean = np.mean([store.corpus(lang).activation_probability() for lang in corpora], axis=0)
    layers, neurons = np.nonzero(mask)
    order = np.lexsort((neurons, layers, -mean[layers, neurons]))[:n]
    return [(int(layers[i]), int(neurons[i])) for i in order]


def build_cards(
    store,
    neurons: Sequence[tuple[int, int]],
    *,
    width: int = DEFAULT_WINDOW,
    model=None,
    name: str = "cards",
    data_dir=None,
) -> NeuronCards:
    """The card of each neuron (`model`: recompute each context token's value with it)."""
    from neuronoverlap.query import query_neurons

    neurons = [(int(a), int(b)) for a, b in neurons]
    reports = {(r.layer, r.neuron): r for r in query_neurons(store, neurons)}
    contexts = neuron_contexts(store, neurons, width=width, required=True, data_dir=data_dir)
    langs = sorted({lang for per in contexts.values() for lang in per})
    agreement = chance = None
    if len(langs) >= 2:
        langs, n_sentences = parallel_corpora(store, langs)
        samples = stored_samples(store, langs)
        index = tuple(np.array(x) for x in zip(*neurons, strict=True))
        agreement, chance = agreement_scores({k: v[index] for k, v in samples.items()}, n_sentences)
    values = _token_values(model, store, neurons, contexts, data_dir) if model is not None else {}
    cards = []
    for i, (layer, neuron) in enumerate(neurons):
        report = reports[layer, neuron]
        records = []
        for lang in langs:
            for c in contexts[layer, neuron].get(lang, []):
                record = ActivationRecord.of(c)
                if (layer, neuron, lang, c.sample) in values:
                    window = values[layer, neuron, lang, c.sample]
                    lo = c.position - c.marked
                    record = replace(record, values=tuple(window[lo : lo + len(c.tokens)]))
                records.append(record)
        cards.append(
            NeuronCard(
                layer=layer,
                neuron=neuron,
                probability=tuple(
                    (lang, report.corpora[lang].probability) for lang in sorted(report.corpora)
                ),
                records=tuple(records),
                agreement=None if agreement is None else float(agreement[i]),
                chance=None if chance is None else float(chance[i]),
                sets=tuple(report.sets),
            )
        )
    return NeuronCards(store.model_name, tuple(langs), tuple(cards), name)


class _Capture:
    """An `ActivationConsumer` keeping the activations of chosen neurons of each layer."""

    def __init__(self, wanted: dict[int, list[int]]):
        self.wanted, self.values, self.mask = wanted, {}, None

    def consume(self, layer, activation, count_mask) -> None:
        if layer == 0:
            self.mask = count_mask.cpu().numpy()
        if layer in self.wanted:
            self.values[layer] = activation[..., self.wanted[layer]].float().cpu().numpy()


def _token_values(model, store, neurons, contexts, data_dir) -> dict:
    """(layer, neuron, lang, sentence) -> every token's activation of that neuron in the sentence,
    recomputed with `model` (each sentence forwarded once, in batches of 8)."""
    wanted: dict[int, list[int]] = {}
    for layer, neuron in neurons:
        wanted.setdefault(layer, [])
        if neuron not in wanted[layer]:
            wanted[layer].append(neuron)
    out = {}
    for lang in store.corpora():
        indices = sorted({c.sample for per in contexts.values() for c in per.get(lang, [])})
        if not indices:
            continue
        sentences = corpus_sentences(store.corpus(lang).params, data_dir)
        for start in range(0, len(indices), 8):
            batch = indices[start : start + 8]
            capture = _Capture(wanted)
            model.forward_activations([sentences[i] for i in batch], capture)
            for row, sentence in enumerate(batch):
                real = capture.mask[row]
                for layer, neuron in neurons:
                    column = wanted[layer].index(neuron)
                    out[layer, neuron, lang, sentence] = capture.values[layer][row, real, column].tolist()
    return out
