"""`InterventionResult`: an intervention experiment as a typed result kept in the store's
`results` group (document name `key`), shown by the report's "Do these neurons matter?"."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from neuronoverlap.errors import InputError

EXPERIMENTS = ("perplexity", "bli")


@dataclass(frozen=True)
class InterventionResult:
    """One experiment: `experiment` ("perplexity": LAPE's test; "bli": BridgeX's premise),
    its `name` (languages or pair), the intervention `kind`, the `rows` (one per set and
    language or condition: effects, intervals, nulls), `summary` (matrices, verdict numbers)
    and every parameter in `params`."""

    kind: ClassVar[str] = "intervention"
    FORMAT: ClassVar[int] = 1

    experiment: str
    name: str
    intervention: str
    rows: tuple[dict[str, Any], ...]
    summary: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

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
            "kind": self.kind,
            "format": self.FORMAT,
            "experiment": self.experiment,
            "name": self.name,
            "intervention": self.intervention,
            "rows": [dict(r) for r in self.rows],
            "summary": dict(self.summary),
            "params": dict(self.params),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InterventionResult:
        if d.get("kind") != cls.kind:
            raise InputError(f"not an intervention result (kind {d.get('kind')!r})")
        if int(d.get("format", 0)) > cls.FORMAT:
            raise InputError(f"intervention result format {d['format']} is newer than this toolkit reads")
        return cls(d["experiment"], d["name"], d["intervention"], tuple(d["rows"]), d["summary"], d["params"])


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
