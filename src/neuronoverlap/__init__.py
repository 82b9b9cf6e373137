"""neuronoverlap: how a language model shares MLP neurons across languages.

The pipeline, one subpackage per step: data -> probes -> store -> sets -> hsic -> bridge ->
evaluation -> report; `neuronoverlap.pipeline` runs the steps from Python, the command line
is a thin layer over it. The nouns a notebook needs are here (imported on first use, so that
`import neuronoverlap` stays light):

    import neuronoverlap as no
    model = no.load_model("tiny-llama")
    no.record_probes("run.h5", [("de", "fr")], model, no.ProbeOptions(n_samples=8))
    selection = no.choose_bridge("run.h5", "de-fr", ["en", "es"], model)
    no.report("run.h5", "out/report")     # the results, typed (`neuronoverlap.results`), laid out

See README.md, docs/tutorial.md and docs/.
"""

import os as _os
from importlib import import_module as _import_module

# Everything works offline: nothing in the toolkit may reach for the Hugging Face hub.
_os.environ.setdefault("HF_HUB_OFFLINE", "1")
_os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from neuronoverlap.errors import InputError, NeuronOverlapError  # noqa: E402

__version__ = "0.1.0"

#: name -> the module that defines it (imported when the name is first used).
_EXPORTS = {
    "load_model": "neuronoverlap.models",
    "StopRule": "neuronoverlap.models",
    "Store": "neuronoverlap.store",
    "StoreWriter": "neuronoverlap.store",
    "NeuronSet": "neuronoverlap.sets",
    "BridgeSelection": "neuronoverlap.bridge",
    "select_bridge": "neuronoverlap.bridge",
    "evaluate_bli": "neuronoverlap.evaluation.bli",
    "evaluate_mrc": "neuronoverlap.evaluation.mrc",
    "write_report": "neuronoverlap.report",
    "ProbeOptions": "neuronoverlap.options",
    "CorpusOptions": "neuronoverlap.options",
    "BridgeOptions": "neuronoverlap.options",
    "SpectrumOptions": "neuronoverlap.options",
    "ReportOptions": "neuronoverlap.options",
    "ModelSource": "neuronoverlap.pipeline",
    "record_probes": "neuronoverlap.pipeline",
    "record_corpora": "neuronoverlap.pipeline",
    "ensure_pair_probes": "neuronoverlap.pipeline",
    "ensure_corpora": "neuronoverlap.pipeline",
    "choose_bridge": "neuronoverlap.pipeline",
    "spectrum": "neuronoverlap.pipeline",
    "bli_through": "neuronoverlap.pipeline",
    "save_evaluation": "neuronoverlap.pipeline",
    "run_demo": "neuronoverlap.pipeline",
    "validate": "neuronoverlap.pipeline",
    "report": "neuronoverlap.pipeline",
    "intervene": "neuronoverlap.interventions",
    "set_threads": "neuronoverlap.threads",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(_import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'neuronoverlap' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = ["InputError", "NeuronOverlapError", "__version__", *_EXPORTS]
