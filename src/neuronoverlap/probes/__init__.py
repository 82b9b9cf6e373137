"""Probes: prompt construction, streaming statistics and the recorder."""

from neuronoverlap.probes.prompts import (
    DEFAULT_TEMPLATE,
    ProbeSet,
    flores_sentences,
    render,
    translation_probe_sets,
)
from neuronoverlap.probes.recorder import model_info, open_writer, record_corpus, record_probe_set
from neuronoverlap.probes.stats import CorpusStats, ProbeBatchStats

__all__ = [
    "DEFAULT_TEMPLATE",
    "CorpusStats",
    "ProbeBatchStats",
    "ProbeSet",
    "flores_sentences",
    "model_info",
    "open_writer",
    "record_corpus",
    "record_probe_set",
    "render",
    "translation_probe_sets",
]
