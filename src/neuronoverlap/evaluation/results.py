"""Results shared by BLI and MRC: conditions with their records and accuracy, paired comparisons
of each bridge with zero-shot, the oracle comparison, and the JSON + JSONL writer.

A condition is named `zero-shot`, `bridge:{code}` or (MRC only) `reference`. Every record is a
dataclass with a boolean `hit`; `ConditionResult.hits` lines them up for the statistics, in the
same item order for every condition of a run, which is what the paired tests need.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from jaxtyping import Bool
from scipy import stats

from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.statistics import (
    Accuracy,
    McNemarResult,
    accuracy,
    mcnemar_test,
    paired_bootstrap_ci,
)
from neuronoverlap.jsonable import json_default
from neuronoverlap.numbers import p_is
from neuronoverlap.results import header
from neuronoverlap.store import schema

ZERO_SHOT = "zero-shot"
REFERENCE = "reference"


def bridge_condition(bridge: str) -> str:
    return f"bridge:{bridge}"


def condition_bridge(name: str) -> str | None:
    """The bridge of a condition named by bridge_condition (None for the others)."""
    return name.split(":", 1)[1] if name.startswith("bridge:") else None


@dataclass
class ConditionResult:
    """One condition of a run: its records (one per item) and accuracy."""

    name: str
    bridge: str | None
    records: list[Any]
    accuracy: Accuracy

    @property
    def hits(self) -> Bool[np.ndarray, " item"]:
        return np.array([record.hit for record in self.records], dtype=bool)


def condition_result(
    name: str,
    bridge: str | None,
    records: list[Any],
    confidence: float,
    n_resamples: int,
    seed: int,
) -> ConditionResult:
    hits = np.array([record.hit for record in records], dtype=bool)
    return ConditionResult(name, bridge, records, accuracy(hits, confidence, n_resamples, seed))


@dataclass(frozen=True)
class Comparison:
    """A bridge against zero-shot on the same items: McNemar's test and the bootstrap interval
    of accuracy(bridge) - accuracy(zero-shot)."""

    bridge: str
    mcnemar: McNemarResult
    difference_ci: tuple[float, float]

    @property
    def difference(self) -> float:
        return self.mcnemar.difference

    def to_dict(self) -> dict:
        return {
            "bridge": self.bridge,
            "difference": self.difference,
            "difference_ci": list(self.difference_ci),
            "mcnemar": self.mcnemar.to_dict(),
        }


def compare(
    zero_shot: ConditionResult,
    bridged: ConditionResult,
    confidence: float,
    n_resamples: int,
    seed: int,
) -> Comparison:
    a, b = zero_shot.hits, bridged.hits
    ci = paired_bootstrap_ci(a, b, confidence, n_resamples, seed)
    return Comparison(str(bridged.bridge), mcnemar_test(a, b), ci)


@dataclass(frozen=True)
class OracleComparison:
    """The best bridge in hindsight (the oracle) against the one a selection method ranked first.

    `oracle`: the bridge with the highest accuracy (ties go to the earlier one in `ranking`,
    then in the order of `accuracies`); `tied_best`: every bridge with that accuracy.
    `selected_rank`: 1 + the number of bridges strictly more accurate than the selected one
    (1 = the selection was as good as the oracle). `kendall_tau`: Kendall's tau-b between the
    selection order and the accuracies of the ranked bridges (1: the ranking orders them as
    their accuracies do; None with fewer than two ranked bridges, nan when all accuracies tie).
    """

    accuracies: dict[str, float]
    by_accuracy: list[str]
    oracle: str
    oracle_accuracy: float
    tied_best: list[str]
    ranking: list[str] | None = None
    selected: str | None = None
    selected_accuracy: float | None = None
    selected_rank: int | None = None
    gap: float | None = None
    kendall_tau: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def oracle_comparison(ranking: Sequence[str] | None, accuracies: Mapping[str, float]) -> OracleComparison:
    """Compare a bridge ranking (bridges in selection order, best first; None for none) with the
    per-bridge accuracies: the oracle bridge, and the rank and accuracy gap of the selected one.

    Every ranked bridge needs an accuracy; `accuracies` may hold more bridges (they compete for
    the oracle and count in the rank)."""
    if not accuracies:
        raise InputError("no bridge accuracies to compare")
    ranked = list(ranking) if ranking is not None else None
    if ranked is not None:
        if not ranked:
            raise InputError("the bridge ranking is empty")
        if len(set(ranked)) != len(ranked):
            raise InputError(f"a bridge appears twice in the ranking {ranked}")
        missing = [b for b in ranked if b not in accuracies]
        if missing:
            raise InputError(
                f"no accuracy for ranked bridge(s) {', '.join(missing)}: evaluate them too "
                "(e.g. --bridges all)"
            )
    order = (ranked or []) + [b for b in accuracies if b not in (ranked or [])]
    by_accuracy = sorted(order, key=lambda b: -accuracies[b])  # stable: ties keep `order`
    best = accuracies[by_accuracy[0]]
    tied = [b for b in by_accuracy if accuracies[b] == best]
    result = dict(
        accuracies={b: float(accuracies[b]) for b in order},
        by_accuracy=by_accuracy,
        oracle=by_accuracy[0],
        oracle_accuracy=float(best),
        tied_best=tied,
    )
    if ranked is None:
        return OracleComparison(**result)
    selected = ranked[0]
    chosen = accuracies[selected]
    tau = None
    if len(ranked) >= 2:
        tau = float(
            stats.kendalltau([-i for i in range(len(ranked))], [accuracies[b] for b in ranked]).statistic
        )
    return OracleComparison(
        **result,
        ranking=ranked,
        selected=selected,
        selected_accuracy=float(chosen),
        selected_rank=1 + sum(accuracies[b] > chosen for b in accuracies),
        gap=float(best - chosen),
        kendall_tau=tau,
    )


@dataclass
class EvaluationResult:
    """What an evaluation run found: conditions, comparisons, oracle, and every parameter.

    On the shelf (kind "evaluation", document `summary()`) it is kept without its records, which
    go to the JSONL file beside the summary (`write_results`): read back, every condition's
    `records` is empty and its accuracy is the stored one."""

    kind: ClassVar[str] = "evaluation"
    FORMAT: ClassVar[int] = 1

    task: str  # "bli" or "mrc"
    name: str  # e.g. "zh-ja" (BLI) or "sw" (MRC): used in file names
    conditions: dict[str, ConditionResult]
    comparisons: dict[str, Comparison]
    oracle: OracleComparison | None
    params: dict[str, Any]
    model: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, dict[str, Any]] = field(default_factory=dict)  # per condition
    seconds: float = math.nan
    logprob: dict[str, Any] | None = None  # the gold log-prob section (evaluation.logprob)

    @property
    def key(self) -> str:
        """Its document's name in the store's results group: bli-SRC-TGT, mrc-LANG."""
        return schema.evaluation_result_name(self.task, self.name)

    def to_dict(self) -> dict[str, Any]:
        return {**header(self), **self.summary()}

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> EvaluationResult:
        """The stored summary back as a result (its conditions without records)."""
        conditions = {
            name: ConditionResult(name, c.get("bridge"), [], _accuracy(c))
            for name, c in (document.get("conditions") or {}).items()
        }
        comparisons = {
            b: Comparison(
                b,
                McNemarResult(**{k: c["mcnemar"][k] for k in McNemarResult.__dataclass_fields__}),
                tuple(c["difference_ci"]),
            )
            for b, c in (document.get("comparisons") or {}).items()
        }
        oracle = document.get("oracle")
        return cls(
            document["task"],
            document["name"],
            conditions,
            comparisons,
            None if oracle is None else OracleComparison(**oracle),
            dict(document.get("params") or {}),
            dict(document.get("model") or {}),
            dict(document.get("data") or {}),
            dict(document.get("diagnostics") or {}),
            document.get("seconds", math.nan),
        )

    def accuracy_of(self, condition: str) -> float:
        return self.conditions[condition].accuracy.accuracy

    @property
    def bridges(self) -> list[str]:
        return [c.bridge for c in self.conditions.values() if c.bridge is not None]

    def summary(self) -> dict[str, Any]:
        """Everything but the records, as plain JSON-ready data."""
        return {
            "task": self.task,
            "name": self.name,
            "params": self.params,
            "model": self.model,
            "data": self.data,
            "seconds": self.seconds,
            "conditions": {
                name: {"bridge": c.bridge, **c.accuracy.to_dict()} for name, c in self.conditions.items()
            },
            "comparisons": {b: c.to_dict() for b, c in self.comparisons.items()},
            "oracle": self.oracle.to_dict() if self.oracle else None,
            "diagnostics": self.diagnostics,
            **({"logprob": self.logprob} if self.logprob is not None else {}),
        }

    def table(self) -> str:
        """A short plain-text table of the accuracies and the paired differences."""
        rows = [f"{'condition':<14} {'accuracy':>8}  {'95% CI (bootstrap)':<20} {'n':>5}"]
        for name, c in self.conditions.items():
            a = c.accuracy
            ci = f"[{a.ci_low:.3f}, {a.ci_high:.3f}]"
            rows.append(f"{name:<14} {a.accuracy:>8.3f}  {ci:<20} {a.n:>5}")
        for bridge, comp in self.comparisons.items():
            m = comp.mcnemar
            rows.append(
                f"{bridge_condition(bridge)} - {ZERO_SHOT}: {comp.difference:+.3f} "
                f"[{comp.difference_ci[0]:+.3f}, {comp.difference_ci[1]:+.3f}], McNemar "
                f"{m.only_a} vs {m.only_b} discordant, {p_is(m.pvalue)} ({m.method})"
            )
        if self.oracle is not None:
            o = self.oracle
            line = f"oracle bridge: {o.oracle} ({o.oracle_accuracy:.3f})"
            if o.selected is not None:
                line += (
                    f"; selected {o.selected} ({o.selected_accuracy:.3f}) ranks "
                    f"{o.selected_rank} of {len(o.accuracies)}, gap {o.gap:.3f}"
                )
            rows.append(line)
        if self.logprob is not None:
            from neuronoverlap.evaluation.logprob import logprob_table

            rows = (rows if self.conditions else []) + [logprob_table(self.logprob)]
        return "\n".join(rows)


def _accuracy(document: dict[str, Any]) -> Accuracy:
    return Accuracy(**{k: document[k] for k in Accuracy.__dataclass_fields__})


def model_description(model: Any) -> dict[str, Any]:
    """Name, fingerprint, config, device and dtype of a `NeuronModel`, for provenance."""
    return {
        "name": model.name,
        "fingerprint": model.fingerprint(),
        "config": model.config_summary(),
        "device": str(model.device),
        "dtype": str(model.dtype).removeprefix("torch."),
    }


def write_results(result: EvaluationResult, out_dir: str | Path) -> dict[str, Path]:
    """Write `{task}-{name}.json` (parameters, model, data, accuracies, tests, oracle) and
    `{task}-{name}.jsonl` (every record, with its condition) into `out_dir`; returns the paths."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{result.task}-{result.name}"
    summary_path, records_path = out / f"{stem}.json", out / f"{stem}.jsonl"
    summary = {**result.summary(), "records_file": records_path.name}
    summary_path.write_text(
        json.dumps(summary, ensure_ascii=False, indent=2, default=json_default) + "\n",
        encoding="utf-8",
    )
    with records_path.open("w", encoding="utf-8") as f:
        for name, condition in result.conditions.items():
            for record in condition.records:
                row = asdict(record) if is_dataclass(record) else dict(record)
                f.write(
                    json.dumps({"condition": name, **row}, ensure_ascii=False, default=json_default) + "\n"
                )
    return {"summary": summary_path, "records": records_path}


def summarise_conditions(
    records: Mapping[str, list[Any]],
    bridges: Sequence[str],
    ranking: Sequence[str] | None,
    confidence: float,
    n_resamples: int,
    seed: int,
) -> tuple[dict[str, ConditionResult], dict[str, Comparison], OracleComparison | None]:
    """Each condition's accuracy, each bridge against zero-shot (where zero-shot was run), and
    (with bridges) the oracle comparison of the ranking, from the records of every condition."""
    conditions = {
        name: condition_result(name, condition_bridge(name), recs, confidence, n_resamples, seed)
        for name, recs in records.items()
    }
    comparisons = {
        b: compare(conditions[ZERO_SHOT], conditions[bridge_condition(b)], confidence, n_resamples, seed)
        for b in bridges
        if ZERO_SHOT in conditions
    }
    oracle = None
    if bridges:
        oracle = oracle_comparison(
            ranking, {b: conditions[bridge_condition(b)].accuracy.accuracy for b in bridges}
        )
    return conditions, comparisons, oracle
