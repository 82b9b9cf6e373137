"""Write the language-spectrum analyses of a set of languages to a folder.

Files (docs/analyses.md): `similarity_{overlap,jaccard,cosine,cka}.csv|.json`,
`similarity_per_layer.csv`, `layerwise_overlap.csv`, `layerwise_thirds.csv`,
`dendrogram.png` (neuron dendrogram beside the taxonomy dendrogram) and `mantel.json`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
from jaxtyping import Float

from neuronoverlap.analyses.agnostic import agnostic_record
from neuronoverlap.analyses.layerwise import THIRDS, layerwise_overlap, pairwise_overlaps
from neuronoverlap.analyses.similarity import LanguageMatrix
from neuronoverlap.analyses.snapshot import (
    active_sets_for,
    similarity_matrices,
)
from neuronoverlap.analyses.spectrum import MantelResult, SpectrumResult, language_spectrum
from neuronoverlap.errors import InputError
from neuronoverlap.jsonable import json_default
from neuronoverlap.numbers import p_is, permutation_floor
from neuronoverlap.options import SPECTRUM_MEASURES, SpectrumOptions  # noqa: F401 (SPECTRUM_MEASURES: re-exported)
from neuronoverlap.sets import NeuronSet


@dataclass(frozen=True)
class SpectrumOutputs:
    """What `write_spectrum_outputs` wrote, and its headline numbers."""

    out_dir: Path
    paths: dict[str, Path]
    languages: list[str]
    matrices: dict[str, LanguageMatrix]
    spectrum: SpectrumResult

    @property
    def mantel(self) -> MantelResult:
        return self.spectrum.mantel

    @property
    def cophenetic_correlation(self) -> float:
        return self.spectrum.cophenetic_vs_taxonomy


def _write_json(path: Path, content: Mapping[str, Any]) -> Path:
    path.write_text(json.dumps(content, indent=2, default=json_default, allow_nan=True) + "\n")
    return path


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _write_matrix(out_dir: Path, matrix: LanguageMatrix, parameters: dict[str, Any]) -> list[Path]:
    stem = out_dir / f"similarity_{matrix.measure}"
    rows = [[code, *matrix.values[i].tolist()] for i, code in enumerate(matrix.languages)]
    csv_path = _write_csv(stem.with_suffix(".csv"), ["language", *matrix.languages], rows)
    json_path = _write_json(
        stem.with_suffix(".json"),
        {
            "measure": matrix.measure,
            "languages": matrix.languages,
            "values": matrix.values,
            "parameters": {**parameters, **matrix.parameters},
        },
    )
    return [csv_path, json_path]


def _label_support(
    axis, drawn: dict, linkage: np.ndarray, codes: list[str], support: Mapping[frozenset, float]
) -> None:
    """Write each cluster's bootstrap support beside its node (left-oriented dendrogram)."""
    members: list[frozenset] = [frozenset([c]) for c in codes]
    for left, right, *_ in linkage:
        members.append(members[int(left)] | members[int(right)])
    by_height = {round(float(h), 12): members[len(codes) + k] for k, h in enumerate(linkage[:, 2])}
    for ys, xs in zip(drawn["icoord"], drawn["dcoord"], strict=True):
        cluster = by_height.get(round(float(xs[1]), 12))
        if cluster is not None and cluster in support:
            axis.annotate(
                f"{support[cluster]:.2f}",
                (xs[1], (ys[1] + ys[2]) / 2),
                fontsize=7,
                color="tab:red",
                ha="left",
                va="center",
                xytext=(3, 0),
                textcoords="offset points",
            )


def _plot_dendrograms(
    path: Path, spectrum: SpectrumResult, measure: str, support: Mapping[frozenset, float] | None = None
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.cluster.hierarchy import dendrogram

    figure, axes = plt.subplots(1, 2, figsize=(12, 0.35 * len(spectrum.languages) + 2.5))
    for axis, linkage, title in (
        (axes[0], spectrum.neuron_linkage, f"neuron distance (1 - {measure})"),
        (axes[1], spectrum.taxonomy_linkage, "taxonomy distance"),
    ):
        drawn = dendrogram(linkage, labels=spectrum.languages, orientation="left", ax=axis, color_threshold=0)
        axis.set_title(title)
        if support and linkage is spectrum.neuron_linkage:
            _label_support(axis, drawn, linkage, spectrum.languages, support)
            axis.set_title(f"{title}; red: bootstrap support")
    figure.suptitle(
        f"{spectrum.parameters['linkage']} linkage; cophenetic r vs taxonomy = "
        f"{spectrum.cophenetic_vs_taxonomy:.3f}, Mantel r = "
        f"{spectrum.mantel.statistic:.3f} "
        f"({p_is(spectrum.mantel.pvalue, floor=permutation_floor(spectrum.mantel.n_permutations))})"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _write_agnostic(path: Path, agnostic: np.ndarray, probabilities: Mapping[str, np.ndarray]) -> Path:
    lowest = np.min(np.stack([np.asarray(p) for p in probabilities.values()]), axis=0)
    return _write_csv(
        path,
        ["layer", "neuron", "min_probability"],
        [[int(layer), int(j), float(lowest[layer, j])] for layer, j in np.argwhere(agnostic)],
    )


def write_spectrum_outputs(
    out_dir: str | Path,
    probabilities: Mapping[str, Float[np.ndarray, "layer neuron"]],
    sets: Mapping[str, NeuronSet] | None = None,
    options: SpectrumOptions | None = None,
    *,
    mantel_method: str = "pearson",
    **changes: Any,
) -> SpectrumOutputs:
    """Similarity matrices, layer-wise overlap, dendrograms and the Mantel test, to `out_dir`.

    `probabilities`: corpus activation probability per language. `sets`: the active sets; by
    default each language's top `top_rate` (`count_rule`, `ties`, see docs/sets.md), chosen
    among the neurons that are not language-agnostic when `agnostic_share` is given
    (docs/analyses.md; the agnostic neurons are listed in `agnostic_neurons.csv`).
    `options`: the `SpectrumOptions` (`measure` picks the similarity the spectrum clusters on);
    `changes`: fields of it to change, e.g. `measure="cosine"`.
    """
    settings = replace(options or SpectrumOptions(), **changes)
    if len(probabilities) < 3:
        raise InputError("a language spectrum needs at least three languages")
    measure, top_rate, agnostic_share = settings.measure, settings.top_rate, settings.agnostic_share
    count_rule, ties = settings.count_rule, settings.ties
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    agnostic = None
    if sets is None:
        sets, agnostic = active_sets_for(probabilities, settings)
        set_parameters: dict[str, Any] = {
            "active_sets": "top_rate",
            "top_rate": top_rate,
            "count_rule": count_rule,
            "ties": ties,
            **agnostic_record(agnostic, agnostic_share),
        }
        if agnostic is not None:
            paths["agnostic_csv"] = _write_agnostic(out / "agnostic_neurons.csv", agnostic, probabilities)
    else:
        set_parameters = {"active_sets": "given"}
    codes = list(probabilities)
    parameters = {**set_parameters, "languages": codes}

    whole = similarity_matrices(probabilities, sets, settings, agnostic)
    for name, matrix in whole.items():
        paths[f"{name}_csv"], paths[f"{name}_json"] = _write_matrix(out, matrix, parameters)

    per_layer = {
        name: m.values
        for name, m in similarity_matrices(probabilities, sets, settings, agnostic, per_layer=True).items()
    }
    pairs = list(combinations(range(len(codes)), 2))
    n_layers = per_layer["overlap"].shape[0]
    rows = [
        [layer, codes[i], codes[j], *(per_layer[m][layer, i, j].item() for m in per_layer)]
        for layer in range(n_layers)
        for i, j in pairs
    ]
    paths["per_layer_csv"] = _write_csv(
        out / "similarity_per_layer.csv",
        ["layer", "language_a", "language_b", "overlap", "jaccard", "cosine", "cka_neurons"],
        rows,
    )

    layerwise = layerwise_overlap(pairwise_overlaps(sets))
    paths["layerwise_csv"] = _write_csv(
        out / "layerwise_overlap.csv",
        ["pair", "layer", "third", "count", "share_of_d_mlp"],
        [list(row.values()) for row in layerwise.rows()],
    )
    thirds, shares = layerwise.third_counts(), layerwise.third_shares()
    paths["thirds_csv"] = _write_csv(
        out / "layerwise_thirds.csv",
        ["pair", *THIRDS, *(f"share_{name}" for name in THIRDS)],
        [[pair, *thirds[p].tolist(), *shares[p].tolist()] for p, pair in enumerate(layerwise.pairs)],
    )

    spectrum = language_spectrum(
        whole[measure], settings.linkage, settings.n_permutations, settings.seed, mantel_method
    )
    paths["dendrogram_png"] = _plot_dendrograms(out / "dendrogram.png", spectrum, measure)
    paths["mantel_json"] = _write_json(
        out / "mantel.json",
        {
            "languages": codes,
            "mantel": spectrum.mantel.to_dict(),
            "cophenetic_vs_taxonomy": spectrum.cophenetic_vs_taxonomy,
            "dendrogram_fit": spectrum.dendrogram_fit,
            "parameters": {**parameters, **spectrum.parameters},
        },
    )
    return SpectrumOutputs(out, paths, codes, whole, spectrum)
