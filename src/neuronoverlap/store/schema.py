"""Names and constants of the HDF5 store layout (documented in docs/store.md)."""

from __future__ import annotations

from neuronoverlap import options
from neuronoverlap.errors import InputError

SCHEMA_VERSION = 3

#: Schema 1: `prob` float32; schema 2: `fires` (uint16 counts, prob = fires / tokens on read);
#: schema 3: corpora (and probe sets) may hold top-activating `contexts` (store/contexts.py).
READABLE_VERSIONS = (1, 2, 3)

#: The per-sample statistics a probe set holds, by the one name each has in the library: "mean"
#: (mean activation over the counted tokens) and "probability" (share of those tokens where the
#: neuron fires; stored as dataset `prob` in schema 1, `fires` counts in schema 2).
STATISTICS = ("mean", "probability")

#: dtypes of a probe set's `mean` (float16 is opt-in: `--mean-dtype float16`, docs/store.md).
MEAN_DTYPES = options.MEAN_DTYPES

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


def parse_probe_set_name(name: str) -> tuple[str, str]:
    """'zh-ja' -> ('zh', 'ja'); anything else is an `InputError`."""
    parts = name.split("-")
    if len(parts) != 2 or not all(parts):
        raise InputError(f"a probe set is named SRC-TGT, e.g. zh-ja; got {name!r}")
    return parts[0], parts[1]


def probe_set_key(probe_set: str | tuple[str, str], tgt: str | None = None) -> tuple[str, str]:
    """(src, tgt) from 'zh-ja', ('zh', 'ja') or the two codes given apart."""
    if tgt is not None:
        return str(probe_set), tgt
    if isinstance(probe_set, str):
        return parse_probe_set_name(probe_set)
    src, tgt = probe_set
    return src, tgt


def overlap_set_name(src: str, tgt: str) -> str:
    """The stored overlap set O(s,t)."""
    return f"overlap-{src}-{tgt}"


def bridge_set_name(bridge: str, src: str, tgt: str) -> str:
    """The stored bridge-specific set B(b; s,t)."""
    return f"bridge-{bridge}-{src}-{tgt}"


def bridge_result_name(src: str, tgt: str) -> str:
    """The stored bridge selection of the pair (s, t) (`BridgeSelection.to_dict()`)."""
    return f"bridge-{src}-{tgt}"


def evaluation_result_name(task: str, name: str) -> str:
    """A stored evaluation: 'bli-zh-ja' (task bli, pair zh-ja), 'mrc-sw' (task mrc, language sw)."""
    return f"{task}-{name}"


def result_task(name: str) -> tuple[str, list[str]]:
    """'bli-zh-ja' -> ('bli', ['zh', 'ja']); 'mrc-sw' -> ('mrc', ['sw'])."""
    task, _, rest = name.partition("-")
    return task, rest.split("-") if rest else []
