"""Names and constants of the HDF5 store layout (documented in docs/store.md)."""

from __future__ import annotations

SCHEMA_VERSION = 2

#: Schema 1: `prob` float32; schema 2: `fires` (uint16 counts, prob = fires / tokens on read).
READABLE_VERSIONS = (1, 2)

#: dtypes of a probe set's `mean` (float16 is opt-in: `--mean-dtype float16`, docs/store.md).
MEAN_DTYPES = ("float32", "float16")

#: What a neuron's activation is, recorded in every store; appending with another is refused.
ACTIVATION_DEFINITION = "act_fn(blocks.{l}.mlp.hook_pre); fires when > 0"

#: Rows (samples) per chunk of the [sample, layer, neuron] datasets: one chunk is
#: (CHUNK_ROWS, 1, d_mlp), so reading all samples of one layer touches n / CHUNK_ROWS chunks.
CHUNK_ROWS = 64

COMPRESSION = "gzip"
COMPRESSION_LEVEL = 1

PROBES = "probes"
CORPORA = "corpora"
SETS = "sets"
VIEW_SOURCES = "view_sources"  # root attribute of a `merge --link` view: its shard files (JSON)
PLAN = "plan"  # root dataset of a shard or merged store: the work plan (JSON, store/plan.py)
RESULTS = "results"  # JSON documents: bridge-<s>-<t>, bli-<s>-<t>, mrc-<lang>


def model_group(model_name: str) -> str:
    """Group name of a model: its name with '/' replaced (checkpoint paths are not group names)."""
    return model_name.replace("/", "_").strip("_") or "model"


def probe_set_name(src: str, tgt: str) -> str:
    """Direction-specific name: 'zh-ja' holds prompts translating zh -> ja."""
    return f"{src}-{tgt}"
