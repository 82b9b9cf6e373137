"""Finished studies pooled again (evaluation/pooled.py, `neuronoverlap pool-studies`): one folder
alone gives its own pooled numbers back; a subset and two folders give what summarising those
answers directly gives; folders of another protocol, a pair twice, unknown pairs and damaged
files are refused with one line (exit 2 on the command line)."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest

from neuronoverlap.cli import main
from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.pooled import pool_studies
from neuronoverlap.evaluation.study_output import write_study
from neuronoverlap.evaluation.validation import StudyConfig, run_study, summarise_study

CONFIG = StudyConfig(
    example_seeds=(0, 1), n=6, max_new_tokens=3, n_splits=10, n_bootstrap=50, n_permutations=99
)
BRIDGES = ["en", "es"]
#: Made-up selection and predictor scores: what validate stores beside the answers.
SCORES = {"de-fr": {"en": 0.4, "es": 0.1}, "de-it": {"en": 0.2, "es": 0.3}, "fr-it": {"en": 0.1, "es": 0.5}}
PREDICTORS = {"made-up": {name: {"en": s["es"], "es": s["en"]} for name, s in SCORES.items()}}

POOLED_KEYS = ("rules", "differences", "kendall_tau", "choice")


def plain(value):
    """As JSON holds it (tuples as lists), so that stored and fresh results compare."""
    return json.loads(json.dumps(value))


def study(model, folder, pairs, config=CONFIG, with_predictors=True):
    """A finished study folder (answers, validate.json) and its runs."""
    runs = run_study(model, pairs, BRIDGES, folder, config, progress=False)
    scores = {name: SCORES[name] for name in runs}
    predictors = _predictors(list(runs)) if with_predictors else None
    result = summarise_study(runs, scores, config, model, predictors=predictors)
    write_study(result, runs, folder)
    return result, runs


@pytest.fixture(scope="module")
def folders(tiny_llama, tmp_path_factory):
    """Two finished folders with different word samples (seed): de-fr and de-it, with predictor
    scores; fr-it, without."""
    root = tmp_path_factory.mktemp("pooled")
    one = study(tiny_llama, root / "one", [("de", "fr"), ("de", "it")])
    two = study(tiny_llama, root / "two", [("fr", "it")], replace(CONFIG, seed=3), with_predictors=False)
    return root, one, two


def test_one_folder_alone_gives_its_own_pooled_numbers(folders):
    root, (result, _), _ = folders
    pooled = pool_studies([root / "one"])
    for key in POOLED_KEYS:
        assert plain(pooled[key]) == plain(result[key]), key
    assert pooled["pairs"].keys() == result["pairs"].keys()
    assert pooled["model"]["fingerprint"] == result["model"]["fingerprint"]
    assert pooled["pooled_from"]["predictors"] == "judged"


def test_a_subset_and_two_folders_pool_their_answers(folders):
    root, (_, runs_one), (_, runs_two) = folders
    subset = pool_studies([root / "one"], ["de-it"])
    direct = summarise_study(
        {"de-it": runs_one["de-it"]}, {"de-it": SCORES["de-it"]}, CONFIG, predictors=_predictors(["de-it"])
    )
    for key in POOLED_KEYS:
        assert plain(subset[key]) == plain(direct[key]), key
    both = pool_studies([root / "one", root / "two"])
    runs = {**runs_one, **runs_two}
    # fr-it's folder stored no predictor scores: the study's own rules are judged, no predictor
    direct = summarise_study(runs, {n: SCORES[n] for n in runs}, CONFIG, predictors={})
    assert list(both["pairs"]) == ["de-fr", "de-it", "fr-it"]
    assert "hsic" in both["choice"]["measures"] and "made-up" not in both["choice"]["measures"]
    assert both["pooled_from"]["predictors"].startswith("not stored in every folder")
    for key in POOLED_KEYS:
        assert plain(both[key]) == plain(direct[key]), key
    assert both["pooled_from"]["pairs"]["fr-it"] == str(root / "two")
    # the pooled differences and intervals are those of three pairs, not of either folder
    assert both["differences"]["hsic-english"]["n_pairs"] == 3


def test_predictor_scores_from_a_file_are_judged_over_the_pooled_pairs(folders, tmp_path, capsys):
    """The full-size analysis keeps its predictors in scores.json, not in the study folders: a
    file's predictors are judged as if the folders had stored them, over the pairs pooled."""
    root, (_, runs_one), (_, runs_two) = folders
    runs = {**runs_one, **runs_two}
    scores_json = tmp_path / "scores.json"
    model = {"fingerprint": pool_studies([root / "one"])["model"]["fingerprint"]}
    scores_json.write_text(
        json.dumps({"model": model, "predictors": _predictors(list(runs))}), encoding="utf-8"
    )
    both = pool_studies([root / "one", root / "two"], predictor_scores=scores_json)
    direct = summarise_study(runs, {n: SCORES[n] for n in runs}, CONFIG, predictors=_predictors(list(runs)))
    for key in POOLED_KEYS:
        assert plain(both[key]) == plain(direct[key]), key
    assert "made-up" in both["choice"]["measures"]
    assert both["pooled_from"]["predictors"] == f"judged, from {scores_json}"
    subset = pool_studies([root / "one", root / "two"], ["fr-it"], predictor_scores=scores_json)
    only = summarise_study(
        {"fr-it": runs["fr-it"]}, {"fr-it": SCORES["fr-it"]}, CONFIG, predictors=_predictors(["fr-it"])
    )
    assert plain(subset["choice"]) == plain(only["choice"])
    # the command, and bad files: another model, not JSON, not scores, missing
    assert main(["pool-studies", str(root / "one"), "--predictor-scores", str(scores_json)]) == 0
    assert "made-up" in capsys.readouterr().out
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"model": {"fingerprint": "x@1"}, "predictors": {}}), encoding="utf-8")
    for content, message in (
        (None, "scores model x@1"),
        ("{not json", "not a JSON file of predictor scores"),
        ('{"predictors": {"r": {"de-fr": {"en": "high"}}}}', "holds no predictor scores"),
        ("[1, 2]", "holds no predictor scores"),
    ):
        if content is not None:
            other.write_text(content, encoding="utf-8")
        with pytest.raises(InputError, match=message):
            pool_studies([root / "one"], predictor_scores=other)
    assert main(["pool-studies", str(root / "one"), "--predictor-scores", str(tmp_path / "none.json")]) == 2
    assert "no predictor scores file" in capsys.readouterr().err
    assert main(["pool-studies", str(root / "one"), "--predictor-scores", str(tmp_path)]) == 2
    assert "is not a JSON file of predictor scores" in capsys.readouterr().err  # a folder


def _predictors(names):
    return {rule: {n: v[n] for n in names} for rule, v in PREDICTORS.items()}


def test_incompatible_or_damaged_folders_are_refused(folders, tiny_llama, tmp_path):
    root, _, _ = folders
    with pytest.raises(InputError, match="no pair xx-yy"):
        pool_studies([root / "one"], ["xx-yy"])
    with pytest.raises(InputError, match="pair de-fr is in both"):
        pool_studies([root / "one", root / "one"])
    other = tmp_path / "other"
    study(tiny_llama, other, [("fr", "it")], replace(CONFIG, max_new_tokens=2))
    with pytest.raises(InputError, match="different protocols \\(max_new_tokens differ\\)"):
        pool_studies([root / "one", other])
    with pytest.raises(InputError, match="no study folder"):
        pool_studies([tmp_path / "missing"])
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "validate.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="unreadable"):
        pool_studies([damaged])
    truncated = tmp_path / "truncated"
    study(tiny_llama, truncated, [("fr", "it")])
    (truncated / "pairs" / "fr-it.json").write_text('{"src": "fr"}', encoding="utf-8")
    with pytest.raises(InputError, match="fr-it.json is damaged"):
        pool_studies([truncated])
    with pytest.raises(InputError, match="no study folder given"):
        pool_studies([])


def test_pool_studies_command(folders, tmp_path, capsys):
    root, _, _ = folders
    out = tmp_path / "pooled.json"
    assert (
        main(
            [
                "pool-studies",
                str(root / "one"),
                str(root / "two"),
                "--pairs",
                "de-fr,fr-it",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "mean regret" in printed and "pairs+words" in printed
    saved = json.loads(out.read_text(encoding="utf-8"))
    for name, entry in saved["differences"].items():  # rule names with a hyphen (step-1) kept whole
        a, b = entry["rules"]
        assert name == f"{a}-{b}" and a in saved["rules"] and b in saved["rules"]
        assert f"p@1({a}'s choice) - p@1({b}'s choice)" in printed
    assert "p@1(step-1's choice) - p@1(typology's choice)" in printed
    assert list(saved["pairs"]) == ["de-fr", "fr-it"]
    assert main(["pool-studies", str(root / "one"), "--pairs", "de-es"]) == 2
    assert "no pair de-es" in capsys.readouterr().err
    assert main(["pool-studies", str(root / "one"), "--json", str(tmp_path)]) == 2
    summary = root / "one" / "validate.json"
    before = summary.read_bytes()
    assert main(["pool-studies", str(root / "one"), "--pairs", "de-fr", "--json", str(summary)]) == 2
    assert "inside a study folder" in capsys.readouterr().err
    assert summary.read_bytes() == before  # the study's own summary is not overwritten


def test_a_config_comes_back_from_its_json_as_it_was():
    """`StudyConfig.from_dict` reads what validate.json records (tuples as lists): equal configs."""
    config = replace(CONFIG, exclude=(("de-fr", 150, 0), ("de-it", 150, 0)), identical=False)
    saved = json.loads(json.dumps({**asdict(config), "prompts": asdict(config.prompts)}))
    assert StudyConfig.from_dict(saved) == config
    assert StudyConfig.from_dict({**saved, "exclude": []}) == replace(config, exclude=())


def test_a_difference_names_its_rules_and_old_studies_still_read():
    from neuronoverlap.evaluation.study_output import _two_rules

    rules = {"step-1": {}, "typology": {}, "1-typology": {}}
    assert _two_rules("step-1-1-typology", {"rules": ["step-1", "1-typology"]}, rules) == (
        "step-1",
        "1-typology",
    )
    # a validate.json written before entries named their rules: the key split where both are rules
    assert _two_rules("step-1-1-typology", {}, rules) == ("step-1", "1-typology")
    assert _two_rules("typology-step-1", {}, rules) == ("typology", "step-1")
