"""Full-size LLaMA-3-8B and Mistral-7B paths with random weights: recording, generation and hook
overhead at probe shape (issue 31), on a GPU; `--dry-run` runs the same code on the CPU with the
same architectures scaled down, so the script is known to work before device time is spent.

The real weights cannot be fetched here, so this builds models with the exact configs of
meta-llama/Meta-Llama-3-8B and mistralai/Mistral-7B-Instruct-v0.3 and random weights, saves each
as a Hugging Face checkpoint directory, and goes through the toolkit's real path:
`load_model(dir, device=..., dtype=...)`, activation equality against the HF MLP, then per batch
size, on probe-shaped batches (an en-de probe prompt of about 20 tokens + a greedy answer of up
to 16), side by side in one run:

- generation alone (`generate_tokens`, KV cache),
- the teacher-forced pass with no statistics hooks, stopped where recording stops (the last
  layer's MLP input; one stop hook, no unembedding),
- the same pass with a hook on every layer that keeps nothing (the hooks' own cost),
- the recording pass alone (`record_forward` with the probe statistics in the hooks),
- generation + recording (what `probe` does),

as tokens per second of the prompt + answer tokens, with the hook overhead (recording pass /
plain pass) and the peak memory. Finally a probe set is recorded into a store and one layer read.
The tokenizer is the toolkit's tiny BPE (ids < 1024 are valid in both vocabularies).

Usage: python bench/bench_fullsize_gpu.py [--models llama,mistral] [--n 256] [--batch-sizes 32,64,128,256]
       python bench/bench_fullsize_gpu.py --dry-run      # CPU, scaled-down configs, about 30 s
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from functools import partial
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

#: The dry run's shape: the same architectures, 1/32 of the width and 2 of the 32 layers.
DRY_RUN_SHAPE = dict(
    hidden_size=128, intermediate_size=448, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2
)


def config_of(kind: str, dry_run: bool) -> tuple[str, str, dict]:
    spec = dict(FULL_SIZE[kind])
    if dry_run:
        spec.update(DRY_RUN_SHAPE)
    return spec.pop("cls"), spec.pop("arch"), spec


def build_checkpoint(kind: str, out: Path, device: str, dtype, dry_run: bool) -> float:
    """A random-weight checkpoint of `kind` saved at `out`; returns the seconds it took."""
    import torch
    import transformers

    from neuronoverlap.models.tiny import tiny_tokenizer

    cls_name, arch, spec = config_of(kind, dry_run)
    config = getattr(transformers, cls_name)(**spec)
    config.architectures = [arch]
    start = time.perf_counter()
    with torch.device(device):
        torch.manual_seed(0)
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.save_pretrained(out)
    tiny_tokenizer().save_pretrained(out)
    del model
    return time.perf_counter() - start


class Clock:
    """Wall time of a block, synchronised with the device."""

    def __init__(self, device: str):
        import torch

        self.sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def time(self, work) -> float:
        self.sync()
        start = time.perf_counter()
        work()
        self.sync()
        return time.perf_counter() - start


class NoStatistics:
    """A consumer that keeps nothing: the hooks' own cost without the statistics."""

    def consume(self, layer, activation, count_mask) -> None:
        pass


def peak_memory(device: str) -> str:
    import torch

    if device == "cuda":
        return f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB GPU"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f} GiB RSS (process)"


def activation_check(model, prompts, layer: int) -> float:
    """max |toolkit activation - HF act_fn(gate_proj(x))| on `layer` over real tokens."""
    import torch

    hf = model.backend.original_model
    captured, seen = {}, {}
    mlp = hf.model.layers[layer].mlp
    handle = mlp.register_forward_pre_hook(lambda m, a: captured.update(x=a[0]))

    class Keep:
        def consume(self, l, act, mask):
            if l == layer:
                seen["act"] = act

    batch = model.encode(prompts)
    try:
        model.record_forward(batch.input_ids, batch.attention_mask, Keep())
    finally:
        handle.remove()
    with torch.inference_mode():
        ref = mlp.act_fn(mlp.gate_proj(captured["x"]))
    real = batch.attention_mask.bool()
    return (ref[real].float() - seen["act"][real].float()).abs().max().item()


class _Stop(Exception):
    pass


def truncated_forward(model, batch) -> None:
    """The recording pass's forward with no statistics hooks: one hook stops it where the
    recording pass stops, at the last layer's MLP input (so no unembedding is computed)."""
    from neuronoverlap.models.interface import positions_of

    def stop(pre, hook):
        raise _Stop

    kwargs = {"attention_mask": batch.attention_mask}
    if model._is_bridge:
        kwargs.update(position_ids=positions_of(batch.attention_mask), use_cache=False, return_type="logits")
    try:
        model.backend.run_with_hooks(
            batch.input_ids, fwd_hooks=[(model.hook_name(model.n_layers - 1), stop)], **kwargs
        )
    except _Stop:
        return
    raise RuntimeError("the truncated forward did not reach the last layer")


def passes_at_batch(model, prompts, batch_size: int, stop, clock: Clock, repeats: int) -> dict[str, float]:
    """Seconds of each pass over `prompts` in batches of `batch_size` (the fastest of `repeats`,
    the passes interleaved), and the tokens they hold."""
    from neuronoverlap.models.generation import generate_tokens, record_generations, teacher_forced_batch
    from neuronoverlap.probes import ProbeBatchStats

    chunks = [prompts[i : i + batch_size] for i in range(0, len(prompts), batch_size)]
    generations = [generate_tokens(model, c, stop) for c in chunks]  # warm-up, and the answers
    pad = model.tokenizer.pad_token_id
    forced = [teacher_forced_batch(g, pad, model.device)[0] for g in generations]

    def plain():
        for b in forced:
            truncated_forward(model, b)

    def hooks_only():
        for b in forced:
            model.record_forward(b.input_ids, b.attention_mask, NoStatistics())

    def recording():
        for g in generations:
            stats = ProbeBatchStats(len(g), model.n_layers, model.d_mlp, device=model.device)
            record_generations(model, g, stats)

    def generation():
        for c in chunks:
            generate_tokens(model, c, stop)

    def both():
        for c in chunks:
            g = generate_tokens(model, c, stop)
            stats = ProbeBatchStats(len(g), model.n_layers, model.d_mlp, device=model.device)
            record_generations(model, g, stats)

    tokens = sum(int(b.attention_mask.sum()) for b in forced)
    passes = [
        ("plain pass", plain),
        ("hooks, no statistics", hooks_only),
        ("recording pass", recording),
        ("generation", generation),
        ("generation + recording", both),
    ]
    times = {name: float("inf") for name, _ in passes}
    for _ in range(repeats):  # interleaved, so a slow moment of the machine hits every pass
        for name, work in passes:
            times[name] = min(times[name], clock.time(work))
    return {"tokens": tokens, **times}


def main(argv: list[str] | None = None) -> list[tuple[str, str, str]]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="llama,mistral")
    parser.add_argument("--n", type=int, default=256, help="probe prompts per batch size (default 256)")
    parser.add_argument("--batch-sizes", default="32,64,128,256")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--dry-run", action="store_true", help="CPU, float32, the configs scaled down")
    parser.add_argument("--repeats", type=int, default=3, help="timings per pass; the fastest is kept")
    parser.add_argument("--threads", type=int, default=2, help="torch threads on the CPU (default 2)")
    args = parser.parse_args(argv)

    import torch

    from neuronoverlap.models import StopRule, load_model
    from neuronoverlap.probes import translation_probe_sets
    from neuronoverlap.store import Store

    device = "cpu" if args.dry_run or not torch.cuda.is_available() else "cuda"
    if device == "cpu" and not args.dry_run:
        parser.error("no CUDA device: run with --dry-run to check the script on the CPU")
    from neuronoverlap.threads import set_threads

    set_threads(args.threads)  # kept by load_model (torch.set_num_threads alone was reset by it)
    dtype_name = "bfloat16" if device == "cuda" else "float32"
    dtype = getattr(torch, dtype_name)
    clock = Clock(device)
    prompts_set = translation_probe_sets("en", "de", args.n, seed=0)[0]
    prompts = list(prompts_set.prompts)
    stop = StopRule(max_new_tokens=args.max_new_tokens)
    rows: list[tuple[str, str, str]] = []
    for kind in args.models.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            ckpt = Path(tmp) / f"random-{kind}"
            t_build = build_checkpoint(kind, ckpt, device, dtype, args.dry_run)
            start = time.perf_counter()
            model = load_model(ckpt, device=device, dtype=dtype_name)
            t_load = time.perf_counter() - start
            shape = f"{model.n_layers} layers x d_mlp {model.d_mlp} = {model.n_neurons:,} neurons"
            rows.append((kind, "config" + (" (dry run: scaled down)" if args.dry_run else ""), shape))
            rows.append((kind, "build+save / load through the toolkit", f"{t_build:.0f} s / {t_load:.0f} s"))
            layer = model.n_layers // 2
            diff = activation_check(model, prompts[:8], layer)
            rows.append(
                (kind, f"max |act - HF act_fn(gate_proj(x))| layer {layer}", f"{diff:.3g} ({dtype_name})")
            )
            for bs in [int(b) for b in args.batch_sizes.split(",")]:
                if device == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                t = passes_at_batch(model, prompts, bs, stop, clock, args.repeats)
                rate = {k: t["tokens"] / v for k, v in t.items() if k != "tokens"}
                rows.append(
                    (
                        kind,
                        f"batch {bs}: tok/s " + " / ".join(rate),
                        " / ".join(f"{r:,.0f}" for r in rate.values()),
                    )
                )
                rows.append(
                    (
                        kind,
                        f"batch {bs}: hook overhead (recording pass / plain pass)",
                        f"{t['recording pass'] / t['plain pass']:.3f}x "
                        f"(hooks alone {t['hooks, no statistics'] / t['plain pass']:.3f}x), "
                        f"peak {peak_memory(device)}",
                    )
                )
            store = Path(tmp) / "run.h5"
            t_store = clock.time(partial(_record, model, store, prompts_set, stop))
            t0 = time.perf_counter()
            layer_rows = Store(store).probes("en", "de").layer(layer)
            t_read = time.perf_counter() - t0
            rows.append(
                (
                    kind,
                    f"record {args.n} probes into a store (batch 32)",
                    f"{t_store:.1f} s, store {store.stat().st_size / 2**20:.0f} MiB",
                )
            )
            rows.append(
                (kind, f"read one layer [{layer_rows.shape[0]} x {layer_rows.shape[1]}]", f"{t_read:.3f} s")
            )
            del model
            if device == "cuda":
                torch.cuda.empty_cache()
            shutil.rmtree(ckpt, ignore_errors=True)

    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {args.threads} torch threads"
    print(f"device: {name}, torch {torch.__version__}, dtype {dtype_name}")
    print("| model | measure | value |")
    print("| --- | --- | --- |")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    return rows


def _record(model, store, probe_set, stop) -> None:
    from neuronoverlap.probes import open_writer, record_probe_set

    with open_writer(store, model) as writer:
        record_probe_set(model, writer, probe_set, batch_size=32, stop=stop, progress=False)


if __name__ == "__main__":
    main()
