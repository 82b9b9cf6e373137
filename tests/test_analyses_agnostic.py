"""The language-agnostic rule: which neurons, and how every spectrum analysis applies it."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from neuronoverlap.analyses import activation_cka, write_spectrum_outputs
from neuronoverlap.analyses.agnostic import agnostic_neurons, check_share
from neuronoverlap.analyses.snapshot import SpectrumSettings, active_sets_for
from neuronoverlap.errors import InputError


def planted(seed=0, shape=(3, 100)):
    """Random probabilities with 7 neurons above 0.95 in every language (and one only in en)."""
    rng = np.random.default_rng(seed)
    codes = ("en", "de", "fr", "ar")
    probabilities = {c: rng.random(shape) * 0.8 for c in codes}
    always = [(0, 3), (0, 4), (1, 10), (1, 11), (1, 12), (2, 50), (2, 99)]
    for c in codes:
        for layer, j in always:
            probabilities[c][layer, j] = 0.96 + 0.03 * rng.random()
    probabilities["en"][2, 0] = 0.99
    return probabilities, always


def test_agnostic_neurons_are_those_above_the_share_in_every_language():
    probabilities, always = planted()
    mask = agnostic_neurons(probabilities, 0.9)
    assert sorted(map(tuple, np.argwhere(mask).tolist())) == always
    assert not agnostic_neurons(probabilities, 0.995).any()
    with pytest.raises(InputError, match="in \\[0, 1\\)"):
        check_share(1.0)


def test_active_sets_skip_agnostic_neurons_and_keep_their_size():
    probabilities, always = planted()
    plain, _ = active_sets_for(probabilities, SpectrumSettings(top_rate=0.05))
    ruled, agnostic = active_sets_for(probabilities, SpectrumSettings(top_rate=0.05, agnostic_share=0.9))
    assert all(set(always) <= set(plain[c]) for c in plain)  # without the rule they dominate
    for code in ruled:
        assert len(ruled[code]) == len(plain[code]) == 15
        assert not (ruled[code].mask & agnostic).any()
        assert ruled[code].metadata["agnostic_share"] == 0.9
        scores = np.where(agnostic, -1, probabilities[code]).ravel()
        top = np.argsort(scores)[::-1][:15]
        assert set(np.flatnonzero(ruled[code].mask.ravel())) == set(top)


def test_cka_leaves_the_agnostic_neurons_out():
    probabilities, _ = planted()
    mask = agnostic_neurons(probabilities, 0.9)
    got = activation_cka(probabilities, exclude=mask).values
    kept = {c: p[~mask] for c, p in probabilities.items()}
    x, y = kept["en"], kept["ar"]
    assert got[0, 3] == pytest.approx(np.corrcoef(x, y)[0, 1] ** 2)
    per_layer = activation_cka(probabilities, per_layer=True, exclude=mask).values
    layer1 = ~mask[1]
    expected = np.corrcoef(probabilities["de"][1, layer1], probabilities["fr"][1, layer1])[0, 1]
    assert per_layer[1, 1, 2] == pytest.approx(expected**2)


def test_writer_records_the_rule_and_lists_the_neurons(tmp_path):
    probabilities, always = planted()
    out = write_spectrum_outputs(
        tmp_path, probabilities, top_rate=0.05, measure="jaccard", n_permutations=19, agnostic_share=0.9
    )
    with (tmp_path / "agnostic_neurons.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(int(r["layer"]), int(r["neuron"])) for r in rows] == always
    assert all(float(r["min_probability"]) > 0.9 for r in rows)
    for name in ("similarity_jaccard.json", "mantel.json"):
        parameters = json.loads((tmp_path / name).read_text())["parameters"]
        assert parameters["agnostic_share"] == 0.9 and parameters["n_agnostic"] == 7
        assert parameters["agnostic_per_layer"] == [2, 3, 2]
    assert out.matrices["overlap"].values[0, 0] == 15
    plain = write_spectrum_outputs(tmp_path / "plain", probabilities, top_rate=0.05, n_permutations=19)
    assert (
        json.loads((tmp_path / "plain" / "mantel.json").read_text())["parameters"]["agnostic_share"] is None
    )
    assert plain.matrices["overlap"].values[0, 1] >= 7  # the agnostic neurons are shared
