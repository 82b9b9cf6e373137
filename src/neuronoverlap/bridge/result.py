"""The typed result of a bridge selection: what was scored, on which sets, and how sure it is.

One tie-break everywhere (`rank`): a higher statistic first, equal statistics in candidate
order, a bridge without a statistic (no neurons in any window layer) last.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from neuronoverlap.sets import NeuronSet

#: Ranking statistics: the calibrated z (default) or the reference code's raw score.
METHODS = ("calibrated", "reference")


def rank(statistic: dict[str, float | None], candidates: list[str]) -> list[str]:
    """Candidates best first: higher statistic, then candidate order; None last."""
    order = {b: i for i, b in enumerate(candidates)}

    def key(b: str):
        value = statistic.get(b)
        return (value is None, -(value if value is not None else 0.0), order[b])

    return sorted(candidates, key=key)


def set_to_dict(neurons: NeuronSet) -> dict[str, Any]:
    return {
        "label": neurons.label,
        "shape": list(neurons.shape),
        "neurons": [list(pair) for pair in neurons.to_list()],
    }


def set_from_dict(document: dict[str, Any]) -> NeuronSet:
    return NeuronSet.from_indices(
        [tuple(pair) for pair in document["neurons"]], tuple(document["shape"]), label=document.get("label")
    )


def _int_keys(nested: dict[str, dict[str, Any]]) -> dict[str, dict[int, Any]]:
    return {b: {int(k): v for k, v in d.items()} for b, d in nested.items()}


def _str_keys(nested: dict[str, dict[int, Any]]) -> dict[str, dict[str, Any]]:
    return {b: {str(k): v for k, v in d.items()} for b, d in nested.items()}


@dataclass
class BootstrapSummary:
    """Paired bootstrap over probe word pairs (a pair's two directions resampled together).

    intervals: percentile interval of each bridge's ranking statistic; top_two: the full-sample
    first and second bridge, their difference and its interval; selection_probability: the
    share of resamples in which each bridge ranks first (by `rank`).
    """

    n_resamples: int
    statistic: str
    level: float
    intervals: dict[str, list[float | None]]
    top_two: dict[str, Any] | None
    selection_probability: dict[str, float]
    unit: str = "probe word pair (its s->t and t->s samples together)"
    sets_rebuilt: bool = False

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> BootstrapSummary:
        return cls(**document)


#: Per-layer series: bridge -> real layer id -> value (None: B_l empty or O_l empty).
PerLayer = dict[str, dict[int, float | None]]


@dataclass
class BridgeSelection:
    """Raw, calibrated and reference scores of the candidate bridges for (s, t).

    raw_scores: window mean (over the layers where B_l is not empty) of the max-mean of the
    pairwise score `score` with a candidate-independent bandwidth. calibrated: window mean over
    `window` (the same layers for every bridge) of z_l = (raw_l - mean_l) / sd_l against random
    sets of size |B_l| from layer l outside O(s,t); an empty B_l counts as z_l = 0. pvalues:
    share of random size-matched "bridges" whose calibrated score is at least as high,
    (1 + #) / (1 + R). reference_scores: the reference code's formula (bandwidth from O and B,
    empty layers dropped). `method` picks the ranking statistic.
    """

    src: str
    tgt: str
    method: str
    score: str
    candidates: list[str]
    window: list[int]
    overlap: NeuronSet
    bridges: dict[str, NeuronSet]
    set_sizes: dict[str, dict[int, list[int]]]  # bridge -> layer -> [|O_l|, |B_l|]
    per_layer_raw: PerLayer
    per_layer_calibrated: PerLayer
    per_layer_reference: PerLayer
    calibration: dict[str, dict[int, list[float] | None]]  # bridge -> layer -> [mean, sd]
    raw_scores: dict[str, float | None]
    calibrated: dict[str, float]
    pvalues: dict[str, float]
    reference_scores: dict[str, float | None]
    bootstrap: BootstrapSummary | None = None
    permutation_pvalues: dict[str, float] | None = None
    parameters: dict = field(default_factory=dict)

    @property
    def scores(self) -> dict[str, float | None]:
        """The ranking statistic of `method`."""
        return self.calibrated if self.method == "calibrated" else self.reference_scores

    @property
    def per_layer(self) -> PerLayer:
        return self.per_layer_calibrated if self.method == "calibrated" else self.per_layer_reference

    @property
    def selection_probability(self) -> dict[str, float] | None:
        return None if self.bootstrap is None else self.bootstrap.selection_probability

    def layers_scored(self, bridge: str) -> list[int]:
        """The window layers where B_l is not empty (raw and reference scores average these)."""
        return [layer for layer, (_, size) in self.set_sizes[bridge].items() if size > 0]

    def ranking(self) -> list[str]:
        return rank(self.scores, self.candidates)

    @property
    def chosen(self) -> str:
        return self.ranking()[0]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["overlap"] = set_to_dict(self.overlap)
        out["bridges"] = {b: set_to_dict(s) for b, s in self.bridges.items()}
        for name in (
            "set_sizes",
            "per_layer_raw",
            "per_layer_calibrated",
            "per_layer_reference",
            "calibration",
        ):
            out[name] = _str_keys(getattr(self, name))
        out["scores"] = dict(self.scores)
        out["per_layer"] = _str_keys(self.per_layer)
        out["ranking"] = self.ranking()
        out["chosen"] = self.chosen
        out["selection_probability"] = self.selection_probability
        out["layers_scored"] = {b: self.layers_scored(b) for b in self.candidates}
        return out

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> BridgeSelection:
        names = set(cls.__dataclass_fields__)
        fields = {k: v for k, v in document.items() if k in names}
        fields["overlap"] = set_from_dict(document["overlap"])
        fields["bridges"] = {b: set_from_dict(s) for b, s in document["bridges"].items()}
        for name in (
            "set_sizes",
            "per_layer_raw",
            "per_layer_calibrated",
            "per_layer_reference",
            "calibration",
        ):
            fields[name] = _int_keys(document[name])
        if document.get("bootstrap") is not None:
            fields["bootstrap"] = BootstrapSummary.from_dict(document["bootstrap"])
        return cls(**fields)

    def write_json(self, path: str | Path) -> Path:
        from neuronoverlap.store.paths import check_output

        path = check_output(path, "--json")  # never over a store
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")
        return path
