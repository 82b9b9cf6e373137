"""The shelf of results: every result the toolkit keeps is a typed object of one protocol, and the
store's `results` group holds them as JSON documents tagged with their kind (docs/architecture.md).

A result kind is a dataclass with

* `kind: ClassVar[str]`: its name on the shelf, e.g. "bridge-selection";
* `FORMAT: ClassVar[int]`: the version of its document (raise it when the document changes);
* `key`: its document's name in the store's `results` group, e.g. "bridge-zh-ja";
* `to_dict()`: a JSON-ready dict that includes "kind" and "format";
* `from_dict(cls, document)`: the object back (`from_dict(to_dict(x)) == x`).

`KINDS` maps each kind to the class (as "module:Class", imported when first read, so that this
module stays light); `register(cls)` adds one. `read(name, document)` turns a stored document back
into its object: by its "kind", or, for the documents stores held before kinds were written, by
its name (`legacy_kind`, the one place that knows those names).
"""

from __future__ import annotations

import importlib
from typing import Any, ClassVar, Protocol, runtime_checkable

from neuronoverlap.errors import InputError

#: kind -> "module:Class" of the kinds the toolkit defines; `register` adds classes at run time.
KINDS: dict[str, Any] = {
    "bridge-selection": "neuronoverlap.bridge.result:BridgeSelection",
    "evaluation": "neuronoverlap.evaluation.results:EvaluationResult",
    "overlap-profile": "neuronoverlap.analyses.profiles:OverlapProfile",
    "language-similarity": "neuronoverlap.analyses.profiles:LanguageSimilarity",
    "spectrum": "neuronoverlap.analyses.profiles:SpectrumSummary",
    "intervention": "neuronoverlap.interventions.result:InterventionResult",
    "latent": "neuronoverlap.predictors.latent:LatentProfile",
    "bridge-choice": "neuronoverlap.evaluation.choice:ChoiceSummary",
    "neuron-agreement": "neuronoverlap.neurons.agreement:SetAgreement",
    "neuron-cards": "neuronoverlap.neurons.cards:NeuronCards",
}


@runtime_checkable
class Result(Protocol):
    """What every result kind provides (module docstring)."""

    kind: ClassVar[str]
    FORMAT: ClassVar[int]

    @property
    def key(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> Result: ...


def register(cls: type) -> type:
    """Put a result class on the shelf under its `kind` (usable as a decorator); a kind already
    held by another class is an error."""
    missing = [name for name in ("kind", "FORMAT", "key", "to_dict", "from_dict") if not hasattr(cls, name)]
    if missing:
        raise TypeError(f"{cls.__name__} is not a result kind: it lacks {', '.join(missing)}")
    held = KINDS.get(cls.kind)
    if held is not None and held is not cls and held != f"{cls.__module__}:{cls.__qualname__}":
        raise ValueError(f"result kind {cls.kind!r} is already held by {held}")
    KINDS[cls.kind] = cls
    return cls


def result_class(kind: str) -> type:
    """The class of a kind (imported on first use)."""
    if kind not in KINDS:
        raise InputError(f"unknown result kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    held = KINDS[kind]
    if isinstance(held, str):
        module, _, name = held.partition(":")
        held = KINDS[kind] = getattr(importlib.import_module(module), name)
    return held


def header(result: Any) -> dict[str, Any]:
    """The "kind" and "format" keys every document starts with."""
    return {"kind": type(result).kind, "format": type(result).FORMAT}


def body(document: dict[str, Any]) -> dict[str, Any]:
    """A document without its "kind" and "format" keys (what a `from_dict` reads)."""
    return {k: v for k, v in document.items() if k not in ("kind", "format")}


def _check_format(what: str, kind: str, cls: type, document: dict[str, Any]) -> None:
    version = document.get("format", 0)
    if not isinstance(version, int) or version > cls.FORMAT:
        raise InputError(f"{what} is {kind} format {version}; this toolkit reads up to format {cls.FORMAT}")


def of_kind(cls: type, document: Any) -> dict[str, Any]:
    """The body of a document that says it is a `cls` (its "kind") of a format this toolkit
    reads, for a `from_dict` called on its own; an `InputError` for any other document."""
    kind = document.get("kind") if isinstance(document, dict) else None
    if kind != cls.kind:
        raise InputError(f"the document is not of kind {cls.kind!r} (its kind: {kind!r})")
    _check_format("the document", kind, cls, document)
    return body(document)


def legacy_kind(name: str, document: Any) -> str | None:
    """The kind of a document written before documents carried one (stores of toolkit 0.x):
    bridge-S-T is a bridge selection, bli-S-T and mrc-L an evaluation; None for anything else."""
    if not isinstance(document, dict):
        return None
    if name.startswith("bridge-") and "candidates" in document:
        return "bridge-selection"
    if name.startswith(("bli-", "mrc-")) and "conditions" in document:
        return "evaluation"
    return None


def kind_of(name: str, document: Any) -> str | None:
    """A stored document's kind: its "kind" key, else `legacy_kind`; None when it has none."""
    if isinstance(document, dict) and isinstance(document.get("kind"), str):
        return document["kind"]
    return legacy_kind(name, document)


def read(name: str, document: Any) -> Any:
    """The typed result of the stored document `name`; an `InputError` for a document of no
    known kind or of a newer format than this toolkit reads."""
    kind = kind_of(name, document)
    if kind is None:
        raise InputError(f"result {name!r} has no kind this toolkit knows")
    cls = result_class(kind)
    _check_format(f"result {name!r}", kind, cls, document)
    return cls.from_dict(document)


__all__ = [
    "KINDS",
    "Result",
    "body",
    "header",
    "kind_of",
    "legacy_kind",
    "of_kind",
    "read",
    "register",
    "result_class",
]
