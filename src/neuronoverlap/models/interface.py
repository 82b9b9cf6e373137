"""`NeuronModel`: the one model interface the rest of the toolkit uses.

Underneath is a TransformerLens 4.x `TransformerBridge` (or, duck-typed, a TransformerLens 3.x
`HookedTransformer`). A neuron is (layer l, index j) of the MLP hidden layer and its activation is
`act_fn(blocks.{l}.mlp.hook_pre)`: the gate pre-activation after the model's own activation.

Activations reach the caller through an `ActivationConsumer`: in one teacher-forced recording
forward (`record_forward`) it gets, for every layer, `act_fn(gate)` [batch, pos, d_mlp] and a mask
[batch, pos] of the positions to count (never padding). Generation (`step`) runs without hooks.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from neuronoverlap.errors import InputError


class ActivationConsumer(Protocol):
    def consume(
        self,
        layer: int,
        activation: Float[Tensor, "batch pos neuron"],
        count_mask: Bool[Tensor, "batch pos"],
    ) -> None: ...


def positions_of(attention_mask: Int[Tensor, "batch pos"]) -> Int[Tensor, "batch pos"]:
    """Positions of left-padded rows: 0 at each row's first real token (padding gets 0)."""
    return (attention_mask.cumsum(-1) - 1).clamp(min=0)


@dataclass
class Batch:
    """Left-padded token ids and their attention mask."""

    input_ids: Int[Tensor, "batch pos"]
    attention_mask: Int[Tensor, "batch pos"]

    @property
    def position_ids(self) -> Int[Tensor, "batch pos"]:
        return positions_of(self.attention_mask)


_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "silu": torch.nn.functional.silu,
    "swish": torch.nn.functional.silu,
    "gelu": torch.nn.functional.gelu,
    "gelu_new": lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
    "gelu_fast": lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
    "relu": torch.relu,
}


def activation_function(name: str) -> Callable[[Tensor], Tensor]:
    if name not in _ACTIVATIONS:
        raise InputError(f"unsupported MLP activation {name!r}; supported: {', '.join(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]


class NeuronModel:
    """A hooked decoder with the few things the toolkit needs of it."""

    def __init__(self, backend: Any, tokenizer: Any, name: str, extra_provenance: dict | None = None):
        cfg = backend.cfg
        self.backend = backend
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.name = name
        self.n_layers: int = int(cfg.n_layers)
        self.d_mlp: int = int(cfg.d_mlp)
        self.activation_name: str = str(cfg.act_fn)
        self.act_fn = activation_function(self.activation_name)
        self.extra_provenance = dict(extra_provenance or {})
        self._is_bridge = hasattr(backend, "original_model")
        self.kv_cache_ok: bool = False
        self.kv_cache_status: str = "not checked"
        first = next(iter(backend.parameters()))
        self.device, self.dtype = first.device, first.dtype

    # --- description -------------------------------------------------------------------------
    @property
    def n_neurons(self) -> int:
        return self.n_layers * self.d_mlp

    def hook_name(self, layer: int) -> str:
        """TransformerLens name of the gate pre-activation of `layer`."""
        if not 0 <= layer < self.n_layers:
            raise InputError(f"layer {layer} out of range 0..{self.n_layers - 1}")
        return f"blocks.{layer}.mlp.hook_pre"

    def config_summary(self) -> dict:
        cfg = self.backend.cfg
        return {
            "name": self.name,
            "architecture": str(getattr(cfg, "architecture", None) or type(self.backend).__name__),
            "n_layers": self.n_layers,
            "d_model": int(cfg.d_model),
            "d_mlp": self.d_mlp,
            "n_heads": int(cfg.n_heads),
            "d_vocab": int(cfg.d_vocab),
            "act_fn": self.activation_name,
            **self.extra_provenance,
        }

    def fingerprint(self) -> str:
        """Short, stable id of the model (name, config and, where known, the sha256 of its weights:
        `models/weights.py`), for the store's provenance."""
        blob = json.dumps(self.config_summary(), sort_keys=True).encode()
        return f"{self.name}@{hashlib.sha256(blob).hexdigest()[:12]}"

    # --- tokens ------------------------------------------------------------------------------
    def encode(self, prompts: Sequence[str]) -> Batch:
        if not prompts:
            raise InputError("no prompts to encode")
        enc = self.tokenizer(list(prompts), return_tensors="pt", padding=True)
        return Batch(enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device))

    def decode(self, token_ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(token_ids), skip_special_tokens=True)

    # --- forward -----------------------------------------------------------------------------
    def _hooks(self, consumer: ActivationConsumer, count_mask: Tensor, stop_after_last: bool = False) -> list:
        last = self.n_layers - 1

        def make(layer: int):
            def hook(pre: Tensor, hook: Any) -> Tensor:
                consumer.consume(layer, self.act_fn(pre), count_mask)
                if stop_after_last and layer == last:
                    raise _RecordingDone
                return pre

            return hook

        return [(self.hook_name(layer), make(layer)) for layer in range(self.n_layers)]

    @torch.inference_mode()
    def step(
        self,
        input_ids: Int[Tensor, "batch pos"],
        attention_mask: Int[Tensor, "batch total"],
        position_ids: Int[Tensor, "batch pos"],
        past: Any = None,
        use_cache: bool = True,
        last_logits_only: bool = True,
        logits_to_keep: int | None = None,
    ) -> tuple[Float[Tensor, "batch pos vocab"], Any]:
        """One forward over `input_ids` (the new tokens when `past` is a KV cache), no hooks.

        Returns the logits (last position only by default; the last `logits_to_keep` positions
        when given) and the cache for the next step (None without a cache).
        """
        keep = logits_to_keep if logits_to_keep is not None else (1 if last_logits_only else None)
        if self._is_bridge and use_cache:
            return self._bridge_forward(
                input_ids,
                attention_mask,
                position_ids,
                keep,
                past_key_values=past,
                return_type="logits_and_cache",
            )
        # no cache (TransformerLens 3.x HookedTransformer has none: the caller re-runs the sequence)
        return self.logits(input_ids, attention_mask, position_ids, keep), None

    def logits(
        self,
        input_ids: Int[Tensor, "batch pos"],
        attention_mask: Int[Tensor, "batch pos"],
        position_ids: Int[Tensor, "batch pos"],
        keep: int | None = None,
    ) -> Float[Tensor, "batch kept vocab"]:
        """One forward without a cache, no hooks of its own (an intervention's stay on), grad as
        the caller has it: the logits of every position, or of the last `keep` (the unembedding
        is computed only there on TransformerBridge; TransformerLens 3.x computes all, then
        slices)."""
        if self._is_bridge:
            return self._bridge_forward(
                input_ids, attention_mask, position_ids, keep, use_cache=False, return_type="logits"
            )
        logits = self.backend.run_with_hooks(input_ids, attention_mask=attention_mask, fwd_hooks=[])
        return logits[:, -keep:] if keep is not None else logits

    def _bridge_forward(
        self,
        input_ids: Int[Tensor, "batch pos"],
        attention_mask: Int[Tensor, "batch total"],
        position_ids: Int[Tensor, "batch pos"],
        keep: int | None,
        **cache_options: Any,
    ) -> Any:
        """TransformerBridge's forward with no hooks of its own, unembedding only the last `keep`
        positions when given; `cache_options` say whether it reads and returns a KV cache."""
        kept = {"logits_to_keep": keep} if keep is not None else {}
        return self.backend.run_with_hooks(
            input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            fwd_hooks=[],
            **cache_options,
            **kept,
        )

    @torch.inference_mode()
    def record_forward(
        self,
        input_ids: Int[Tensor, "batch pos"],
        attention_mask: Int[Tensor, "batch pos"],
        consumer: ActivationConsumer,
        count_mask: Bool[Tensor, "batch pos"] | None = None,
    ) -> None:
        """A teacher-forced forward with the activation hooks, no cache and no logits: it stops
        right after the last layer's `hook_pre`. `count_mask` defaults to every real token."""
        if count_mask is None:
            count_mask = attention_mask.bool()
        hooks = self._hooks(consumer, count_mask, stop_after_last=True)
        kwargs: dict[str, Any] = {"attention_mask": attention_mask}
        if self._is_bridge:
            kwargs.update(
                position_ids=positions_of(attention_mask),
                use_cache=False,
                return_type="logits",
            )
        try:
            self.backend.run_with_hooks(input_ids, fwd_hooks=hooks, **kwargs)
        except _RecordingDone:
            return
        raise RuntimeError("the recording forward ended before the last layer's hook ran")

    @property
    def supports_kv_cache(self) -> bool:
        return self._is_bridge

    def forward_activations(self, prompts: Sequence[str], consumer: ActivationConsumer) -> Batch:
        """Forward only (no generation), feeding every real token's activations to `consumer`."""
        batch = self.encode(prompts)
        self.record_forward(batch.input_ids, batch.attention_mask, consumer)
        return batch

    # --- the KV cache self-check -------------------------------------------------------------
    @torch.inference_mode()
    def check_kv_cache(self, n_tokens: int = 4) -> str:
        """Compare cached and uncached greedy decoding on fixed prompts; on a mismatch, turn the
        cache off with a one-line warning. Returns the verdict (also in `kv_cache_status`)."""
        if not self.supports_kv_cache:
            self.kv_cache_ok, self.kv_cache_status = False, "no KV cache (full re-run each step)"
            return self.kv_cache_status
        batch = self.encode(list(SELF_CHECK_PROMPTS))
        attention, positions = batch.attention_mask, batch.position_ids
        logits, past = self.step(batch.input_ids, attention, positions)
        ids, cached = batch.input_ids, [logits[:, -1]]
        for _ in range(n_tokens - 1):
            nxt = cached[-1].argmax(-1)[:, None]
            ids = torch.cat([ids, nxt], dim=1)
            attention = torch.cat([attention, torch.ones_like(nxt)], dim=1)
            logits, past = self.step(nxt, attention, positions[:, -1:] + len(cached), past=past)
            cached.append(logits[:, -1])
        full, _ = self.step(
            ids,
            attention,
            positions_of(attention),
            use_cache=False,
            last_logits_only=False,
        )
        uncached = full[:, -n_tokens:]
        cached_t = torch.stack(cached, dim=1)
        scale = uncached.float().abs().amax().clamp(min=1.0)
        error = float((cached_t.float() - uncached.float()).abs().amax() / scale)
        tolerance = 1e-3 if self.dtype == torch.float32 else 5e-2
        if error <= tolerance:
            self.kv_cache_ok = True
            self.kv_cache_status = f"KV cache verified (relative logit error {error:.1e})"
        else:
            from neuronoverlap.versions import library_versions

            self.kv_cache_ok = False
            versions = ", ".join(f"{k} {v}" for k, v in library_versions().items())
            self.kv_cache_status = (
                f"KV cache disabled: cached and uncached logits differ (relative error {error:.2g})"
            )
            print(
                f"neuronoverlap: warning: this install's KV cache gives wrong logits ({versions}); "
                "generating without it (slower, correct)",
                file=sys.stderr,
                flush=True,
            )
        return self.kv_cache_status


class _RecordingDone(Exception):
    """Raised by the last layer's hook: the recording pass needs nothing after it."""


#: Prompts of different lengths (so left padding is exercised) for the KV cache self-check.
SELF_CHECK_PROMPTS = ("English: water\nDeutsch:", "The capital of France is the city of")
