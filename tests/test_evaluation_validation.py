"""The validation study on the tiny LLaMA: the same example words in every condition, step 1
generated once per source word and bridge, a rerun that generates nothing, and the command."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

import neuronoverlap.evaluation.generate as generate_module
from neuronoverlap.cli import main
from neuronoverlap.evaluation.validation import StudyConfig, run_study, summarise_study

CONFIG = StudyConfig(
    example_seeds=(0, 1, 2), n=6, max_new_tokens=3, n_splits=10, n_bootstrap=50, n_permutations=99
)
LINE = re.compile(r"^Deutsch: (.+)$")


@pytest.fixture
def recorded(monkeypatch):
    """Every prompt the model is asked to continue."""
    prompts: list[str] = []
    original = generate_module.generate_greedy

    def record(model, batch, stop=None, consumer=None, **kwargs):
        prompts.extend(batch)
        return original(model, batch, stop, **kwargs)

    monkeypatch.setattr(generate_module, "generate_greedy", record)
    return prompts


def recorded_zero_shot(run, evaluated: set[str]) -> list[str]:
    """The zero-shot prompts of example seed 0 of a run, rebuilt as the study builds them."""
    from neuronoverlap.evaluation.bli import PROMPT_STYLES, direct_prefix
    from neuronoverlap.evaluation.protocol import load_examples
    from neuronoverlap.probes.prompts import render

    style = PROMPT_STYLES["study"]
    examples = load_examples(run.src, ["fr", "it"], ["en", "es"], 5, 0, evaluated, True)
    assert [e.source for e in examples] == run.examples["0"]
    prefix = direct_prefix(style, run.src, run.tgt, examples)
    return [prefix + render(style.direct, run.src, run.tgt, w, style.names) for w in run.words]


def _example_sources(prompt: str, k: int) -> list[str]:
    lines = prompt.split("\n")
    return [LINE.match(line)[1] for line in lines if LINE.match(line)][:k]


def test_study_shares_examples_and_step_one_and_resumes(tiny_llama, tmp_path, recorded):
    pairs, bridges = [("de", "fr"), ("de", "it")], ["en", "es"]
    runs = run_study(tiny_llama, pairs, bridges, tmp_path, CONFIG, progress=False)
    fr, it = runs["de-fr"], runs["de-it"]
    assert fr.bridges == ["en", "es"] and len(fr.words) == 6
    assert set(fr.seeds) == {"0", "1", "2"}
    # Every prompt of a seed shows the same 5 example source words, none of them evaluated.
    by_seed = {seed: words for seed, words in fr.examples.items()}
    assert by_seed == it.examples and len({tuple(w) for w in by_seed.values()}) == 3
    evaluated = set(fr.words) | set(it.words)
    for prompt in recorded:
        shown = _example_sources(prompt, 5)
        assert shown in list(by_seed.values()), prompt
        assert not set(shown) & evaluated
    # Generations: per seed, zero-shot per pair, step 1 once per (unique word, bridge), step 2
    # per pair and bridge.
    unique = len(set(fr.words) | set(it.words))
    expected = 3 * (6 + 6 + 2 * unique + 2 * (6 + 6))
    assert len(recorded) == expected
    # A rerun reads every generation from the cache.
    recorded.clear()
    again = run_study(tiny_llama, pairs, bridges, tmp_path, CONFIG, progress=False)
    assert recorded == []
    assert again["de-fr"].seeds == fr.seeds
    result = summarise_study(
        runs, {"de-fr": {"en": 1.0, "es": 0.5}, "de-it": {"en": 0.2, "es": 0.9}}, CONFIG, tiny_llama
    )
    assert result["pairs"]["de-fr"]["choices"]["hsic"] == "en"
    assert result["pairs"]["de-it"]["choices"]["hsic"] == "es"
    assert set(result["rules"]) == {"hsic", "english", "random", "step-1", "typology"}
    # Gold log-probs of every condition, as gold_logprobs gives them, and their agreement with p@1.
    from neuronoverlap.evaluation.logprob import gold_logprobs

    zero = recorded_zero_shot(fr, evaluated)
    direct = gold_logprobs(tiny_llama, zero, fr.golds, batch_size=CONFIG.batch_size)
    assert fr.seeds["0"]["zero-shot"]["logprob"] == pytest.approx(list(direct), abs=1e-9)
    assert set(result["pairs"]["de-fr"]["logprob"]["bridges"]) == {"en", "es"}
    assert result["logprob_agreement"]["n_pairs"] == 2
    n_id = result["pairs"]["de-fr"]["n_identical"]
    assert n_id == sum(fr.identical) and result["pairs"]["de-fr"]["n_non_identical"] == 6 - n_id


def test_study_checks_its_input(tiny_llama, tmp_path):
    from neuronoverlap.errors import InputError

    with pytest.raises(InputError, match="twice"):
        run_study(tiny_llama, [("de", "fr"), ("de", "fr")], ["en"], tmp_path, CONFIG)
    with pytest.raises(InputError, match="no candidate bridge"):
        run_study(tiny_llama, [("de", "en")], ["en"], tmp_path, CONFIG)
    with pytest.raises(InputError, match="example seeds"):
        run_study(tiny_llama, [("de", "fr")], ["en"], tmp_path, replace(CONFIG, example_seeds=()))


def test_validate_command_on_tiny_model(tmp_path, capsys):
    store, out = tmp_path / "run.h5", tmp_path / "out"
    argv = [
        "validate",
        "--model",
        "tiny-llama",
        "--pairs",
        "de-fr,en-es",
        "--bridges",
        "en,it",
        "-n",
        "6",
        "--probe-n",
        "6",
        "--max-new-tokens",
        "3",
        "--eval-max-new-tokens",
        "3",
        "--random-sets",
        "9",
        "--splits",
        "10",
        "--bootstrap",
        "50",
        "--store",
        str(store),
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    result = json.loads((out / "validate.json").read_text(encoding="utf-8"))
    assert set(result["pairs"]) == {"de-fr", "en-es"}
    assert result["pairs"]["en-es"]["bridges"] == ["it"]  # the pair's own English left out
    assert result["pairs"]["de-fr"]["scores"].keys() == {"en", "it"}
    assert (out / "validate.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "pairs" / "de-fr.json").is_file()
    assert "mean regret" in printed and "hsic" in printed
    assert (
        main([*argv, "--no-prefix-cache"]) == 0
    )  # resumes: selection from the store, generations from the cache
    for bad in (
        ["--pairs", "de-de"],
        ["--pairs", "de-fr", "--example-seeds", "0"],
        ["--pairs", "de-fr", "--bridges", "de,fr"],
        ["--pairs", "xx-fr"],
    ):
        assert (
            main(
                [
                    "validate",
                    "--model",
                    "tiny-llama",
                    "--store",
                    str(store),
                    "--out",
                    str(out),
                    "--quiet",
                    *bad,
                ]
            )
            == 2
        )


def test_non_identical_only_samples_among_the_primary_words(tiny_llama, tmp_path):
    config = replace(CONFIG, example_seeds=(0,), n=5, identical=False)
    run = run_study(tiny_llama, [("de", "fr")], ["en"], tmp_path, config, progress=False)["de-fr"]
    assert len(run.words) == 5 and not any(run.identical)


RESUME_SCRIPT = """
import sys
from neuronoverlap.evaluation.validation import StudyConfig, run_study
from neuronoverlap.models import load_model
config = StudyConfig(example_seeds=(0, 1), n=6, max_new_tokens=3, batch_size=2)
run_study(load_model("tiny-llama"), [("de", "fr"), ("es", "it")], ["en", "pt"], sys.argv[1], config, False)
"""


def test_a_study_killed_mid_run_resumes_to_identical_results(tiny_llama, tmp_path):
    """kill -9 while the study writes its cache, then a rerun: the same answers as a run never
    interrupted (every cache file is replaced whole, so a kill leaves no half-written one)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen([sys.executable, "-c", RESUME_SCRIPT, str(killed)], env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if len(list((killed / "cache").glob("*.json"))) >= 3:
            break
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL  # it was killed, not finished
    config = StudyConfig(example_seeds=(0, 1), n=6, max_new_tokens=3, batch_size=2)
    pairs, bridges = [("de", "fr"), ("es", "it")], ["en", "pt"]
    resumed = run_study(tiny_llama, pairs, bridges, killed, config, progress=False)
    whole = run_study(tiny_llama, pairs, bridges, tmp_path / "whole", config, progress=False)
    assert {k: r.seeds for k, r in resumed.items()} == {k: r.seeds for k, r in whole.items()}
    a = summarise_study(resumed, None, replace(config, n_bootstrap=50, n_splits=5), tiny_llama)
    b = summarise_study(whole, None, replace(config, n_bootstrap=50, n_splits=5), tiny_llama)
    assert a["rules"] == b["rules"] and a["pairs"] == b["pairs"]


def test_a_study_folder_of_another_model_is_refused(tiny_llama, tiny_mistral, tmp_path):
    from neuronoverlap.errors import InputError

    config = replace(CONFIG, n=2, example_seeds=(0,))
    run_study(tiny_llama, [("de", "fr")], ["en"], tmp_path, config, progress=False)
    with pytest.raises(InputError, match="holds the study of tiny-llama"):
        run_study(tiny_mistral, [("de", "fr")], ["en"], tmp_path, config, progress=False)
