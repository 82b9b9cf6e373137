"""Neuron sets built from a real (tiny-model) store, saved into it and read back."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from neuronoverlap.errors import InputError
from neuronoverlap.models import StopRule
from neuronoverlap.probes import open_writer, record_probe_set, translation_probe_sets
from neuronoverlap.sets import NeuronSet, ProbeSamples, overlap_from_probes
from neuronoverlap.store import Store


def test_sets_from_store_round_trip(tmp_path, tiny_llama):
    path = tmp_path / "run.h5"
    fwd, bwd = translation_probe_sets("it", "en", 8, seed=0)
    with open_writer(path, tiny_llama) as writer:
        for probe_set in (fwd, bwd):
            record_probe_set(
                tiny_llama,
                writer,
                probe_set,
                batch_size=4,
                stop=StopRule(max_new_tokens=3),
                progress=False,
            )
    store = Store(path)
    samples = [
        ProbeSamples(v.name, v.lazy("probability"), v.tokens())
        for v in (store.probes("it", "en"), store.probes("en", "it"))
    ]
    overlap = overlap_from_probes(*samples, top_rate=0.02)
    # pooled token-weighted probability from the store equals the builder's pooling
    pooled = (
        store.probes("it", "en").pooled_probability() * store.probes("it", "en").tokens().sum()
        + store.probes("en", "it").pooled_probability() * store.probes("en", "it").tokens().sum()
    )
    top = np.argsort(pooled.ravel())[::-1][: len(overlap)]
    assert set(map(tuple, np.argwhere(overlap.mask))) >= {divmod(int(i), tiny_llama.d_mlp) for i in top[:5]}
    with open_writer(path, tiny_llama) as writer:
        writer.put_sets({"overlap-it-en": overlap, "complement": ~overlap})
        with pytest.raises(InputError, match="model shape"):
            writer.put_sets({"bad": NeuronSet.empty((2, 3))})
    back = Store(path).neuron_set("overlap-it-en")
    assert back == overlap and back.metadata["kind"] == "overlap"
    assert Store(path).neuron_set("complement") == ~overlap
    assert Store(path).probes("it", "en").n_samples == 8  # nothing lost by the rewrite
    with h5py.File(path, "r") as f:
        assert f["tiny-llama/sets/overlap-it-en"].attrs["size"] == len(overlap)
    with pytest.raises(InputError, match="no neuron set"):
        Store(path).neuron_set("missing")
