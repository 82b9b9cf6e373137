"""Generations and gold log-probs on disk: a study's (and the chain's) answers computed once,
keyed by model, dtype, stop rule and few-shot prefix, so that a rerun or a resumed run computes
only what no file holds."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.generate import generate_texts
from neuronoverlap.evaluation.logprob import gold_logprobs
from neuronoverlap.models import NeuronModel, StopRule

#: The files' layout version (a file of another layout is not read as this one).
CACHE_FORMAT = 1


class GenerationCache:
    """Greedy generations (and gold log-probs) on disk: one JSON file per (model, dtype, stop
    rule, prefix), mapping each query to its generated text (or its gold log-prob, in `lp-`
    files). A rerun computes only what no file holds."""

    def __init__(
        self,
        folder: str | os.PathLike[str],
        model: NeuronModel,
        stop: StopRule,
        *,
        prefix_cache: bool = True,
    ):
        self.folder = Path(folder)
        self.model, self.stop, self.prefix_cache = model, stop, prefix_cache
        self.identity = {
            "format": CACHE_FORMAT,
            "model": model.fingerprint(),
            "dtype": str(model.dtype),
            "stop": repr(stop),
        }
        self._loaded: dict[Path, dict[str, str]] = {}
        self.n_generated = 0

    def _path(self, prefix: str, label: str) -> Path:
        key = json.dumps({**self.identity, "prefix": prefix}, sort_keys=True, ensure_ascii=False)
        return self.folder / f"{label}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"

    def _outputs(self, path: Path) -> dict[str, str]:
        if path not in self._loaded:
            data = {}
            if path.is_file():
                try:
                    data = json.loads(path.read_text(encoding="utf-8"))["outputs"]
                except (OSError, ValueError, KeyError) as exc:
                    raise InputError(f"unreadable generation cache {path}: {exc}; delete it") from None
            self._loaded[path] = data
        return self._loaded[path]

    def _save(self, path: Path, prefix: str) -> None:
        from neuronoverlap.store.journal import atomic_write_json

        payload = {**self.identity, "prefix": prefix, "outputs": self._loaded[path]}
        atomic_write_json(path, payload, indent=0)

    def generate(
        self,
        requests: Sequence[tuple[str, str, Sequence[str]]],
        batch_size: int,
        progress: bool,
        desc: str,
    ) -> list[list[str]]:
        """For each request (label, prefix, queries), the generations of prefix + query, from
        the cache or generated, request by request (so that each pass shares its prefix,
        `generate_texts`), in chunks of a few batches, each saved at once (an interrupted pass
        keeps what it did)."""

        def compute(prompts: list[str], _: list) -> list[str]:
            return generate_texts(
                self.model, prompts, self.stop, batch_size, False, prefix_cache=self.prefix_cache
            )

        return self._fill([(*r, None) for r in requests], batch_size, progress, desc, compute, True)

    def score(
        self,
        requests: Sequence[tuple[str, str, Sequence[str], Sequence[Sequence[str]]]],
        answer: str,
        batch_size: int,
        progress: bool,
        desc: str,
    ) -> list[list[float]]:
        """For each request (label, prefix, queries, golds), the gold log-prob of each query
        (`logprob.gold_logprobs`, golds written as `answer` renders them), cached as
        generations are (files `lp-{label}-...`)."""

        def compute(prompts: list[str], golds: list) -> list[float]:
            values = gold_logprobs(
                self.model,
                prompts,
                golds,
                batch_size=batch_size,
                prefix_cache=self.prefix_cache,
                answer=answer,
            )
            return [float(v) for v in values]

        labelled = [(f"lp-{label}", prefix, queries, golds) for label, prefix, queries, golds in requests]
        return self._fill(labelled, batch_size, progress, desc, compute, False)

    def _fill(
        self, requests, batch_size: int, progress: bool, desc: str, compute, counted: bool
    ) -> list[list]:
        """Values of every (label, prefix, queries, extras) request, computing the missing ones
        request by request in chunks of 8 batches (`compute(prompts, extras)`), each chunk saved."""
        paths = [self._path(prefix, label) for label, prefix, _, _ in requests]
        todo: dict[Path, tuple[str, dict[str, object]]] = {}
        for path, (_, prefix, queries, extras) in zip(paths, requests, strict=True):
            have = self._outputs(path)
            missing = todo.setdefault(path, (prefix, {}))[1]
            for i, q in enumerate(queries):
                if q not in have:
                    missing[q] = None if extras is None else extras[i]
        total = sum(len(missing) for _, missing in todo.values())
        chunk = 8 * batch_size
        with tqdm(
            total=total, desc=desc, unit="prompt", disable=not progress or not total, leave=False
        ) as bar:
            for path, (prefix, missing) in todo.items():
                queries = list(missing)
                for start in range(0, len(queries), chunk):
                    part = queries[start : start + chunk]
                    values = compute([prefix + q for q in part], [missing[q] for q in part])
                    self._outputs(path).update(zip(part, values, strict=True))
                    self._save(path, prefix)
                    if counted:
                        self.n_generated += len(part)
                    bar.update(len(part))
        return [
            [self._outputs(path)[q] for q in queries]
            for path, (_, _, queries, _) in zip(paths, requests, strict=True)
        ]
