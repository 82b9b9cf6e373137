"""Recording what a step needs into a store: probe sets and FLORES statistics, resumable.

Every input file is read and checked before the model is loaded or the store locked; what the
store already holds is not recorded again. Long work shows one overall bar (items done, time
left) above each item's own bar.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm.auto import tqdm

from neuronoverlap.bridge.loader import probe_pairs
from neuronoverlap.errors import InputError
from neuronoverlap.options import CorpusOptions, ProbeOptions
from neuronoverlap.pipeline.model import ModelSource
from neuronoverlap.store import schema

Say = Callable[[str], None]


def check_consent(source: ModelSource, record: bool | None, store: str | Path, lacks: str) -> None:
    """Recording into a store that lacks data can be hours of work: it starts only when `record`
    is True, or (None) when the model was named; otherwise an `InputError` says what to do."""
    if source.explicit if record is None else record:
        return
    where = f"{store} lacks" if Path(store).is_file() else f"there is no store at {store}, so it lacks"
    raise InputError(
        f"{where} {lacks}; pass --model (e.g. --model embedded) to record them, or --store a store "
        "that holds them"
    )


def _say(progress: bool) -> Say:
    """Status lines that do not break the progress bars."""
    return tqdm.write if progress else print


def build_probe_sets(pairs: Sequence[tuple[str, str]], options: ProbeOptions, data_dir=None) -> list:
    """Both probe sets (a->b, b->a) of each language pair, every dictionary read and checked."""
    from neuronoverlap.probes import DEFAULT_TEMPLATE, translation_probe_sets

    return [
        probe_set
        for a, b in pairs
        for probe_set in translation_probe_sets(
            a,
            b,
            options.n_samples,
            seed=options.seed,
            template=options.template or DEFAULT_TEMPLATE,
            names=options.names,
            split=options.split,
            data_dir=data_dir,
        )
    ]


def check_stored_count(store: str | Path, pairs: Sequence[tuple[str, str]], count: str) -> None:
    """The probe sets of `pairs` (both directions) that `store` holds must have been recorded
    under the count rule `count` that a command would record or reuse them under; otherwise an
    `InputError` (`probes.counting.check_count_rule`), before any model loads."""
    from neuronoverlap.bridge.loader import probe_set_names
    from neuronoverlap.probes.counting import check_count_rule
    from neuronoverlap.store import Store

    if Path(store).is_file():
        check_count_rule(Store(store), probe_set_names(pairs), count)


def probe_job(
    store: str | Path,
    pairs: Sequence[tuple[str, str]],
    source: ModelSource,
    options: ProbeOptions,
    data_dir=None,
):
    """The recording of `pairs` as a `scale.Job` (prompts and options, no model); a probe set of
    `pairs` that `store` holds under another count rule than `options.count` is an error."""
    from neuronoverlap.scale import Job

    check_stored_count(store, pairs, options.count)
    return Job(
        store=Path(store),
        probe_sets=build_probe_sets(pairs, options, data_dir),
        batch_size=options.batch_size,
        stop=options.stop(),
        count=options.count,
        mean_dtype=options.mean_dtype,
        top_k=options.top_k,
        model_spec=source.resolve(store),
        device=source.device,
        dtype=source.dtype,
    )


def record_probes(
    store: str | Path,
    pairs: Sequence[tuple[str, str]],
    model=None,
    options: ProbeOptions = ProbeOptions(),  # noqa: B008 (frozen)
    data_dir=None,
    progress: bool = True,
) -> dict[str, str]:
    """Record both probe sets of each language pair in `pairs` into `store` (created if
    needed): the units of the work plan in order (`scale.units.run_in_process`, the oracle of
    `--shard` and Ray); resumable.

    Args:
        store: the HDF5 store; pairs: (a, b) language pairs, each recorded a->b and b->a.
        model: a loaded model, a spec ('embedded', 'tiny-llama', a checkpoint) or None (the
            store's model, else 'embedded'); options: how probes are built and recorded.

    Returns:
        Each probe set's status: 'recorded', 'resumed' or 'already stored'.

    >>> import tempfile, pathlib
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = pathlib.Path(folder.name) / "run.h5"
    >>> options = ProbeOptions(n_samples=3, max_new_tokens=3)
    >>> record_probes(path, [("de", "fr")], "tiny-llama", options, progress=False)
    de-fr: recorded (3 samples) -> .../run.h5
    fr-de: recorded (3 samples) -> .../run.h5
    {'de-fr': 'recorded', 'fr-de': 'recorded'}
    >>> record_probes(path, [("de", "fr")], "tiny-llama", options, progress=False)["de-fr"]
    de-fr: already stored (3 samples) -> .../run.h5
    fr-de: already stored (3 samples) -> .../run.h5
    'already stored'
    >>> folder.cleanup()
    """
    from neuronoverlap.scale.units import run_in_process

    source = ModelSource.of(model)
    job = probe_job(store, pairs, source, options, data_dir)
    loaded = source.load(store)
    say = _say(progress)
    sizes = {ps.name: len(ps) for ps in job.probe_sets}
    with _overall(len(job.plan.units), "units", "unit", progress) as bar:

        def report(unit, status) -> None:
            bar.update(1)
            if unit.stop == sizes[unit.name]:
                say(f"{unit.name}: {status} ({sizes[unit.name]} samples) -> {store}")

        return run_in_process(loaded, job, progress, report)


def missing_probe_pairs(
    store: str | Path, src: str, tgt: str, bridges: Sequence[str]
) -> list[tuple[str, str]]:
    """The language pairs of (src, tgt) and its bridges of which `store` lacks a direction."""
    from neuronoverlap.store import Store

    have = set(Store(store).probe_sets()) if Path(store).is_file() else set()
    return [
        (a, b)
        for a, b in probe_pairs(src, tgt, list(bridges))
        if schema.probe_set_name(a, b) not in have or schema.probe_set_name(b, a) not in have
    ]


def ensure_pair_probes(
    store: str | Path,
    src: str,
    tgt: str,
    bridges: Sequence[str],
    model=None,
    options: ProbeOptions = ProbeOptions(),  # noqa: B008 (frozen)
    data_dir=None,
    progress: bool = True,
    record: bool | None = None,
) -> dict[str, str]:
    """Record the probe sets bridge selection needs for (src, tgt) and `bridges` that `store`
    lacks (train split, endonyms). Recording is hours of work on a CPU: it starts only when
    `record` is True, or (None) when the model was named explicitly; otherwise a store that
    lacks data is an `InputError` saying what to do; so is a stored probe set of these pairs
    recorded under another count rule than `options.count` (it would be reused, or mixed with
    the sets recorded now)."""
    check_stored_count(store, probe_pairs(src, tgt, list(bridges)), options.count)
    todo = missing_probe_pairs(store, src, tgt, bridges)
    if not todo:
        _say(progress)(f"      all {2 * len(probe_pairs(src, tgt, list(bridges)))} probe sets are in {store}")
        return {}
    source = ModelSource.of(model)
    names = ", ".join(f"{a}-{b}" for a, b in todo[:4]) + (" ..." if len(todo) > 4 else "")
    check_consent(
        source, record, store, f"{2 * len(todo)} probe sets ({names}) of {options.n_samples} samples each"
    )
    return record_probes(store, todo, source, options, data_dir, progress)


def check_flores_sizes(langs: Sequence[str], n: int, split: str, data_dir=None, flag: str = "-n") -> None:
    """`n` FLORES sentences must exist for each language (files read, nothing recorded)."""
    from neuronoverlap.data.flores import read_flores

    for lang in langs:
        available = len(read_flores(lang, split=split, data_dir=data_dir))
        if n > available:
            raise InputError(
                f"{flag} {n} exceeds the {available} FLORES-200 {split} sentences of "
                f"{lang}; use {flag} {available} or fewer"
            )


def record_corpora(
    store: str | Path,
    langs: Sequence[str],
    model=None,
    options: CorpusOptions = CorpusOptions(),  # noqa: B008 (frozen)
    data_dir=None,
    progress: bool = True,
    per_sentence: bool = False,
) -> dict[str, str]:
    """Record the FLORES statistics of `langs` into `store` (with `per_sentence`, each
    sentence's counts, `analyses.sentences`, for the spectrum's bootstrap); resumable. Every
    FLORES file is read before the model loads. Returns each language's status."""
    from neuronoverlap.probes import flores_sentences, open_writer, record_corpus

    if per_sentence:
        from neuronoverlap.analyses.sentences import record_sentence_counts as recorder
    else:
        recorder = record_corpus
    what = "per-sentence statistics" if per_sentence else "corpus"
    inputs = {lang: flores_sentences(lang, options.n_sentences, options.split, data_dir) for lang in langs}
    loaded = ModelSource.of(model).load(store)
    say = _say(progress)
    statuses = {}
    with (
        open_writer(Path(store), loaded) as writer,
        _overall(len(inputs), "corpora", "language", progress) as bar,
    ):
        for lang, (sentences, params) in inputs.items():
            extra = {} if per_sentence else {"top_k": options.top_k}
            statuses[lang] = recorder(
                loaded, writer, lang, sentences, params, options.batch_size, progress=progress, **extra
            )
            bar.update(1)
            say(f"{what} {lang}: {statuses[lang]} ({len(sentences)} sentences) -> {store}")
    return statuses


def ensure_corpora(
    store: str | Path,
    langs: Sequence[str],
    model=None,
    options: CorpusOptions = CorpusOptions(),  # noqa: B008 (frozen)
    data_dir=None,
    progress: bool = True,
    record: bool | None = None,
) -> dict[str, str]:
    """Record FLORES statistics for the languages `store` lacks (the model is loaded only then;
    `record` as in `ensure_pair_probes`)."""
    from neuronoverlap.store import Store

    have = set(Store(store).corpora()) if Path(store).is_file() else set()
    missing = [lang for lang in langs if lang not in have]
    if not missing:
        _say(progress)(f"      FLORES statistics of {', '.join(langs)} are in {store}")
        return {}
    source = ModelSource.of(model)
    check_consent(source, record, store, f"the FLORES statistics of {', '.join(missing)}")
    return record_corpora(store, missing, source, options, data_dir, progress)


def _overall(total: int, what: str, unit: str, progress: bool):
    """The overall bar above the per-item bars (shown only when there is more than one item)."""
    disable = not progress or total < 2
    return tqdm(total=total, desc=f"all {what}", unit=unit, position=0, dynamic_ncols=True, disable=disable)
