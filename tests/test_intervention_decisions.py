"""The pre-registered decision rules of findings §5 on constructed results whose verdicts are known."""

from __future__ import annotations

import json
import math

import pytest

from neuronoverlap import InputError
from neuronoverlap.interventions.decisions import bli_decisions, lape_decisions, main

LANGS = ["en", "de", "fr", "zh", "ja", "ar"]


def lape_document(own_largest, p_exact, p_attribution, interval=(0.1, 0.3), r=0.9, empty=()):
    rows = [
        {
            "set": x,
            "lang": x,
            "n_neurons": 10,
            "interval": list(interval),
            "p_exact": p_exact[i],
            "p_attribution": p_attribution[i],
        }
        for i, x in enumerate(LANGS)
        if x not in empty
    ]
    summary = {
        "langs": LANGS,
        "own_language_largest": {x: own_largest[i] for i, x in enumerate(LANGS) if x not in empty},
        "agreement_r": r,
    }
    return {"experiment": "perplexity", "rows": rows, "summary": summary}


def lape(*args, **kwargs):
    return lape_decisions(lape_document(*args, **kwargs))


def test_a_dominant_diagonal_beyond_its_null_holds():
    out = lape([True] * 6, [1 / 21] * 6, [0.001] * 6)
    assert out["hypothesis_1"]["verdict"] == "holds" and out["hypothesis_2"]["verdict"] == "holds"
    assert out["languages"]["ar"]["p_attribution_holm"] == pytest.approx(0.006)


def test_the_counts_decide_at_the_registered_thresholds():
    four = lape([True] * 4 + [False] * 2, [1 / 21] * 6, [0.001] * 6)
    assert four["hypothesis_1"]["verdict"] == "inconclusive"  # 4 of 6: neither >= 5 nor <= 3
    three = lape([True] * 3 + [False] * 3, [0.5] * 6, [0.5] * 6)
    assert three["hypothesis_1"]["verdict"] == "fails" and three["hypothesis_2"]["verdict"] == "fails"
    zero_inside = lape([True] * 6, [1 / 21] * 6, [0.001] * 6, interval=(-0.1, 0.3))
    assert zero_inside["hypothesis_1"]["verdict"] == "inconclusive"


def test_the_attribution_p_counts_only_where_it_agreed_with_the_exact_effects():
    weak = lape([True] * 6, [1 / 21] * 6, [0.5] * 6, r=0.69)
    assert weak["hypothesis_2"]["verdict"] == "holds" and not weak["hypothesis_2"]["attribution_counts"]
    agreed = lape([True] * 6, [1 / 21] * 6, [0.5] * 6, r=0.7)
    assert agreed["hypothesis_2"]["verdict"] == "fails"


def test_an_empty_set_fails_its_row():
    out = lape([True] * 6, [1 / 21] * 6, [0.001] * 6, empty=("ja", "ar"))
    assert out["languages"]["ja"]["n_neurons"] == 0 and math.isnan(out["languages"]["ja"]["p_exact"])
    assert out["hypothesis_1"]["own_largest"] == "4 of 6" and out["hypothesis_2"]["verdict"] == "fails"


def cell(p):
    return {"p_at_1": {"p": p}, "gold_logprob": {"p": p}}


def bli(name, o_p, own_minus_others, p_own, bridges=("en", "it")):
    rows = [{"set": "O", "conditions": {"zero-shot": cell(o_p)}, "premise": None}]
    for b, diff, p in zip(bridges, own_minus_others, p_own, strict=True):
        conditions = {f"bridge:{x}": cell(p if x == b else None) for x in bridges}
        rows.append({"set": f"B:{b}", "conditions": conditions, "premise": {"own_minus_others": diff}})
    return {"experiment": "bli", "name": name, "rows": rows, "params": {"bridges": list(bridges)}}


def test_bridgex_premise_needs_two_pairs_and_a_majority_of_bridges():
    good = bli("de-fr", 1 / 21, [0.1, 0.2], [1 / 21, 1 / 21])
    half = bli("de-it", 1 / 21, [0.1, 0.2], [1 / 21, 0.5])  # 1 of 2 bridges: not a majority
    out = bli_decisions([good, half, good])
    assert out["hypothesis_3"]["verdict"] == "holds"
    assert out["pairs"]["de-it"]["premise_holds"] is False
    assert out["hypothesis_4"]["verdict"] == "holds" and out["hypothesis_4"]["pairs_holding"] == "2 of 3"
    null = bli("de-fr", 0.5, [-0.1, 0.0], [0.5, 0.5])
    out = bli_decisions([null, null, half])
    assert out["hypothesis_3"]["verdict"] == "fails" and out["hypothesis_4"]["verdict"] == "fails"
    mixed = bli("de-fr", 0.5, [0.1, 0.1], [0.5, 0.5])  # positive differences, no null support
    assert bli_decisions([mixed] * 3)["hypothesis_4"]["verdict"] == "inconclusive"


def test_the_command_reads_json_and_refuses_bad_input(tmp_path, capsys):
    path = tmp_path / "lape.json"
    path.write_text(json.dumps(lape_document([True] * 6, [1 / 21] * 6, [0.001] * 6)))
    assert main([str(path)]) == 0 and '"verdict": "holds"' in capsys.readouterr().out
    assert main([str(tmp_path / "missing.json")]) == 2
    assert "cannot read intervention result" in capsys.readouterr().err
    with pytest.raises(InputError, match="perplexity"):
        lape_decisions({"experiment": "bli"})
