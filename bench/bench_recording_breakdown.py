"""Where the time of one recorded batch goes: prefill, decode steps, the teacher-forced pass.

Prints one table (process CPU seconds and wall seconds, best of --rounds) for one batch of
translation probes on a model. Usage:
    .venv/bin/python bench/bench_recording_breakdown.py [--model embedded] [--batch 16] [--threads 2]
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stop-rule", default="quote", choices=["quote", "reference"])
    args = parser.parse_args()

    from neuronoverlap.models import StopRule, load_model
    from neuronoverlap.models.generation import generate_tokens, teacher_forced_batch
    from neuronoverlap.probes import ProbeBatchStats, translation_probe_sets
    from neuronoverlap.threads import set_threads

    set_threads(args.threads)  # kept by load_model (torch.set_num_threads alone was reset by it)
    model = load_model(args.model)
    prompts = translation_probe_sets("en", "de", args.batch, seed=0)[0].prompts
    stop = StopRule.named(args.stop_rule)
    batch = model.encode(prompts)

    def timed(fn) -> tuple[float, float]:
        best = (float("inf"), float("inf"))
        for _ in range(args.rounds):
            w, c = time.perf_counter(), time.process_time()
            fn()
            best = min(best, (time.process_time() - c, time.perf_counter() - w))
        return best

    prefill = timed(lambda: model.step(batch.input_ids, batch.attention_mask, batch.position_ids))
    gens = generate_tokens(model, prompts, stop)
    whole = timed(lambda: generate_tokens(model, prompts, stop))
    steps = max(len(g.token_ids) for g in gens)
    fed, mask = teacher_forced_batch(gens, model.tokenizer.pad_token_id, model.device)
    stats = lambda: ProbeBatchStats(len(prompts), model.n_layers, model.d_mlp)  # noqa: E731
    record = timed(lambda: model.record_forward(fed.input_ids, fed.attention_mask, stats(), mask))
    rows = [
        (f"prefill ({batch.input_ids.shape[1]} positions)", prefill),
        (f"generation: prefill + {steps - 1} decode steps", whole),
        (f"teacher-forced recording pass ({fed.input_ids.shape[1]} positions, no logits)", record),
    ]
    print(f"model {model.name}, batch {args.batch}, stop rule {args.stop_rule}, {args.threads} threads")
    print("| part | CPU s | wall s |")
    print("| --- | --- | --- |")
    for name, (cpu, wall) in rows:
        print(f"| {name} | {cpu:.2f} | {wall:.2f} |")
    print(f"| recording / generation | {record[0] / whole[0]:.2f} | {record[1] / whole[1]:.2f} |")


if __name__ == "__main__":
    main()
