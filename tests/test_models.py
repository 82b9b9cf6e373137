"""The model layer: recorded activations equal the Hugging Face MLP's act_fn(gate_proj(x))."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from neuronoverlap.errors import InputError
from neuronoverlap.models import StopRule, generate_greedy, load_model
from neuronoverlap.models.embedded import MANIFEST, is_complete
from neuronoverlap.models.tiny import save_tiny_checkpoint

PROMPTS = ['English:"dog"→Deutsch:', "日本語: 水\nEnglish:", "עברית: בית\nالعربية:"]


class Recorder:
    """Keeps every layer's activations of the last forward (tests only)."""

    def __init__(self):
        self.seen = {}

    def consume(self, layer, activation, count_mask):
        self.seen[layer] = (activation.clone(), count_mask.clone())


def hf_reference(model, layer, prompts):
    """act_fn(gate_proj(x)) computed by the Hugging Face module itself, from its own input."""
    hf = model.backend.original_model
    mlp = hf.model.layers[layer].mlp
    captured = {}
    handle = mlp.register_forward_pre_hook(lambda mod, args: captured.update(x=args[0]))
    try:
        batch = model.encode(prompts)
        with torch.inference_mode():
            hf(
                input_ids=batch.input_ids,
                attention_mask=batch.attention_mask,
                position_ids=batch.position_ids,
            )
            return mlp.act_fn(mlp.gate_proj(captured["x"])), batch
    finally:
        handle.remove()


def check_equality(model):
    recorder = Recorder()
    model.forward_activations(PROMPTS, recorder)
    assert sorted(recorder.seen) == list(range(model.n_layers))
    for layer in {0, model.n_layers // 2, model.n_layers - 1}:
        ref, batch = hf_reference(model, layer, PROMPTS)
        mine, mask = recorder.seen[layer]
        assert mine.shape == (len(PROMPTS), batch.input_ids.shape[1], model.d_mlp)
        assert torch.equal(mask, batch.attention_mask.bool())
        real = batch.attention_mask.bool()
        assert torch.allclose(mine[real], ref[real], atol=1e-5, rtol=0)
        assert (mine[real] > 0).any() and (mine[real] <= 0).any()


@pytest.mark.parametrize("spec", ["tiny-llama", "tiny-mistral"])
def test_tiny_activation_equals_hf_mlp(spec):
    model = load_model(spec)
    assert model.activation_name == "silu"
    check_equality(model)


@pytest.mark.slow
def test_gemma_activation_equals_hf_mlp(gemma):
    assert (gemma.n_layers, gemma.d_mlp, gemma.activation_name) == (18, 2048, "gelu_pytorch_tanh")
    check_equality(gemma)


def test_tiny_configs_carry_the_real_fields(tiny_llama, tiny_mistral):
    llama_cfg = tiny_llama.backend.original_model.config
    mistral_cfg = tiny_mistral.backend.original_model.config
    assert llama_cfg.model_type == "llama" and mistral_cfg.model_type == "mistral"
    for cfg in (llama_cfg, mistral_cfg):
        assert cfg.num_key_value_heads < cfg.num_attention_heads  # grouped-query attention
        assert cfg.hidden_act == "silu" and not getattr(cfg, "mlp_bias", False)


def test_fingerprint_is_stable_and_tells_models_apart(tiny_llama, tiny_mistral):
    assert tiny_llama.fingerprint() == load_model("tiny-llama").fingerprint()
    assert tiny_llama.fingerprint() != tiny_mistral.fingerprint()
    assert tiny_llama.fingerprint() != load_model("tiny-llama", n_layers=2).fingerprint()


def uncached(model):
    """The same model with its KV cache turned off: every step re-runs the whole sequence."""
    clone = copy.copy(model)
    clone.kv_cache_ok = False
    return clone


@pytest.mark.parametrize("spec", ["tiny-llama", "tiny-mistral"])
def test_batched_cached_generation_equals_uncached_one_at_a_time(spec):
    model = load_model(spec)
    assert model.kv_cache_ok, model.kv_cache_status
    stop = StopRule(max_new_tokens=6, stop_at_newline=False, stop_at_closing_quote=False)
    batched = generate_greedy(model, PROMPTS, stop)
    single = [generate_greedy(uncached(model), [p], stop)[0] for p in PROMPTS]
    assert [g.token_ids for g in batched] == [g.token_ids for g in single]
    for g in batched:
        assert g.n_counted_tokens == g.n_prompt_tokens + len(g.token_ids) - 1


def test_generation_counts_each_real_position_once(tiny_llama):
    counts = torch.zeros(len(PROMPTS), dtype=torch.long)

    class Counter:
        def consume(self, layer, activation, count_mask):
            if layer == 0:
                counts.add_(count_mask.sum(-1).cpu())

    gens = generate_greedy(tiny_llama, PROMPTS, StopRule(max_new_tokens=7), Counter())
    assert counts.tolist() == [g.n_counted_tokens for g in gens]


def test_stop_rule():
    rule = StopRule()
    assert rule.is_done(' "Hund"') and rule.is_done(" Hund\n") and rule.is_done("犬」")
    assert not rule.is_done(' "Hu') and not rule.is_done(" l'eau")


def test_unknown_model_spec_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="nothing is downloaded"):
        load_model("meta-llama/Meta-Llama-3-8B")
    with pytest.raises(InputError, match="no config.json"):
        load_model(tmp_path)
    with pytest.raises(InputError, match="unknown dtype"):
        load_model("tiny-llama", dtype="float8")


@pytest.mark.parametrize("arch", ["llama", "mistral"])
def test_local_checkpoint_directory_loads(tmp_path, arch):
    """The LLaMA-3/Mistral path: a saved HF checkpoint directory loads through the bridge."""
    save_tiny_checkpoint(arch, tmp_path, n_layers=3)
    model = load_model(tmp_path)
    assert (model.n_layers, model.d_mlp, model.name) == (3, 256, tmp_path.name)
    assert model.backend.original_model.config.model_type == arch
    check_equality(model)


def test_half_written_cache_is_detected(tmp_path):
    folder = tmp_path / "gemma"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"x" * 10)
    assert not is_complete(folder)  # no manifest: interrupted before the end
    (folder / MANIFEST).write_text(json.dumps({"format": 2, "files": {"model.safetensors": 99}}))
    assert not is_complete(folder)  # truncated file
    (folder / MANIFEST).write_text(json.dumps({"format": 1, "files": {"model.safetensors": 10}}))
    assert not is_complete(folder)  # format 1: the character-splitting tokenizer
    (folder / MANIFEST).write_text(json.dumps({"format": 2, "files": {"model.safetensors": 10}}))
    assert is_complete(folder)


class HookedTransformerLike:
    """Exposes only the TransformerLens 3.x HookedTransformer surface (no HF model, no cache)."""

    def __init__(self, bridge):
        self._bridge = bridge
        self.cfg = bridge.cfg
        self.tokenizer = bridge.tokenizer

    def parameters(self):
        return self._bridge.parameters()

    def run_with_hooks(self, tokens, attention_mask=None, fwd_hooks=()):
        return self._bridge.run_with_hooks(tokens, attention_mask=attention_mask, fwd_hooks=fwd_hooks)


def test_hooked_transformer_object_is_accepted(tiny_llama):
    duck = load_model(HookedTransformerLike(tiny_llama.backend))
    assert not duck.supports_kv_cache
    assert (duck.n_layers, duck.d_mlp) == (tiny_llama.n_layers, tiny_llama.d_mlp)
    stop = StopRule(max_new_tokens=5)
    for prompt in PROMPTS:  # one prompt at a time: no padding, so positions agree
        a = generate_greedy(duck, [prompt], stop)[0]
        b = generate_greedy(tiny_llama, [prompt], stop)[0]
        assert (a.token_ids, a.n_counted_tokens) == (b.token_ids, b.n_counted_tokens)
    with pytest.raises(InputError, match="lacks"):
        load_model(object())


def test_processes_that_start_at_once_convert_the_embedded_model_once(tmp_path, monkeypatch):
    """Two jobs started together on a new machine: one converts, the other waits and loads it
    (without the lock both converted and the second's move onto the first's folder failed)."""
    import threading
    import time
    import types

    from neuronoverlap.models import embedded

    target = tmp_path / "cache" / embedded.EMBEDDED_NAME
    calls = []

    def fake_convert(out_dir, progress):
        calls.append(out_dir)
        time.sleep(0.3)  # long enough for the other caller to arrive
        (out_dir / "model.safetensors").write_bytes(b"w" * 8)

    monkeypatch.setattr(embedded, "embedded_checkpoint_dir", lambda: target)
    monkeypatch.setattr(embedded, "_convert", fake_convert)
    monkeypatch.setattr(
        embedded, "_gguf_package", lambda: types.SimpleNamespace(MODEL_NAME="m", EXPECTED_SHA256="0")
    )
    results = []

    def call():
        try:
            results.append(embedded.ensure_embedded_checkpoint(progress=False))
        except Exception as exc:  # noqa: BLE001 - the test reports it
            results.append(exc)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [target, target]
    assert len(calls) == 1
    assert is_complete(target)
    assert sorted(p.name for p in target.parent.iterdir()) == [f".{embedded.EMBEDDED_NAME}.lock", target.name]
