"""The gold-answer score (evaluation/logprob.py): equal to a brute-force sum of token log-probs,
the same with and without prefix reuse, in `evaluate bli --metric`, and its statistics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuronoverlap.cli import main
from neuronoverlap.data import BilingualDictionary
from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.bli import PROMPT_STYLES, evaluate_bli
from neuronoverlap.evaluation.logprob import gold_logprobs, mean_interval, paired_difference

SHOTS = "English: water\nDeutsch: Wasser\nEnglish: fire\nDeutsch: Feuer\nEnglish: house\nDeutsch: Haus\n"
PROMPTS = [SHOTS + f"English: {w}\nDeutsch:" for w in ("dog", "cat", "tree", "mountain road", "sun")]
GOLDS = [["Hund"], ["Katze", "Kater"], ["Baum"], ["Bergstraße", "Bergweg", "Pass"], ["Sonne"]]


def brute_force(model, prompt: str, gold: str) -> float:
    """log p(gold | prompt): one uncached forward over the prompt and gold, alone."""
    ids = model.tokenizer(prompt + gold)["input_ids"]
    n_prompt = len(model.tokenizer(prompt)["input_ids"])
    assert ids[:n_prompt] == model.tokenizer(prompt)["input_ids"]
    x = torch.tensor([ids])
    with torch.inference_mode():
        logits = model.backend.original_model(input_ids=x).logits[0].float()
    log_probs = torch.log_softmax(logits, dim=-1)
    return float(sum(log_probs[t - 1, ids[t]] for t in range(n_prompt, len(ids))))


def test_gold_logprob_is_the_best_sum_of_token_log_probs(tiny_llama):
    expected = [
        max(brute_force(tiny_llama, p, " " + g) for g in golds)
        for p, golds in zip(PROMPTS, GOLDS, strict=True)
    ]
    for prefix_cache in (True, False):
        for batch_size in (1, 3, 16):
            got = gold_logprobs(tiny_llama, PROMPTS, GOLDS, batch_size=batch_size, prefix_cache=prefix_cache)
            assert got.shape == (5,) and got.dtype == np.float64
            assert np.allclose(got, expected, atol=1e-4, rtol=0)
    assert (np.asarray(expected) < 0).all()


def test_a_gold_that_merges_with_the_prompt_is_appended_as_its_own_tokens(tiny_llama):
    prompt = SHOTS + "English: water\nDeutsch: Was"
    tok = tiny_llama.tokenizer
    assert tok(prompt + "ser")["input_ids"][: len(tok(prompt)["input_ids"])] != tok(prompt)["input_ids"]
    ids = tok(prompt)["input_ids"] + tok("ser", add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        logits = tiny_llama.backend.original_model(input_ids=torch.tensor([ids])).logits[0]
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    n = len(tok(prompt)["input_ids"])
    expected = float(sum(log_probs[t - 1, ids[t]] for t in range(n, len(ids))))
    got = gold_logprobs(tiny_llama, [prompt, PROMPTS[0]], [["ser"], ["Hund"]], answer="{a}")
    assert got[0] == pytest.approx(expected, abs=1e-4)


def test_gold_logprobs_checks_its_input(tiny_llama):
    with pytest.raises(InputError, match="gold lists"):
        gold_logprobs(tiny_llama, PROMPTS, GOLDS[:2])
    with pytest.raises(InputError, match="no gold"):
        gold_logprobs(tiny_llama, PROMPTS[:1], [[]])
    with pytest.raises(InputError, match="lacks"):
        gold_logprobs(tiny_llama, PROMPTS[:1], [["x"]], answer=" x")
    assert gold_logprobs(tiny_llama, [], []).shape == (0,)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-50, 0, allow_nan=False), min_size=1, max_size=40))
def test_mean_interval_holds_the_mean(values):
    out = mean_interval(values, n_resamples=300)
    assert out["ci_low"] - 1e-9 <= out["mean"] <= out["ci_high"] + 1e-9
    assert out["mean"] == pytest.approx(np.mean(values))


def test_paired_sign_flip_test_is_calibrated_and_has_power():
    rng = np.random.default_rng(0)
    null_p = []
    for _ in range(300):
        a = rng.normal(-5, 2, 60)
        null_p.append(
            paired_difference(a, a + rng.normal(0, 1, 60), n_resamples=400, seed=int(rng.integers(1e6)))[
                "pvalue"
            ]
        )
    assert 0.02 <= np.mean(np.array(null_p) <= 0.05) <= 0.09  # about 5% under the null
    planted = []
    for _ in range(50):
        a = rng.normal(-5, 2, 60)
        planted.append(paired_difference(a, a + 0.5 + rng.normal(0, 1, 60), n_resamples=400)["pvalue"])
    assert np.mean(np.array(planted) <= 0.05) >= 0.9  # a 0.5-standard-deviation shift is found
    d = paired_difference([0.0, 1.0, 2.0], [1.0, 3.0, 2.5])
    assert d["difference"] == pytest.approx(np.mean([1.0, 2.0, 0.5]))
    assert d["ci_low"] <= d["difference"] <= d["ci_high"]


PAIRS = [("dog", "hund"), ("cat", "katze"), ("tree", "baum"), ("sun", "sonne"), ("moon", "mond")]


def test_evaluate_bli_metric_both_and_logprob(tiny_llama):
    dictionary = BilingualDictionary.from_pairs("en", "de", PAIRS, split="test")
    common = dict(dictionary=dictionary, progress=False, n_resamples=200, max_new_tokens=3)
    style = PROMPT_STYLES["lines"]
    both = evaluate_bli(tiny_llama, "en", "de", ["fr"], prompts=style, metric="both", **common)
    only = evaluate_bli(tiny_llama, "en", "de", ["fr"], prompts=style, metric="logprob", **common)
    section = both.summary()["logprob"]
    assert set(section["conditions"]) == {"zero-shot", "bridge:fr"}
    words = list(dictionary.source_words)
    direct = gold_logprobs(
        tiny_llama,
        [f"English: {w}\nDeutsch:" for w in words],
        [dictionary.translations[w] for w in words],
    )
    assert np.allclose(section["conditions"]["zero-shot"]["values"], direct, atol=1e-4)
    assert only.summary()["logprob"]["conditions"] == section["conditions"]
    assert not only.conditions and both.conditions["zero-shot"].accuracy.n == 5  # no p@1 without generation
    assert section["comparisons"]["fr"]["difference"] == pytest.approx(
        np.mean(section["conditions"]["bridge:fr"]["values"]) - np.mean(direct), abs=1e-4
    )
    assert isinstance(section["agrees_with_p@1"], bool)
    assert "gold log-prob" in both.table() and "gold log-prob" in only.table()
    with pytest.raises(InputError, match="unknown metric"):
        evaluate_bli(tiny_llama, "en", "de", metric="p@5", **common)


def test_evaluate_bli_metric_on_the_command_line(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["evaluate", "bli", "--pair", "de-fr", "--model", "tiny-llama", "-n", "4", "--quiet"]
    assert main([*argv, "--metric", "both", "--bootstrap", "100", "--out", str(out)]) == 0
    summary = json.loads((out / "bli-de-fr.json").read_text(encoding="utf-8"))
    assert summary["params"]["metric"] == "both" and summary["logprob"]["conditions"]["zero-shot"]["n"] == 4
    capsys.readouterr()
    assert main([*argv, "--metric", "p@5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown metric 'p@5'" in err[0]


def test_the_report_shows_the_logprob_section():
    from neuronoverlap.evaluation.logprob import summarise_logprobs
    from neuronoverlap.report.collect import evaluation_result
    from neuronoverlap.report.tables import evaluation_tables

    section = summarise_logprobs(
        {"zero-shot": [-3.0, -2.0], "bridge:en": [-1.0, -2.5]}, ["en"], n_resamples=50
    )
    document = {"task": "bli", "name": "de-fr", "conditions": {}, "logprob": section}
    tables = {t.name: t for t in evaluation_tables(evaluation_result("bli-de-fr", None, document))}
    rows = tables["eval_bli-de-fr_logprob"].rows
    assert [r[0] for r in rows] == ["zero-shot", "bridge:en"] and rows[0][1] == pytest.approx(-2.5)
    (comparison,) = tables["eval_bli-de-fr_logprob_comparisons"].rows
    assert comparison[0] == "en" and comparison[1] == pytest.approx(0.75)
