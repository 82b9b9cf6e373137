"""Evaluating what a bridge does, with the result kept in the store for the report."""

from __future__ import annotations

from pathlib import Path


def save_evaluation(store: str | Path, result) -> str:
    """Keep an `EvaluationResult` summary in `store` as results/TASK-NAME (e.g. bli-zh-ja),
    where the report finds it. Returns the result's name."""
    from neuronoverlap.store import StoreWriter

    with StoreWriter.for_existing(store) as writer:
        writer.put_result(result)
    return result.key


def bli_through(
    store: str | Path | None,
    model,
    pair: tuple[str, str],
    bridges: list[str],
    *,
    n: int = 100,
    seed: int = 0,
    shots: int = 0,
    batch_size: int = 16,
    max_new_tokens: int = 16,
    ranking: list[str] | None = None,
    data_dir=None,
    out: str | Path | None = None,
    progress: bool = True,
):
    """BLI of `pair` zero-shot and through each of `bridges` (the demo's evaluation; `evaluate
    bli` has every option): written to `out` when given, kept in `store` when given."""
    from neuronoverlap.evaluation.bli import BLIPrompts, evaluate_bli, write_bli_results
    from neuronoverlap.pipeline.model import ModelSource

    src, tgt = pair
    result = evaluate_bli(
        ModelSource.of(model).load(store),
        src,
        tgt,
        bridges,
        n=n,
        seed=seed,
        batch_size=batch_size,
        prompts=BLIPrompts(shots=shots),
        data_dir=data_dir,
        max_new_tokens=max_new_tokens,
        ranking=ranking,
        progress=progress,
    )
    if out is not None:
        write_bli_results(result, out)
    if store is not None:
        save_evaluation(store, result)
    return result
