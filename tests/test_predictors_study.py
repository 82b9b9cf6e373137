"""The predictors as rules of the validation study: they never read the pair's evaluation results
(changing those leaves every prediction unchanged), and `validate --predictors` judges them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuronoverlap.cli import main
from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.choice import judge
from neuronoverlap.evaluation.study import PairData
from neuronoverlap.predictors import FAMILIES, parse_families, predictor_table


def test_predictions_ignore_the_evaluation_results(tiny_llama, tiny_store_template):
    rng = np.random.default_rng(0)
    hits = rng.random((2, 8))
    pair = PairData("de", "fr", ["en", "it"], hits.copy(), rng.random((2, 8)), {"en": 1.0, "it": 0.0})
    families = ["uriel", "latent", "neuron-sets"]
    options = dict(model=tiny_llama, store=tiny_store_template, n=3, window=[1, 2])
    before = predictor_table([PairData("de", "fr", ["en"], hits[:1].copy())], families, **options)
    changed = PairData("de", "fr", ["en"], 1 - hits[:1], np.zeros((1, 8)), {"en": -5.0})
    after = predictor_table([changed], families, **options)
    assert before == after
    assert set(before) >= {"uriel", "latent", "cka", "overlap-size", "corpus-jaccard"}
    # the judge sees different outcomes, the predictions stay as they were
    first = judge([PairData("de", "fr", ["en"], hits[:1].copy())], before, n_splits=4, n_bootstrap=5)
    second = judge([changed], after, n_splits=4, n_bootstrap=5)
    assert first.per_pair != second.per_pair
    assert pair.name == "de-fr"


def test_family_names_are_checked():
    assert parse_families("all") == list(FAMILIES)
    assert parse_families("none") == [] and parse_families(None) == []
    assert parse_families("uriel, latent") == ["uriel", "latent"]
    with pytest.raises(InputError, match="unknown predictor 'hsci'"):
        parse_families("uriel,hsci")
    with pytest.raises(InputError, match="needs a model"):
        predictor_table([PairData("de", "fr", ["en"], np.zeros((1, 2)))], "latent")


def test_validate_judges_the_predictors(tmp_path, capsys, refused):
    store, out = tmp_path / "run.h5", tmp_path / "out"
    argv = ["validate", "--model", "tiny-llama", "--pairs", "de-fr", "--bridges", "en,it", "-n", "6"]
    argv += ["--probe-n", "4", "--max-new-tokens", "3", "--eval-max-new-tokens", "3", "--random-sets", "9"]
    argv += ["--splits", "10", "--bootstrap", "50", "--store", str(store), "--out", str(out), "--quiet"]
    argv += ["--example-seeds", "1", "--predictor-n", "3"]
    assert main([*argv, "--predictors", "uriel,latent,neuron-sets"]) == 0
    result = json.loads((out / "validate.json").read_text(encoding="utf-8"))
    measures = result["choice"]["measures"]
    assert {"english", "uriel", "latent", "cka", "hsic"} <= set(measures)
    assert {"hit", "regret", "ndcg"} <= set(measures["latent"])  # tau: NaN where every p@1 is 0
    assert result["predictor_scores"]["uriel"]["de-fr"].keys() == {"en", "it"}
    assert "NDCG@3" in capsys.readouterr().out
    refused([*argv, "--predictors", "uriel,nope"], tmp_path, "unknown predictor 'nope'")
