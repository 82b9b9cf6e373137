"""The pipeline as Python calls, one per step, with explicit arguments (the command line is a
thin layer over these):

    from neuronoverlap.pipeline import choose_bridge, run_demo
    selection = choose_bridge("store/run.h5", "zh-ja", ["en", "de"], model="embedded")
    selection.chosen, selection.selection_probability

Recording steps are resumable and record only what the store lacks; a step that would start
recording into a store without the data needs the model named (or `record=True`).
"""

from neuronoverlap.options import BridgeOptions, CorpusOptions, ProbeOptions, ReportOptions, SpectrumOptions
from neuronoverlap.pipeline.bridge import choose_bridge, pair_codes, save_selection, selection_scores
from neuronoverlap.pipeline.demo import DemoResult, run_demo
from neuronoverlap.pipeline.evaluation import bli_through, save_evaluation
from neuronoverlap.pipeline.model import ModelSource, model_of_store
from neuronoverlap.pipeline.recording import (
    build_probe_sets,
    check_flores_sizes,
    ensure_corpora,
    ensure_pair_probes,
    missing_probe_pairs,
    record_corpora,
    record_probes,
)
from neuronoverlap.pipeline.report import report
from neuronoverlap.pipeline.scale import record_probe_shard, record_probes_on_ray
from neuronoverlap.pipeline.spectrum import spectrum, spectrum_with_intervals
from neuronoverlap.pipeline.validation import pool_studies, validate

__all__ = [
    "BridgeOptions",
    "CorpusOptions",
    "DemoResult",
    "ModelSource",
    "ProbeOptions",
    "ReportOptions",
    "SpectrumOptions",
    "bli_through",
    "build_probe_sets",
    "check_flores_sizes",
    "choose_bridge",
    "ensure_corpora",
    "ensure_pair_probes",
    "missing_probe_pairs",
    "model_of_store",
    "pair_codes",
    "pool_studies",
    "record_corpora",
    "record_probe_shard",
    "record_probes",
    "record_probes_on_ray",
    "report",
    "run_demo",
    "save_evaluation",
    "save_selection",
    "selection_scores",
    "spectrum",
    "spectrum_with_intervals",
    "validate",
]
