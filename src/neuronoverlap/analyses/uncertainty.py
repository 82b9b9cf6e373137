"""Write the spectrum's bootstrap intervals, cluster support and partial Mantel tests.

Files (docs/analyses.md): `bootstrap_similarity.csv`, `bootstrap_layerwise.csv`,
`bootstrap_thirds.csv`, `dendrogram_support.csv`, `bootstrap.json` and `partial_mantel.json`.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations
from pathlib import Path
from typing import Any

from neuronoverlap.analyses.bootstrap import (
    THIRD_DIFFERENCES,
    BlockCounts,
    SpectrumBootstrap,
    bootstrap_spectrum,
    interval_method,
    spectrum_controls,
)
from neuronoverlap.analyses.layerwise import THIRDS
from neuronoverlap.analyses.mantel import PartialMantelResult, partial_mantel_test
from neuronoverlap.analyses.snapshot import MATRICES, TAXONOMY_LEVELS
from neuronoverlap.analyses.writer import (
    SpectrumOutputs,
    _plot_dendrograms,
    _write_csv,
    _write_json,
    write_spectrum_outputs,
)
from neuronoverlap.options import SpectrumOptions

GAPS = ("genus - family", "family - different", "genus - different")


def _scalar(result: SpectrumBootstrap, name: str) -> dict[str, Any]:
    low, high = result.interval(name)
    return {
        "estimate": float(result.estimate_of(name)),
        "low": float(low),
        "high": float(high),
        "interval": interval_method(name),
    }


def _vector(result: SpectrumBootstrap, name: str, labels) -> dict[str, dict[str, float]]:
    low, high = result.interval(name)
    estimate = result.estimate_of(name)
    return {
        label: {"estimate": float(estimate[i]), "low": float(low[i]), "high": float(high[i])}
        for i, label in enumerate(labels)
    }


def bootstrap_summary(result: SpectrumBootstrap) -> dict[str, Any]:
    """The headline numbers with their intervals, as written to bootstrap.json."""
    summary: dict[str, Any] = {
        "parameters": result.parameters,
        "mantel_r": _scalar(result, "mantel_r"),
        "cophenetic_vs_taxonomy": _scalar(result, "cophenetic"),
        "n_agnostic": _scalar(result, "n_agnostic"),
        "partial_mantel_r": {
            name: _scalar(result, f"partial_r_{name}") for name in result.estimate.partial_r
        },
        "mean_third_shares": _vector(result, "mean_third_shares", THIRDS),
        "mean_third_share_differences": _vector(result, "mean_third_share_differences", THIRD_DIFFERENCES),
    }
    for name in ("jaccard", "overlap"):
        summary[f"taxonomy_level_means_{name}"] = _vector(
            result, f"level_means_{name}", TAXONOMY_LEVELS.values()
        )
        summary[f"taxonomy_level_gaps_{name}"] = _vector(result, f"level_gaps_{name}", GAPS)
    summary["dendrogram_support"] = {"-".join(sorted(c)): s for c, s in result.support.items()}
    return summary


def write_bootstrap_outputs(
    out_dir: str | Path,
    result: SpectrumBootstrap,
    partial: dict[str, PartialMantelResult] | None = None,
) -> dict[str, Path]:
    """Every interval of `result` (and the partial Mantel tests, if given) into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    estimate, codes = result.estimate, result.estimate.languages
    pairs = list(combinations(range(len(codes)), 2))
    rows = []
    for measure in MATRICES:
        name = f"matrix_{measure}"
        low, high = result.interval(name)
        rows += [
            [
                codes[i],
                codes[j],
                measure,
                estimate.matrices[measure][i, j].item(),
                low[i, j].item(),
                high[i, j].item(),
                interval_method(name),
            ]
            for i, j in pairs
        ]
    paths = {
        "bootstrap_similarity_csv": _write_csv(
            out / "bootstrap_similarity.csv",
            ["language_a", "language_b", "measure", "estimate", "low", "high", "interval"],
            rows,
        )
    }
    low, high = result.interval("layer_counts")
    paths["bootstrap_layerwise_csv"] = _write_csv(
        out / "bootstrap_layerwise.csv",
        ["pair", "layer", "count", "low", "high"],
        [
            [pair, layer, int(estimate.layer_counts[p, layer]), float(low[p, layer]), float(high[p, layer])]
            for p, pair in enumerate(estimate.pairs)
            for layer in range(estimate.layer_counts.shape[1])
        ],
    )
    (c_low, c_high), (s_low, s_high) = result.interval("third_counts"), result.interval("third_shares")
    paths["bootstrap_thirds_csv"] = _write_csv(
        out / "bootstrap_thirds.csv",
        ["pair", "third", "count", "count_low", "count_high", "share", "share_low", "share_high"],
        [
            [
                pair,
                third,
                int(estimate.third_counts[p, t]),
                float(c_low[p, t]),
                float(c_high[p, t]),
                float(estimate.third_shares[p, t]),
                float(s_low[p, t]),
                float(s_high[p, t]),
            ]
            for p, pair in enumerate(estimate.pairs)
            for t, third in enumerate(THIRDS)
        ],
    )
    support = sorted(result.support.items(), key=lambda item: (len(item[0]), sorted(item[0])))
    paths["dendrogram_support_csv"] = _write_csv(
        out / "dendrogram_support.csv",
        ["cluster", "size", "support"],
        [["-".join(sorted(c)), len(c), s] for c, s in support],
    )
    summary = bootstrap_summary(result)
    if partial:
        summary["partial_mantel_tests"] = {name: test.to_dict() for name, test in partial.items()}
        paths["partial_mantel_json"] = _write_json(
            out / "partial_mantel.json", {"languages": codes, "tests": summary["partial_mantel_tests"]}
        )
    paths["bootstrap_json"] = _write_json(out / "bootstrap.json", summary)
    return paths


def write_uncertain_spectrum(
    out_dir: str | Path,
    blocks: BlockCounts,
    resamples: int = 1000,
    level: float = 0.95,
    options: SpectrumOptions | None = None,
    **changes: Any,
) -> tuple[SpectrumOutputs, SpectrumBootstrap, dict[str, PartialMantelResult]]:
    """The spectrum outputs from block counts, plus bootstrap intervals and partial Mantel tests.

    `options`: the `SpectrumOptions` (`changes`: fields of it to change, e.g. `top_rate=0.05`).
    The partial Mantel tests partial out script, subword overlap, and both.
    """
    settings = replace(options or SpectrumOptions(), **changes)
    n_permutations, seed = settings.n_permutations, settings.seed
    outputs = write_spectrum_outputs(out_dir, blocks.probabilities(), options=settings)
    result = bootstrap_spectrum(blocks, settings, resamples=resamples, seed=seed, level=level)
    taxonomy = outputs.spectrum.taxonomy_distance
    partial = {
        name: partial_mantel_test(
            outputs.spectrum.neuron_distance, taxonomy, controls, n_permutations=n_permutations, seed=seed
        )
        for name, controls in spectrum_controls(blocks).items()
    }
    outputs.paths.update(write_bootstrap_outputs(out_dir, result, partial))
    _plot_dendrograms(outputs.paths["dendrogram_png"], outputs.spectrum, settings.measure, result.support)
    return outputs, result, partial
