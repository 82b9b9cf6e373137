"""The options of each pipeline step and their defaults, defined once: the Python calls take
these objects, and the command line reads its defaults from them. Light to import (no torch)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from neuronoverlap.errors import InputError

#: Active-set share of all neurons (the reference's 1%), for every set the method builds.
DEFAULT_TOP_RATE = 0.01

#: The similarity measures languages are compared with (docs/analyses.md).
SPECTRUM_MEASURES = ("jaccard", "cosine", "cka")

#: What the spectrum clusters on unless told otherwise (cosine, the reference's, saturates near 1).
DEFAULT_SPECTRUM_MEASURE = "jaccard"

#: Top-activating contexts kept per neuron and corpus (`corpus --top-k`; probes/topk.py).
DEFAULT_TOP_K = 8

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
    top_k: int | None = None  # top-activating samples kept per neuron (opt-in; probes/topk.py)

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
    top_k: int = DEFAULT_TOP_K  # top-activating sentences kept per neuron (probes/topk.py)


@dataclass(frozen=True)
class BridgeOptions:
    """How bridges are ranked (the defaults of `neuronoverlap select-bridge`; docs/hsic.md)."""

    method: str = "calibrated"
    score: str = "reference"
    n_random: int = 200
    n_bootstrap: int = 200
    n_permutations: int = 0
    window: tuple[int, ...] | None = None
    top_rate: float = DEFAULT_TOP_RATE
    seed: int = 0
    agnostic_share: float | None = None  # the language-agnostic rule (docs/analyses.md); None: off

    def select_kwargs(self) -> dict:
        """Keyword arguments of `bridge.select_bridge`."""
        kwargs = asdict(self)
        kwargs["window"] = None if self.window is None else list(self.window)
        return kwargs


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
