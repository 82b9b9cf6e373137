"""Finished validation studies read again, without the model: one or several study folders
(`validate --out`, the full-size study's stages) pooled as one study, over all their pairs or a
subset. The pooled summary is `validation.summarise_study` on the stored answers, with each
pair's stored selection scores and, where every folder has them, its predictor scores; so a
folder pooled alone, over all its pairs, gives its own validate.json's pooled numbers again.

The folders must share the model (its fingerprint) and the protocol (`PROTOCOL`: the prompts,
example seeds, answer length and word kind): answers of different protocols or models are not
one sample. Their word samples may differ (`n`, `seed`, `exclude`: the full-size study's two
stages). The pooled analysis (halvings, bootstrap, permutations, level, seed) is the first
folder's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.study_output import StudyFolder
from neuronoverlap.evaluation.validation import summarise_study

#: The config fields that make answers comparable: the folders pooled must agree on them.
PROTOCOL = ("prompts", "example_seeds", "max_new_tokens", "identical")


def _same_protocol(folders: Sequence[StudyFolder]) -> None:
    first = folders[0]
    for other in folders[1:]:
        differ = [k for k in PROTOCOL if first.config.get(k) != other.config.get(k)]
        if differ:
            raise InputError(
                f"{first.folder} and {other.folder} ran different protocols ({', '.join(differ)} differ): "
                "their answers are not one study"
            )
        if first.fingerprint != other.fingerprint:
            raise InputError(
                f"{first.folder} is of model {first.fingerprint}, {other.folder} of {other.fingerprint}"
            )


def _chosen(folders: Sequence[StudyFolder], pairs: Sequence[str] | None) -> dict[str, StudyFolder]:
    """pair name -> its folder, in the folders' order; only `pairs` when given."""
    owner: dict[str, StudyFolder] = {}
    for f in folders:
        for name in f.runs:
            if name in owner:
                raise InputError(f"pair {name} is in both {owner[name].folder} and {f.folder}")
            owner[name] = f
    if pairs is None:
        return owner
    unknown = [p for p in pairs if p not in owner]
    if unknown:
        raise InputError(f"no pair {', '.join(unknown)} in the study folders (they hold {', '.join(owner)})")
    if len(set(pairs)) != len(pairs):
        raise InputError("a pair is named twice in --pairs")
    return {p: owner[p] for p in pairs}


def pool_studies(folders: Sequence[str | os.PathLike[str]], pairs: Sequence[str] | None = None) -> dict:
    """The pooled summary (validate.json's layout) of finished study folders, over `pairs`
    (names such as 'de-fr'; default every pair), plus `pooled_from` (the folders and pairs).
    `choice` judges the study's own rules, and the predictor rules when every folder stored them."""
    if not folders:
        raise InputError("no study folder given")
    studies = [StudyFolder(f) for f in folders]
    _same_protocol(studies)
    owner = _chosen(studies, pairs)
    if not owner:
        raise InputError("no pair to pool")
    runs = {name: f.runs[name] for name, f in owner.items()}
    selection = {name: f.scores(name) for name, f in owner.items()}
    # the study's own rules (english, random, step-1, typology, hsic) are always judged by hit,
    # regret, NDCG and tau; predictor rules only when every folder stored their scores
    predictors: dict[str, dict[str, Mapping[str, float]]] = {}
    stored = all("predictor_scores" in f.summary for f in studies)
    if stored:
        for f in studies:
            for rule, per_pair in f.summary["predictor_scores"].items():
                for name, scores in per_pair.items():
                    if name in runs:
                        predictors.setdefault(rule, {})[name] = scores
    result = summarise_study(runs, selection, studies[0].study_config(), predictors=predictors)
    result["model"] = studies[0].summary.get("model")
    result["pooled_from"] = {
        "folders": [str(f.folder) for f in studies],
        "pairs": {name: str(f.folder) for name, f in owner.items()},
        "predictors": "judged" if stored else "not stored in every folder: the study's own rules only",
    }
    return result
