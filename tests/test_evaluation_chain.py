"""Several bridges at once (evaluation/chain.py): the prompt with k = 1 is the single-bridge
prompt, k bridges repeat the bridge part; the `chain` command on a tiny study folder reuses
the study's step 1 and checks k and the rule."""

from __future__ import annotations

import json

import pytest

from neuronoverlap.cli import main
from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.bli import PROMPT_STYLES, render_bridged
from neuronoverlap.evaluation.chain import load_runs, render_chain, top_bridges


@pytest.mark.parametrize("style", ["paper", "study"])
def test_one_bridge_is_the_single_bridge_prompt(style):
    template = PROMPT_STYLES[style].bridged
    single = render_bridged(template, "fi", "en", "hu", "koira", "dog")
    assert render_chain(template, "fi", ["en"], "hu", "koira", ["dog"]) == single


def test_several_bridges_repeat_the_bridge_part():
    text = render_chain(PROMPT_STYLES["study"].bridged, "fi", ["en", "de"], "hu", "koira", ["dog", "Hund"])
    assert text == "Suomi: koira\nEnglish: dog\nDeutsch: Hund\nMagyar:"
    paper = render_chain(PROMPT_STYLES["paper"].bridged, "fi", ["en", "de"], "hu", "koira", ["dog", "Hund"])
    assert paper == 'Suomi:"koira"→English:"dog"→Deutsch:"Hund"→Magyar:'


def test_top_bridges():
    scores = {"en": 1.0, "de": 3.0, "fr": 3.0, "it": 0.0}
    assert top_bridges(scores, ["en", "de", "fr", "it"], 3) == ["de", "fr", "en"]
    with pytest.raises(InputError, match="k = 5 bridges asked, the pair has 4 candidates"):
        top_bridges(scores, ["en", "de", "fr", "it"], 5)


def test_chain_command_on_a_tiny_study(tmp_path, capsys, refused):
    out = tmp_path / "study"
    argv = ["validate", "--model", "tiny-llama", "--pairs", "de-fr", "--bridges", "en,it", "-n", "5"]
    argv += ["--probe-n", "4", "--max-new-tokens", "3", "--eval-max-new-tokens", "3", "--random-sets", "9"]
    argv += ["--splits", "10", "--bootstrap", "50", "--store", str(tmp_path / "run.h5"), "--out", str(out)]
    assert main([*argv, "--quiet", "--example-seeds", "2", "--predictors", "uriel"]) == 0
    cached = sorted(p.name for p in (out / "cache").iterdir())
    assert main(["chain", "--out", str(out), "--rule", "uriel", "-k", "1,2", "--quiet"]) == 0
    new = sorted(set(p.name for p in (out / "cache").iterdir()) - set(cached))
    assert new and all("-fr-" in name for name in new)  # only chain prompts: step 1 came from the cache
    one = json.loads((out / "chain-uriel-k1.json").read_text(encoding="utf-8"))
    run = load_runs(out)["de-fr"]
    first = one["pairs"]["de-fr"]["bridges"][0]
    # k = 1 is the single bridge again: the same prompts, so the same p@1
    assert one["pairs"]["de-fr"]["chain"] == pytest.approx(one["pairs"]["de-fr"]["first_bridge"])
    assert one["pairs"]["de-fr"]["first_bridge"] == pytest.approx(run.accuracy(f"bridge:{first}"))
    two = json.loads((out / "chain-uriel-k2.json").read_text(encoding="utf-8"))
    assert set(two["pairs"]["de-fr"]["bridges"]) == {"en", "it"}
    assert "chain - first" in capsys.readouterr().out
    chain = ["chain", "--model", "tiny-llama", "--out", str(out)]
    refused([*chain, "-k", "3"], tmp_path, "k = 3 bridges asked, the pair has 2 candidates")
    refused([*chain, "--rule", "nope"], tmp_path, "rule 'nope' ranks no bridge")
