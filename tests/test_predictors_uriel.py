"""URIEL distances from lang2vec's shipped files: equal to the cosine distance of the vectors that
lang2vec's own `get_features` returns; a language lang2vec lacks is a one-line error."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from neuronoverlap.errors import InputError
from neuronoverlap.predictors.uriel import KINDS, check_languages, uriel_distance, uriel_scores, uriel_vector

LANG2VEC_SETS = {
    "genetic": "fam",
    "geographic": "geo",
    "syntactic": "syntax_knn",
    "phonological": "phonology_knn",
    "inventory": "inventory_knn",
    "featural": "syntax_knn+phonology_knn+inventory_knn",
}


@pytest.fixture(scope="module")
def lang2vec_module():
    """lang2vec's own module, with the one `pkg_resources` call it makes supplied (current
    setuptools no longer ships pkg_resources)."""
    folder = Path(next(iter(importlib.util.find_spec("lang2vec").submodule_search_locations)))
    shim = types.ModuleType("pkg_resources")
    shim.resource_filename = lambda _package, name: str(folder / name)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "pkg_resources", shim)
        patch.delitem(sys.modules, "lang2vec.lang2vec", raising=False)
        yield importlib.import_module("lang2vec.lang2vec")


@pytest.mark.slow
def test_distance_matches_lang2vecs_own_vectors(lang2vec_module):
    for kind in KINDS:  # lang2vec loads its whole family file (237 MB) on every call
        features = lang2vec_module.get_features(["he", "fr", "ja"], LANG2VEC_SETS[kind])
        vectors = {c: np.array(v, float) for c, v in features.items()}
        for a, b in (("he", "fr"), ("ja", "fr"), ("he", "ja")):
            u, v = vectors[a], vectors[b]
            assert np.array_equal(uriel_vector(a, kind), u), kind
            expected = 1 - u @ v / (np.linalg.norm(u) * np.linalg.norm(v))
            assert uriel_distance(a, b, kind) == pytest.approx(expected, abs=1e-12), kind
        assert uriel_distance("fr", "fr", kind) == pytest.approx(0.0, abs=1e-12)


def test_scores_rank_nearer_bridges_higher():
    scores = uriel_scores("fi", "es", ["en", "pt", "ja"])
    assert set(scores) == {"uriel", *(f"uriel-{k}" for k in KINDS)}
    assert max(scores["uriel"], key=scores["uriel"].get) == "pt"  # Spanish's neighbour
    assert scores["uriel-genetic"]["pt"] > scores["uriel-genetic"]["ja"]
    assert scores["uriel-geographic"]["pt"] > scores["uriel-geographic"]["ja"]


def test_a_language_lang2vec_lacks_is_a_one_line_error():
    with pytest.raises(InputError, match="no URIEL vectors for language 'qqq'") as info:
        uriel_scores("qqq", "fr", ["en"])
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="no URIEL vectors for language 'qqq'"):
        check_languages(["fr", "sw", "qqq"])
    check_languages(
        ["en", "de", "fr", "it", "pt", "es", "zh", "ja", "ar", "he", "id", "tl", "fi", "hu", "sw"]
    )
    with pytest.raises(InputError, match="unknown URIEL distance"):
        uriel_vector("fr", "lexical")
