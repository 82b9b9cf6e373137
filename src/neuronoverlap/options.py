"""The options of each pipeline step and their defaults, defined once: the Python calls take
these objects, and the command line reads its defaults from them. Light to import (no torch)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from neuronoverlap.errors import InputError

#: Active-set share of all neurons (the reference's 1%), for every set the method builds.
DEFAULT_TOP_RATE = 0.01

#: Ranking statistics of bridge selection: the effect (default: raw score minus the matched random
#: sets' mean), the calibrated z, or the reference code's raw score (docs/hsic.md).
BRIDGE_METHODS = ("effect", "calibrated", "reference")

#: Where a bridge's calibration draws its random sets: matched on firing probability (default)
#: or uniform over the layer outside O(s,t) (docs/hsic.md, "The repaired score").
CALIBRATION_POOLS = ("matched", "layer")

#: Pairwise scores between the overlap and the bridge neurons (hsic/columns.py).
SCORE_KINDS = ("reference", "cka")

#: Mantel test permutations, everywhere one is run (spectrum, report).
DEFAULT_MANTEL_PERMUTATIONS = 9999

#: How many neurons an active set keeps, and what happens at the boundary (docs/sets.md).
COUNT_RULES = ("ceil", "reference")
TIES = ("include", "exact")

#: Recording: how generation stops, which positions count, how languages are named in prompts,
#: which dictionary split probes use, the FLORES splits, the stored mean's dtype, the model's dtype.
STOP_RULES = ("quote", "reference")
TOKEN_COUNTS = ("all", "answer")
#: Where the exact null of LAPE's test runs: the set's own language only, or every language.
EXACT_NULLS = ("diagonal", "all")
#: Which BLI conditions a random set runs: those its named set is judged on, or every one.
NULL_CONDITIONS = ("own", "all")
NAME_STYLES = ("endonym", "english")
PROBE_SPLITS = ("train", "test", "all")
FLORES_SPLITS = ("dev", "devtest")
MEAN_DTYPES = ("float32", "float16")
MODEL_DTYPES = ("float32", "bfloat16", "float16")

#: Hierarchical clustering linkages the spectrum accepts (scipy's names).
LINKAGES = ("average", "single", "complete", "weighted")

#: The alternatives of a p-value against a null (stats/permutation.py, interventions/effects.py).
ALTERNATIVES = ("greater", "less", "two-sided")

#: What the intervention experiments do to a neuron set (interventions/hooks.py also has `add`,
#: steering's shift; docs/interventions.md), and the statistics a store records per corpus and
#: neuron, which `value` fixes a neuron to.
INTERVENTION_KINDS = ("zero", "mean", "value", "scale")
CORPUS_STATISTICS = ("mean", "probability")

#: What the cosine of two languages runs over, and what CKA treats as samples (docs/analyses.md).
COSINE_NEURONS = ("intersection", "union", "all")
CKA_SAMPLES = ("neurons", "layers")


class OptionError(InputError):
    """A bad value of one options field: the message names the option as people say it ("top
    rate") and the field (`SpectrumOptions.top_rate`); `named(flag)` says it with a flag."""

    def __init__(self, owner: str, field: str, template: str, label: str | None = None):
        self.owner, self.field, self.template = owner, field, template
        super().__init__(template.format(name=label or field.replace("_", " ")) + f" ({owner}.{field})")

    def named(self, name: str) -> InputError:
        """The same complaint about the option as the user named it (a command-line flag)."""
        return InputError(self.template.format(name=name))


def check_at_least(owner: str, field: str, value: Any, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < least:
        raise OptionError(owner, field, f"{{name}} must be an integer >= {least}, got {value!r}")


def check_choice(
    owner: str, field: str, value: Any, choices: tuple[str, ...], label: str | None = None
) -> None:
    if value not in choices:
        raise OptionError(owner, field, f"unknown {{name}} {value!r}; use one of {', '.join(choices)}", label)


def check_top_rate(owner: str, value: Any, field: str = "top_rate") -> None:
    """An active-set share: in (0, 1] (1 keeps every neuron)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise OptionError(owner, field, f"{{name}} must be in (0, 1], got {value!r}")


def check_agnostic_share(owner: str, value: Any) -> None:
    """The language-agnostic rule's share: None (off) or in [0, 1)."""
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1
    ):
        raise OptionError(owner, "agnostic_share", f"{{name}} is in [0, 1) (None: off); got {value!r}")


def check_finite(owner: str, field: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise OptionError(owner, field, f"{{name}} must be a finite number, got {value!r}")


def _counts_at_least(options: Any) -> None:
    """Each count field against the class's `AT_LEAST` table (the command line reads it too)."""
    bounds = type(options).AT_LEAST
    for f in fields(options):
        if f.name in bounds:
            check_at_least(type(options).__name__, f.name, getattr(options, f.name), bounds[f.name])


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

    @classmethod
    def from_record(cls, document: dict[str, Any] | None):
        """The options a stored result recorded, or None when the record does not hold exactly
        these fields (written by another version of the toolkit): such a result is still read,
        but never taken for one computed with today's options."""
        if document is None or set(document) != {f.name for f in fields(cls)}:
            return None
        return cls.from_dict(document)


#: The similarity measures languages are compared with (docs/analyses.md).
SPECTRUM_MEASURES = ("jaccard", "cosine", "cka")

#: What the spectrum clusters on unless told otherwise (cosine, the reference's, saturates near 1).
DEFAULT_SPECTRUM_MEASURE = "jaccard"

#: Top-activating contexts kept per neuron and corpus (`corpus --top-k`; probes/topk.py).
DEFAULT_TOP_K = 8

#: The store a command reads and writes when --store is not given.
DEFAULT_STORE = "store/run.h5"


@dataclass(frozen=True)
class ProbeOptions(_Record):
    """How probe sets are built and recorded (the defaults of `neuronoverlap probe`)."""

    n_samples: int = 200
    seed: int = 0
    template: str | None = None  # None: the default '{S}:"{w}"→{T}:'
    names: str = "endonym"
    split: str = "train"
    stop_rule: str = "quote"
    max_new_tokens: int = 30
    # the positions counted (probes/counting.py): "answer", the probe word's and the answer's
    # tokens, so O(s,t) and B(b; s,t) are built from them, not the template (issue 26); "all":
    # every real token, the default before issue 26 (the full-size study's probe sets)
    count: str = "answer"
    mean_dtype: str = "float32"
    batch_size: int = 16
    top_k: int | None = None  # top-activating samples kept per neuron (opt-in; probes/topk.py)

    AT_LEAST: ClassVar[dict[str, int]] = {"n_samples": 1, "seed": 0, "max_new_tokens": 1, "batch_size": 1}

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _counts_at_least(self)
        check_choice(owner, "names", self.names, NAME_STYLES, "language names")
        check_choice(owner, "split", self.split, PROBE_SPLITS, "dictionary split")
        check_choice(owner, "stop_rule", self.stop_rule, STOP_RULES)
        check_choice(owner, "count", self.count, TOKEN_COUNTS, "token count rule")
        check_choice(owner, "mean_dtype", self.mean_dtype, MEAN_DTYPES)

    def stop(self):
        """The `StopRule` of these options."""
        from neuronoverlap.models import StopRule

        return StopRule.named(self.stop_rule, max_new_tokens=self.max_new_tokens)


@dataclass(frozen=True)
class CorpusOptions(_Record):
    """How FLORES-200 statistics are recorded (the defaults of `neuronoverlap corpus`)."""

    n_sentences: int = 200
    split: str = "dev"
    batch_size: int = 16
    top_k: int = DEFAULT_TOP_K  # top-activating sentences kept per neuron (probes/topk.py)

    AT_LEAST: ClassVar[dict[str, int]] = {"n_sentences": 1, "batch_size": 1}

    def __post_init__(self) -> None:
        _counts_at_least(self)
        check_choice(type(self).__name__, "split", self.split, FLORES_SPLITS, "FLORES split")


@dataclass(frozen=True)
class BridgeOptions(_Record):
    """How bridges are ranked (the defaults of `neuronoverlap select-bridge`; docs/hsic.md).

    Checked once, here, naming the field; a stored selection records them whole
    (`BridgeSelection.options`) and is reused only for equal options."""

    #: The smallest value of each count (cli/checks.py checks its flags against this table).
    AT_LEAST: ClassVar[dict[str, int]] = {
        "n_random": 2,  # a standard deviation of the random-set scores needs two
        "n_bootstrap": 0,
        "n_permutations": 0,  # 0: no permutation test
        "seed": 0,
        "n_draws": 2,  # the calibration's Monte Carlo error needs two draws
    }

    method: str = "effect"
    score: str = "reference"
    n_random: int = 200
    n_bootstrap: int = 200
    n_permutations: int = 0
    window: tuple[int, ...] | None = None
    top_rate: float = DEFAULT_TOP_RATE
    seed: int = 0
    agnostic_share: float | None = None  # the language-agnostic rule (docs/analyses.md); None: off
    # issue 26 (docs/hsic.md, "The repaired score"): the activity-matched pool, independent
    # calibration draws, activations residualised on the nuisance, sets rebuilt per resample
    pool: str = "matched"
    n_draws: int = 5
    residualise: bool = True
    rebuild_sets: bool = True

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_choice(owner, "method", self.method, BRIDGE_METHODS)
        check_choice(owner, "score", self.score, SCORE_KINDS, "pairwise score")
        check_choice(owner, "pool", self.pool, CALIBRATION_POOLS, "calibration pool")
        _counts_at_least(self)
        check_top_rate(owner, self.top_rate)
        check_agnostic_share(owner, self.agnostic_share)
        if self.window is not None:
            window = tuple(self.window)
            if not window or any(isinstance(v, bool) or int(v) != v or v < 0 for v in window):
                raise OptionError(owner, "window", f"{{name}} must be layer ids >= 0, got {self.window!r}")
            object.__setattr__(self, "window", tuple(int(v) for v in window))


@dataclass(frozen=True)
class SpectrumOptions(_Record):
    """How languages are compared and clustered: the active sets (top rate, count rule, ties,
    the language-agnostic rule), the measures, the linkage and the Mantel test (the defaults of
    `neuronoverlap spectrum`; docs/analyses.md). One class for the command, the library's
    writers, the bootstrap and the report."""

    AT_LEAST: ClassVar[dict[str, int]] = {"n_permutations": 1, "seed": 0}

    top_rate: float = DEFAULT_TOP_RATE
    count_rule: str = "ceil"
    ties: str = "include"
    measure: str = DEFAULT_SPECTRUM_MEASURE
    cosine_neurons: str = "intersection"
    cka_samples: str = "neurons"
    linkage: str = "average"
    agnostic_share: float | None = None
    n_permutations: int = DEFAULT_MANTEL_PERMUTATIONS
    seed: int = 0

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_top_rate(owner, self.top_rate)
        check_choice(owner, "count_rule", self.count_rule, COUNT_RULES)
        check_choice(owner, "ties", self.ties, TIES)
        check_choice(owner, "measure", self.measure, SPECTRUM_MEASURES, "spectrum measure")
        check_choice(owner, "linkage", self.linkage, LINKAGES)
        check_choice(owner, "cosine_neurons", self.cosine_neurons, COSINE_NEURONS)
        check_choice(owner, "cka_samples", self.cka_samples, CKA_SAMPLES)
        check_agnostic_share(owner, self.agnostic_share)
        _counts_at_least(self)

    def record(self) -> dict[str, Any]:
        """How the active sets were chosen and languages compared (the Mantel test's own
        permutations and seed are recorded with the test)."""
        return {k: v for k, v in asdict(self).items() if k not in ("n_permutations", "seed")}


@dataclass(frozen=True)
class ReportOptions(_Record):
    """What `neuronoverlap report` computes that the store does not hold: the probe overlaps
    O(s,t), language similarity and the spectrum, all with `spectrum`'s selection rule (top
    rate, agnostic share) and Mantel test; `bootstrap` resamples for the spectrum's intervals;
    `n_examples` prompts shown per probe set."""

    AT_LEAST: ClassVar[dict[str, int]] = {"bootstrap": 0, "n_examples": 0}

    spectrum: SpectrumOptions = SpectrumOptions()
    bootstrap: int = 0
    n_examples: int = 3

    def __post_init__(self) -> None:
        if isinstance(self.spectrum, dict):  # from_dict
            object.__setattr__(self, "spectrum", SpectrumOptions.from_dict(self.spectrum))
        _counts_at_least(self)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "spectrum": self.spectrum.to_dict()}


@dataclass(frozen=True)
class NullOptions(_Record):
    """How an intervention's null is drawn and summarised: `exact_sets` random sets run exactly
    and `attribution_sets` estimated by attribution patching, each of the named set's size per
    layer and drawn within `n_bands` activation-probability bands (1: uniform within each layer;
    the band rule: interventions/null.py); the p-value's `alternative`; bootstrap intervals at
    `confidence` from `n_resamples` resamples; `seed` for the draws and the resamples."""

    AT_LEAST: ClassVar[dict[str, int]] = {
        "exact_sets": 1,
        "attribution_sets": 1,
        "n_bands": 1,
        "seed": 0,
        "n_resamples": 1,
    }

    exact_sets: int = 20
    attribution_sets: int = 1000
    n_bands: int = 10
    seed: int = 0
    alternative: str = "greater"
    confidence: float = 0.95
    n_resamples: int = 2000

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _counts_at_least(self)
        check_choice(owner, "alternative", self.alternative, ALTERNATIVES)
        c = self.confidence
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not 0 < c < 1:
            raise OptionError(owner, "confidence", f"{{name}} must be in (0, 1), got {c!r}")

    def describe(self) -> str:
        """The null in words (printed by `intervene` and the report)."""
        bands = "uniform within each layer" if self.n_bands == 1 else f"in {self.n_bands} activation bands"
        return (
            f"null: {self.exact_sets} exact and {self.attribution_sets} attribution-patching random sets "
            f"per set, {bands}, alternative {self.alternative}, seed {self.seed}; "
            f"{self.confidence:.3g} bootstrap intervals of {self.n_resamples} resamples"
        )


@dataclass(frozen=True)
class InterventionOptions(_Record):
    """What the intervention experiments do to each neuron set, and their null (the defaults of
    `neuronoverlap intervene`; docs/interventions.md). `kind`: zero (act_fn(gate) = 0), mean
    (the neuron's mean FLORES activation), value (a stored corpus `statistic`), scale (times
    `factor`); mean and value average the corpora of `of` (None: the run's languages).

    Checked once, here, naming the field; an `InterventionResult` records them whole."""

    AT_LEAST: ClassVar[dict[str, int]] = {"batch_size": 1}

    kind: str = "zero"
    factor: float | None = None  # kind scale only
    of: str | None = None  # kind mean / value: whose corpus statistic (None: the run's languages)
    statistic: str = "mean"  # kind value: a statistic the store records per corpus
    null: NullOptions = NullOptions()
    batch_size: int = 8

    def __post_init__(self) -> None:
        owner = type(self).__name__
        if isinstance(self.null, dict):  # from_dict
            object.__setattr__(self, "null", NullOptions.from_dict(self.null))
        check_choice(owner, "kind", self.kind, INTERVENTION_KINDS, "intervention kind")
        check_choice(owner, "statistic", self.statistic, CORPUS_STATISTICS, "corpus statistic")
        if self.factor is not None:
            check_finite(owner, "factor", self.factor)
            if self.kind != "scale":
                raise OptionError(owner, "factor", f"{{name}} belongs to kind scale, not {self.kind}")
        elif self.kind == "scale":
            raise OptionError(owner, "kind", "{name} scale needs a finite factor (none given)")
        if self.of is not None:
            from neuronoverlap.languages import get_language

            object.__setattr__(self, "of", get_language(self.of).code)
        _counts_at_least(self)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "null": self.null.to_dict()}

    @classmethod
    def from_record(cls, document: dict[str, Any] | None):
        """As `_Record.from_record`, the null's fields too."""
        if not isinstance(document, dict) or NullOptions.from_record(document.get("null")) is None:
            return None
        return super().from_record(document)

    def describe(self) -> str:
        """The intervention and its null in words (printed by `intervene` and the report)."""
        of = self.of or "the languages run"
        if self.kind == "zero":
            what = "zero (act_fn(gate) = 0)"
        elif self.kind == "scale":
            what = f"scale by {self.factor:g}"
        elif self.kind == "mean":
            what = f"mean FLORES activation of {of}"
        else:
            what = f"the {self.statistic} of {of}'s FLORES corpus"
        return f"intervention: {what}; {self.null.describe()}; batch size {self.batch_size}"


#: `intervene bli`'s defaults (BLI prompts are short: larger batches).
BLI_INTERVENTION = InterventionOptions(batch_size=16)

#: The demo's defaults: small enough for a 2-core CPU with the embedded Gemma-3-270M (about 5 min).
DEMO_PAIR = "zh-ja"
DEMO_PROBES = ProbeOptions(n_samples=32, max_new_tokens=16)
DEMO_CORPORA = CorpusOptions(n_sentences=48)
DEMO_EVAL_N = 100
DEMO_STORE = "store/demo.h5"
DEMO_OUT = "out/demo"
