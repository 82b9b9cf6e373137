"""Full-size LLaMA-3-8B and Mistral-7B paths with random weights, on a GPU.

The real weights cannot be fetched here, so this builds models with the exact configs of
meta-llama/Meta-Llama-3-8B and mistralai/Mistral-7B-Instruct-v0.3 and random weights, saves each
as a Hugging Face checkpoint directory, and then goes through the toolkit's real path:
`load_model(dir, device="cuda", dtype="bfloat16")`, activation equality against the HF MLP,
and the probe recorder's throughput against plain generation. The tokenizer is the toolkit's
tiny BPE (ids < 1024 are valid in both vocabularies), since the real tokenizers are not here.

Usage (GPU machine): python bench/bench_fullsize_gpu.py [--models llama,mistral] [--n 128]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

FULL_SIZE = {
    "llama": dict(  # meta-llama/Meta-Llama-3-8B config.json
        cls="LlamaConfig",
        vocab_size=128256,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        hidden_act="silu",
        max_position_embeddings=8192,
        rms_norm_eps=1e-5,
        rope_theta=500000.0,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
        arch="LlamaForCausalLM",
    ),
    "mistral": dict(  # mistralai/Mistral-7B-Instruct-v0.3 config.json
        cls="MistralConfig",
        vocab_size=32768,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        hidden_act="silu",
        max_position_embeddings=32768,
        rms_norm_eps=1e-5,
        rope_theta=1000000.0,
        sliding_window=None,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
        arch="MistralForCausalLM",
    ),
}


def build_checkpoint(kind: str, out: Path) -> float:
    import torch
    import transformers

    from neuronoverlap.models.tiny import tiny_tokenizer

    spec = dict(FULL_SIZE[kind])
    cls, arch = getattr(transformers, spec.pop("cls")), spec.pop("arch")
    config = cls(**spec)
    config.architectures = [arch]
    start = time.perf_counter()
    with torch.device("cuda"):
        torch.manual_seed(0)
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(out)
    tiny_tokenizer().save_pretrained(out)
    del model
    torch.cuda.empty_cache()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="llama,mistral")
    parser.add_argument("--n", type=int, default=128, help="probe prompts for throughput")
    parser.add_argument("--batch-sizes", default="1,16,32")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    args = parser.parse_args()

    import torch

    from neuronoverlap.models import StopRule, generate_greedy, load_model
    from neuronoverlap.probes import (
        ProbeBatchStats,
        open_writer,
        record_probe_set,
        translation_probe_sets,
    )
    from neuronoverlap.store import Store

    prompts_set = translation_probe_sets("en", "de", args.n, seed=0)[0]
    stop = StopRule(max_new_tokens=args.max_new_tokens)
    rows = []
    for kind in args.models.split(","):
        with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
            ckpt = Path(tmp) / f"random-{kind}"
            t_build = build_checkpoint(kind, ckpt)
            start = time.perf_counter()
            model = load_model(ckpt, device="cuda", dtype="bfloat16")
            t_load = time.perf_counter() - start
            rows.append(
                (
                    kind,
                    "config",
                    f"{model.n_layers} layers x d_mlp {model.d_mlp} = {model.n_neurons:,} neurons, "
                    f"act {model.activation_name}",
                )
            )
            rows.append((kind, "build+save / load through bridge", f"{t_build:.0f} s / {t_load:.0f} s"))

            # activation equality against the HF module (bf16 weights; compared in float32)
            hf = model.backend.original_model
            captured, seen = {}, {}
            layer = 16
            mlp = hf.model.layers[layer].mlp
            handle = mlp.register_forward_pre_hook(lambda m, a: captured.update(x=a[0]))

            class Keep:
                def consume(self, l, act, mask):
                    if l == layer:
                        seen["act"], seen["mask"] = act, mask

            batch = model.encode(prompts_set.prompts[:8])
            model.record_forward(batch.input_ids, batch.attention_mask, Keep())
            handle.remove()
            with torch.inference_mode():
                ref = mlp.act_fn(mlp.gate_proj(captured["x"]))
            real = batch.attention_mask.bool()
            diff = (ref[real].float() - seen["act"][real].float()).abs().max().item()
            rows.append((kind, f"max |act - HF act_fn(gate_proj(x))| layer {layer}", f"{diff:.3g} (bf16)"))

            for bs in [int(b) for b in args.batch_sizes.split(",")]:
                chunks = [prompts_set.prompts[i : i + bs] for i in range(0, args.n if bs > 1 else 16, bs)]
                counted = sum(g.n_counted_tokens for c in chunks for g in generate_greedy(model, c, stop))
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                for c in chunks:
                    generate_greedy(model, c, stop)
                torch.cuda.synchronize()
                t_plain = time.perf_counter() - t0
                t0 = time.perf_counter()
                for c in chunks:
                    generate_greedy(
                        model,
                        c,
                        stop,
                        ProbeBatchStats(len(c), model.n_layers, model.d_mlp, device="cuda"),
                    )
                torch.cuda.synchronize()
                t_rec = time.perf_counter() - t0
                rows.append(
                    (
                        kind,
                        f"batch {bs}: recorder / plain generation",
                        f"{counted / t_rec:,.0f} / {counted / t_plain:,.0f} tok/s "
                        f"(overhead {t_rec / t_plain:.2f}x)",
                    )
                )

            store = Path(tmp) / "run.h5"
            torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            with open_writer(store, model) as writer:
                record_probe_set(model, writer, prompts_set, batch_size=32, stop=stop, progress=False)
            t_store = time.perf_counter() - t0
            t0 = time.perf_counter()
            layer_rows = Store(store).probes("en", "de").layer(16)
            t_read = time.perf_counter() - t0
            rows.append(
                (
                    kind,
                    f"record {args.n} probes into a store (batch 32)",
                    f"{t_store:.1f} s, peak GPU {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB, "
                    f"store {store.stat().st_size / 2**20:.0f} MiB",
                )
            )
            rows.append(
                (
                    kind,
                    f"read one layer [{layer_rows.shape[0]} x {layer_rows.shape[1]}]",
                    f"{t_read:.3f} s",
                )
            )
            del model, hf
            torch.cuda.empty_cache()
            shutil.rmtree(ckpt, ignore_errors=True)

    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    print("| model | measure | value |")
    print("| --- | --- | --- |")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")


if __name__ == "__main__":
    main()
