"""Stored statistics as xarray Datasets and pandas DataFrames, for notebooks (optional extra).

    pip install 'neuronoverlap[frames]'

- `probe_set_to_xarray(view)`: a probe set as a Dataset over (sample, layer, neuron), read lazily;
- `corpus_to_xarray(view)`: a corpus's statistics over (layer, neuron);
- `neurons_frame(store, neurons)` / `reports_frame(reports)`: neuron look-ups, one row per
  (neuron, corpus or probe set);
- `neuron_set_frame(neuron_set)`: a set's members as (layer, neuron) rows.

The views and `NeuronSet` delegate to these (`view.to_xarray()`, `neuron_set.to_frame()`).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from neuronoverlap.errors import InputError

if TYPE_CHECKING:
    import pandas
    import xarray

    from neuronoverlap.query import NeuronReport
    from neuronoverlap.sets.core import NeuronSet
    from neuronoverlap.store.reader import CorpusView, ProbeSetView, Store

#: The per-sample strings of a probe set (store field -> coordinate name on `sample`).
SAMPLE_STRINGS = {
    "prompts": "prompt",
    "generations": "generation",
    "source_words": "source_word",
    "target_words": "target_word",
}

#: Columns of `reports_frame`, in order.
NEURON_COLUMNS = ("layer", "neuron", "kind", "name", "probability", "mean", "tokens", "sets")


def optional(module: str, what: str) -> Any:
    """Import `module` of the `frames` extra; `InputError` saying how to install it if missing."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(f"{what} needs {module}: pip install 'neuronoverlap[frames]'") from None


def _lazy_variable(xr, view: ProbeSetView, statistic: str):
    """An `xarray.Variable` over the whole [sample, layer, neuron] dataset of `statistic`, read
    from the store only for the part that is indexed, loaded or computed."""
    from xarray.backends import BackendArray
    from xarray.core import indexing

    class StoreArray(BackendArray):
        def __init__(self, lazy):
            self.lazy, self.shape, self.dtype = lazy, lazy.shape, np.dtype(np.float32)

        def __getitem__(self, key):
            # h5py takes one integer array per selection, sorted: xarray splits the rest off.
            return indexing.explicit_indexing_adapter(
                key, self.shape, indexing.IndexingSupport.OUTER_1VECTOR, self._raw
            )

        def _raw(self, key: tuple):
            return self.lazy[key]

    data = indexing.LazilyIndexedArray(StoreArray(view.lazy(statistic)))
    return xr.Variable(("sample", "layer", "neuron"), data)


def probe_set_to_xarray(
    view: ProbeSetView,
    layers: Sequence[int] | None = None,
    statistics: Sequence[str] = ("mean", "probability"),
) -> xarray.Dataset:
    """A probe set as an `xarray.Dataset` over dims (sample, layer, neuron).

    Args:
        view: the probe set (`store.probes(src, tgt)`).
        layers: the layers to keep (default all); a selection, still lazy.
        statistics: which [sample, layer, neuron] variables: "mean" (each sample's mean
            activation over its counted tokens) and/or "probability" (its share of tokens with
            activation > 0), both float32.

    Returns:
        A Dataset with those variables, `tokens` [sample] (counted tokens per sample) and the
        coordinates sample, layer, neuron plus prompt, generation, source_word, target_word on
        `sample`; attrs: model_name, probe_set, src, tgt and params (JSON text).

    What is loaded: the per-sample tokens and strings at once (small); "mean" and "probability" lazily:
    nothing of them is read until indexed, `.load()`ed or computed, and then only the slices
    asked for (a LLaMA-3-8B probe set of 200 samples is 367 MB per statistic; one layer of it
    11 MB). Each read opens the store briefly, like every read of a `Store`.

    Example (`tiny_store`: a store recorded with tiny-llama, see `Store`):

    >>> from neuronoverlap.store import Store
    >>> ds = Store(tiny_store).probes("de", "en").to_xarray(layers=[1, 3])
    >>> dict(ds.sizes)
    {'sample': 3, 'layer': 2, 'neuron': 256}
    >>> ds["probability"].sel(layer=3).shape          # reads layer 3 only
    (3, 256)
    >>> ds.source_word.values.tolist()
    ['anteil', 'tragen', 'thai']
    """
    xr = optional("xarray", "to_xarray")
    statistics = tuple(statistics)
    unknown = sorted(set(statistics) - {"mean", "probability"})
    if unknown or not statistics:
        raise InputError(
            f"unknown statistic {', '.join(unknown) or '(none)'}; use 'mean' and/or 'probability'"
        )
    store = view.store
    coords: dict[str, Any] = {
        "sample": np.arange(view.n_samples),
        "layer": np.arange(store.n_layers),
        "neuron": np.arange(store.d_mlp),
    }
    coords |= {name: ("sample", view.strings(field)) for field, name in SAMPLE_STRINGS.items()}
    variables = {stat: _lazy_variable(xr, view, stat) for stat in statistics}
    variables["tokens"] = xr.Variable(("sample",), view.tokens())
    attrs = {
        "model_name": store.model_name,
        "probe_set": view.name,
        "src": view.src,
        "tgt": view.tgt,
        "params": json.dumps(view.params, sort_keys=True),
    }
    dataset = xr.Dataset(variables, coords=coords, attrs=attrs)
    if layers is None:
        return dataset
    layers = [int(layer) for layer in layers]
    for layer in layers:
        store._check_layer(layer)
    return dataset.isel(layer=layers)


def corpus_to_xarray(view: CorpusView) -> xarray.Dataset:
    """A language's corpus statistics as an `xarray.Dataset` over dims (layer, neuron), loaded.

    Args:
        view: the corpus (`store.corpus(lang)`).

    Returns:
        A Dataset with fire_count, value_sum (int/float sums over the corpus's tokens),
        activation_probability and mean_activation (each divided by the token count);
        attrs: model_name, lang, n_tokens and params (JSON text).

    >>> from neuronoverlap.store import Store
    >>> ds = Store(tiny_store).corpus("de").to_xarray()
    >>> dict(ds.sizes), ds.attrs["lang"]
    ({'layer': 4, 'neuron': 256}, 'de')
    >>> bool((ds.activation_probability == ds.fire_count / ds.attrs["n_tokens"]).all())
    True
    """
    xr = optional("xarray", "to_xarray")
    store = view.store
    dims = ("layer", "neuron")
    n_tokens = view.n_tokens
    variables = {
        "fire_count": (dims, view.fire_count()),
        "value_sum": (dims, view.value_sum()),
        "activation_probability": (dims, view.activation_probability()),
        "mean_activation": (dims, view.mean_activation()),
    }
    coords = {"layer": np.arange(store.n_layers), "neuron": np.arange(store.d_mlp)}
    attrs = {
        "model_name": store.model_name,
        "lang": view.lang,
        "n_tokens": n_tokens,
        "params": json.dumps(view.params, sort_keys=True),
    }
    return xr.Dataset(variables, coords=coords, attrs=attrs)


def reports_frame(reports: Iterable[NeuronReport]) -> pandas.DataFrame:
    """Neuron reports (`query.query_neurons`) as a DataFrame, one row per (neuron, where).

    Args:
        reports: NeuronReports.

    Returns:
        Columns layer, neuron; kind ("corpus" or "probes") and name (the language or probe set
        "src-tgt"); probability (token-weighted share of tokens with activation > 0), mean
        (token-weighted mean activation), tokens (tokens counted); sets (tuple of the stored
        neuron sets holding the neuron, the same on each of its rows). A neuron of a store with
        neither corpora nor probe sets gets one row with kind, name and the statistics missing.

    >>> from neuronoverlap.query import query_neurons
    >>> from neuronoverlap.store import Store
    >>> frame = reports_frame(query_neurons(Store(tiny_store), [(1, 3)]))
    >>> frame[["layer", "neuron", "kind", "name"]].values.tolist()
    [[1, 3, 'corpus', 'de'], [1, 3, 'probes', 'de-en']]
    """
    pd = optional("pandas", "to_frame")
    rows = []
    for report in reports:
        sets = tuple(report.sets)
        places = [("corpus", report.corpora), ("probes", report.probes)]
        found = [(kind, name, f) for kind, firing in places for name, f in firing.items()]
        for kind, name, f in found:
            rows.append((report.layer, report.neuron, kind, name, f.probability, f.mean, f.tokens, sets))
        if not found:
            rows.append((report.layer, report.neuron, None, None, np.nan, np.nan, pd.NA, sets))
    frame = pd.DataFrame(rows, columns=list(NEURON_COLUMNS))
    return frame.astype({"layer": "int64", "neuron": "int64", "tokens": "Int64"})


def neurons_frame(store: Store, neurons: Iterable[tuple[int, int]]) -> pandas.DataFrame:
    """`reports_frame(query_neurons(store, neurons))`: look neurons up in a store as a DataFrame.

    Args:
        store: the store.
        neurons: (layer, neuron) pairs, e.g. a `NeuronSet`.

    Returns:
        The DataFrame of `reports_frame`.

    >>> from neuronoverlap.store import Store
    >>> frame = neurons_frame(Store(tiny_store), [(0, 7), (2, 100)])
    >>> frame.groupby("kind").size().to_dict()
    {'corpus': 2, 'probes': 2}
    >>> bool(frame.probability.between(0, 1).all())
    True
    """
    from neuronoverlap.query import query_neurons

    optional("pandas", "to_frame")
    return reports_frame(query_neurons(store, [(int(layer), int(neuron)) for layer, neuron in neurons]))


def neuron_set_frame(neuron_set: NeuronSet) -> pandas.DataFrame:
    """A neuron set's members as a DataFrame with int64 columns layer and neuron, sorted by layer
    then neuron; `attrs` holds the set's label and metadata.

    Args:
        neuron_set: the set.

    Returns:
        One row per member.

    >>> from neuronoverlap.sets import NeuronSet
    >>> frame = NeuronSet.from_indices([(1, 5), (0, 2)], shape=(2, 8), label="two").to_frame()
    >>> frame.values.tolist(), frame.attrs["label"]
    ([[0, 2], [1, 5]], 'two')
    """
    pd = optional("pandas", "to_frame")
    frame = pd.DataFrame(neuron_set.to_indices(), columns=["layer", "neuron"])
    frame.attrs = {"label": neuron_set.label, "metadata": dict(neuron_set.metadata)}
    return frame
