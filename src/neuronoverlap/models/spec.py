"""Checking a `--model` spec without loading anything: its name, and whether the activation
definition act_fn(gate) applies to its architecture.

A neuron is act_fn(blocks.l.mlp.hook_pre), the activated gate of a gated MLP
(down(act_fn(gate(x)) * up(x))): LLaMA, Mistral, Gemma, Qwen and their kin. An encoder (BERT) or a
decoder whose MLP has no gate (GPT-2, OPT, Falcon, ...) is refused, naming its architecture.
"""

from __future__ import annotations

import json
from pathlib import Path

from neuronoverlap.errors import InputError

TINY_MODELS = ("tiny-llama", "tiny-mistral")

#: Hugging Face `model_type`s of decoders with a gated MLP (act_fn(gate) * up).
GATED_MLP_MODEL_TYPES = (
    "llama",
    "mistral",
    "mixtral",
    "gemma",
    "gemma2",
    "gemma3",
    "gemma3_text",
    "qwen2",
    "qwen3",
    "olmo",
    "olmo2",
    "granite",
    "phi3",
    "cohere",
    "stablelm",
)


def check_architecture(checkpoint: Path) -> None:
    """Refuse a checkpoint directory whose config is not a decoder with a gated MLP."""
    config_path = checkpoint / "config.json"
    if not config_path.is_file():
        raise InputError(f"{checkpoint} has no config.json: not a Hugging Face checkpoint directory")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read {config_path}: {exc}") from None
    if not isinstance(config, dict):
        raise InputError(f"{config_path} is not a JSON object")
    model_type = str(config.get("model_type", "?"))
    architectures = ", ".join(map(str, config.get("architectures") or [])) or model_type
    if model_type not in GATED_MLP_MODEL_TYPES or config.get("is_encoder_decoder"):
        raise InputError(
            f"{checkpoint}: architecture {architectures} (model_type {model_type!r}) is not a "
            "decoder with a gated MLP, so the activation definition act_fn(gate) does not apply; "
            f"supported model types: {', '.join(GATED_MLP_MODEL_TYPES)}"
        )


def model_name_of(spec: str) -> str:
    """The name a store records for `spec` ('embedded', 'tiny-*' or a checkpoint directory);
    an unknown tiny model, a missing directory or an unsupported architecture is an InputError."""
    if spec == "embedded":
        from neuronoverlap.models.embedded import EMBEDDED_NAME

        return EMBEDDED_NAME
    if spec.startswith("tiny-"):
        if spec not in TINY_MODELS:
            raise InputError(f"unknown tiny model {spec!r}; choose one of {', '.join(TINY_MODELS)}")
        return spec
    path = Path(spec).expanduser()
    if path.is_dir():
        check_architecture(path)
        return path.name
    raise unknown_model_error(spec)


def unknown_model_error(spec: str) -> InputError:
    return InputError(
        f"model {spec!r} is neither 'embedded', 'tiny-llama', 'tiny-mistral' nor a local "
        "checkpoint directory; nothing is downloaded here (HF_HUB_OFFLINE=1): download the "
        "weights elsewhere (e.g. `huggingface-cli download meta-llama/Meta-Llama-3-8B "
        "--local-dir DIR`) and pass --model DIR"
    )
