"""The embedded Gemma-3-270M on a small real BLI sample (slow: loads the model)."""

from __future__ import annotations

import pytest

from neuronoverlap.evaluation.bli import BLIPrompts, evaluate_bli


@pytest.mark.slow
def test_few_shot_bli_en_de_translates_some_words(gemma):
    result = evaluate_bli(
        gemma,
        "en",
        "de",
        n=24,
        seed=0,
        batch_size=12,
        prompts=BLIPrompts(shots=3),
        progress=False,
        n_resamples=1000,
    )
    zero = result.conditions["zero-shot"]
    records = zero.records
    assert len(records) == 24 and len({r.source for r in records}) == 24
    assert all(r.gold and r.prompt.endswith("→Deutsch:") for r in records)
    # The base model answers in the quoted format after three examples...
    assert sum(bool(r.answer) for r in records) >= 20
    # ...and gets some words right (about a quarter on larger samples; see docs/evaluation.md).
    assert zero.accuracy.n_hits >= 2
    assert zero.accuracy.ci_low <= zero.accuracy.accuracy <= zero.accuracy.ci_high
    assert result.model["fingerprint"] == gemma.fingerprint()
    assert 'Deutsch:"' in result.params["few_shot_prefixes"]["zero-shot"]
