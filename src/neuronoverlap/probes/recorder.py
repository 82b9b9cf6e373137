"""Recording probe sets and corpora into a store, in batches, resumable after a crash.

Hooks reduce activations to per-sample (probe) or per-language (corpus) statistics in place, so
memory does not grow with the number of samples. Each finished batch is committed to the
store's journal; rerunning the same command skips committed batches and, given the same inputs,
model and batch size, produces exactly the numbers of an uninterrupted run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

from neuronoverlap import __version__
from neuronoverlap.errors import InputError
from neuronoverlap.models import NeuronModel, StopRule, generate_greedy
from neuronoverlap.options import ProbeOptions
from neuronoverlap.probes.counting import COUNTED_POSITIONS
from neuronoverlap.probes.prompts import ProbeSet
from neuronoverlap.probes.stats import CorpusStats, ProbeBatchStats
from neuronoverlap.probes.topk import DEFAULT_TOP_K, check_k, token_spans
from neuronoverlap.store import ModelInfo, StoreWriter
from neuronoverlap.versions import library_versions


def model_info(model: NeuronModel) -> ModelInfo:
    return ModelInfo(
        name=model.name,
        fingerprint=model.fingerprint(),
        n_layers=model.n_layers,
        d_mlp=model.d_mlp,
        config=model.config_summary(),
    )


def open_writer(path, model: NeuronModel) -> StoreWriter:
    return StoreWriter(path, model_info(model), toolkit_version=__version__)


def _batches(n: int, batch_size: int, start: int) -> list[tuple[int, int]]:
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    return [(i, min(i + batch_size, n)) for i in range(start, n, batch_size)]


def precision_params(dtype, device) -> dict:
    """The model's dtype and device kind ('cpu', 'cuda', 'mps') a set is recorded with: part of
    its parameters, so a set is never completed in another precision or on another device."""
    return {"dtype": str(dtype).removeprefix("torch."), "device": str(device).split(":")[0]}


def probe_params(
    probe_set: ProbeSet,
    batch_size: int = 16,
    stop: StopRule = StopRule(),  # noqa: B008 (frozen, immutable)
    count: str = ProbeOptions.count,
    mean_dtype: str = "float32",
    top_k: int | None = None,
    *,
    dtype="float32",
    device="cpu",
) -> dict:
    """Every parameter a probe set is recorded with (stored in its `params`; a work plan's
    identity is built from them); `dtype`, `device`: the model's (`precision_params`)."""
    if len(probe_set) == 0:
        raise InputError(f"probe set {probe_set.name} is empty")
    if count not in COUNTED_POSITIONS:
        raise InputError(f"unknown count rule {count!r}; choose one of {', '.join(COUNTED_POSITIONS)}")
    return {
        **probe_set.params,
        "batch_size": batch_size,
        "max_new_tokens": stop.max_new_tokens,
        "stop_at_newline": stop.stop_at_newline,
        "stop_at_closing_quote": stop.stop_at_closing_quote,
        "counted_positions": COUNTED_POSITIONS[count],
        "recording": "generate, then one teacher-forced forward over prompt + answer",
        "toolkit_version": __version__,
        "library_versions": json.dumps(library_versions(), sort_keys=True),
        **({"mean_dtype": mean_dtype} if mean_dtype != "float32" else {}),
        **({} if top_k is None else {"top_k": check_k(top_k)}),
        **precision_params(dtype, device),
    }


def record_probe_set(
    model: NeuronModel,
    writer: StoreWriter,
    probe_set: ProbeSet,
    batch_size: int = 16,
    stop: StopRule = StopRule(),  # noqa: B008 (frozen, immutable)
    progress: bool = True,
    count: str = ProbeOptions.count,
    mean_dtype: str = "float32",
    rows: tuple[int, int] | None = None,
    top_k: int | None = None,
) -> str:
    """Generate greedily on every prompt, then record each sample's statistics in one
    teacher-forced pass (`count`: "answer", the default: the word's and the answer's tokens
    only; or "all" real tokens); store them (`mean_dtype` float16 is opt-in). `rows`: only the
    samples of one unit of a work plan (`store/plan.py`): a shard store commits the unit, any
    other store the probe set after its last unit (units in plan order). Returns 'recorded',
    'resumed' or 'already stored' (for a unit: also when journaled, awaiting its probe set's
    last unit).
    `top_k`: also keep each neuron's `top_k` samples (`probes.topk`; opt-in for probe sets)."""
    params = probe_params(
        probe_set, batch_size, stop, count, mean_dtype, top_k, dtype=model.dtype, device=model.device
    )
    src, tgt = probe_set.src, probe_set.tgt
    if rows is None:
        lo, hi = 0, len(probe_set)
        status, done = writer.probe_progress(src, tgt, params)
        journal = None if status == "done" else writer.probe_journal(src, tgt, params)
    else:
        lo, hi = rows
        status, done = writer.unit_progress(src, tgt, params, rows)
        journal = None if status == "done" else writer.unit_journal(src, tgt, params, rows)
    if journal is None:
        return "already stored"
    bar = tqdm(
        total=hi - lo,
        initial=done,
        desc=f"probe {probe_set.name}" + ("" if rows is None else f" [{lo}:{hi}]"),
        unit="sample",
        disable=not progress,
        dynamic_ncols=True,
        leave=None,  # under an overall bar: cleared when done
    )
    tokens_seen, started = 0, time.perf_counter()
    for start, stop_index in _batches(hi, batch_size, lo + done):
        prompts = probe_set.prompts[start:stop_index]
        stats = ProbeBatchStats(len(prompts), model.n_layers, model.d_mlp, device=model.device, top_k=top_k)
        spans = probe_set.word_spans()[start:stop_index] if count == "answer" else None
        generations = generate_greedy(model, prompts, stop, stats, count=count, word_spans=spans)
        stats.end_batch(len(prompts))
        mean, _, tokens = stats.result()
        top = {} if stats.top is None else _batch_top(stats.top, start, generations)
        journal.add_block(
            start,
            mean=mean,
            fires=stats.fires(),  # integer counts, journaled and stored as integers
            tokens=tokens,
            prompts=np.array(prompts, dtype=str),
            generations=np.array([g.text for g in generations], dtype=str),
            source_words=np.array(probe_set.source_words[start:stop_index], dtype=str),
            target_words=np.array(probe_set.target_words[start:stop_index], dtype=str),
            **top,
        )
        tokens_seen += int(tokens.sum())
        bar.update(len(prompts))
        bar.set_postfix(tok_s=f"{tokens_seen / (time.perf_counter() - started):.0f}")
    bar.close()
    if rows is None:
        writer.finish_probe_set(src, tgt)
    else:
        writer.finish_unit(src, tgt, rows)
    return "resumed" if status == "partial" else "recorded"


def _batch_top(top, start: int, generations) -> dict[str, np.ndarray]:
    """The batch's top-k (samples numbered from `start`, positions from each sample's first
    token) as journal-block arrays."""
    import torch

    lengths = [len(g.fed_ids) for g in generations]
    top.end_batch(torch.tensor([max(lengths) - n for n in lengths]))
    state = top.state_dict()
    state["top_sample"] = np.where(state["top_sample"] >= 0, state["top_sample"] + start, -1).astype(np.int32)
    return state


def record_corpus(
    model: NeuronModel,
    writer: StoreWriter,
    lang: str,
    sentences: Sequence[str],
    params: dict,
    batch_size: int = 16,
    commit_every: int = 4,
    progress: bool = True,
    top_k: int | None = DEFAULT_TOP_K,
) -> str:
    """Forward every sentence and store the language's fire counts, value sums and tokens, and
    (unless `top_k` is None) each neuron's `top_k` sentences with their tokens' spans."""
    if not sentences:
        raise InputError(f"no sentences for corpus {lang}")
    params = {
        **params,
        "batch_size": batch_size,
        "toolkit_version": __version__,
        "library_versions": json.dumps(library_versions(), sort_keys=True),
        **({} if top_k is None else {"top_k": check_k(top_k)}),
        **precision_params(model.dtype, model.device),
    }
    status, state = writer.corpus_progress(lang, params)
    if status == "done":
        return "already stored"
    journal = writer.corpus_journal(lang, params)
    stats = CorpusStats(model.n_layers, model.d_mlp, top_k)
    spans = {} if top_k is None else token_spans(model.tokenizer, list(sentences))
    if state is not None:
        stats.load_state_dict(state)
    done = stats.n_sentences
    bar = tqdm(
        total=len(sentences),
        initial=done,
        desc=f"corpus {lang}",
        unit="sent",
        disable=not progress,
        dynamic_ncols=True,
        leave=None,  # under an overall bar: cleared when done
    )
    started, tokens_at_start = time.perf_counter(), stats.n_tokens
    for index, (start, end) in enumerate(_batches(len(sentences), batch_size, done)):
        model.forward_activations(list(sentences[start:end]), stats)
        stats.end_batch(end - start)
        if (index + 1) % commit_every == 0 or end == len(sentences):
            journal.save_state(**stats.state_dict(), **spans)
        bar.update(end - start)
        rate = (stats.n_tokens - tokens_at_start) / (time.perf_counter() - started)
        bar.set_postfix(tok_s=f"{rate:.0f}")
    bar.close()
    writer.finish_corpus(lang)
    return "resumed" if status == "partial" else "recorded"
