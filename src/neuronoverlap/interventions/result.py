"""`InterventionResult`: an intervention experiment as a typed result kept in the store's
`results` group (document name `key`), shown by the report's "Do these neurons matter?"."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from neuronoverlap.errors import InputError
from neuronoverlap.options import InterventionOptions
from neuronoverlap.results import header, of_kind

EXPERIMENTS = ("perplexity", "bli")


@dataclass(frozen=True)
class InterventionResult:
    """One experiment: `experiment` ("perplexity": LAPE's test; "bli": BridgeX's premise),
    its `name` (languages or pair), the intervention `kind`, the `rows` (one per set and
    language or condition: effects, intervals, nulls), `summary` (matrices, verdict numbers),
    the experiment's own parameters in `params` (languages, sizes, data, model) and the
    `options` it ran with, whole (None in a result stored before they were recorded: format 1)."""

    kind: ClassVar[str] = "intervention"
    FORMAT: ClassVar[int] = 2  # 2: `options` recorded whole (before: factor, of, statistic, null in params)

    experiment: str
    name: str
    intervention: str
    rows: tuple[dict[str, Any], ...]
    summary: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    options: InterventionOptions | None = None

    def __post_init__(self):
        if self.experiment not in EXPERIMENTS:
            raise InputError(
                f"unknown intervention experiment {self.experiment!r}; one of {', '.join(EXPERIMENTS)}"
            )
        object.__setattr__(self, "rows", tuple(self.rows))

    @property
    def key(self) -> str:
        return f"intervention-{self.experiment}-{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            **header(self),
            "experiment": self.experiment,
            "name": self.name,
            "intervention": self.intervention,
            "rows": [dict(r) for r in self.rows],
            "summary": dict(self.summary),
            "params": dict(self.params),
            "options": None if self.options is None else self.options.to_dict(),
        }

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> InterventionResult:
        d = of_kind(cls, document)
        return cls(
            d["experiment"],
            d["name"],
            d["intervention"],
            tuple(d["rows"]),
            d["summary"],
            d["params"],
            InterventionOptions.from_record(d.get("options")),
        )

    def describe(self) -> str:
        """What was done to each set, as recorded (the kind alone for a format-1 result)."""
        if self.options is None:
            return f"intervention: {self.intervention} (its other options were not recorded)"
        return self.options.describe()


def save_result(store, result: InterventionResult) -> str:
    """Keep `result` in `store` under results/<key> (one commit); returns the key."""
    from neuronoverlap.store import StoreWriter, schema

    with StoreWriter.for_existing(store) as writer:
        writer.put_json(schema.RESULTS, result.key, result.to_dict())
    return result.key


def load_results(store) -> list[InterventionResult]:
    """Every intervention result kept in `store`."""
    from neuronoverlap.store import Store, schema

    reader = Store(store)
    names = [n for n in reader.group_names(schema.RESULTS) if n.startswith("intervention-")]
    return [InterventionResult.from_dict(reader.get_json(schema.RESULTS, n)) for n in names]
