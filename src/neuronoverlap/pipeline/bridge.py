"""Choosing the bridge language of a pair: the probe sets it needs, the calibrated selection,
and the neuron sets and result kept in the store (docs/hsic.md)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from neuronoverlap.errors import InputError
from neuronoverlap.languages import DEFAULT_BRIDGES
from neuronoverlap.options import BridgeOptions, ProbeOptions
from neuronoverlap.pipeline.recording import check_stored_count, ensure_pair_probes
from neuronoverlap.store import schema


def pair_codes(pair: str | tuple[str, str], bridges: str | Sequence[str] = ()) -> tuple[str, str, list[str]]:
    """('zh', 'ja', ['en', ...]) from 'zh-ja' or ('zh', 'ja') and a list or comma string of
    bridges; unknown languages, and a bridge equal to the source or target, are errors."""
    from neuronoverlap.languages import get_language, parse_languages, parse_pair

    if isinstance(pair, str):
        src, tgt = (lang.code for lang in parse_pair(pair))
    else:
        src, tgt = (get_language(code).code for code in pair)
    codes = [b.code for b in parse_languages(bridges)] if bridges else []
    clash = {src, tgt} & set(codes)
    if clash:
        raise InputError(f"a bridge cannot be the source or target: {', '.join(sorted(clash))}")
    return src, tgt, codes


def save_selection(store: str | Path, result) -> None:
    """Keep a selection in the store: its result document and its neuron sets O(s,t), B(b; s,t)."""
    from neuronoverlap.store import StoreWriter

    src, tgt = result.src, result.tgt
    sets = {schema.overlap_set_name(src, tgt): result.overlap}
    sets.update({schema.bridge_set_name(b, src, tgt): s for b, s in result.bridges.items()})
    with StoreWriter.for_existing(store) as writer:  # one commit: both or neither
        writer.put_result(result, sets=sets)


def choose_bridge(
    store: str | Path,
    pair: str | tuple[str, str],
    bridges: str | Sequence[str] = DEFAULT_BRIDGES,
    model=None,
    *,
    options: BridgeOptions = BridgeOptions(),  # noqa: B008 (frozen)
    probes: ProbeOptions = ProbeOptions(),  # noqa: B008 (frozen)
    data_dir=None,
    progress: bool = True,
    record: bool | None = None,
):
    """Rank the candidate `bridges` of `pair` and keep the result in `store`.

    Args:
        store: the HDF5 store; probe sets it lacks are recorded first when `record` is True or
            (None) when `model` is given.
        pair: 'zh-ja' or ('zh', 'ja'): source and target.
        bridges: candidate bridge languages.
        model: a loaded model, a spec ('embedded', 'tiny-llama', a checkpoint) or None.
        options, probes: the selection's and the recording's options.

    Returns:
        The `BridgeSelection` (ranking, intervals, selection probability), also stored as
        results/bridge-SRC-TGT with the sets overlap-SRC-TGT and bridge-B-SRC-TGT.

    >>> import tempfile, pathlib
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = pathlib.Path(folder.name) / "run.h5"
    >>> quick = BridgeOptions(n_random=10, n_bootstrap=10, window=(1, 2))
    >>> probes = ProbeOptions(n_samples=4, max_new_tokens=3)
    >>> selection = choose_bridge(
    ...     path, "de-fr", ["en", "es"], "tiny-llama", options=quick, probes=probes, progress=False
    ... )
    de-fr: recorded (4 samples) -> .../run.h5
    ...
    >>> sorted(selection.ranking()), sorted(selection.selection_probability)
    (['en', 'es'], ['en', 'es'])
    >>> from neuronoverlap.store import Store
    >>> "bridge-de-fr" in Store(path).group_names("results")
    True
    >>> folder.cleanup()
    """
    from neuronoverlap.bridge import select_bridge

    src, tgt, candidates = pair_codes(pair, bridges)
    if not candidates:
        raise InputError("no candidate bridges")
    ensure_pair_probes(store, src, tgt, candidates, model, probes, data_dir, progress, record)
    result = select_bridge(store, src, tgt, candidates, options, progress=progress)
    save_selection(store, result)
    return result


def selection_scores(
    store: str | Path,
    pair: tuple[str, str],
    bridges: Sequence[str],
    model=None,
    *,
    options: BridgeOptions = BridgeOptions(),  # noqa: B008 (frozen)
    probes: ProbeOptions = ProbeOptions(),  # noqa: B008 (frozen)
    data_dir=None,
    progress: bool = True,
) -> dict[str, float]:
    """The selection's score per candidate bridge of `pair`, higher preferred: the stored result
    when it ran with exactly these bridges and these `options` (every field), else a new one.
    Either way the pair's stored probe sets must have been recorded under `probes.count`."""
    from neuronoverlap.bridge.loader import probe_pairs
    from neuronoverlap.store import Store

    src, tgt = pair
    check_stored_count(store, probe_pairs(src, tgt, list(bridges)), probes.count)
    name = schema.bridge_result_name(src, tgt)
    opened = Store(store) if Path(store).is_file() else None
    if opened is not None and name in opened.group_names(schema.RESULTS):
        stored = opened.result(name)
        if stored.ran_with(list(bridges), options):
            return {b: float(stored.scores[b]) for b in bridges}
    result = choose_bridge(
        store,
        pair,
        list(bridges),
        model,
        options=options,
        probes=probes,
        data_dir=data_dir,
        progress=progress,
        record=True,
    )
    return dict(result.scores)
