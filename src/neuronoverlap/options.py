"""The options of each pipeline step and their defaults, defined once: the Python calls take
these objects, and the command line reads its defaults from them. Light to import (no torch)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from neuronoverlap.errors import InputError

#: Active-set share of all neurons (the reference's 1%), for every set the method builds.
DEFAULT_TOP_RATE = 0.01

#: Ranking statistics of bridge selection: the calibrated z (default) or the reference code's raw score.
BRIDGE_METHODS = ("calibrated", "reference")

#: Pairwise scores between the overlap and the bridge neurons (hsic/columns.py).
SCORE_KINDS = ("reference", "cka")

#: Mantel test permutations, everywhere one is run (spectrum, report).
DEFAULT_MANTEL_PERMUTATIONS = 999

#: The smallest value of each count an options object holds, by field name; the command line's
#: flags check the same numbers (cli/checks.py reads this table).
AT_LEAST = {
    "n_random": 2,  # a standard deviation of the random-set scores needs two
    "n_bootstrap": 0,
    "n_permutations": 0,
    "seed": 0,
}


class OptionError(InputError):
    """A bad value of one options field; `field` names it (the command line names its flag)."""

    def __init__(self, owner: str, field: str, rule: str, value: Any):
        self.owner, self.field, self.rule, self.value = owner, field, rule, value
        super().__init__(f"{owner}.{field} {rule}, got {value!r}")

    def named(self, name: str) -> InputError:
        """The same complaint about the option as a user names it (a command-line flag)."""
        return InputError(f"{name} {self.rule}, got {self.value!r}")


def check_at_least(owner: str, field: str, value: Any, least: int) -> None:
    if isinstance(value, bool) or int(value) != value or value < least:
        raise OptionError(owner, field, f"must be an integer >= {least}", value)


def check_choice(owner: str, field: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise OptionError(owner, field, f"is unknown; use one of {', '.join(choices)}", value)


def check_top_rate(owner: str, value: Any, field: str = "top_rate") -> None:
    """An active-set share: in (0, 1] (1 keeps every neuron)."""
    if not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise OptionError(owner, field, "must be in (0, 1]", value)


def check_agnostic_share(owner: str, value: Any) -> None:
    """The language-agnostic rule's share: None (off) or in [0, 1)."""
    if value is not None and (not isinstance(value, (int, float)) or not 0 <= value < 1):
        raise OptionError(owner, "agnostic_share", "must be in [0, 1) or None", value)


def _counts_at_least(options: Any) -> None:
    for f in fields(options):
        if f.name in AT_LEAST:
            check_at_least(type(options).__name__, f.name, getattr(options, f.name), AT_LEAST[f.name])


class _Record:
    """Options as a JSON-ready dict and back: what a stored result records it ran with."""

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, document: dict[str, Any]):
        """The options of a stored record; fields it lacks take today's defaults, unknown keys
        are an `InputError` (a record written by a newer toolkit is not silently misread)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(document) - names)
        if unknown:
            raise InputError(f"{cls.__name__} has no field {', '.join(unknown)}")
        return cls(**document)


#: The similarity measures languages are compared with (docs/analyses.md).
SPECTRUM_MEASURES = ("jaccard", "cosine", "cka")

#: What the spectrum clusters on unless told otherwise (cosine, the reference's, saturates near 1).
DEFAULT_SPECTRUM_MEASURE = "jaccard"

#: The store a command reads and writes when --store is not given.
DEFAULT_STORE = "store/run.h5"


@dataclass(frozen=True)
class ProbeOptions:
    """How probe sets are built and recorded (the defaults of `neuronoverlap probe`)."""

    n_samples: int = 200
    seed: int = 0
    template: str | None = None  # None: the default '{S}:"{w}"→{T}:'
    names: str = "endonym"
    split: str = "train"
    stop_rule: str = "quote"
    max_new_tokens: int = 30
    count: str = "all"
    mean_dtype: str = "float32"
    batch_size: int = 16

    def stop(self):
        """The `StopRule` of these options."""
        from neuronoverlap.models import StopRule

        return StopRule.named(self.stop_rule, max_new_tokens=self.max_new_tokens)


@dataclass(frozen=True)
class CorpusOptions:
    """How FLORES-200 statistics are recorded (the defaults of `neuronoverlap corpus`)."""

    n_sentences: int = 200
    split: str = "dev"
    batch_size: int = 16


@dataclass(frozen=True)
class BridgeOptions(_Record):
    """How bridges are ranked (the defaults of `neuronoverlap select-bridge`; docs/hsic.md).

    Checked once, here, naming the field; a stored selection records them whole
    (`BridgeSelection.options`) and is reused only for equal options."""

    method: str = "calibrated"
    score: str = "reference"
    n_random: int = 200
    n_bootstrap: int = 200
    n_permutations: int = 0
    window: tuple[int, ...] | None = None
    top_rate: float = DEFAULT_TOP_RATE
    seed: int = 0
    agnostic_share: float | None = None  # the language-agnostic rule (docs/analyses.md); None: off

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_choice(owner, "method", self.method, BRIDGE_METHODS)
        check_choice(owner, "score", self.score, SCORE_KINDS)
        _counts_at_least(self)
        check_top_rate(owner, self.top_rate)
        check_agnostic_share(owner, self.agnostic_share)
        if self.window is not None:
            window = tuple(self.window)
            if not window or any(isinstance(v, bool) or int(v) != v or v < 0 for v in window):
                raise OptionError(owner, "window", "must be layer ids >= 0", self.window)
            object.__setattr__(self, "window", tuple(int(v) for v in window))


@dataclass(frozen=True)
class SpectrumOptions:
    """The options every spectrum writer takes (defaults of `neuronoverlap spectrum`)."""

    top_rate: float = DEFAULT_TOP_RATE
    measure: str = DEFAULT_SPECTRUM_MEASURE
    linkage: str = "average"
    n_permutations: int = 9999
    seed: int = 0
    agnostic_share: float | None = None

    def check(self) -> None:
        if self.agnostic_share is not None and not 0 <= self.agnostic_share < 1:
            raise InputError(f"--agnostic-share must be in [0, 1), got {self.agnostic_share}")


#: The demo's defaults: small enough for a 2-core CPU with the embedded Gemma-3-270M (about 5 min).
DEMO_PAIR = "zh-ja"
DEMO_PROBES = ProbeOptions(n_samples=32, max_new_tokens=16)
DEMO_CORPORA = CorpusOptions(n_sentences=48)
DEMO_EVAL_N = 100
DEMO_STORE = "store/demo.h5"
DEMO_OUT = "out/demo"
