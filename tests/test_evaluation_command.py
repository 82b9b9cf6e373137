"""`evaluate bli|mrc` end to end with the tiny model, and bad input raising InputError before any
model is loaded."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from neuronoverlap.cli.evaluate import add_parsers as add_evaluate_parser
from neuronoverlap.cli.evaluate import run_evaluate as cmd_evaluate
from neuronoverlap.errors import InputError
from neuronoverlap.evaluation.mrc import (
    MRCPrompts,
    letter_token_ids,
    question_prompt,
    sample_items,
)
from neuronoverlap.models import load_model


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="neuronoverlap")
    add_evaluate_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["evaluate", *argv])


def read_outputs(out, stem):
    summary = json.loads((out / f"{stem}.json").read_text(encoding="utf-8"))
    rows = [json.loads(x) for x in (out / f"{stem}.jsonl").read_text(encoding="utf-8").splitlines()]
    return summary, rows


def test_bli_end_to_end_with_tiny_model(tmp_path, capsys):
    from neuronoverlap.models import load_model

    out = tmp_path / "results"
    args = parse(
        "bli",
        "--pair",
        "zh-ja",
        "--bridge",
        "en",
        "--model",
        "tiny-llama",
        "-n",
        "3",
        "--max-new-tokens",
        "3",
        "--batch-size",
        "2",
        "--out",
        str(out),
        "--quiet",
        "--bootstrap",
        "200",
    )
    assert cmd_evaluate(args) == 0
    summary, rows = read_outputs(out, "bli-zh-ja")
    assert summary["model"]["fingerprint"] == load_model("tiny-llama").fingerprint()
    assert summary["params"]["n_evaluated"] == 3 and summary["params"]["bridges"] == ["en"]
    assert summary["params"]["command"]["pair"] == "zh-ja"
    assert summary["data"]["dictionary"]["composed"] is True
    assert set(summary["conditions"]) == {"zero-shot", "bridge:en"}
    assert summary["comparisons"]["en"]["mcnemar"]["n"] == 3
    assert len(rows) == 6
    for row in rows:
        assert row["gold"] and isinstance(row["hit"], bool) and row["generated"] is not None
        if row["condition"] == "bridge:en":
            assert row["bridge_prompt"] == f'中文:"{row["source"]}"→English:'
            assert f'→English:"{row["bridge_word"]}"→日本語:' in row["prompt"]
    printed = capsys.readouterr().out
    assert "zero-shot" in printed and "bridge:en" in printed and "McNemar" in printed


def test_mrc_end_to_end_with_tiny_model(tmp_path):
    out = tmp_path / "results"
    args = parse(
        "mrc",
        "--lang",
        "sw",
        "--bridge",
        "en",
        "--model",
        "tiny-llama",
        "-n",
        "2",
        "--max-new-tokens",
        "2",
        "--translation-max-new-tokens",
        "3",
        "--translation-shots",
        "1",
        "--reference",
        "--out",
        str(out),
        "--quiet",
        "--bootstrap",
        "200",
    )
    assert cmd_evaluate(args) == 0
    summary, rows = read_outputs(out, "mrc-sw")
    assert set(summary["conditions"]) == {"zero-shot", "bridge:en", "reference"}
    assert summary["params"]["question_lang"] == "en"
    assert summary["params"]["prompts"]["translation_shots"] == 1
    assert len(rows) == 6
    assert all(row["correct"] in "ABCD" and row["passage"] for row in rows)


def test_mrc_likelihood_scoring_with_tiny_model(tmp_path):
    """Each letter's log-probability equals a single unpadded forward of its prompt, and the
    answer is the most probable letter."""
    out = tmp_path / "results"
    args = parse(
        "mrc",
        "--lang",
        "sw",
        "--model",
        "tiny-llama",
        "-n",
        "3",
        "--batch-size",
        "2",
        "--scoring",
        "likelihood",
        "--out",
        str(out),
        "--quiet",
        "--bootstrap",
        "200",
    )
    assert cmd_evaluate(args) == 0
    summary, rows = read_outputs(out, "mrc-sw")
    assert summary["params"]["scoring"] == "likelihood" and len(rows) == 3
    model = load_model("tiny-llama")
    ids = letter_token_ids(model.tokenizer)
    for row in rows:
        scores = row["letter_log_probs"]
        assert row["answer"] == max(scores, key=scores.get) and row["generated"] == ""
        assert row["hit"] == (row["answer"] == row["correct"])
        item = next(i for i in sample_items("en", 3, 0) if i.question == row["question"])
        encoded = model.tokenizer(
            question_prompt(MRCPrompts().question, item, row["passage"]), return_tensors="pt"
        )
        with torch.inference_mode():
            logits = model.backend(encoded["input_ids"], return_type="logits")[0, -1]
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        for letter, token_ids in ids.items():
            expected = float(torch.logsumexp(log_probs[token_ids], dim=0))
            assert scores[letter] == pytest.approx(expected, abs=2e-4)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bli", "--pair", "xx-ja"], "unknown language"),
        (["bli", "--pair", "zh"], "src-tgt"),
        (["bli", "--pair", "zh-ja", "--bridge", "zh"], "source or target"),
        (["bli", "--pair", "zh-ja", "--bridges", "en,en"], "twice"),
        (["bli", "--pair", "zh-ja", "--bridges", "en", "--ranking", "de,en"], "not evaluated"),
        (["bli", "--pair", "zh-ja", "-n", "0"], "-n must be"),
        (["bli", "--pair", "en-de", "-n", "100000"], "exceeds"),
        (["bli", "--pair", "en-de", "--batch-size", "0"], "--batch-size"),
        (["bli", "--pair", "en-de", "--template", "{S}→{T}"], "lacks"),
        (["bli", "--pair", "en-de", "--shots", "-2"], "few-shot"),
        (["bli", "--pair", "en-de", "--confidence", "95"], "--confidence"),
        (["mrc", "--lang", "sw", "--bridge", "sw"], "passage language"),
        (["mrc", "--lang", "qq"], "unknown language"),
        (["mrc", "--lang", "sw", "--translation-template", "{S}: {T}"], "lacks"),
        (["mrc", "--lang", "sw", "--translation-max-new-tokens", "0"], "translation-max-new-tokens"),
    ],
)
def test_bad_input_raises_input_error(argv, message):
    args = parse(*argv, "--model", "no-such-model")  # never loaded: checks come first
    with pytest.raises(InputError, match=message):
        cmd_evaluate(args)


def test_out_must_be_a_folder(tmp_path):
    target = tmp_path / "taken"
    target.write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        cmd_evaluate(parse("bli", "--pair", "en-de", "--out", str(target)))


def test_bridges_all_excludes_the_pair_languages():
    from neuronoverlap.cli.evaluate import _bridges

    assert _bridges(parse("bli", "--pair", "en-de", "--bridges", "all"), {"en", "de"}) == [
        "fr",
        "it",
        "pt",
        "es",
    ]
    assert _bridges(parse("mrc", "--lang", "sw", "--bridges", "ALL"), {"sw"}) == [
        "en",
        "de",
        "fr",
        "it",
        "pt",
        "es",
    ]
    assert _bridges(parse("mrc", "--lang", "sw"), {"sw"}) == []


def test_argparse_rejects_bridge_and_bridges_together_and_missing_task():
    with pytest.raises(SystemExit) as info:
        parse("bli", "--pair", "en-de", "--bridge", "fr", "--bridges", "all")
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        parse()


def test_help_lists_every_option(capsys):
    for task, options in (
        (
            "bli",
            [
                "--pair",
                "--bridge",
                "--bridges",
                "--ranking",
                "--model",
                "--device",
                "--dtype",
                "--data-dir",
                "-n",
                "--seed",
                "--batch-size",
                "--out",
                "--quiet",
                "--shots",
                "--prompts",
                "--template",
                "--bridge-template",
                "--names",
            ],
        ),
        (
            "mrc",
            [
                "--lang",
                "--question-lang",
                "--reference",
                "--translation-template",
                "--translation-shots",
                "--question-template",
                "--bridges",
                "--out",
            ],
        ),
    ):
        with pytest.raises(SystemExit):
            parse(task, "--help")
        text = capsys.readouterr().out
        for option in options:
            assert option in text


def test_ranking_from_a_selection_file(tmp_path):
    from neuronoverlap.cli.evaluate import _ranking, read_ranking_file

    path = tmp_path / "selection.json"
    path.write_text(json.dumps({"src": "zh", "tgt": "ja", "ranking": ["fr", "en", "de"]}))
    assert read_ranking_file(path, ("zh", "ja")) == ["fr", "en", "de"]
    args = parse("bli", "--pair", "zh-ja", "--bridges", "en,de,fr", "--ranking", str(path))
    assert _ranking(args, ["en", "de", "fr"], ("zh", "ja")) == ["fr", "en", "de"]
    with pytest.raises(InputError, match="not en-de"):
        read_ranking_file(path, ("en", "de"))
    (tmp_path / "bad.json").write_text('{"scores": {}}')
    with pytest.raises(InputError, match="no 'ranking'"):
        read_ranking_file(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(InputError, match="cannot read"):
        read_ranking_file(tmp_path / "broken.json")


def test_templates_typed_with_backslash_n():
    from neuronoverlap.cli.evaluate import _bli_prompts, _mrc_prompts

    args = parse(
        "bli", "--pair", "en-de", "--template", r"{S}: {w}\n{T}:", "--shot-answer", r" {a}", "--shots", "2"
    )
    prompts = _bli_prompts(args)
    assert prompts.direct == "{S}: {w}\n{T}:" and prompts.answer == " {a}" and prompts.shots == 2
    assert prompts.bridged == '{S}:"{w}"→{B}:"{b}"→{T}:'  # the style's, not overridden
    mrc = _mrc_prompts(parse("mrc", "--lang", "sw", "--translation-template", r"{S}:\t{x}\n{T}:"))
    assert mrc.translation == "{S}:\t{x}\n{T}:"
