"""The language spectrum from a store: FLORES statistics recorded first where missing, then
similarity, clustering and the Mantel test; with a block bootstrap for intervals (docs/analyses.md)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from neuronoverlap.errors import InputError
from neuronoverlap.options import CorpusOptions, SpectrumOptions
from neuronoverlap.pipeline.model import ModelSource
from neuronoverlap.pipeline.recording import check_consent, ensure_corpora, record_corpora


def _languages(langs: Sequence[str]) -> list[str]:
    from neuronoverlap.languages import parse_languages

    codes = [lang.code for lang in parse_languages(list(langs) if not isinstance(langs, str) else langs)]
    if len(codes) < 3:
        raise InputError("a language spectrum needs at least three languages")
    return codes


def spectrum(
    store: str | Path,
    langs: str | Sequence[str],
    out: str | Path = "out/spectrum",
    model=None,
    *,
    options: SpectrumOptions = SpectrumOptions(),  # noqa: B008 (frozen)
    corpora: CorpusOptions = CorpusOptions(),  # noqa: B008 (frozen)
    data_dir=None,
    progress: bool = True,
    record: bool | None = None,
):
    """Write the spectrum of `langs` from the store's FLORES statistics to `out` (recording the
    languages it lacks when `record`, or a named `model`, allows). Returns `SpectrumOutputs`."""
    from neuronoverlap.analyses import write_spectrum_outputs
    from neuronoverlap.store import Store

    codes = _languages(langs)
    ensure_corpora(store, codes, model, corpora, data_dir, progress, record)
    with Store(store) as opened:
        probabilities = {lang: opened.corpus(lang).activation_probability() for lang in codes}
    return write_spectrum_outputs(out, probabilities, options=options)


def spectrum_with_intervals(
    store: str | Path,
    langs: str | Sequence[str],
    out: str | Path = "out/spectrum",
    model=None,
    *,
    options: SpectrumOptions = SpectrumOptions(),  # noqa: B008 (frozen)
    corpora: CorpusOptions = CorpusOptions(),  # noqa: B008 (frozen)
    resamples: int = 1000,
    block_size: int = 5,
    level: float = 0.95,
    data_dir=None,
    progress: bool = True,
    record: bool | None = None,
):
    """The spectrum with a bootstrap over blocks of FLORES sentences: per-sentence statistics
    recorded first where missing, then intervals, cluster support and partial Mantel tests.
    Returns (outputs, bootstrap result, partial Mantel tests, summary dict, blocks)."""
    from neuronoverlap.analyses.sentences import load_blocks, sentence_languages
    from neuronoverlap.analyses.uncertainty import bootstrap_summary, write_uncertain_spectrum

    codes = _languages(langs)
    if resamples < 1:
        raise InputError(f"--bootstrap must be at least 1, got {resamples}")
    if not 0 < level < 1:
        raise InputError(f"--level must be in (0, 1), got {level}")
    have = set(sentence_languages(store)) if Path(store).is_file() else set()
    missing = [lang for lang in codes if lang not in have]
    if missing:
        source = ModelSource.of(model)
        check_consent(source, record, store, f"the per-sentence statistics of {', '.join(missing)}")
        record_corpora(store, missing, source, corpora, data_dir, progress, per_sentence=True)
    blocks = load_blocks(store, codes, block_size=block_size)
    outputs, result, partial = write_uncertain_spectrum(
        out, blocks, resamples=resamples, level=level, options=options
    )
    return outputs, result, partial, bootstrap_summary(result), blocks


def pair_intervals(result) -> list[dict]:
    """Every pair's shared count, Jaccard and CKA with its bootstrap interval."""
    from itertools import combinations

    codes = result.estimate.languages
    bounds = {m: result.interval(f"matrix_{m}") for m in ("overlap", "jaccard", "cka")}
    rows = []
    for i, j in combinations(range(len(codes)), 2):
        row: dict = {"pair": f"{codes[i]}-{codes[j]}"}
        for m, (low, high) in bounds.items():
            row[m] = [float(result.estimate.matrices[m][i, j]), float(low[i, j]), float(high[i, j])]
        rows.append(row)
    return rows


def spectrum_summary(
    probabilities,
    out: str | Path,
    *,
    options: SpectrumOptions = SpectrumOptions(),  # noqa: B008 (frozen)
    blocks=None,
    bootstrap: int = 0,
):
    """The spectrum of `probabilities` (language -> [layer, neuron] activation probability)
    against the taxonomy, its files written to `out`, as a `SpectrumSummary`; with `blocks`
    (per-sentence statistics, `analyses.sentences.load_blocks`) and `bootstrap` resamples, also
    its intervals, cluster support and partial Mantel tests."""
    from neuronoverlap.analyses import write_spectrum_outputs
    from neuronoverlap.analyses.profiles import SpectrumSummary
    from neuronoverlap.jsonable import to_plain

    intervals = None
    if blocks is not None and bootstrap > 0:
        from neuronoverlap.analyses.uncertainty import bootstrap_summary, write_uncertain_spectrum

        outputs, result, partial = write_uncertain_spectrum(out, blocks, resamples=bootstrap, options=options)
        summary = bootstrap_summary(result)
        intervals = {
            "parameters": {
                k: summary["parameters"][k] for k in ("resamples", "level", "block_size", "n_blocks")
            },
            "mantel_r": summary["mantel_r"],
            "cophenetic_vs_taxonomy": summary["cophenetic_vs_taxonomy"],
            "partial_mantel": {
                name: {**summary["partial_mantel_r"][name], "pvalue": test.pvalue}
                for name, test in partial.items()
            },
            "mean_third_shares": summary["mean_third_shares"],
            "mean_third_share_differences": summary["mean_third_share_differences"],
            "dendrogram_support": summary["dendrogram_support"],
            "pairs": pair_intervals(result),
        }
    else:
        outputs = write_spectrum_outputs(out, probabilities, options=options)
    return SpectrumSummary(
        intervals=to_plain(intervals),
        measure=options.measure,
        languages=list(outputs.languages),
        linkage=outputs.spectrum.parameters.get("linkage"),
        mantel=to_plain(outputs.mantel.to_dict()),
        cophenetic_vs_taxonomy=to_plain(outputs.cophenetic_correlation),
        dendrogram_fit=to_plain(outputs.spectrum.dendrogram_fit),
        files={key: str(path) for key, path in outputs.paths.items()},
    )
