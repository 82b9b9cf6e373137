"""The spectrum writer produces every file with the right shapes."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from neuronoverlap.analyses import write_spectrum_outputs
from neuronoverlap.errors import InputError


def family_probabilities(codes, family, shape=(6, 200), seed=0):
    rng = np.random.default_rng(seed)
    shared = rng.random(shape)
    by_family = {f: rng.random(shape) for f in set(family.values())}
    return {
        c: np.clip(0.3 * shared + 0.6 * by_family[family[c]] + 0.1 * rng.random(shape), 0, 1) for c in codes
    }


def read_csv(path):
    with path.open() as handle:
        return list(csv.reader(handle))


def test_writer_produces_all_files(tmp_path):
    family = {"en": 0, "de": 0, "fr": 1, "es": 1, "ar": 2, "he": 2}
    codes = list(family)
    probabilities = family_probabilities(codes, family)
    out = write_spectrum_outputs(
        tmp_path / "spectrum", probabilities, top_rate=0.05, n_permutations=199, seed=7
    )
    folder = tmp_path / "spectrum"
    expected = {
        "similarity_overlap.csv",
        "similarity_overlap.json",
        "similarity_jaccard.csv",
        "similarity_jaccard.json",
        "similarity_cosine.csv",
        "similarity_cosine.json",
        "similarity_cka.csv",
        "similarity_cka.json",
        "similarity_per_layer.csv",
        "layerwise_overlap.csv",
        "layerwise_thirds.csv",
        "dendrogram.png",
        "mantel.json",
    }
    assert {p.name for p in folder.iterdir()} == expected
    assert all(path.exists() for path in out.paths.values())
    for measure in ("overlap", "jaccard", "cosine", "cka"):
        rows = read_csv(folder / f"similarity_{measure}.csv")
        assert rows[0] == ["language", *codes] and [r[0] for r in rows[1:]] == codes
        content = json.loads((folder / f"similarity_{measure}.json").read_text())
        assert content["languages"] == codes
        assert np.array(content["values"]).shape == (6, 6)
        assert content["parameters"]["top_rate"] == 0.05
    overlap_rows = read_csv(folder / "similarity_overlap.csv")[1:]
    assert [int(overlap_rows[i][i + 1]) for i in range(6)] == [60] * 6  # 5% of 1200
    assert len(read_csv(folder / "similarity_per_layer.csv")) == 1 + 6 * 15
    layerwise = read_csv(folder / "layerwise_overlap.csv")
    assert layerwise[0] == ["pair", "layer", "third", "count", "share_of_d_mlp"]
    assert len(layerwise) == 1 + 15 * 6
    assert len(read_csv(folder / "layerwise_thirds.csv")) == 1 + 15
    assert (folder / "dendrogram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    mantel = json.loads((folder / "mantel.json").read_text())
    assert mantel["mantel"]["n_permutations"] == 199 and mantel["mantel"]["seed"] == 7
    assert mantel["parameters"]["linkage"] == "average"
    assert mantel["mantel"]["pvalue"] == out.mantel.pvalue
    assert out.spectrum.parameters["measure"] == "jaccard"  # the one default (was "cosine" here)


def test_writer_spectrum_follows_planted_families(tmp_path):
    # planted groups = the registry's genera (Germanic, Romance, Semitic, Finnic/Ugric); with
    # ten languages few relabellings keep the groups, so the Mantel test has power
    genus = {"en": 0, "de": 0, "fr": 1, "es": 1, "it": 1, "pt": 1, "ar": 2, "he": 2, "fi": 3, "hu": 4}
    probabilities = family_probabilities(list(genus), genus, seed=1)
    for measure in ("jaccard", "cka"):
        out = write_spectrum_outputs(
            tmp_path / measure, probabilities, top_rate=0.05, measure=measure, n_permutations=199, seed=0
        )
        assert out.mantel.statistic > 0.5 and out.mantel.pvalue < 0.05
        assert out.cophenetic_correlation > 0.5
        assert json.loads(out.paths["mantel_json"].read_text())["parameters"]["measure"] == measure


def test_writer_rejects_bad_requests(tmp_path):
    probabilities = family_probabilities(["en", "de", "fr"], {"en": 0, "de": 0, "fr": 1})
    with pytest.raises(InputError, match="measure"):
        write_spectrum_outputs(tmp_path, probabilities, measure="hsic")
    with pytest.raises(InputError, match="three languages"):
        write_spectrum_outputs(tmp_path, {"en": probabilities["en"], "de": probabilities["de"]})
