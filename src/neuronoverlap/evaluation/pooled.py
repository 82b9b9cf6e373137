"""Finished validation studies read again, without the model: one or several study folders
(`validate --out`, the full-size study's stages) pooled as one study, over all their pairs or a
subset. The pooled summary is `validation.summarise_study` on the stored answers, with each
pair's stored selection scores and, where every folder has them, its predictor scores; so a
folder pooled alone, over all its pairs, gives its own validate.json's pooled numbers again.
Predictor scores can come from a file instead (`predictor_scores`: the full-size analysis's
`scores.json`, whose `predictors` map rule -> pair -> bridge -> score), checked against the
folders' model.

The folders must share the model (its fingerprint) and the protocol (`PROTOCOL`: the prompts,
example seeds, answer length and word kind): answers of different protocols or models are not
one sample. Their word samples may differ (`n`, `seed`, `exclude`: the full-size study's two
stages). The pooled analysis (halvings, bootstrap, permutations, level, seed) is the first
folder's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

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


def read_predictor_scores(path: str | os.PathLike[str], fingerprint: str | None) -> dict:
    """rule -> pair -> bridge -> score from a JSON file: the full-size analysis's scores.json
    (its `predictors`), or a file holding that mapping alone; refused when it names a model other
    than `fingerprint`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"no predictor scores file {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not a JSON file of predictor scores: {exc}") from None
    model = data.get("model") if isinstance(data, dict) else None
    theirs = model.get("fingerprint") if isinstance(model, dict) else None
    if theirs is not None and fingerprint is not None and theirs != fingerprint:
        raise InputError(f"{path} scores model {theirs}, the study folders are of {fingerprint}")
    scores = data.get("predictors", data) if isinstance(data, dict) else None
    well_formed = isinstance(scores, dict) and all(
        isinstance(by_pair, dict)
        and all(
            isinstance(row, dict) and all(isinstance(v, int | float) for v in row.values())
            for row in by_pair.values()
        )
        for by_pair in scores.values()
    )
    if not scores or not well_formed:
        raise InputError(f"{path} holds no predictor scores (a JSON object rule -> pair -> bridge -> score)")
    return scores


def pool_studies(
    folders: Sequence[str | os.PathLike[str]],
    pairs: Sequence[str] | None = None,
    predictor_scores: str | os.PathLike[str] | None = None,
) -> dict:
    """The pooled summary (validate.json's layout) of finished study folders, over `pairs`
    (names such as 'de-fr'; default every pair), plus `pooled_from` (the folders and pairs).
    `choice` judges the study's own rules, and the predictor rules: those of the file
    `predictor_scores` when given (`read_predictor_scores`), else those every folder stored."""
    if not folders:
        raise InputError("no study folder given")
    studies = [StudyFolder(f) for f in folders]
    _same_protocol(studies)
    from_file = None
    if predictor_scores is not None:  # read before any work, so that a bad file fails first
        from_file = read_predictor_scores(predictor_scores, studies[0].fingerprint)
    owner = _chosen(studies, pairs)
    if not owner:
        raise InputError("no pair to pool")
    runs = {name: f.runs[name] for name, f in owner.items()}
    selection = {name: f.scores(name) for name, f in owner.items()}
    # the study's own rules (english, random, step-1, typology, hsic) are always judged by hit,
    # regret, NDCG and tau; predictor rules when a file gives them or every folder stored them
    predictors: dict[str, dict[str, Mapping[str, float]]] = {}
    stored = all("predictor_scores" in f.summary for f in studies)
    if from_file is not None:
        source = f"judged, from {predictor_scores}"
        for rule, per_pair in from_file.items():
            predictors[rule] = {name: scores for name, scores in per_pair.items() if name in runs}
    elif stored:
        source = "judged"
        for f in studies:
            for rule, per_pair in f.summary["predictor_scores"].items():
                for name, scores in per_pair.items():
                    if name in runs:
                        predictors.setdefault(rule, {})[name] = scores
    else:
        source = "not stored in every folder: the study's own rules only"
    result = summarise_study(runs, selection, studies[0].study_config(), predictors=predictors)
    result["model"] = studies[0].summary.get("model")
    result["pooled_from"] = {
        "folders": [str(f.folder) for f in studies],
        "pairs": {name: str(f.folder) for name, f in owner.items()},
        "predictors": source,
    }
    return result
