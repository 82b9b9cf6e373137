"""The language spectrum from a store: FLORES statistics recorded first where missing, then
similarity, clustering and the Mantel test; with a block bootstrap for intervals (docs/analyses.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
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
    options.check()
    ensure_corpora(store, codes, model, corpora, data_dir, progress, record)
    with Store(store) as opened:
        probabilities = {lang: opened.corpus(lang).activation_probability() for lang in codes}
    return write_spectrum_outputs(out, probabilities, **asdict(options))


def spectrum_with_intervals(
    store: str | Path,
    langs: str | Sequence[str],
    out: str | Path = "out/spectrum",
    model=None,
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
    options.check()
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
        out, blocks, resamples=resamples, level=level, **asdict(options)
    )
    return outputs, result, partial, bootstrap_summary(result), blocks
