"""`intervene` on a real TransformerLens 3.x `HookedTransformer` (run by `make test-tl3`; skipped
under transformer-lens 4.x, which removed it): the same exactness and clean-up as on the bridge."""

from __future__ import annotations

import pytest
import torch

HookedTransformer = pytest.importorskip(
    "transformer_lens", reason="transformer-lens not installed"
).__dict__.get("HookedTransformer")
if HookedTransformer is None:  # transformer-lens 4.x
    pytest.skip("HookedTransformer needs transformer-lens 3.x (make test-tl3)", allow_module_level=True)

from neuronoverlap import intervene  # noqa: E402
from neuronoverlap.interventions import attribution_scores, score_texts, sentence_texts  # noqa: E402
from neuronoverlap.models import load_model  # noqa: E402
from test_transformer_lens3 import tiny_hooked_llama  # noqa: E402

PROMPTS = ['English:"dog"→Deutsch:', "日本語: 水\nEnglish:"]
SET = [(0, 5), (1, 3), (1, 200), (2, 64)]


@pytest.fixture(scope="module")
def model():
    return load_model(tiny_hooked_llama())


def logits_of(model):
    batch = model.encode(PROMPTS)
    return model.step(batch.input_ids, batch.attention_mask, batch.position_ids, last_logits_only=False)[0]


def test_zero_equals_zeroed_rows_of_w_out(model):
    base = logits_of(model)
    with intervene(model, SET, "zero"):
        ablated = logits_of(model)
    saved = {layer: model.backend.blocks[layer].mlp.W_out.detach().clone() for layer, _ in SET}
    with torch.no_grad():
        for layer, neuron in SET:
            model.backend.blocks[layer].mlp.W_out[neuron] = 0.0
    try:
        reference = logits_of(model)
    finally:
        with torch.no_grad():
            for layer, weight in saved.items():
                model.backend.blocks[layer].mlp.W_out.copy_(weight)
    assert not torch.equal(ablated, base)
    assert torch.equal(ablated, reference)
    assert torch.equal(logits_of(model), base)


def test_identities_and_clean_up_after_an_exception(model):
    base = logits_of(model)
    with intervene(model, SET, "scale", factor=1.0):
        assert torch.equal(logits_of(model), base)
    with pytest.raises(RuntimeError):
        with intervene(model, SET, "value", values=0.5):
            assert not torch.equal(logits_of(model), base)
            raise RuntimeError("inside")
    assert torch.equal(logits_of(model), base)


def test_attribution_runs_and_is_linear_in_a_small_scale(model):
    texts = sentence_texts(model, ["Der Hund läuft schnell nach Hause.", "Le chat dort."])
    eps = 1e-3
    scores = attribution_scores(model, texts, "scale", factor=1 + eps)
    base = score_texts(model, texts).mean()
    with intervene(model, SET, "scale", factor=1 + eps):
        exact = score_texts(model, texts).mean() - base
    estimate = sum(scores[layer, neuron] for layer, neuron in SET)
    assert estimate == pytest.approx(exact, rel=0.05, abs=1e-7)
