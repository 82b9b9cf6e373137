"""neuronoverlap: how a language model shares MLP neurons across languages.

The pipeline, one subpackage per step: data -> probes -> store -> sets -> hsic -> bridge ->
evaluation -> report. See README.md and docs/.
"""

import os as _os

# Everything works offline: nothing in the toolkit may reach for the Hugging Face hub.
_os.environ.setdefault("HF_HUB_OFFLINE", "1")
_os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from neuronoverlap.errors import InputError, NeuronOverlapError  # noqa: E402

__version__ = "0.1.0"
__all__ = ["InputError", "NeuronOverlapError", "__version__"]
