"""The report as a pipeline step: the results a store holds, read typed from its shelf; the ones it
does not hold (the probe overlaps, language similarity, the spectrum) computed in memory with the
same options objects the commands use; then `neuronoverlap.report` presents them (docs/report.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuronoverlap.errors import InputError
from neuronoverlap.options import ReportOptions


@dataclass
class ReportShelf:
    """Everything the report presents: the store, the computed results (None where the store has
    too little for them) and the stored ones by name; `documents`: every stored document as it
    is, by name (those of no kind the toolkit knows are shown as they are)."""

    store: Any
    options: ReportOptions
    profile: Any = None  # OverlapProfile
    similarity: Any = None  # LanguageSimilarity
    spectrum: Any = None  # SpectrumSummary
    selections: dict[str, Any] = field(default_factory=dict)  # name -> BridgeSelection
    evaluations: dict[str, Any] = field(default_factory=dict)  # name -> EvaluationResult
    interventions: dict[str, Any] = field(default_factory=dict)  # name -> InterventionResult
    documents: dict[str, Any] = field(default_factory=dict)  # name -> JSON document, every one


def gather(
    store_path: str | Path,
    spectrum_dir: str | Path,
    *,
    options: ReportOptions = ReportOptions(),  # noqa: B008 (frozen)
    log: Callable[[str], None] | None = None,
) -> ReportShelf:
    """Read the store's results and compute what it lacks (`ReportShelf`); the spectrum's files
    go to `spectrum_dir`."""
    from neuronoverlap.analyses.profiles import both_way_pairs, language_similarity, overlap_profile
    from neuronoverlap.pipeline.spectrum import spectrum_summary
    from neuronoverlap.results import kind_of, read
    from neuronoverlap.store import Store, schema

    say = log or (lambda message: None)
    store = Store(store_path)
    shelf = ReportShelf(store, options)
    rule = options.spectrum
    names = store.probe_sets()
    say(f"probe sets: {len(names)}")
    pairs = both_way_pairs(names)
    if pairs:
        shelf.profile = overlap_profile(store, pairs, rule)
    langs = store.corpora()
    say(f"corpora: {len(langs)}")
    probabilities = {lang: store.corpus(lang).activation_probability() for lang in langs}
    if len(langs) >= 2:
        shelf.similarity = language_similarity(probabilities, rule)
    if len(langs) >= 3:
        say(f"language spectrum of {len(langs)} languages ({rule.n_permutations} Mantel permutations)")
        blocks = None
        if options.bootstrap > 0:
            from neuronoverlap.analyses.sentences import load_blocks, sentence_languages

            if set(langs) <= set(sentence_languages(store_path)):
                say(f"spectrum intervals: {options.bootstrap} bootstrap resamples")
                blocks = load_blocks(store_path, langs)
        shelf.spectrum = spectrum_summary(
            probabilities, Path(spectrum_dir), options=rule, blocks=blocks, bootstrap=options.bootstrap
        )
    results = store.group_names(schema.RESULTS)
    say(f"results: {len(results)}")
    shelves = {
        "bridge-selection": shelf.selections,
        "evaluation": shelf.evaluations,
        "intervention": shelf.interventions,
    }
    for name in results:
        document = shelf.documents[name] = store.get_json(schema.RESULTS, name)
        kind = kind_of(name, document)
        if kind in shelves:
            try:
                shelves[kind][name] = read(name, document)
            except (InputError, KeyError, TypeError, ValueError) as error:  # shown as it is
                say(f"results/{name} is not a readable {kind} ({error!r}); shown as stored")
    return shelf


def report(
    store: str | Path,
    out: str | Path,
    *,
    options: ReportOptions = ReportOptions(),  # noqa: B008 (frozen)
    log: Callable[[str], None] | None = None,
):
    """Write the report of `store` into the folder `out` (report.html, summary.md, report.json,
    tables/, figures/, spectrum/); returns the `ReportOutputs`. A missing or damaged store, or an
    `out` that is a file, is an `InputError`."""
    from neuronoverlap.report import prepare_out, render_report

    out = prepare_out(out)
    shelf = gather(store, out / "spectrum", options=options, log=log)
    return render_report(shelf, out, log=log)
