"""Benchmark interventions on the embedded Gemma-3-270M: the hooks' overhead on a forward pass and
the attribution pass's cost in forwards.

One batch of `--batch-size` FLORES devtest sentences (German, cut to `--tokens` tokens; the
demo's batch size is 16) is scored (a forward with logits, token NLL) plainly, under a `zero`
intervention and under a `mean` intervention (which also reads the up projection) on a random
1% of all neurons, and by `attribution_scores` (one forward and one backward for every neuron's
estimate). The modes alternate for `--repeats` rounds, in an order that rotates each round, so
that all see the same machine load; the table gives each mode's best and median time and its ratio
to the plain forward's (targets: hook overhead <= 5%, attribution <= 3 forwards). On a loaded
machine those ratios swing by tens of percent either way, so the table ends with the time spent
inside the intervention's hooks as a share of the forward they ran in, measured in the same calls
(a bound on the overhead that the load does not blur).

`--gold N` instead scores N gold answers after real de-fr study prompts (5 shots, the BLI
ablations' gold-NLL texts) with logits at every position and with `score_texts`, which unembeds
only the positions a score reads, side by side; the scores must agree.

Usage: .venv/bin/python bench/bench_interventions.py [--batch-size 16] [--tokens 16] [--repeats 4]
       [--threads N] [--device cpu] [--length-order N | --gold N]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=16, help="sentences per batch (default: 16)")
    parser.add_argument("--tokens", type=int, default=16, help="tokens per sentence at most (default: 16)")
    parser.add_argument("--repeats", type=int, default=4, help="alternating rounds (default: 4)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="embedded")
    parser.add_argument(
        "--length-order",
        type=int,
        default=0,
        metavar="N",
        help="instead: score N whole FLORES sentences (LAPE's texts, batches of 8) in item order and "
        "in length order (score_texts), side by side (default: 0, off)",
    )
    parser.add_argument(
        "--gold",
        type=int,
        default=0,
        metavar="N",
        help="instead: score N gold answers after de-fr study prompts with logits at every position "
        "and at the scored ones only (score_texts), side by side (default: 0, off)",
    )
    args = parser.parse_args()

    import numpy as np
    import torch

    from neuronoverlap.interventions import attribution_scores, hooks, intervene, score_texts, sentence_texts
    from neuronoverlap.models import load_model
    from neuronoverlap.probes import flores_sentences
    from neuronoverlap.versions import library_versions

    if args.threads:
        from neuronoverlap.threads import set_threads

        set_threads(args.threads)  # kept by load_model (torch.set_num_threads alone was reset by it)
    model = load_model(args.model, device=args.device)
    if args.length_order:
        return length_order(model, args)
    if args.gold:
        return gold_positions(model, args)
    sentences, _ = flores_sentences("de", args.batch_size, split="devtest")
    texts = sentence_texts(model, sentences, max_tokens=args.tokens)
    shape = (model.n_layers, model.d_mlp)
    rng = np.random.default_rng(0)
    flat = rng.choice(model.n_neurons, size=model.n_neurons // 100, replace=False)
    neurons = [(int(i) // model.d_mlp, int(i) % model.d_mlp) for i in flat]
    means = rng.random(shape)

    def plain():
        score_texts(model, texts, batch_size=args.batch_size)

    def zero():
        with intervene(model, neurons, "zero"):
            score_texts(model, texts, batch_size=args.batch_size)

    def mean():
        with intervene(model, neurons, "mean", values=means):
            score_texts(model, texts, batch_size=args.batch_size)

    def attribution():
        attribution_scores(model, texts, "zero", batch_size=args.batch_size)

    modes = {"plain forward": plain, "zero, 1% of neurons": zero, "mean, 1% of neurons": mean}
    modes["attribution (fwd+bwd)"] = attribution
    plain()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in modes}
    names = list(modes)
    for round_index in range(args.repeats):  # the order rotates: no mode always runs first
        for name in names[round_index % len(names) :] + names[: round_index % len(names)]:
            run = modes[name]
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
            print(f"  {name}: {times[name][-1]:.2f} s", flush=True)
    inside = {"seconds": 0.0}
    original = hooks.edited_post

    def timed(*call_args):
        start = time.perf_counter()
        try:
            return original(*call_args)
        finally:
            inside["seconds"] += time.perf_counter() - start

    hooks.edited_post = timed
    try:
        shares = {}
        for name, run in (("zero", zero), ("mean", mean)):
            inside["seconds"] = 0.0
            start = time.perf_counter()
            run()
            shares[name] = inside["seconds"] / (time.perf_counter() - start)
    finally:
        hooks.edited_post = original
    base_best, base_median = min(times["plain forward"]), statistics.median(times["plain forward"])
    n_tokens = sum(len(s) for s in texts.sequences)
    print(f"{model.name}: {len(texts)} sentences, {n_tokens} tokens, {len(neurons)} neurons intervened")
    print(f"{'mode':<24}{'best s':>9}{'median s':>10}{'best/plain':>12}{'median/plain':>14}")
    for name, values in times.items():
        best, median = min(values), statistics.median(values)
        print(f"{name:<24}{best:>9.3f}{median:>10.3f}{best / base_best:>12.3f}{median / base_median:>14.3f}")
    for name, share in shares.items():
        print(f"time inside the '{name}' hooks: {100 * share:.3f}% of its forward")
    versions = ", ".join(f"{k} {v}" for k, v in library_versions().items())
    print(
        f"torch threads {torch.get_num_threads()}, {platform.processor() or platform.machine()}; {versions}"
    )
    print(f"load: {os.getloadavg()}")


def every_position_scores(model, texts):
    """The items' scores in item order (batches of 8 as given, no length sorting), from logits
    at every position: the way `score_texts` scored before it sorted by length and kept only the
    positions it reads."""
    import torch

    from neuronoverlap.interventions.scoring import forward_logits, item_nll

    out = []
    with torch.inference_mode():
        for ids, attention, scored in texts.batches(8, model.device):
            out.append(item_nll(forward_logits(model, ids, attention), ids, scored, texts.reduce).double())
    return torch.cat(out).numpy()


def side_by_side(runs: dict, repeats: int) -> tuple[dict, dict]:
    """Each of `runs` (name -> call) once per round, the order reversed every other round so that
    all see the same machine load: (name -> seconds per round, name -> last result)."""
    times: dict = {name: [] for name in runs}
    results: dict = {}
    for round_index in range(repeats):
        for name, run in list(runs.items())[:: 1 - 2 * (round_index % 2)]:
            start = time.perf_counter()
            results[name] = run()
            times[name].append(time.perf_counter() - start)
            print(f"  {name}: {times[name][-1]:.2f} s", flush=True)
    return times, results


def length_order(model, args) -> None:
    """Whole sentences in batches of 8: item order (every batch padded to its longest sentence)
    against `score_texts`'s length order, alternating rounds; the scores must agree."""
    import numpy as np
    import torch

    from neuronoverlap.interventions.scoring import score_texts, sentence_texts
    from neuronoverlap.probes import flores_sentences
    from neuronoverlap.versions import library_versions

    sentences, _ = flores_sentences("de", args.length_order, split="devtest")
    texts = sentence_texts(model, sentences, max_tokens=128)

    def item_order():
        return every_position_scores(model, texts)

    def by_length():
        return score_texts(model, texts, batch_size=8)

    times, results = side_by_side({"item order": item_order, "length order": by_length}, args.repeats)
    padded = sum(8 * max(len(s) for s in texts.sequences[i : i + 8]) for i in range(0, len(texts), 8))
    ordered = sorted(len(s) for s in texts.sequences)
    padded_sorted = sum(8 * max(ordered[i : i + 8]) for i in range(0, len(ordered), 8))
    print(
        f"{model.name}: {len(texts)} sentences, {sum(map(len, texts.sequences))} tokens; "
        f"padded positions {padded} (item order) vs {padded_sorted} (length order)"
    )
    best = {name: min(v) for name, v in times.items()}
    for name, values in times.items():
        print(f"{name:<14} best {best[name]:.2f} s  median {statistics.median(values):.2f} s")
    print(
        f"speed-up (best): {best['item order'] / best['length order']:.2f}x; "
        f"largest score difference {np.abs(results['item order'] - results['length order']).max():.2e}"
    )
    print(
        f"torch threads {torch.get_num_threads()}; "
        + ", ".join(f"{k} {v}" for k, v in library_versions().items())
    )
    print(f"load: {os.getloadavg()}")


def gold_positions(model, args) -> None:
    """Gold answers after study prompts in batches of 8: logits at every position against
    `score_texts` (the scored positions only), alternating rounds; the scores must agree."""
    import numpy as np
    import torch

    from neuronoverlap.evaluation.bli import PROMPT_STYLES, direct_prefix
    from neuronoverlap.interventions.scoring import continuation_texts, score_texts
    from neuronoverlap.predictors.competence import leg_words
    from neuronoverlap.probes.prompts import render
    from neuronoverlap.versions import library_versions

    style = PROMPT_STYLES["study"]
    examples, words, dictionary = leg_words("de", "fr", n=args.gold, seed=0, shots=5)
    prefix = direct_prefix(style, "de", "fr", examples)
    prompts = [prefix + render(style.direct, "de", "fr", w, style.names) for w in words]
    texts = continuation_texts(model, prompts, [dictionary.translations[w][0] for w in words])

    def every_position():
        return every_position_scores(model, texts)

    def scored_only():
        return score_texts(model, texts, batch_size=8)

    times, results = side_by_side(
        {"every position": every_position, "scored positions": scored_only}, args.repeats
    )
    lengths = [len(s) for s in texts.sequences]
    print(
        f"{model.name}: {len(texts)} gold answers after de-fr study prompts, "
        f"{np.mean(lengths):.1f} tokens each"
    )
    best = {name: min(v) for name, v in times.items()}
    for name, values in times.items():
        print(f"{name:<17} best {best[name]:.2f} s  median {statistics.median(values):.2f} s")
    difference = np.abs(results["every position"] - results["scored positions"]).max()  # both in item order
    print(
        f"speed-up (best): {best['every position'] / best['scored positions']:.2f}x; "
        f"largest score difference {difference:.2e}"
    )
    print(
        f"torch threads {torch.get_num_threads()}; "
        + ", ".join(f"{k} {v}" for k, v in library_versions().items())
    )
    print(f"load: {os.getloadavg()}")


if __name__ == "__main__":
    main()
