"""The full-size study's pre-registered analysis (evaluation/fullsize_analysis.py, its phases in
fullsize_scores.py and fullsize_tests.py): both stages and both phases end to end on tiny-llama,
the scores phase blind to the evaluation results, the refusal without stage 2, and the decisions
on constructed inputs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from neuronoverlap.evaluation import fullsize
from neuronoverlap.evaluation.fullsize_analysis import main
from neuronoverlap.evaluation.fullsize_report import EXPLORATORY, markdown_report
from neuronoverlap.evaluation.fullsize_tests import chain_results, first_test, ranked_shares, second_test
from neuronoverlap.evaluation.study import PairData

QUICK_SCORES = ["--predictor-n", "2", "--random-sets", "9", "--selection-bootstrap", "3", "--corpus-n", "8"]
QUICK_TESTS = ["--permutations", "99", "--mixed-bootstrap", "3"]


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    """Stage 1 (es-it, candidates en, de, fr: pairs whose words the s-b dictionaries hold, so
    that step 1 has an accuracy; the composed screening finds nothing on the tiny
    model) and the scores phase, before stage 2 exists; returns (store, out, study argv)."""
    patch = pytest.MonkeyPatch()
    patch.setattr(fullsize, "european_pairs", lambda: [("es", "it")])
    patch.setattr(fullsize, "CANDIDATES", ("en", "de", "fr"))
    root = tmp_path_factory.mktemp("fullsize")
    store, out = root / "s.h5", root / "fullsize"
    study = ["--model", "tiny-llama", "--store", str(store), "--out", str(out), "--quiet"]
    study += ["--screen-n", "2", "--sources", "fi", "--threshold", "1", "-n", "8", "--probe-n", "4"]
    assert fullsize.main(study) == 0
    argv = ["--model", "tiny-llama", "--store", str(store), "--out", str(out), "--quiet"]
    assert main([*argv, "--phase", "scores", *QUICK_SCORES]) == 0
    yield store, out, study, argv
    patch.undo()


def test_both_stages_and_both_phases_end_to_end(tiny_study, capsys):
    store, out, study, argv = tiny_study
    scores = json.loads((out / "analysis" / "scores.json").read_text(encoding="utf-8"))
    assert set(scores["pairs"]) == {"es-it", "it-es"}  # stage 2's pairs are scored before it runs
    assert scores["pairs"]["it-es"]["bridges"] == ["en", "de", "fr"]
    assert scores["hsic_repaired"]["es-it"].keys() == {"en", "de", "fr"}
    assert scores["target_share"]["it-es"].keys() == {"en", "de", "fr"}
    rules = {"uriel", "latent", "competence", "cka", "overlap-size", "corpus-jaccard", "representation"}
    assert rules | {"representation-target", "competence-step1", "uriel-genetic"} <= set(scores["predictors"])
    assert scores["commit"] and scores["library_versions"]["numpy"] == np.__version__
    assert fullsize.main([*study, "--stage", "2"]) == 0
    assert (out / "study-stage2" / "validate.json").is_file()
    # the tiny model never hits: plant hits through German on the first words, so that the mixed
    # model has outcomes to fit (the tests phase reads the answers' hits from pairs/*.json)
    for folder in ("study", "study-stage2"):
        for path in (out / folder / "pairs").glob("*.json"):
            run = json.loads(path.read_text(encoding="utf-8"))
            for k, conditions in enumerate(run["seeds"].values()):
                hits = conditions["bridge:de"]["hit"]
                conditions["bridge:de"]["hit"] = [i <= k + 2 for i in range(len(hits))]
            path.write_text(json.dumps(run), encoding="utf-8")
    capsys.readouterr()
    assert main([*argv, "--phase", "tests", *QUICK_TESTS]) == 0
    printed = capsys.readouterr().out
    result = json.loads((out / "analysis" / "tests.json").read_text(encoding="utf-8"))
    assert result["label"] == "pre-registered" and result["stages"] == [1, 2]
    assert set(result["pairs"]) == {"es-it", "it-es"}
    assert set(result["test1"]) == {"hsic_repaired", "target_share"}
    assert result["test1"]["hsic_repaired"]["n_pairs"] <= 2  # tau is undefined where p@1 ties
    assert result["test2"]["n_bootstrap"] == 3 and result["test2"]["n_pairs"] == 2
    assert {"english", "hsic", "uriel", "latent", "competence", "cka"} <= set(result["choice"]["measures"])
    assert "Issue 27" in printed and "Test 2" in printed
    assert (out / "analysis" / "tests.md").read_text(encoding="utf-8").startswith("Pairs: 2")
    # resumable: a rerun reuses every finished test (no model fit, no permutation)
    import neuronoverlap.evaluation.mechanism as mechanism

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mechanism, "fit_posterior", None)
        patch.setattr(mechanism, "pooled_kendall_tau", None)
        assert main([*argv, "--phase", "tests", *QUICK_TESTS]) == 0
    again = json.loads((out / "analysis" / "tests.json").read_text(encoding="utf-8"))
    assert again["test1"] == result["test1"] and again["test2"] == result["test2"]
    # a finished scores phase rerun rewrites scores.json with a new time (and maybe commit): the
    # tests' finished parts still count (it restarted Test 2's 200 fits of the full-size run)
    scores_path = out / "analysis" / "scores.json"
    original = scores_path.read_text(encoding="utf-8")
    rewritten = {**json.loads(scores_path.read_text(encoding="utf-8")), "written_at": "later", "commit": "x"}
    scores_path.write_text(json.dumps(rewritten, indent=2), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mechanism, "fit_posterior", None)
        patch.setattr(mechanism, "pooled_kendall_tau", None)
        assert main([*argv, "--phase", "tests", *QUICK_TESTS]) == 0
    # a changed score is a new analysis: its parts are computed again
    rewritten["hsic_repaired"]["es-it"]["en"] = (rewritten["hsic_repaired"]["es-it"]["en"] or 0.0) + 1.0
    scores_path.write_text(json.dumps(rewritten), encoding="utf-8")
    parts = sorted((out / "analysis" / "tests-parts").iterdir())
    assert main([*argv, "--phase", "tests", *QUICK_TESTS]) == 0
    assert len(sorted((out / "analysis" / "tests-parts").iterdir())) == len(parts) + 1
    scores_path.write_text(original, encoding="utf-8")  # the tests below read the real scores
    # Test 2 with its bootstrap fits started from the full fit: a part of its own
    assert main([*argv, "--phase", "tests", *QUICK_TESTS, "--bootstrap-start", "full"]) == 0
    warm = json.loads((out / "analysis" / "tests.json").read_text(encoding="utf-8"))["test2"]
    assert warm["bootstrap_start"] == "full" and warm["n_bootstrap"] == 3
    assert len(sorted((out / "analysis" / "tests-parts").iterdir())) == len(parts) + 2


def test_the_scores_phase_never_reads_evaluation_results(tiny_study, tmp_path):
    """Change every stage-1 result (hits, answers, the study's selection scores): a fresh scores
    phase gives the same scores."""
    store, out, _, argv = tiny_study
    changed = tmp_path / "fullsize"
    shutil.copytree(out / "study", changed / "study")
    shutil.copy(out / "plan.json", changed / "plan.json")
    summary = json.loads((changed / "study" / "validate.json").read_text(encoding="utf-8"))
    for pair in summary["pairs"].values():
        pair["scores"] = {b: -float(i) for i, b in enumerate(pair["bridges"])}
        pair["accuracy"] = {b: 1.0 for b in pair["bridges"]}
    (changed / "study" / "validate.json").write_text(json.dumps(summary), encoding="utf-8")
    for path in (changed / "study" / "pairs").glob("*.json"):
        run = json.loads(path.read_text(encoding="utf-8"))
        for conditions in run["seeds"].values():
            for rows in conditions.values():
                rows["hit"] = [not h for h in rows["hit"]]
                rows["answer"] = ["changed"] * len(rows["answer"])
        path.write_text(json.dumps(run), encoding="utf-8")
    shutil.rmtree(changed / "study" / "cache")
    args = ["--model", "tiny-llama", "--store", str(store), "--out", str(changed), "--quiet"]
    assert main([*args, "--phase", "scores", *QUICK_SCORES]) == 0
    before = json.loads((out / "analysis" / "scores.json").read_text(encoding="utf-8"))
    after = json.loads((changed / "analysis" / "scores.json").read_text(encoding="utf-8"))
    for key in ("pairs", "hsic_repaired", "target_share", "predictors"):
        assert after[key] == before[key], key


def test_the_tests_refuse_without_stage_two_unless_exploratory(tiny_study, tmp_path, capsys):
    _, out, _, argv = tiny_study
    first_only = tmp_path / "fullsize"
    shutil.copytree(out / "study", first_only / "study")
    shutil.copytree(out / "analysis", first_only / "analysis")
    args = [*argv[:-3], "--out", str(first_only), "--quiet", "--phase", "tests", *QUICK_TESTS]
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "need stage 2" in err and "--first-stage-only" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert main([*args, "--first-stage-only"]) == 0
    assert EXPLORATORY in capsys.readouterr().out
    result = json.loads((first_only / "analysis" / "tests.json").read_text(encoding="utf-8"))
    assert result["label"] == EXPLORATORY and result["stages"] == [1] and result["pairs"] == ["es-it"]
    assert result["test2"]["decision"].startswith("not computed: Test 2 needs 2 pairs")  # one pair
    assert (first_only / "analysis" / "tests.md").read_text(encoding="utf-8").startswith(f"**{EXPLORATORY}")


def test_bad_input_is_one_line(tiny_study, tmp_path, capsys):
    store, out, _, argv = tiny_study
    capsys.readouterr()
    assert main(["--store", str(store), "--out", str(tmp_path / "none"), "--phase", "scores", "--quiet"]) == 2
    assert "plan.json" in capsys.readouterr().err
    assert main(["--store", str(store), "--out", str(tmp_path), "--phase", "tests", "--quiet"]) == 2
    assert "scores.json" in capsys.readouterr().err
    other = tmp_path / "other"
    shutil.copytree(out / "study", other / "study")
    shutil.copy(out / "plan.json", other / "plan.json")
    (other / "study" / "study-model.json").write_text('{"model": "gemma@x", "dtype": "x"}', encoding="utf-8")
    assert main(["--store", str(store), "--out", str(other), "--phase", "scores", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "the study in" in err and "gemma@x" in err and len(err.strip().splitlines()) == 1


# --- the decisions on constructed inputs -------------------------------------------------------


def _pairs(rng, n_pairs: int, order: str):
    """Pairs with 3 non-English candidates and English; scores that order the accuracies
    ('planted'), reverse them ('reversed') or are unrelated ('null')."""
    pairs, hsic, shares = [], {}, {}
    for i in range(n_pairs):
        bridges = ["en", "b1", "b2", "b3"]
        accuracy = np.array([0.9, 0.2, 0.4, 0.6]) + rng.normal(0, 0.01, 4)
        hits = (rng.random((4, 60)) < accuracy[:, None]).astype(float)
        truth = hits.mean(axis=1)
        signal = {"planted": truth, "reversed": -truth, "null": rng.normal(size=4)}[order]
        pair = PairData(f"s{i}", f"t{i}", bridges, hits)
        pairs.append(pair)
        hsic[pair.name] = dict(zip(bridges, signal.tolist(), strict=True))
        shares[pair.name] = dict(zip(bridges, (-signal).tolist(), strict=True))
    return pairs, hsic, shares


def test_test_one_decides_by_holm_over_the_two_scores():
    rng = np.random.default_rng(0)
    pairs, hsic, shares = _pairs(rng, 20, "planted")
    result = first_test(pairs, hsic, shares, n_permutations=999)
    planted, reversed_ = result["hsic_repaired"], result["target_share"]
    assert planted["tau"] > 0.9 and planted["positive"] and planted["decision"].startswith("positive")
    assert planted["holm_pvalue"] == pytest.approx(2 * planted["pvalue"])  # the smaller of two p
    assert not reversed_["positive"] and reversed_["decision"].startswith("not shown at this size")
    # English is out of the test: a score that only ranks English first is no evidence
    only_en = {n: {b: float(b == "en") for b in s} for n, s in hsic.items()}
    constant = first_test(pairs, only_en, shares, n_permutations=99)["hsic_repaired"]
    assert np.isnan(constant["tau"]) and not constant["positive"] and constant["n_pairs"] == 0
    assert constant["decision"].startswith("not computable: the scores are constant on every pair")


def test_test_one_under_the_null_is_not_positive():
    rng = np.random.default_rng(1)
    pairs, hsic, shares = _pairs(rng, 20, "null")
    result = first_test(pairs, hsic, shares, n_permutations=999)
    assert not result["hsic_repaired"]["positive"] and not result["target_share"]["positive"]
    assert abs(result["hsic_repaired"]["tau"]) < 0.35


def test_empty_bridge_sets_rank_last_in_the_target_share():
    assert ranked_shares({"de": 0.2, "es": None, "it": 0.5}) == {"de": 0.2, "es": -0.8, "it": 0.5}
    assert ranked_shares({"de": None, "es": None}) == {"de": -1.0, "es": -1.0}


def _mixed_pairs(rng, effect: float):
    """Pairs whose hits follow competence and, with `effect`, the HSIC score; step 1 gives the
    competence read by Test 2 (the step-1 accuracy)."""
    pairs, hsic = [], {}
    for i in range(8):
        bridges = ["en", "b1", "b2"]
        competence = rng.normal(size=3)
        score = rng.normal(size=3)
        logits = -0.5 + competence + effect * score
        hits = (rng.random((3, 12, 3)) < 1 / (1 + np.exp(-logits[:, None, None]))).mean(axis=2)
        step1 = (rng.random((3, 12)) < 1 / (1 + np.exp(-competence[:, None]))).astype(float)
        pair = PairData(f"s{i}", f"t{i}", bridges, hits, step1)
        pairs.append(pair)
        hsic[pair.name] = dict(zip(bridges, score.tolist(), strict=True))
    return pairs, hsic


def test_test_two_finds_a_planted_effect_and_words_its_decision():
    rng = np.random.default_rng(2)
    pairs, hsic = _mixed_pairs(rng, 1.5)
    result = second_test(pairs, hsic, n_seeds=3, n_bootstrap=20)
    assert result["adds"] and result["lower_5pct"] > 0 and result["decision"].startswith("HSIC adds")
    assert result["interval_90"][0] == pytest.approx(result["lower_5pct"])
    null = second_test(*_mixed_pairs(np.random.default_rng(3), 0.0), n_seeds=3, n_bootstrap=20)
    assert not null["adds"] and null["decision"].startswith("not shown")


def test_the_markdown_words_each_decision():
    estimate = {"value": -0.05, "ci_low": -0.09, "ci_high": -0.01, "n_pairs": 20}
    result = {
        "label": "pre-registered",
        "stages": [1, 2],
        "n_pairs": 20,
        "test1": {
            "hsic_repaired": {
                "tau": 0.3,
                "pvalue": 0.01,
                "holm_pvalue": 0.02,
                "n_pairs": 20,
                "decision": "positive: x",
            },
        },  # fmt: skip
        "test2": {
            "n_bootstrap": 200,
            "coefficient_hsic": 0.1,
            "interval_90": [-0.1, 0.3],
            "coefficient_competence": 1.0,
            "n_pairs": 20,
            "pairs_left_out": [],
            "decision": "not shown: y",
        },  # fmt: skip
        "choice": {
            "k": 3,
            "baseline": "english",
            "measures": {"latent": {"regret": estimate}, "english": {"regret": estimate}},
            "versus_baseline": {"latent": estimate},
            "beats_baseline": ["latent"],
        },
        "chain": {},
    }
    text = markdown_report(result)
    assert "| hsic_repaired | +0.300 | 0.0100 | 0.0200 | 20 | positive: x |" in text
    assert "**not shown: y.**" in text
    assert "entirely below 0): latent; a single passing rule is reported as such" in text
    assert "| latent | - | -0.050 [-0.090, -0.010] | - | - | -0.050 [-0.090, -0.010] |" in text


def test_chain_results_are_read_per_stage_with_their_reading(tmp_path):
    """`neuronoverlap chain` files in a stage's folder are reported as each pools them; the chain
    helps when the pooled interval of chain - first bridge lies above 0."""
    folder = tmp_path / "study"
    folder.mkdir()
    base = {"chain": 0.3, "first_bridge": 0.2, "best_single": 0.35, "confidence": 0.95, "pairs": {"a-b": {}}}
    up = {**base, "chain_minus_first": {"value": 0.1, "ci_low": 0.02, "ci_high": 0.18}}
    across = {**base, "chain_minus_first": {"value": 0.1, "ci_low": -0.02, "ci_high": 0.18}}
    (folder / "chain-english-k2.json").write_text(json.dumps(up), encoding="utf-8")
    (folder / "chain-english-k3.json").write_text(json.dumps(across), encoding="utf-8")
    found = chain_results(tmp_path, [1, 2])
    assert list(found) == ["1"]
    assert found["1"]["chain-english-k2.json"]["helps"] and not found["1"]["chain-english-k3.json"]["helps"]


def test_a_stage_is_read_in_pair_name_order(tmp_path, monkeypatch):
    """The tests phase draws its permutation and bootstrap streams pair by pair: it reads the
    pairs in name order (the pre-registered run's order), whatever order validate.json lists."""
    from neuronoverlap.evaluation import fullsize_tests, study_output

    class Folder:
        def __init__(self, folder):
            self.summary, self.runs = {"pairs": {}}, {"it-es": 1, "de-fr": 2, "ar-pt": 3}

    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "validate.json").write_text("{}", encoding="utf-8")
    monkeypatch.setattr(study_output, "StudyFolder", Folder)
    _, runs = fullsize_tests._load_stage(tmp_path, 1)
    assert list(runs) == ["ar-pt", "de-fr", "it-es"]
