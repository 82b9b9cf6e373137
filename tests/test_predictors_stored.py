"""Store-read predictors (predictors/stored.py) on a real tiny-llama store: the neuron-set
family against an independent computation from the same sets, and the representation
similarity of FLORES sentences against a closed-form linear CKA."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from neuronoverlap.analyses.sentences import record_sentence_counts
from neuronoverlap.bridge.loader import bridge_sets, pair_activations
from neuronoverlap.errors import InputError
from neuronoverlap.predictors.stored import neuron_set_scores, representation_scores, sentence_vectors
from neuronoverlap.probes import flores_sentences, open_writer
from neuronoverlap.sets import language_active_sets
from neuronoverlap.store import Store


def closed_form_cka(x: np.ndarray, y: np.ndarray) -> float:
    """||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F), centred columns."""
    x, y = x - x.mean(axis=0), y - y.mean(axis=0)
    return float(np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


@pytest.fixture(scope="module")
def store_path(tiny_store_template, tiny_llama, tmp_path_factory):
    path = tmp_path_factory.mktemp("stored") / "run.h5"
    shutil.copy(tiny_store_template, path)
    with open_writer(path, tiny_llama) as writer:
        for lang in ("de", "fr", "en"):
            sentences, params = flores_sentences(lang, 10)
            record_sentence_counts(tiny_llama, writer, lang, sentences, params, batch_size=5, progress=False)
    return path


def test_neuron_set_family_matches_an_independent_computation(store_path):
    store = Store(store_path)
    scores = neuron_set_scores(store, "de", "fr", ["en"], window=[1, 2])
    overlap, specific = bridge_sets(store, "de", "fr", ["en"])
    expected = []
    for layer in (1, 2):
        acts = pair_activations(store, "de", "fr", layer)
        x, y = acts[:, overlap.mask[layer]], acts[:, specific["en"].mask[layer]]
        if x.shape[1] and y.shape[1]:
            expected.append(closed_form_cka(x, y))
    assert expected and 0 < scores["cka"]["en"] <= 1
    assert scores["cka"]["en"] == pytest.approx(np.mean(expected))
    # B(en) = (A_en<->de | A_en<->fr) - O, so the bridge's probe sets share with O what B lacks
    assert 0 <= scores["overlap-size"]["en"] <= overlap.mask[[1, 2]].sum()
    probs = {lang: store.corpus(lang).activation_probability() for lang in ("fr", "en")}
    active = language_active_sets(probs)
    both = (active["en"].mask & active["fr"].mask)[[1, 2]].sum()
    either = (active["en"].mask | active["fr"].mask)[[1, 2]].sum()
    assert scores["corpus-jaccard"]["en"] == pytest.approx(both / either)


def test_representation_is_the_cka_of_parallel_sentences(store_path):
    scores = representation_scores(store_path, "de", "fr", ["en"], window=[1, 2])
    v = {lang: sentence_vectors(store_path, lang, [1, 2]) for lang in ("de", "fr", "en")}
    assert v["en"].shape == (10, 2 * 256)
    to_t, to_s = closed_form_cka(v["en"], v["fr"]), closed_form_cka(v["en"], v["de"])
    assert scores["representation-target"]["en"] == pytest.approx(to_t)
    assert scores["representation"]["en"] == pytest.approx((to_t + to_s) / 2)
    with pytest.raises(InputError, match="per-sentence statistics for 'ar'"):
        representation_scores(store_path, "de", "ar", ["en"])
