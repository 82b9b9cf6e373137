"""Phase `scores` of the full-size analysis (`fullsize_analysis`): it reads no evaluation result,
only the pair lists (stage 1's `plan.json`, fixed before any bridged result; stage 2's fixed
list), the store and the model, and writes ANALYSIS/scores.json (one part per pair and score
under ANALYSIS/scores-parts, so that it resumes)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

from tqdm.auto import tqdm

from neuronoverlap.errors import InputError
from neuronoverlap.evaluation import fullsize
from neuronoverlap.evaluation.analysis_files import (
    analysis_dir,
    cached,
    check_study_model,
    store_fingerprint,
    write_json,
)
from neuronoverlap.evaluation.fullsize import STAGE_PLANS, stage_folder
from neuronoverlap.versions import source_commit

SCORE_FAMILIES = ("hsic-repaired", "target-share")


class PairSpec(NamedTuple):
    """What the scores phase knows of a pair: its languages and candidates (no result)."""

    src: str
    tgt: str
    bridges: list[str]

    @property
    def name(self) -> str:
        return f"{self.src}-{self.tgt}"


def study_pairs(out: str | os.PathLike[str]) -> list[PairSpec]:
    """Both stages' pairs with their candidates: stage 1's from its `plan.json` (written before
    any bridged result), stage 2's fixed list. No evaluation result is read."""
    from neuronoverlap.evaluation.validation import pair_bridges

    plan = Path(out) / STAGE_PLANS[1]
    if not plan.is_file():
        raise InputError(f"no {plan}: run `python -m neuronoverlap.evaluation.fullsize --out {out}` first")
    try:
        names = json.loads(plan.read_text(encoding="utf-8"))["pairs"]
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"unreadable {plan}: {exc}") from None
    pairs = [tuple(name.split("-")) for name in names]
    pairs += [p for p in fullsize.second_stage_pairs() if p not in pairs]
    return [PairSpec(s, t, pair_bridges(s, t, list(fullsize.CANDIDATES))) for s, t in pairs]


def study_languages(pairs: Sequence[PairSpec]) -> list[str]:
    """Every language of the study: the pairs' and the candidates' (sorted)."""
    return sorted({x for p in pairs for x in (p.src, p.tgt, *p.bridges)})


def hsic_repaired(store, pair: PairSpec, *, n_random: int, n_bootstrap: int) -> dict:
    """Issue 26's repaired score of each candidate (`BridgeOptions` defaults but the random sets
    and bootstrap given), not saved into the store; with the selection probability."""
    from neuronoverlap.bridge import select_bridge
    from neuronoverlap.options import BridgeOptions

    options = BridgeOptions(n_random=n_random, n_bootstrap=n_bootstrap)
    selection = select_bridge(store, pair.src, pair.tgt, pair.bridges, options, progress=False)
    return {
        "scores": {b: float(selection.scores[b]) for b in pair.bridges},
        "selection_probability": selection.selection_probability,
        "near_tie": selection.near_tie,
        "holm_pvalues": selection.holm_pvalues,
        "options": options.to_dict(),
    }


def compute_scores(
    store: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    model: str = "embedded",
    analysis: str | os.PathLike[str] | None = None,
    predictor_n: int = 100,
    predictor_seed: int = 25,
    n_random: int = 200,
    selection_bootstrap: int = 200,
    families: str | Sequence[str] = "all",
    corpus_sentences: int = 200,
    progress: bool = True,
) -> dict:
    """Phase `scores` (see the module docstring): returns and writes ANALYSIS/scores.json."""
    from neuronoverlap.bridge.target import store_target_shares
    from neuronoverlap.evaluation.results import model_description
    from neuronoverlap.options import CorpusOptions
    from neuronoverlap.pipeline.model import ModelSource
    from neuronoverlap.pipeline.recording import ensure_corpora, record_corpora
    from neuronoverlap.predictors import parse_families, predictor_table
    from neuronoverlap.versions import library_versions

    if predictor_n < 1 or n_random < 2 or selection_bootstrap < 0:
        raise InputError("--predictor-n must be >= 1, --random-sets >= 2, --selection-bootstrap >= 0")
    names = parse_families(families)
    pairs = study_pairs(out)
    fingerprint = store_fingerprint(store)
    for stage in STAGE_PLANS:
        check_study_model(stage_folder(out, stage), fingerprint, store)
    languages = study_languages(pairs)
    source = ModelSource(model)
    loaded = source.load(store)
    if loaded.fingerprint() != fingerprint:
        raise InputError(f"store {store} is of {fingerprint}, not of the model {loaded.fingerprint()}")
    corpus = CorpusOptions(n_sentences=corpus_sentences)
    ensure_corpora(store, languages, source, corpus, progress=progress, record=True)
    if "representation" in names:
        record_corpora(store, languages, source, corpus, progress=progress, per_sentence=True)
    folder = analysis_dir(out, analysis)
    parts = folder / "scores-parts"
    units = [(kind, p) for kind in (*SCORE_FAMILIES, *names) for p in pairs]
    hsic, share, table = {}, {}, {}
    legs: dict = {}  # competence's second legs, shared by the pairs (exact: `predictors.competence`)
    for kind, pair in tqdm(units, desc="scores", unit="pair", disable=not progress):
        path = parts / f"{kind}--{pair.name}.json"
        if kind == "hsic-repaired":
            options = {"n_random": n_random, "n_bootstrap": selection_bootstrap, "bridges": pair.bridges}
            hsic[pair.name] = cached(
                path,
                options,
                lambda p=pair: hsic_repaired(store, p, n_random=n_random, n_bootstrap=selection_bootstrap),
            )
        elif kind == "target-share":
            options = {"languages": languages, "rule": "corpus", "bridges": pair.bridges}
            share[pair.name] = cached(
                path,
                options,
                lambda p=pair: store_target_shares(store, p.src, p.tgt, p.bridges, languages=languages),
            )
        else:
            options = {"n": predictor_n, "seed": predictor_seed, "bridges": pair.bridges}
            found = cached(
                path,
                options,
                lambda p=pair, k=kind: {
                    rule: v[p.name]
                    for rule, v in predictor_table(
                        [p], [k], model=loaded, store=store, n=predictor_n, seed=predictor_seed, legs=legs
                    ).items()
                },
            )
            for rule, scores in found.items():
                table.setdefault(rule, {})[pair.name] = scores
    document = {
        "phase": "scores",
        "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": source_commit(),
        "library_versions": library_versions(),
        "model": model_description(loaded),
        "store": str(store),
        "store_fingerprint": fingerprint,
        "options": {
            "predictor_n": predictor_n,
            "predictor_seed": predictor_seed,
            "n_random": n_random,
            "selection_bootstrap": selection_bootstrap,
            "families": names,
            "target_share_languages": languages,
            "corpus": corpus.to_dict(),
        },
        "pairs": {p.name: {"bridges": p.bridges} for p in pairs},
        "hsic_repaired": {name: v["scores"] for name, v in hsic.items()},
        "hsic_repaired_selection": {
            name: {k: v[k] for k in ("selection_probability", "near_tie", "holm_pvalues", "options")}
            for name, v in hsic.items()
        },
        "target_share": share,
        "predictors": table,
    }
    write_json(folder / "scores.json", document)
    return document
