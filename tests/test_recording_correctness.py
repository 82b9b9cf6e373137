"""Generate, then record: the tests that would have caught a silently broken KV cache.

- per-sample statistics from left-padded batches equal those of an unbatched full forward of the
  Hugging Face module over the same tokens;
- the embedded model's greedy tokens equal plain Hugging Face greedy decoding, token for token;
- the load-time self-check notices a cache that is never filled, and generation then stays right.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from neuronoverlap.models import StopRule, generate_greedy, load_model
from neuronoverlap.probes.prompts import translation_probe_sets
from neuronoverlap.probes.stats import ProbeBatchStats

PROMPTS = [
    'English:"dog"→Deutsch:',
    "日本語: 水\nEnglish:",
    "עברית: בית\nالعربية:",
    'Français:"maison"→Español:',
]
STOP = StopRule(max_new_tokens=5, stop_at_newline=False, stop_at_closing_quote=False)


def hf_statistics(model, token_ids: list[int]):
    """(mean, prob) [layer, neuron] of act_fn(gate_proj(x)) over every position, computed by the
    Hugging Face module on the unpadded sequence alone (no TransformerLens, no cache)."""
    hf = model.backend.original_model
    layers = hf.model.layers
    seen = {}
    handles = [
        layer.mlp.register_forward_pre_hook(
            lambda mod, args, i=i: seen.__setitem__(i, mod.act_fn(mod.gate_proj(args[0])))
        )
        for i, layer in enumerate(layers)
    ]
    try:
        with torch.inference_mode():
            hf(input_ids=torch.tensor([token_ids]), use_cache=False)
    finally:
        for h in handles:
            h.remove()
    acts = torch.stack([seen[i][0].double() for i in range(len(layers))])  # [layer, pos, neuron]
    return acts.mean(1).numpy(), (acts > 0).double().mean(1).numpy()


def check_recorded_equals_full_forward(model, prompts, atol=1e-5):
    stats = ProbeBatchStats(len(prompts), model.n_layers, model.d_mlp)
    gens = generate_greedy(model, prompts, STOP, stats)
    mean, prob, tokens = stats.result()
    lengths = {len(g.fed_ids) for g in gens}
    assert len(lengths) > 1, "the batch must be left padded"
    for i, g in enumerate(gens):
        assert len(g.token_ids) == STOP.max_new_tokens
        assert tokens[i] == len(g.fed_ids) == g.n_counted_tokens
        ref_mean, ref_prob = hf_statistics(model, g.fed_ids)
        np.testing.assert_allclose(mean[i], ref_mean, atol=atol, rtol=0)
        # a firing decision can flip only where the gate sits within float error of 0
        assert np.abs(prob[i] - ref_prob).max() <= 1.5 / tokens[i]
        assert np.mean(prob[i] != ref_prob.astype(np.float32)) < 1e-3


@pytest.mark.parametrize("spec", ["tiny-llama", "tiny-mistral"])
def test_recorded_statistics_equal_an_unbatched_full_forward(spec):
    check_recorded_equals_full_forward(load_model(spec), PROMPTS)


@pytest.mark.slow
def test_gemma_recorded_statistics_equal_an_unbatched_full_forward(gemma):
    check_recorded_equals_full_forward(gemma, PROMPTS[:3], atol=1e-4)


def break_cache(model):
    """A copy of `model` whose bridge never fills the KV cache (the transformers 5.24 failure):
    every cached step gets an empty cache back."""
    from transformers import DynamicCache

    broken = copy.copy(model)
    broken.backend = copy.copy(model.backend)
    real = model.backend.run_with_hooks

    def run_with_hooks(*args, **kwargs):
        out = real(*args, **kwargs)
        if kwargs.get("return_type") == "logits_and_cache":
            return out[0], DynamicCache()
        return out

    broken.backend.run_with_hooks = run_with_hooks
    return broken


def test_self_check_fires_on_a_cache_that_is_never_filled(tiny_llama, capsys):
    assert tiny_llama.kv_cache_ok
    broken = break_cache(tiny_llama)
    broken.kv_cache_ok = True  # as if unchecked: generation would now be wrong
    wrong = generate_greedy(broken, PROMPTS, STOP)
    right = generate_greedy(tiny_llama, PROMPTS, STOP)
    assert [g.token_ids for g in wrong] != [g.token_ids for g in right]
    capsys.readouterr()
    status = broken.check_kv_cache()
    err = capsys.readouterr().err.strip().splitlines()
    assert not broken.kv_cache_ok and "disabled" in status
    assert len(err) == 1 and "transformers" in err[0] and "without it" in err[0]
    fixed = generate_greedy(broken, PROMPTS, STOP)
    assert [g.token_ids for g in fixed] == [g.token_ids for g in right]


def test_answer_count_rule_counts_the_word_and_the_answer(tiny_llama):
    forward, _ = translation_probe_sets("en", "de", n=4, seed=1)
    spans = forward.word_spans()
    for prompt, word, (a, b) in zip(forward.prompts, forward.source_words, spans, strict=True):
        assert prompt[a:b] == word
    everything = ProbeBatchStats(len(forward), tiny_llama.n_layers, tiny_llama.d_mlp)
    answer = ProbeBatchStats(len(forward), tiny_llama.n_layers, tiny_llama.d_mlp)
    gens = generate_greedy(tiny_llama, forward.prompts, STOP, everything)
    generate_greedy(tiny_llama, forward.prompts, STOP, answer, count="answer", word_spans=spans)
    encoded = tiny_llama.tokenizer(forward.prompts, return_offsets_mapping=True)
    for i, g in enumerate(gens):
        offsets = encoded["offset_mapping"][i]
        word_tokens = sum(1 for x, y in offsets if y > x and x < spans[i][1] and y > spans[i][0])
        assert 1 <= word_tokens < g.n_prompt_tokens
        assert int(answer.tokens[i]) == word_tokens + len(g.token_ids) - 1
        assert int(everything.tokens[i]) == len(g.fed_ids)


def test_named_stop_rules():
    quote, reference = StopRule.named("quote"), StopRule.named("reference")
    assert quote.is_done(' "Hund"') and not reference.is_done(' "Hund"')
    assert reference.is_done(' "Hund"\n') and reference.max_new_tokens == 30
    with pytest.raises(Exception, match="unknown stop rule"):
        StopRule.named("comma")
    with pytest.raises(Exception, match="at least 1"):
        StopRule(max_new_tokens=0)


@pytest.mark.slow
def test_gemma_tokenizer_and_language_model_are_sane(gemma):
    from neuronoverlap.models.gguf_tokenizer import CHECK_IDS, CHECK_TEXT

    assert list(gemma.tokenizer(CHECK_TEXT)["input_ids"]) == CHECK_IDS
    assert gemma.tokenizer.tokenize("English: dog") == ["English", ":", "▁dog"]
    text = "Paris is the capital and most populous city of France."
    ids = torch.tensor([gemma.tokenizer(text)["input_ids"]])
    with torch.inference_mode():
        loss = gemma.backend.original_model(input_ids=ids, labels=ids).loss
    assert float(loss) < 4.0  # 2.35 here; the character-split tokenization gave 16.7


@pytest.mark.slow
def test_gemma_greedy_equals_plain_hugging_face_greedy(gemma):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from neuronoverlap.models.embedded import ensure_embedded_checkpoint

    path = ensure_embedded_checkpoint()
    tokenizer = AutoTokenizer.from_pretrained(path)
    plain = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    prompts = ["English: dog\nDeutsch:", "English: water\nGerman:", 'English:"dog"→Deutsch:"']
    ours = generate_greedy(gemma, prompts, StopRule(8, False, False))
    for prompt, mine in zip(prompts, ours, strict=True):
        ids = tokenizer(prompt, return_tensors="pt")
        with torch.inference_mode():
            out = plain.generate(**ids, max_new_tokens=8, do_sample=False)
        assert mine.token_ids == out[0, ids.input_ids.shape[1] :].tolist(), prompt
    assert "Hund" in ours[0].text and "Wasser" in ours[1].text
