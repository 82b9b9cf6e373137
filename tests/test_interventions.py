"""`neuronoverlap.intervene`: exactness against a weight-edited reference, identities, batching,
generation with and without the KV cache, hook removal, recording under an intervention, bad input."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest
import torch

from neuronoverlap import InputError, intervene
from neuronoverlap.models import StopRule
from neuronoverlap.models.generation import generate_tokens
from neuronoverlap.sets import NeuronSet

PROMPTS = ["English: water\nDeutsch:", "The capital of France is the city of", "日本語: 水\nEnglish:"]
SET = [(0, 5), (0, 17), (1, 3), (1, 200), (3, 64)]


def logits_of(model, prompts=PROMPTS):
    batch = model.encode(prompts)
    return model.step(
        batch.input_ids, batch.attention_mask, batch.position_ids, use_cache=False, last_logits_only=False
    )[0]


def down_projection(model, layer):
    """The down projection weight [d_model, d_mlp] of the wrapped HF model (column j = neuron j)."""
    return model.backend.original_model.model.layers[layer].mlp.down_proj.weight


@contextmanager
def zeroed_columns(model, neurons):
    """The independent reference: neuron (l, j)'s column of the down projection set to 0."""
    saved = {}
    with torch.no_grad():
        for layer, neuron in neurons:
            weight = down_projection(model, layer)
            saved.setdefault(layer, weight.detach().clone())
            weight[:, neuron] = 0.0
    try:
        yield
    finally:
        with torch.no_grad():
            for layer, weight in saved.items():
                down_projection(model, layer).copy_(weight)


def test_zero_equals_zeroed_down_projection_columns_exactly(tiny_llama):
    base = logits_of(tiny_llama)
    with intervene(tiny_llama, SET, "zero"):
        ablated = logits_of(tiny_llama)
    with zeroed_columns(tiny_llama, SET):
        reference = logits_of(tiny_llama)
    assert not torch.equal(ablated, base)
    assert torch.equal(ablated, reference)
    assert torch.equal(logits_of(tiny_llama), base)


def test_identity_interventions_change_nothing(tiny_llama):
    base = logits_of(tiny_llama)
    shape = (tiny_llama.n_layers, tiny_llama.d_mlp)
    with intervene(tiny_llama, SET, "scale", factor=1.0):
        assert torch.equal(logits_of(tiny_llama), base)
    with intervene(tiny_llama, SET, "add", values=np.zeros(shape)):
        assert torch.equal(logits_of(tiny_llama), base)
    with intervene(tiny_llama, SET, "scale", factor=1.5):  # the same path, not an identity
        assert not torch.equal(logits_of(tiny_llama), base)


def test_value_sets_the_activation_itself(tiny_llama):
    """'value' fixes act_fn(gate) (not hook_post) to v: the MLP sees v * up at that channel."""
    check_value_sets_the_activation(tiny_llama)


@pytest.mark.slow
def test_value_sets_the_activation_on_the_embedded_model(gemma):
    check_value_sets_the_activation(gemma)
    batch = gemma.encode(PROMPTS[:1])
    _, cache = gemma.backend.run_with_cache(batch.input_ids, attention_mask=batch.attention_mask)
    gate, up = cache["blocks.1.mlp.hook_pre"], cache["blocks.1.mlp.hook_pre_linear"]
    assert torch.allclose(gemma.act_fn(gate) * up, cache["blocks.1.mlp.hook_post"], atol=1e-5)


def check_value_sets_the_activation(model):
    tiny_llama = model
    seen = {}

    def keep(name):
        def hook(tensor, hook):
            seen[name] = tensor.detach().clone()

        return hook

    batch = tiny_llama.encode(PROMPTS[:1])
    names = ["blocks.1.mlp.hook_pre_linear", "blocks.1.mlp.out.hook_in"]
    with intervene(tiny_llama, [(1, 3), (1, 200)], "value", values=[0.25, -2.0]):
        tiny_llama.backend.run_with_hooks(
            batch.input_ids, attention_mask=batch.attention_mask, fwd_hooks=[(n, keep(n)) for n in names]
        )
    up, into_down = seen[names[0]], seen[names[1]]
    assert torch.allclose(into_down[..., 3], 0.25 * up[..., 3])
    assert torch.allclose(into_down[..., 200], -2.0 * up[..., 200])


def test_batched_equals_one_prompt_at_a_time(tiny_llama):
    stop = StopRule(max_new_tokens=5, stop_at_newline=False, stop_at_closing_quote=False)
    shape = (tiny_llama.n_layers, tiny_llama.d_mlp)
    direction = np.random.default_rng(0).normal(size=shape)
    with intervene(tiny_llama, SET, "add", values=direction):
        together = [g.token_ids for g in generate_tokens(tiny_llama, PROMPTS, stop)]
        alone = [generate_tokens(tiny_llama, [p], stop)[0].token_ids for p in PROMPTS]
        last_together = logits_of(tiny_llama)[:, -1]
        last_alone = torch.cat([logits_of(tiny_llama, [p])[:, -1] for p in PROMPTS])
    assert together == alone
    assert torch.allclose(last_together, last_alone, atol=1e-4)
    baseline = [g.token_ids for g in generate_tokens(tiny_llama, PROMPTS, stop)]
    assert baseline != together


def test_generation_with_kv_cache_equals_without(tiny_llama):
    assert tiny_llama.kv_cache_ok, tiny_llama.kv_cache_status
    stop = StopRule(max_new_tokens=6, stop_at_newline=False, stop_at_closing_quote=False)
    try:
        with intervene(tiny_llama, SET, "scale", factor=4.0):
            cached = [g.token_ids for g in generate_tokens(tiny_llama, PROMPTS, stop)]
            status = tiny_llama.check_kv_cache(n_tokens=6)  # cached vs uncached decoding logits
            tiny_llama.kv_cache_ok = False
            uncached = [g.token_ids for g in generate_tokens(tiny_llama, PROMPTS, stop)]
    finally:
        tiny_llama.check_kv_cache()
    assert status.startswith("KV cache verified"), status
    assert cached == uncached


def test_hooks_removed_after_an_exception(tiny_llama):
    base = logits_of(tiny_llama)
    with pytest.raises(RuntimeError, match="inside"):
        with intervene(tiny_llama, SET, "zero"):
            assert not torch.equal(logits_of(tiny_llama), base)
            raise RuntimeError("inside the block")
    assert torch.equal(logits_of(tiny_llama), base)
    assert not any(point._forward_hooks for point in tiny_llama.backend.hook_dict.values())


def test_recording_under_an_intervention_sees_its_effect(tiny_llama):
    class Keep:
        def __init__(self):
            self.seen = {}

        def consume(self, layer, activation, count_mask):
            self.seen[layer] = activation.clone()

    def record():
        keep = Keep()
        tiny_llama.forward_activations(PROMPTS, keep)
        return keep.seen

    base = record()
    neurons = [(1, 3), (1, 200)]
    with intervene(tiny_llama, neurons, "zero"):
        under = record()
    with zeroed_columns(tiny_llama, neurons):
        reference = record()
    assert torch.equal(under[0], base[0]) and torch.equal(under[1], base[1])  # upstream and the layer itself
    assert not torch.equal(under[2], base[2])
    for layer in range(tiny_llama.n_layers):
        assert torch.equal(under[layer], reference[layer])


def test_a_neuron_set_and_its_pairs_are_the_same_intervention(tiny_llama):
    as_set = NeuronSet.from_indices(SET, shape=(tiny_llama.n_layers, tiny_llama.d_mlp), label="s")
    with intervene(tiny_llama, as_set, "zero"):
        a = logits_of(tiny_llama)
    with intervene(tiny_llama, SET, "zero"):
        b = logits_of(tiny_llama)
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("neurons", "kind", "options", "message"),
    [
        ([], "zero", {}, "is empty"),
        ([(4, 0)], "zero", {}, "out of range"),
        ([(0, 256)], "zero", {}, "out of range"),
        ([(0, -1)], "zero", {}, "out of range"),
        ([(0, 1, 2)], "zero", {}, "(layer, neuron) pairs"),
        ("other-shape", "zero", {}, "4x512 model"),
        ([(0, 1)], "ablate", {}, "unknown intervention kind 'ablate'"),
        ([(0, 1)], "scale", {"factor": float("nan")}, "NaN"),
        ([(0, 1)], "scale", {}, "takes a factor"),
        ([(0, 1)], "value", {"values": [1.0, 2.0]}, "shape (2,)"),
        ([(0, 1)], "add", {"values": [float("inf")]}, "NaN or infinite"),
        ([(0, 1)], "zero", {"factor": 2.0}, "neither values nor a factor"),
    ],
)
def test_bad_input_is_one_line(tiny_llama, neurons, kind, options, message):
    if neurons == "other-shape":
        neurons = NeuronSet.from_indices([(0, 1)], shape=(4, 512))
    with pytest.raises(InputError) as caught:
        with intervene(tiny_llama, neurons, kind, **options):
            pass
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not any(point._forward_hooks for point in tiny_llama.backend.hook_dict.values())


@pytest.mark.slow
def test_zero_is_exact_on_the_embedded_model(gemma):
    neurons = [(2, 11), (9, 1500), (9, 7), (17, 2047)]
    base = logits_of(gemma, PROMPTS[:2])
    with intervene(gemma, neurons, "zero"):
        ablated = logits_of(gemma, PROMPTS[:2])
    with zeroed_columns(gemma, neurons):
        reference = logits_of(gemma, PROMPTS[:2])
    assert not torch.equal(ablated, base)
    assert torch.equal(ablated, reference)


def test_scores_batched_by_length_equal_one_text_at_a_time(tiny_llama):
    """score_texts sorts items by length to pad less; every item's score is its own, in order."""
    from neuronoverlap.interventions.scoring import by_length, score_texts, sentence_texts

    sentences = [
        "A short one.",
        "A much longer sentence that goes on for quite a few more words.",
        "Mid size, here.",
    ]
    texts = sentence_texts(tiny_llama, sentences * 2)
    sorted_texts, restore = by_length(texts)
    assert [len(s) for s in sorted_texts.sequences] == sorted(len(s) for s in texts.sequences)
    assert [sorted_texts.sequences[i] for i in restore] == list(texts.sequences)
    batched = score_texts(tiny_llama, texts, batch_size=4)
    alone = [score_texts(tiny_llama, sentence_texts(tiny_llama, [s]), batch_size=1)[0] for s in sentences * 2]
    np.testing.assert_allclose(batched, alone, atol=1e-5)


def test_scores_unembed_only_the_positions_they_read(tiny_llama):
    """A continuation's score needs the logits of its own positions only; with them alone it
    equals the score from logits at every position (also under an intervention), and a
    sentence still reads every position."""
    from neuronoverlap.interventions.scoring import (
        continuation_texts,
        forward_logits,
        item_nll,
        kept_positions,
        score_texts,
        sentence_texts,
    )

    def every_position(texts, batch_size):
        out = []
        for ids, attention, scored in texts.batches(batch_size, tiny_llama.device):
            out.append(item_nll(forward_logits(tiny_llama, ids, attention), ids, scored, texts.reduce))
        return torch.cat(out).detach().double().numpy()

    prompts = ["German: Haus\nFrench:", "German: ein sehr langes Wort hier\nFrench:", "A:"]
    golds = [" maison", " un mot", " b c d e"]
    texts = continuation_texts(tiny_llama, prompts, golds)
    for batch_size in (1, 3):
        ids, _, scored = next(texts.batches(batch_size, tiny_llama.device))
        longest_gold = max(
            len(tiny_llama.tokenizer(g, add_special_tokens=False)["input_ids"]) for g in golds[:batch_size]
        )
        assert kept_positions(scored) == longest_gold + 1 < ids.shape[1]
        np.testing.assert_allclose(
            [score_texts(tiny_llama, texts, batch_size=batch_size)[i] for i in range(batch_size)],
            every_position(texts, batch_size)[:batch_size],
            atol=1e-5,
        )
    with intervene(tiny_llama, [(0, 1), (1, 3)], kind="scale", factor=3.0):
        np.testing.assert_allclose(
            score_texts(tiny_llama, texts, batch_size=3), every_position(texts, 3), atol=1e-5
        )
    sentences = sentence_texts(tiny_llama, ["A short one.", "A longer sentence, with a few more words."])
    _, _, scored = next(sentences.batches(2, tiny_llama.device))
    assert kept_positions(scored) == scored.shape[1]
