"""Where a study batch's time goes: the whole-prompt prefill, the suffix prefill after a shared
prefix, and one cached decode step with 16 rows and with 1 row (reading the weights costs about
the same for both on a CPU, which is why decode steps dominate once the prefix is reused).

Usage: .venv/bin/python bench/bench_decode_step.py [--model embedded] [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from neuronoverlap.evaluation.generate import shared_prefix_of
    from neuronoverlap.models import load_model
    from neuronoverlap.models.prefix import suffix_batch, token_ids
    from neuronoverlap.threads import set_threads
    from test_prefix_reuse import study_prompts

    set_threads(args.threads)  # kept by load_model (torch.set_num_threads alone was reset by it)
    model = load_model(args.model)
    prompts = study_prompts([("de", "fr")], 16)[0]
    prefix = shared_prefix_of(model, prompts, True)
    batch = model.encode(prompts)
    suffixes = suffix_batch(model, prefix, token_ids(model, prompts))

    def best(run) -> float:
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
        return min(times)

    whole = best(lambda: model.step(batch.input_ids, batch.attention_mask, batch.position_ids))
    suffix = best(
        lambda: model.step(
            suffixes.input_ids, suffixes.attention, suffixes.positions, past=prefix.expanded(16)
        )
    )
    logits, past = model.step(
        suffixes.input_ids, suffixes.attention, suffixes.positions, past=prefix.expanded(16)
    )
    token = logits[:, -1].argmax(-1)[:, None]
    attention = torch.cat([suffixes.attention, torch.ones_like(token)], dim=1)
    position = suffixes.positions[:, -1:] + 1

    def step(rows: int):
        cache = copy.deepcopy(past)
        if rows < 16:
            cache.batch_select_indices(torch.arange(rows))
        return lambda: model.step(token[:rows], attention[:rows], position[:rows], past=copy.deepcopy(cache))

    print(
        f"model {model.fingerprint()}, torch {torch.__version__}, {args.threads} thread(s), "
        f"load average {os.getloadavg()[0]:.2f}; 16 de-fr study prompts of {batch.input_ids.shape[1]} "
        f"tokens, shared prefix {prefix.n_tokens} tokens"
    )
    print("| forward | rows x tokens | seconds (best of repeats) |")
    print("|---|---|---|")
    print(f"| whole-prompt prefill | 16 x {batch.input_ids.shape[1]} | {whole:.3f} |")
    print(f"| suffix prefill after the prefix | 16 x {suffixes.input_ids.shape[1]} | {suffix:.3f} |")
    for rows in (16, 1):
        print(f"| one cached decode step | {rows} x 1 | {best(step(rows)):.3f} |")


if __name__ == "__main__":
    main()
