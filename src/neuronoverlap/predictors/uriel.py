"""URIEL typological, genetic and geographic distances (Littell et al. 2017), computed offline from
the feature files that the PyPI package `lang2vec` 1.1.2 ships (no download; lang2vec's own
module is not imported, since it needs `pkg_resources`, which current setuptools no longer has).

Each distance is the cosine distance 1 - cos(u, v) of two languages' vectors of one feature set
(the feature sets of lang2vec's `get_features`; codes normalised by its `letter_codes.json`):

- `genetic`: `fam`, membership in every Glottolog family and sub-family;
- `geographic`: `geo`, proximity to 299 fixed points on the globe;
- `syntactic`, `phonological`, `inventory`: `syntax_knn`, `phonology_knn`, `inventory_knn`
  (URIEL's kNN-completed feature values: every language has every feature);
- `featural`: the three kNN sets concatenated.

Rules (`uriel_scores`): `uriel-<kind>` ranks the bridges by their distance to the target alone
(nearer: better); `uriel` by the mean of the six distances to the target. Fixed, nothing fitted.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from neuronoverlap.errors import InputError

KINDS = {
    "genetic": (("family_features.npz", ""),),
    "geographic": (("geocoord_features.npz", ""),),
    "syntactic": (("feature_predictions.npz", "S_"),),
    "phonological": (("feature_predictions.npz", "P_"),),
    "inventory": (("feature_predictions.npz", "INV_"),),
    "featural": (
        ("feature_predictions.npz", "S_"),
        ("feature_predictions.npz", "P_"),
        ("feature_predictions.npz", "INV_"),
    ),
}
LANG2VEC_VERSION = "1.1.2"


@functools.cache
def _data_dir() -> Path:
    spec = importlib.util.find_spec("lang2vec")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"URIEL distances need the package lang2vec=={LANG2VEC_VERSION} (pip install it)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not (folder / "family_features.npz").is_file():
        raise InputError(f"lang2vec at {folder.parent} lacks its feature files; reinstall lang2vec")
    return folder


@functools.cache
def _letter_codes() -> dict[str, str]:
    return json.loads((_data_dir() / "letter_codes.json").read_text(encoding="utf-8"))


@functools.cache
def _table(filename: str) -> tuple[dict[str, int], np.ndarray, np.ndarray]:
    """(language -> row, feature names, values [language, feature]) of one shipped file; kept as
    int8 when the values are integers (the family file: 30 MB instead of 237 MB)."""
    with np.load(_data_dir() / filename, allow_pickle=False) as z:
        langs, feats, data = z["langs"], z["feats"], z["data"][:, :, 0]
    small = data.astype(np.int8)
    if np.array_equal(small, data):
        data = small
    return {str(code): i for i, code in enumerate(langs)}, feats.astype(str), data


def iso3(code: str) -> str:
    """lang2vec's normalisation: an ISO 639-1 code becomes its 639-3 code; 639-3 stays."""
    return _letter_codes().get(code, code)


def uriel_vector(code: str, kind: str) -> np.ndarray:
    """A language's vector of one distance kind (the feature sets concatenated)."""
    if kind not in KINDS:
        raise InputError(f"unknown URIEL distance {kind!r}; known: {', '.join(KINDS)}")
    parts = []
    for filename, prefix in KINDS[kind]:
        rows, feats, data = _table(filename)
        row = rows.get(iso3(code))
        if row is None:
            raise InputError(f"lang2vec has no URIEL vectors for language {code!r}")
        values = data[row, np.char.startswith(feats, prefix)]
        if (values == -1).all():
            raise InputError(f"lang2vec's {kind} features of language {code!r} are all missing")
        parts.append(values)
    return np.concatenate(parts).astype(np.float64)


def uriel_distance(a: str, b: str, kind: str) -> float:
    """The cosine distance of two languages' vectors of one kind (0: identical)."""
    u, v = uriel_vector(a, kind), uriel_vector(b, kind)
    norm = float(np.linalg.norm(u) * np.linalg.norm(v))
    if norm == 0:
        raise InputError(f"URIEL {kind} vector of {a!r} or {b!r} is zero: no distance")
    return float(1 - u @ v / norm)


def check_languages(codes) -> None:
    """An `InputError` naming the first language lang2vec has no vectors for."""
    for code in codes:
        for kind in KINDS:
            uriel_vector(code, kind)


def uriel_scores(src: str, tgt: str, bridges: Sequence[str]) -> dict[str, dict[str, float]]:
    """rule -> bridge -> score (higher: nearer the target) for `uriel` and every `uriel-<kind>`.
    `src` is checked (it must have vectors) but the rules rank by the target alone."""
    uriel_vector(src, "genetic")
    distances = {kind: {b: uriel_distance(b, tgt, kind) for b in bridges} for kind in KINDS}
    out = {f"uriel-{kind}": {b: -d for b, d in by_bridge.items()} for kind, by_bridge in distances.items()}
    out["uriel"] = {b: -float(np.mean([distances[k][b] for k in KINDS])) for b in bridges}
    return out
