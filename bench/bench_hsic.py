"""Benchmark the HSIC estimator (issue: HSIC estimator).

Prints one table; ratios are measured side by side in one run, each time the best of --repeats:
1. pairwise neuron HSIC, n = 200 samples, 256 x 256 neurons, float64: `pairwise_hsic` (centred
   Gram triangles, one matrix product) against a per-pair loop in the reference code's style
   (each neuron's Gaussian Gram built once, K H and L H precomputed, then tr(K_i H L_j H) by one
   n x n x n product per pair). The loop runs on the first --loop-pairs x --loop-pairs pairs
   and is extrapolated to all pairs (--full-loop runs all of them); values are compared there.
   The two are timed alternately, --repeats times each, and the best of each is kept; the
   loop's total is 2 x 256 x (seconds per neuron's Gram) + 256^2 x (seconds per pair).
2. permutation test, n = 500, 1000 permutations: `hsic_test(estimator="unbiased")` against
   hyppo's `Hsic().test(x, y, reps=1000, auto=False)` (auto=False forces its permutation test;
   hyppo's statistic is the unbiased HSIC normalised to a correlation, whose permutation test
   is the same as the unbiased HSIC's; hyppo's Gaussian kernel uses x's median distance as the
   bandwidth for y too, so ours is given that bandwidth for both). Statistics must agree to
   rounding and p-values within Monte Carlo error (3 standard errors of a difference of two
   1000-permutation estimates, plus one permutation's step).
   hyppo is the `bench` extra; without it that column is skipped with a message.
3. for reference: a fixed bandwidth and 1024 x 1024 neurons (where the loop is extrapolated
   from the per-neuron and per-pair costs measured in 1.), the peak memory of 4096 x 4096
   neurons (in a fresh process: growth of the peak resident set), the biased and gamma tests,
   the reference bridge score and its max-mean permutation test at bridge-selection sizes.

Usage: .venv/bin/python bench/bench_hsic.py [--device cpu|cuda] [--threads N] [--repeats 3]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time

import numpy as np


def best_time(function, repeats: int, synchronise=lambda: None) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        synchronise()
        start = time.perf_counter()
        result = function()
        synchronise()
        best = min(best, time.perf_counter() - start)
    return best, result


def loop_pairwise_hsic(A, B, torch, synchronise):
    """Reference-style loop: per-neuron Gaussian Grams (median bandwidth), K H and L H
    precomputed, then tr(K_i H L_j H) / (n-1)^2 with one matrix product per pair.
    Returns the values and the seconds spent per neuron (Grams) and per pair (products)."""
    n = A.shape[1]
    centring = torch.eye(n, dtype=A.dtype, device=A.device) - 1.0 / n
    first, second = torch.triu_indices(n, n, 1, device=A.device)

    def gram_times_h(row):
        squared = (row[:, None] - row[None, :]) ** 2
        sigma = torch.quantile(squared[first, second].sqrt(), 0.5)
        return torch.exp(-squared / (2 * sigma**2)) @ centring

    synchronise()
    start = time.perf_counter()
    kh, lh = [gram_times_h(row) for row in A], [gram_times_h(row) for row in B]
    synchronise()
    neuron_seconds = (time.perf_counter() - start) / (len(kh) + len(lh))
    values = torch.empty(len(kh), len(lh), dtype=A.dtype, device=A.device)
    start = time.perf_counter()
    for i, left in enumerate(kh):
        for j, right in enumerate(lh):
            values[i, j] = torch.trace(left @ right) / (n - 1) ** 2
    synchronise()
    pair_seconds = (time.perf_counter() - start) / (len(kh) * len(lh))
    return values, neuron_seconds, pair_seconds


def reference_code_loop(A, B, k, torch, synchronise, dtype):
    """The reference code's compute_hsic as it runs (bridge_hsic.py; torch's default float32):
    z-scores and one sigma (the median of both sets' row distances) for the whole sets, every
    neuron's Gram K, K H and H L, then trace((K_i H) (H L_j)) by one n x n x n product per pair;
    Grams and pairs are run for the first k neurons of each set. Returns the values [k, k] and
    the seconds of the set-up (z-scores, sigma), per neuron (Gram, K H) and per pair."""
    A, B = A.to(dtype), B.to(dtype)
    n = A.shape[1]
    synchronise()
    start = time.perf_counter()
    za = (A - A.mean(dim=1, keepdim=True)) / (A.std(dim=1, keepdim=True) + 1e-6)
    zb = (B - B.mean(dim=1, keepdim=True)) / (B.std(dim=1, keepdim=True) + 1e-6)
    distances = torch.cat([torch.cdist(za, za).view(-1), torch.cdist(zb, zb).view(-1)])
    sigma = torch.median(distances).item() + 1e-6
    synchronise()
    setup_seconds = time.perf_counter() - start
    start = time.perf_counter()
    centring = torch.eye(n, dtype=dtype, device=A.device) - 1.0 / n
    za, zb = za[:k], zb[:k]
    kh = torch.exp(-((za[:, :, None] - za[:, None, :]) ** 2) / (2 * sigma**2)) @ centring
    hl = centring @ torch.exp(-((zb[:, :, None] - zb[:, None, :]) ** 2) / (2 * sigma**2))
    synchronise()
    neuron_seconds = (time.perf_counter() - start) / (2 * k)
    values = torch.empty(k, k, dtype=dtype, device=A.device)
    start = time.perf_counter()
    for i in range(k):
        for j in range(k):
            values[i, j] = torch.trace(kh[i] @ hl[j])
    synchronise()
    pair_seconds = (time.perf_counter() - start) / (k * k)
    return values, setup_seconds, neuron_seconds, pair_seconds


def reference_section(args, torch, device, synchronise) -> list[tuple[str, str, str]]:
    """The reference estimator (z-scores, shared sigma, tr(K H L)) at --reference-samples:
    reference_pairwise_hsic (the kernel's finite expansion) against the reference code's loop,
    and both against the float64 Gram-triangle path."""
    import neuronoverlap.hsic.reference as reference_module
    from neuronoverlap.hsic.expansion import reference_degrees

    n, m, k = args.reference_samples, args.reference_neurons, args.reference_loop_pairs
    rng = np.random.default_rng(5)
    A = rng.standard_normal((m, n))
    B = np.tanh(A[rng.permutation(m)]) + 0.5 * rng.standard_normal((m, n))
    A_t, B_t = torch.from_numpy(A).to(device), torch.from_numpy(B).to(device)
    reference_module.reference_pairwise_hsic(A_t[:4], B_t[:4])  # warm-up
    dtype = getattr(torch, args.reference_dtype)
    ours_s = loop_setup_s = loop_neuron_s = loop_pair_s = float("inf")
    for _ in range(args.repeats):  # alternate, as in section 1
        seconds, ours = best_time(lambda: reference_module.reference_pairwise_hsic(A_t, B_t), 1, synchronise)
        ours_s = min(ours_s, seconds)
        looped, setup, per_neuron, per_pair = reference_code_loop(A_t, B_t, k, torch, synchronise, dtype)
        loop_setup_s = min(loop_setup_s, setup)
        loop_neuron_s, loop_pair_s = min(loop_neuron_s, per_neuron), min(loop_pair_s, per_pair)
    loop_s = loop_setup_s + 2 * m * loop_neuron_s + m * m * loop_pair_s
    za, zb = reference_module.reference_zscore(A_t), reference_module.reference_zscore(B_t)
    sigma = float(reference_module.shared_bandwidth(za, zb))
    degrees = reference_degrees(za, zb, sigma)
    triangle_s, exact = best_time(lambda: reference_module.triangle_products(za, zb, sigma), 1, synchronise)
    exact = exact.cpu().numpy()
    ours_error = float(np.max(np.abs(ours - exact) / np.abs(exact)))
    scale = float(np.abs(exact).max())
    loop_difference = np.abs(looped.double().cpu().numpy() - exact[:k, :k])
    loop_error = float(np.max(loop_difference / np.abs(exact[:k, :k])))
    features = "none (Gram triangles)" if degrees is None else f"{degrees[0] + 1} + {degrees[1] + 1}"
    return [
        (
            f"reference pairwise HSIC {m}x{m} neurons, n={n}: reference_pairwise_hsic",
            f"{ours_s:.3f} s",
            f"float64; features per neuron {features}",
        ),
        (
            f"  the reference code's per-pair loop, {args.reference_dtype} (run on {k}x{k}, extrapolated)",
            f"{loop_s:.0f} s",
            f"{loop_s / ours_s:.0f}x slower; set-up {loop_setup_s:.2f} s, "
            f"{loop_neuron_s * 1e3:.1f} ms a neuron, {loop_pair_s * 1e3:.1f} ms a pair",
        ),
        (
            "  the same estimator from float64 Gram triangles (the exact path)",
            f"{triangle_s:.2f} s",
            f"{triangle_s / ours_s:.0f}x slower than the expansion",
        ),
        (
            "  max relative |ours - exact| over all pairs",
            f"{ours_error:.1e}",
            ("ok (<= 1e-6)" if ours_error <= 1e-6 else "MISMATCH")
            + f"; {float(np.abs(ours - exact).max()) / scale:.1e} of the largest |S|",
        ),
        (
            f"  max relative |loop - exact| on the looped pairs ({args.reference_dtype})",
            f"{loop_error:.1e}",
            f"{float(loop_difference.max()) / scale:.1e} of the largest |S|: the loop's own rounding",
        ),
    ]


def peak_memory_child(neurons: int, samples: int, threads: int, queue) -> None:
    """In a fresh process: pairwise_hsic on neurons x neurons rows; (seconds, peak RSS growth)."""
    import resource

    import torch

    from neuronoverlap.hsic import pairwise_hsic

    if threads:
        torch.set_num_threads(threads)
    A = torch.from_numpy(np.random.default_rng(5).standard_normal((neurons, samples)))
    B = torch.from_numpy(np.random.default_rng(6).standard_normal((neurons, samples)))
    pairwise_hsic(A[:4], B[:4])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    values = pairwise_hsic(A, B)
    seconds = time.perf_counter() - start
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    queue.put((seconds, growth * 1024, values.nbytes))


def peak_memory(neurons: int, samples: int, threads: int) -> tuple[float, int, int]:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=peak_memory_child, args=(neurons, samples, threads, queue))
    child.start()
    result = queue.get()
    child.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=200, help="samples for the pairwise rows")
    parser.add_argument("--neurons", type=int, default=256)
    parser.add_argument("--loop-pairs", type=int, default=32)
    parser.add_argument("--full-loop", action="store_true")
    parser.add_argument(
        "--large-neurons", type=int, default=1024, help="also time this many x this many neurons (0: skip)"
    )
    parser.add_argument(
        "--memory-neurons",
        type=int,
        default=4096,
        help="peak memory of pairwise HSIC at this many x this many neurons, "
        "in a fresh process, CPU only (0: skip)",
    )
    parser.add_argument("--reference-samples", type=int, default=1000, help="n of the reference section")
    parser.add_argument("--reference-neurons", type=int, default=256)
    parser.add_argument("--reference-loop-pairs", type=int, default=4)
    parser.add_argument(
        "--reference-dtype",
        default="float32",
        choices=["float32", "float64"],
        help="dtype of the reference code's loop (float32: torch's default, as it runs)",
    )
    parser.add_argument("--only-reference", action="store_true", help="run the reference section alone")
    parser.add_argument("--test-samples", type=int, default=500)
    parser.add_argument("--permutations", type=int, default=1000)
    args = parser.parse_args()

    import torch

    from neuronoverlap.hsic import (
        Gaussian,
        cka,
        hsic_test,
        max_mean_test,
        pairwise_hsic,
        reference_bridge_score,
    )
    from neuronoverlap.hsic.kernels import median_bandwidth, squared_distances

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    synchronise = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    rows: list[tuple[str, str, str]] = reference_section(args, torch, device, synchronise)
    if args.only_reference:
        print_table(rows, args, torch, device)
        return

    # 1. pairwise neuron HSIC ---------------------------------------------------------------
    rng = np.random.default_rng(0)
    n, m = args.samples, args.neurons
    A = rng.standard_normal((m, n))
    B = np.tanh(A[rng.permutation(m)]) + 0.5 * rng.standard_normal((m, n))
    A_t = torch.from_numpy(A).to(device)
    B_t = torch.from_numpy(B).to(device)
    pairwise_hsic(A_t[:8], B_t[:8])  # warm-up
    k = m if args.full_loop else min(args.loop_pairs, m)
    batched_s = neuron_s = pair_s = float("inf")
    for _ in range(args.repeats):  # alternate the two, so that both see the same machine load
        seconds, batched = best_time(lambda: pairwise_hsic(A_t, B_t), 1, synchronise)
        batched_s = min(batched_s, seconds)
        looped, per_neuron, per_pair = loop_pairwise_hsic(A_t[:k], B_t[:k], torch, synchronise)
        neuron_s, pair_s = min(neuron_s, per_neuron), min(pair_s, per_pair)
    loop_all_s = 2 * m * neuron_s + m * m * pair_s
    difference = float(np.abs(looped.cpu().numpy() - batched[:k, :k]).max())
    how = "all pairs" if k == m else f"run on {k}x{k}, extrapolated"
    rows += [
        (f"pairwise HSIC {m}x{m} neurons, n={n}, float64: batched", f"{batched_s:.3f} s", ""),
        (
            f"  per-pair loop tr(K H L H) ({how})",
            f"{loop_all_s:.1f} s",
            f"{loop_all_s / batched_s:.1f}x slower",
        ),
        (
            "  max |batched - loop| on the looped pairs",
            f"{difference:.1e}",
            "ok (<= 1e-9)" if difference <= 1e-9 else "MISMATCH",
        ),
        (
            "  loop: seconds per neuron's Gram / per pair",
            f"{neuron_s * 1e3:.2f} / {pair_s * 1e3:.3f} ms",
            "per-neuron work (exact median bandwidth) bounds the ratio",
        ),
    ]
    fixed_s, _ = best_time(lambda: pairwise_hsic(A_t, B_t, bandwidth=1.0), args.repeats, synchronise)
    rows.append(
        (
            "  batched, fixed bandwidth (no median selection)",
            f"{fixed_s:.3f} s",
            f"{(2 * m * neuron_s + m * m * pair_s) / fixed_s:.1f}x vs the loop",
        )
    )
    if args.large_neurons:
        big = args.large_neurons
        A_big = torch.from_numpy(np.random.default_rng(3).standard_normal((big, n))).to(device)
        B_big = torch.from_numpy(np.random.default_rng(4).standard_normal((big, n))).to(device)
        big_s, _ = best_time(lambda: pairwise_hsic(A_big, B_big), 1, synchronise)
        big_loop_s = 2 * big * neuron_s + big * big * pair_s
        rows.append(
            (
                f"pairwise HSIC {big}x{big} neurons, n={n}: batched",
                f"{big_s:.2f} s",
                f"loop (extrapolated from the costs above) {big_loop_s:.0f} s: {big_loop_s / big_s:.0f}x",
            )
        )

    if args.memory_neurons and device.type == "cpu":
        big = args.memory_neurons
        seconds, growth, output = peak_memory(big, n, args.threads)
        rows.append(
            (
                f"pairwise HSIC {big}x{big} neurons, n={n}: peak memory growth",
                f"{growth / 2**20:.0f} MiB",
                f"{seconds:.1f} s; default budget 1024 MiB + the {output / 2**20:.0f} MiB result",
            )
        )

    # 2. permutation test against hyppo ----------------------------------------------------
    n_test, reps = args.test_samples, args.permutations
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n_test, 1))
    scenarios = {
        "weak dependence": 0.08 * x**2 + rng.standard_normal((n_test, 1)),
        "independent": rng.standard_normal((n_test, 1)),
    }
    try:
        from hyppo.independence import Hsic

        Hsic().test(x[:40], x[:40] ** 2, reps=5, auto=False)  # numba compilation, not timed
        hyppo_message = None
    except ImportError:
        Hsic, hyppo_message = None, "hyppo not importable: install the bench extra for this column"
    x_t = torch.from_numpy(x).to(device)
    hyppo_kernel = Gaussian(float(median_bandwidth(squared_distances(torch.from_numpy(x)))))
    for label, y in scenarios.items():
        y_t = torch.from_numpy(y).to(device)
        hsic_test(x_t, y_t, n_permutations=10, estimator="unbiased")  # warm-up
        ours_s, ours = best_time(
            lambda y_t=y_t: hsic_test(
                x_t, y_t, hyppo_kernel, n_permutations=reps, seed=0, estimator="unbiased"
            ),
            args.repeats,
            synchronise,
        )
        rows.append(
            (
                f"permutation test n={n_test}, B={reps}, {label}: ours (unbiased)",
                f"{ours_s:.3f} s",
                f"p = {ours.pvalue:.4f}",
            )
        )
        if Hsic is None:
            rows.append(("  hyppo Hsic().test(reps=1000, auto=False)", "skipped", hyppo_message))
            continue
        hyppo_s, (statistic, pvalue) = best_time(
            lambda y=y: Hsic().test(x, y, reps=reps, auto=False), max(1, args.repeats - 1)
        )
        our_statistic = cka(x, y, kernel=hyppo_kernel, debiased=True)
        hyppo_statistic = Hsic().statistic(x, y)
        pooled = (ours.pvalue + pvalue) / 2
        bound = 3 * math.sqrt(2 * pooled * (1 - pooled) / reps) + 1 / (reps + 1)
        agree = abs(ours.pvalue - pvalue) <= bound
        rows += [
            (
                "  hyppo Hsic().test(reps=1000, auto=False)",
                f"{hyppo_s:.2f} s",
                f"p = {float(pvalue):.4f}; {hyppo_s / ours_s:.1f}x slower",
            ),
            (
                "  statistic: our debiased CKA vs hyppo Hsic().statistic",
                f"{abs(our_statistic - hyppo_statistic):.1e}",
                f"{our_statistic:.6f} vs {float(hyppo_statistic):.6f} (test's own: "
                f"{float(statistic):.6f}, see docs/hsic.md)",
            ),
            (
                "  |p ours - p hyppo| vs 3 MC standard errors",
                f"{abs(ours.pvalue - pvalue):.4f}",
                f"bound {bound:.4f}: {'agree' if agree else 'DISAGREE'}",
            ),
        ]

    # 3. other figures -----------------------------------------------------------------------
    y_t = torch.from_numpy(scenarios["weak dependence"]).to(device)
    for label, options in [("biased", {}), ("gamma", {"method": "gamma"})]:
        seconds, result = best_time(
            lambda options=options: hsic_test(x_t, y_t, n_permutations=reps, **options),
            args.repeats,
            synchronise,
        )
        rows.append(
            (
                f"hsic_test n={n_test} ({label}{'' if options else f', B={reps}'})",
                f"{seconds:.3f} s",
                f"p = {result.pvalue:.4f}",
            )
        )
    rng = np.random.default_rng(2)
    overlap = torch.from_numpy(rng.standard_normal((64, n))).to(device)
    bridge = torch.from_numpy(rng.standard_normal((64, n))).to(device)
    seconds, score = best_time(lambda: reference_bridge_score(overlap, bridge), args.repeats, synchronise)
    rows.append((f"reference_bridge_score 64x64 neurons, n={n}", f"{seconds:.3f} s", f"score {score:.4f}"))
    seconds, result = best_time(lambda: max_mean_test(overlap, bridge, n_permutations=200), 1, synchronise)
    rows.append(
        (f"max_mean_test reference mode 64x64, n={n}, B=200", f"{seconds:.2f} s", f"p = {result.pvalue:.3f}")
    )

    print_table(rows, args, torch, device)


def print_table(rows, args, torch, device) -> None:
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    )
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"# HSIC benchmark: torch {torch.__version__}, device {device} ({where}), "
        f"torch threads {torch.get_num_threads()}, best of {args.repeats}, "
        f"load average at the end {load}"
    )
    width = max(len(row[0]) for row in rows)
    print(f"| {'what'.ljust(width)} | time / value | note |")
    print(f"|{'-' * (width + 2)}|--------------|------|")
    for what, value, note in rows:
        print(f"| {what.ljust(width)} | {value} | {note} |")


if __name__ == "__main__":
    main()
