"""Tiny random-weight LLaMA and Mistral models for fast tests, built offline.

Same config classes and fields as LLaMA-3-8B and Mistral-7B, a few layers, d_model 64, d_mlp 256,
and a small byte-level BPE tokenizer kept in the package (`tiny_tokenizer/`, trained on FLORES-200
dev lines of the 15 languages). Weights come from a seeded generator, so a tiny model is the same
on every machine.
"""

from __future__ import annotations

from pathlib import Path

TOKENIZER_DIR = Path(__file__).with_name("tiny_tokenizer")
ARCHITECTURES = ("llama", "mistral")


def tiny_config(arch: str, n_layers: int = 4):
    """A LlamaConfig / MistralConfig with the real models' fields at toy size."""
    from transformers import LlamaConfig, MistralConfig

    common = dict(
        vocab_size=1024,
        hidden_size=64,
        intermediate_size=256,
        num_hidden_layers=n_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        hidden_act="silu",
        max_position_embeddings=2048,
        rms_norm_eps=1e-5,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        tie_word_embeddings=False,
    )
    if arch == "llama":  # LLaMA-3-8B: rope_theta 500000
        config = LlamaConfig(**common, rope_theta=500000.0, attention_bias=False, mlp_bias=False)
        config.architectures = ["LlamaForCausalLM"]
    elif arch == "mistral":  # Mistral-7B-v0.3: rope_theta 1e6, no sliding window
        config = MistralConfig(**common, rope_theta=1000000.0, sliding_window=None)
        config.architectures = ["MistralForCausalLM"]
    else:
        from neuronoverlap.errors import InputError

        raise InputError(f"unknown tiny architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    return config


def tiny_tokenizer():
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(TOKENIZER_DIR))
    tokenizer.padding_side = "left"
    return tokenizer


def build_tiny_hf_model(arch: str, n_layers: int = 4, seed: int = 0):
    """A seeded random-weight Hugging Face causal LM of the given architecture, in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM

    config = tiny_config(arch, n_layers)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        # Larger weights than the default init so that activations are not all ~0.
        for param in model.parameters():
            if param.dim() > 1:
                torch.nn.init.normal_(param, std=0.3)
    return model.eval()


def save_tiny_checkpoint(arch: str, out_dir: str | Path, n_layers: int = 4, seed: int = 0) -> Path:
    """Write a tiny model as a Hugging Face checkpoint directory (tests the local-weights path)."""
    out = Path(out_dir)
    build_tiny_hf_model(arch, n_layers=n_layers, seed=seed).save_pretrained(out)
    tiny_tokenizer().save_pretrained(out)
    return out
