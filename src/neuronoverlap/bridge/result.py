"""The typed result of a bridge selection: what was scored, on which sets, and how sure it is.

One tie-break everywhere (`rank`): a higher statistic first, equal statistics in candidate
order, a bridge without a statistic (no neurons in any window layer) last.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any, ClassVar

from neuronoverlap.options import BRIDGE_METHODS, BridgeOptions
from neuronoverlap.results import header
from neuronoverlap.sets import NeuronSet
from neuronoverlap.store import schema

#: Ranking statistics: the effect (default: raw minus the random sets' mean), the calibrated z,
#: or the reference code's raw score.
METHODS = BRIDGE_METHODS


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
    share of resamples in which each bridge ranks first (by `rank`), probability_error its
    Monte Carlo standard error sqrt(p (1 - p) / n_resamples); top_two["near_tie"]: the top
    two's paired interval includes 0. sets_rebuilt: O and every B rebuilt on each resample.
    """

    n_resamples: int
    statistic: str
    level: float
    intervals: dict[str, list[float | None]]
    top_two: dict[str, Any] | None
    selection_probability: dict[str, float]
    unit: str = "probe word pair (its s->t and t->s samples together)"
    sets_rebuilt: bool = False
    probability_error: dict[str, float] | None = None
    calibration_draws: int | None = None

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
    empty layers dropped). effect (the default ranking statistic, issue 26): window mean over
    `window` of effect_l = raw_l - mean_l (the random sets' mean), an empty B_l counting as 0;
    holm_pvalues: `pvalues` Holm-adjusted over the candidates; calibration_error: the Monte
    Carlo standard error of the ranking statistic over the calibration draws; nuisance_r2: the
    share of each set's variance (over samples) that the nuisance covariates explain.
    `method` picks the ranking statistic. `options`: the `BridgeOptions`
    it ran with, whole (None for a selection stored before they were recorded, or one made from
    arrays by `select_from_activations`).
    """

    kind: ClassVar[str] = "bridge-selection"
    FORMAT: ClassVar[int] = 1

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
    effect: dict[str, float] | None = None
    per_layer_effect: PerLayer | None = None
    holm_pvalues: dict[str, float] | None = None
    calibration_error: dict[str, float] | None = None
    nuisance_r2: dict[str, float | None] | None = None
    options: BridgeOptions | None = None

    @property
    def key(self) -> str:
        """Its document's name in the store's results group: bridge-SRC-TGT."""
        return schema.bridge_result_name(self.src, self.tgt)

    def ran_with(self, candidates: list[str], options: BridgeOptions) -> bool:
        """Whether this selection is what `options` would compute for `candidates` (the same
        bridges, every option equal); one recorded without options never is."""
        return self.options == options and sorted(self.candidates) == sorted(candidates)

    @property
    def scores(self) -> dict[str, float | None]:
        """The ranking statistic of `method`."""
        return {"effect": self.effect, "calibrated": self.calibrated}.get(self.method, self.reference_scores)

    @property
    def per_layer(self) -> PerLayer:
        return {"effect": self.per_layer_effect, "calibrated": self.per_layer_calibrated}.get(
            self.method, self.per_layer_reference
        )

    @property
    def near_tie(self) -> bool | None:
        """Whether the top two's paired bootstrap interval includes 0 (None: no bootstrap)."""
        if self.bootstrap is None or self.bootstrap.top_two is None:
            return None
        low, high = self.bootstrap.top_two["interval"]
        return bool(low <= 0 <= high)

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
        out = {**header(self), **asdict(self)}
        out["options"] = None if self.options is None else self.options.to_dict()
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
        out["near_tie"] = self.near_tie
        if self.per_layer_effect is not None:
            out["per_layer_effect"] = _str_keys(self.per_layer_effect)
        out["layers_scored"] = {b: self.layers_scored(b) for b in self.candidates}
        return out

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> BridgeSelection:
        names = {f.name for f in dataclass_fields(cls)}
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
        if document.get("per_layer_effect") is not None:
            fields["per_layer_effect"] = _int_keys(document["per_layer_effect"])
        if document.get("bootstrap") is not None:
            fields["bootstrap"] = BootstrapSummary.from_dict(document["bootstrap"])
        fields["options"] = BridgeOptions.from_record(document.get("options"))
        return cls(**fields)

    def write_json(self, path: str | Path) -> Path:
        from neuronoverlap.store.paths import check_output

        path = check_output(path, "--json")  # never over a store
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")
        return path
