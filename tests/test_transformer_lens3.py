"""The real TransformerLens 3.x `HookedTransformer` (the design card's model class).

Runs in the second environment that `make test-tl3` builds with transformer-lens 3.9.0, the last
release with `HookedTransformer`; skipped under transformer-lens 4.x, which removed it. The model
is a seeded random HookedTransformer built offline from a tiny LLaMA config (RMSNorm, rotary,
gated SiLU MLP, grouped-query attention).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

HookedTransformer = pytest.importorskip(
    "transformer_lens", reason="transformer-lens not installed"
).__dict__.get("HookedTransformer")
if HookedTransformer is None:  # transformer-lens 4.x
    pytest.skip("HookedTransformer needs transformer-lens 3.x (make test-tl3)", allow_module_level=True)

from transformer_lens import HookedTransformerConfig  # noqa: E402

from neuronoverlap.models import StopRule, generate_greedy, load_model  # noqa: E402
from neuronoverlap.models.tiny import tiny_tokenizer  # noqa: E402
from neuronoverlap.probes import record_probe_set, translation_probe_sets  # noqa: E402
from neuronoverlap.probes.recorder import open_writer  # noqa: E402
from neuronoverlap.probes.stats import ProbeBatchStats  # noqa: E402
from neuronoverlap.store import Store  # noqa: E402

PROMPTS = ['English:"dog"→Deutsch:', "日本語: 水\nEnglish:", 'Français:"maison"→Español:']
STOP = StopRule(max_new_tokens=4, stop_at_newline=False, stop_at_closing_quote=False)


def tiny_hooked_llama() -> HookedTransformer:
    """A seeded random HookedTransformer of a tiny LLaMA config, built offline."""
    tokenizer = tiny_tokenizer()
    cfg = HookedTransformerConfig(
        n_layers=3,
        d_model=64,
        d_head=16,
        n_heads=4,
        n_key_value_heads=2,
        d_mlp=256,
        d_vocab=len(tokenizer),
        n_ctx=256,
        act_fn="silu",
        normalization_type="RMS",
        positional_embedding_type="rotary",
        rotary_dim=16,
        gated_mlp=True,
        final_rms=True,
        seed=0,
        model_name="tiny-llama-hooked",
    )
    torch.manual_seed(0)
    model = HookedTransformer(cfg, tokenizer=tokenizer, default_padding_side="left")
    model.eval()
    return model


@pytest.fixture(scope="module")
def hooked():
    return tiny_hooked_llama()


def test_hooked_transformer_is_accepted_with_its_activation(hooked):
    model = load_model(hooked)
    assert (model.n_layers, model.d_mlp, model.activation_name) == (3, 256, "silu")
    assert not model.supports_kv_cache and not model.kv_cache_ok

    class Keep:
        def __init__(self):
            self.seen = {}

        def consume(self, layer, activation, count_mask):
            self.seen[layer] = activation.clone()

    keep = Keep()
    batch = model.forward_activations(PROMPTS[:1], keep)
    _, cache = hooked.run_with_cache(batch.input_ids)
    for layer in range(3):
        expected = torch.nn.functional.silu(cache[f"blocks.{layer}.mlp.hook_pre"])
        assert torch.allclose(keep.seen[layer], expected, atol=1e-6)


def test_batched_recording_equals_one_prompt_at_a_time(hooked):
    model = load_model(hooked)
    batched = ProbeBatchStats(len(PROMPTS), model.n_layers, model.d_mlp)
    gens = generate_greedy(model, PROMPTS, STOP, batched)
    mean, prob, tokens = batched.result()
    for i, prompt in enumerate(PROMPTS):
        alone = ProbeBatchStats(1, model.n_layers, model.d_mlp)
        (single,) = generate_greedy(model, [prompt], STOP, alone)
        assert single.token_ids == gens[i].token_ids
        m, p, t = alone.result()
        assert t[0] == tokens[i] == len(single.fed_ids)
        np.testing.assert_allclose(mean[i], m[0], atol=1e-5, rtol=0)
        assert np.abs(prob[i] - p[0]).max() <= 1.5 / t[0]


def test_probe_set_records_into_a_store(hooked, tmp_path):
    model = load_model(hooked)
    forward, backward = translation_probe_sets("en", "de", n=3, seed=0)
    with open_writer(tmp_path / "tl3.h5", model) as writer:
        for probe_set in (forward, backward):
            assert record_probe_set(model, writer, probe_set, batch_size=2, progress=False) == "recorded"
    store = Store(tmp_path / "tl3.h5")
    view = store.probes("en", "de")
    assert view.n_samples == 3 and view.array("mean").shape == (3, 3, 256)
    assert (view.tokens() > 0).all()


def test_prefix_reuse_falls_back_to_whole_prompts_with_one_note(hooked, capsys):
    """No HF cache on a HookedTransformer: evaluation reads every prompt whole, says so once,
    and the gold log-prob equals a brute-force sum of token log-probs."""
    from neuronoverlap.evaluation.generate import generate_texts
    from neuronoverlap.evaluation.logprob import gold_logprobs

    model = load_model(hooked)
    shots = "English: water\nDeutsch: Wasser\nEnglish: fire\nDeutsch: Feuer\n"
    prompts = [shots + f"English: {w}\nDeutsch:" for w in ("dog", "cat", "house")]
    first = generate_texts(model, prompts, STOP, 2, progress=False)
    assert generate_texts(model, prompts, STOP, 2, progress=False, prefix_cache=False) == first
    assert capsys.readouterr().err.count("prefix reuse off") == 1
    ids = model.tokenizer(prompts[0] + " Hund")["input_ids"]
    n = len(model.tokenizer(prompts[0])["input_ids"])
    with torch.inference_mode():
        log_probs = torch.log_softmax(hooked(torch.tensor([ids]))[0].float(), dim=-1)
    expected = float(sum(log_probs[t - 1, ids[t]] for t in range(n, len(ids))))
    got = gold_logprobs(model, prompts[:1], [["Hund"]])
    assert abs(got[0] - expected) < 1e-4
