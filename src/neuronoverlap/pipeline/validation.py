"""The validation study over pairs: does the HSIC choice pick the best bridge? (docs/evaluation.md)"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from neuronoverlap.errors import InputError
from neuronoverlap.languages import DEFAULT_BRIDGES
from neuronoverlap.options import BridgeOptions, ProbeOptions
from neuronoverlap.pipeline.bridge import selection_scores
from neuronoverlap.pipeline.model import ModelSource


def validate(
    store: str | Path,
    pairs: Sequence[tuple[str, str]],
    *,
    config,
    bridges: Sequence[str] = DEFAULT_BRIDGES,
    out: str | Path = "out/validate",
    model=None,
    selection: BridgeOptions = BridgeOptions(n_bootstrap=0),  # noqa: B008 (frozen)
    probes: ProbeOptions = ProbeOptions(),  # noqa: B008 (frozen)
    progress: bool = True,
    predictors: str | Sequence[str] = (),
    predictor_n: int = 100,
    prefix_cache: bool = True,
):
    """For each pair: the HSIC selection among `bridges` (from the store, recording missing probe
    sets first), then BLI through every candidate under the study protocol `config`
    (`evaluation.validation.StudyConfig`); resumable (generations cached under `out`).
    `predictors` (issue 27): families of `neuronoverlap.predictors` judged beside the study's
    rules, on `predictor_n` train words where they run the model. `prefix_cache`: read each
    few-shot prefix once (False reads every prompt whole; the generations are the same).
    Returns (summary, runs, paths written)."""
    from neuronoverlap.evaluation.study_output import write_study
    from neuronoverlap.evaluation.validation import pair_bridges, run_study, summarise_study

    if not pairs:
        raise InputError("--pairs names no pair")
    if Path(out).exists() and not Path(out).is_dir():
        raise InputError(f"--out {out} exists and is not a folder")
    config.check()
    from neuronoverlap.predictors import parse_families, predictor_table

    families = parse_families(predictors)
    if "uriel" in families:  # before hours of study: every language must have URIEL vectors
        from neuronoverlap.predictors.uriel import check_languages

        check_languages(sorted({x for pair in pairs for x in pair} | set(bridges)))
    for src, tgt in pairs:
        if not pair_bridges(src, tgt, list(bridges)):
            raise InputError(f"{src}-{tgt} has no candidate bridge besides its own languages")
    source = ModelSource.of(model)
    scores = {
        f"{s}-{t}": selection_scores(
            store,
            (s, t),
            pair_bridges(s, t, list(bridges)),
            source,
            options=selection,
            probes=probes,
            data_dir=config.data_dir,
            progress=progress,
        )
        for s, t in pairs
    }
    loaded = source.load(store)
    runs = run_study(
        loaded, list(pairs), list(bridges), out, config, progress=progress, prefix_cache=prefix_cache
    )
    table = None
    if families:
        table = predictor_table(
            list(runs.values()),
            families,
            model=loaded,
            store=store,
            n=predictor_n,
            seed=config.seed,
            window=selection.window,
            data_dir=config.data_dir,
            progress=progress,
        )
    result = summarise_study(runs, scores, config, loaded, predictors=table)
    return result, runs, write_study(result, runs, out)


def pool_studies(
    folders: Sequence[str | Path],
    pairs: Sequence[str] | None = None,
    predictor_scores: str | Path | None = None,
) -> dict:
    """Finished study folders pooled again as one study, over every pair or `pairs` (no model
    runs; `evaluation.pooled`): validate.json's layout plus `pooled_from`; with
    `predictor_scores` (a file such as the full-size analysis's scores.json) its predictor rules
    are judged beside the study's."""
    from neuronoverlap.evaluation.pooled import pool_studies as pool

    return pool(folders, pairs, predictor_scores)
