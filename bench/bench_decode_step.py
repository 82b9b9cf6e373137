"""Where a study batch's time goes: the whole-prompt prefill, the shared prefix's cache copied to
the batch's rows, the suffix prefill after it, and one cached decode step with 16 rows and with
1 row, each timed without the copy of the cache it extends (reading the weights costs about the
same for 16 rows as for 1 on a CPU, which is why decode steps dominate once the prefix is reused).

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

    def best(run, prepare=lambda: None) -> float:
        """The fastest of the repeats of `run(prepare())`; `prepare` (a fresh copy of a cache the
        run extends) is not timed."""
        times = []
        for _ in range(args.repeats):
            argument = prepare()
            started = time.perf_counter()
            run(argument)
            times.append(time.perf_counter() - started)
        return min(times)

    whole = best(lambda _: model.step(batch.input_ids, batch.attention_mask, batch.position_ids))
    suffix = best(
        lambda past: model.step(suffixes.input_ids, suffixes.attention, suffixes.positions, past=past),
        lambda: prefix.expanded(16),
    )
    logits, past = model.step(
        suffixes.input_ids, suffixes.attention, suffixes.positions, past=prefix.expanded(16)
    )
    token = logits[:, -1].argmax(-1)[:, None]
    attention = torch.cat([suffixes.attention, torch.ones_like(token)], dim=1)
    position = suffixes.positions[:, -1:] + 1

    def step(rows: int) -> float:
        cache = copy.deepcopy(past)
        if rows < 16:
            cache.batch_select_indices(torch.arange(rows))
        return best(
            lambda fresh: model.step(token[:rows], attention[:rows], position[:rows], past=fresh),
            lambda: copy.deepcopy(cache),  # the step extends its cache: a fresh copy each time
        )

    print(
        f"model {model.fingerprint()}, torch {torch.__version__}, {args.threads} thread(s), "
        f"load average {os.getloadavg()[0]:.2f}; 16 de-fr study prompts of {batch.input_ids.shape[1]} "
        f"tokens, shared prefix {prefix.n_tokens} tokens"
    )
    print("| forward | rows x tokens | seconds (best of repeats) |")
    print("|---|---|---|")
    print(f"| whole-prompt prefill | 16 x {batch.input_ids.shape[1]} | {whole:.3f} |")
    expand = best(lambda _: prefix.expanded(16))
    print(f"| the prefix's cache copied to 16 rows | 16 x {prefix.n_tokens} | {expand:.3f} |")
    print(f"| suffix prefill after the prefix | 16 x {suffixes.input_ids.shape[1]} | {suffix:.3f} |")
    for rows in (16, 1):
        print(f"| one cached decode step | {rows} x 1 | {step(rows):.3f} |")


if __name__ == "__main__":
    main()
